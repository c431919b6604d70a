"""`corpusmill run`: the whole pipeline from one config file and/or flags."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from corpusmill.cli.flags import add_config_flags, config_overrides
from corpusmill.core.progress import interval as progress_interval
from corpusmill.pipeline.cluster import dashboard_link, dask_client
from corpusmill.pipeline.config import config_to_toml, load_config
from corpusmill.pipeline.readers import printable
from corpusmill.pipeline.run import prepared_run, run_stages


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    """Register the `run` subcommand."""
    parser = subparsers.add_parser(
        "run",
        parents=parents,
        help="clean, deduplicate and tokenize crawl dumps into Arrow shards",
        description=(
            "Run the pipeline. Positional arguments ending in .toml are config files (later "
            "ones override earlier ones); the others are inputs, replacing the config's inputs. "
            "Flags override both."
        ),
    )
    parser.add_argument(
        "sources", nargs="*", metavar="CONFIG.toml|INPUT", help="config files and inputs"
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective config as TOML and exit",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="delete what a previous run wrote into OUT and start afresh",
    )
    add_config_flags(parser, skip=("inputs",), aliases={"tokenizer.path": ("--tokenizer",)})
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the effective config, check it, its inputs and the output folder, then start
    the cluster, print its dashboard's address if it serves one, and run the stages."""
    config_files = [Path(s) for s in args.sources if s.endswith(".toml")]
    overrides = config_overrides(args)
    inputs = tuple(s for s in args.sources if not s.endswith(".toml"))
    if inputs:
        overrides["inputs"] = inputs
    config = load_config(config_files, overrides)
    progress_interval()  # a wrong CORPUSMILL_PROGRESS_SECONDS is told before a cluster starts
    if args.print_config:
        sys.stdout.write(config_to_toml(config))
        return 0
    with (
        prepared_run(config, args.force) as prepared,
        dask_client(config.scheduler, config.workers) as client,
    ):
        if link := dashboard_link(client):
            print(f"Dask dashboard: {link}", file=sys.stderr)
        stats = run_stages(prepared, client)
    print(summary_table(stats))
    print(f"output: {printable(config.out)}")
    return 0


def summary_table(stats: dict) -> str:
    """A short table per stage: documents and bytes in, out and removed by reason (the tokenize
    stage's validation split on a line of its own), and time."""
    rows: list[tuple[str, dict | None]] = []
    notes = []
    clean = stats["clean"]
    rows += [("clean", None), ("  read", clean["read"])]
    rows += [(f"  removed {reason}", counts) for reason, counts in clean["rejected"].items()]
    rows.append(("  kept", clean["kept"]))
    notes.append(f"clean: {clean['files']} files, {clean['tasks']} tasks, {clean['seconds']:.1f} s")
    if dedup := stats.get("dedup"):
        rows += [("dedup", None), ("  in", {"docs": dedup["docs"], "bytes": dedup["bytes"]})]
        rows += [(f"  removed {kind}", counts) for kind, counts in dedup["removed"].items()]
        rows.append(("  kept", dedup["kept"]))
        notes.append(f"dedup: {dedup['clusters']} duplicate clusters, {dedup['seconds']:.1f} s")
    if dataset := stats.get("dataset"):
        rows += [
            ("dataset", None),
            ("  documents", {"docs": dataset["docs"], "bytes": dataset["bytes"]}),
        ]
        notes.append(f"dataset: {dataset['parts']} parts, {dataset['seconds']:.1f} s")
    if (tokenize := stats.get("tokenize")) and not tokenize.get("skipped"):
        rows += [
            ("tokenize", None),
            ("  documents", {"docs": tokenize["docs"], "bytes": tokenize["num_bytes"]}),
        ]
        notes.append(
            f"tokenize: {tokenize['tokens']} tokens in {tokenize['shards']} shards, "
            f"{tokenize['bytes_per_token']:.2f} bytes/token ({tokenize['backend']}), "
            f"{tokenize['seconds']:.1f} s"
        )
        if held := tokenize.get("validation"):
            rows.append(("  validation", {"docs": held["docs"], "bytes": held["num_bytes"]}))
            notes.append(
                f"tokenize: validation split {held['tokens']} tokens in {held['shards']} shards"
            )
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':<{width}} {'docs':>9} {'MB':>9}"]
    for name, counts in rows:
        numbers = f" {counts['docs']:>9} {counts['bytes'] / 1e6:>9.2f}" if counts else ""
        lines.append(f"{name:<{width}}{numbers}".rstrip())
    return "\n".join(lines + notes)
