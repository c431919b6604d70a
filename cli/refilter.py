"""`corpusmill refilter`: a run's filter verdicts decided again, with new thresholds, from the
signals its clean stage stored, without reading its inputs (pipeline/refilter.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from corpusmill.core.storage import check_location, location
from corpusmill.pipeline.readers import printable
from corpusmill.pipeline.refilter import refilter_run


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    """Register the `refilter` subcommand."""
    parser = subparsers.add_parser(
        "refilter",
        parents=parents,
        help="apply new filter thresholds to a run from its stored signals",
        description=(
            "Decide a run's clean and rejected parts again with the filter thresholds of "
            "CONFIG.toml, from the signals its clean stage stored, without reading its inputs; "
            "then `corpusmill run OUT/config.toml` makes its later stages again (a `corpusmill "
            "run` whose config changes only thresholds does both). Only thresholds of the "
            "built-in filters may change, in a run that stored its signals; any other change "
            "needs a full run (exit 2)."
        ),
    )
    parser.add_argument(
        "out",
        type=location,
        metavar="OUT",
        help="a run's output folder, or its URL (s3://BUCKET/PREFIX)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        default=[],
        metavar="CONFIG.toml",
        help="the new thresholds, over the run's own config (repeat: later files win)",
    )
    parser.set_defaults(handler=refilter)


def refilter(args: argparse.Namespace) -> int:
    """Refilter the run, then print its new counts and the command that finishes it."""
    check_location(args.out)
    stats = refilter_run(args.out, args.config)
    removed = sum(counts["docs"] for counts in stats["rejected"].values())
    print(
        f"refilter: {stats['read']['docs']} documents read, {stats['kept']['docs']} kept, "
        f"{removed} rejected, in {stats['tasks']} parts ({stats['seconds']:.1f} s)"
    )
    config = args.out / "config.toml"
    print(f"to deduplicate and tokenize them: corpusmill run {printable(str(config))}")
    return 0
