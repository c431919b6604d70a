"""`corpusmill report`: how well a run's corpus compresses, by compressors, the tokenizer and
models used as arithmetic coders, written as report.json, report.md and report.html."""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path

from corpusmill.cli.flags import add_config_flags, config_from_flags
from corpusmill.core.storage import Location, check_location, location
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import ConfigError
from corpusmill.report.build import build_report, report_tokenizer
from corpusmill.report.config import ReportConfig
from corpusmill.report.predict import CheckpointModel
from corpusmill.report.render import write_report
from corpusmill.report.sample import run_parts

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    """Register the `report` subcommand; every ReportConfig key is a flag."""
    parser = subparsers.add_parser(
        "report",
        parents=parents,
        help="measure a corpus's compression: zstd, tokenizer, entropy, model bits per byte",
        description="Measure a held-out sample of a run's deduplicated documents in bits per "
        "byte: gzip and zstd (with and without a dictionary), the tokenizer, Kneser-Ney token "
        "models and a trained model used as arithmetic coders, and raw vs clean vs deduplicated.",
    )
    parser.add_argument(
        "out", type=location, metavar="OUT", help="a run's output folder or its s3:// URL"
    )
    parser.add_argument("--model", type=Path, help="a trained checkpoint (model.npz) to measure")
    parser.add_argument(
        "--tokenizer", type=Path, help="tokenizer.json to use when OUT has no tokenized shards"
    )
    parser.add_argument(
        "--dest",
        type=Path,
        help="local folder for the report files (default: OUT/report; ./report-NAME for a run "
        "on an object store named NAME)",
    )
    parser.add_argument(
        "--no-stages",
        action="store_true",
        help="skip the raw vs clean vs deduplicated comparison of the whole run",
    )
    parser.add_argument(
        "--scheduler",
        default="",
        help="address of a Dask scheduler to compare the stages on; empty starts a local cluster",
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="local worker processes (default: one per core)"
    )
    add_config_flags(parser, ReportConfig, title="report keys")
    parser.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    """Build the report and write its files."""
    config = config_from_flags(args, ReportConfig)
    # Everything that can be refused is, before the minutes of work.
    check_location(args.out)
    run_parts(args.out)
    dest = args.dest or _default_dest(RunLayout(args.out))
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"--dest {dest} is a file: name a folder for the report files")
    tokenizer, _ = report_tokenizer(args.out, args.tokenizer)
    if args.workers < 0:
        raise ConfigError(f"--workers {args.workers} must be at least 0 (0: one per core)")
    model, checkpoint = _checkpoint(args.model, tokenizer) if args.model else (None, None)
    with contextlib.ExitStack() as stack:
        client = None
        if not args.no_stages:
            client = stack.enter_context(dask_client(args.scheduler, args.workers))
        result = build_report(
            args.out,
            config,
            args.tokenizer,
            model=model,
            checkpoint=checkpoint,
            client=client,
            documents=dest / RunLayout(args.out).report_documents.name,
        )
    for path in write_report(result, dest):
        print(path)
    return 0


def _default_dest(layout: RunLayout) -> Path:
    """OUT/report for a local run; the report of a run on an object store is written locally,
    to ./report-NAME."""
    if isinstance(layout.report, Path):
        return layout.report
    dest = Path(f"{layout.report.name}-{layout.root.name}")
    log.warning("report: %s is on an object store; the report goes to %s", layout.root, dest)
    return dest


def _checkpoint(path: Path, tokenizer: Location) -> tuple[CheckpointModel, dict]:
    """The trained model of a checkpoint, refused unless trained with `tokenizer`, and what the
    report says of it: its file's bytes, its parameters, held-out set and training history."""
    from corpusmill.train.checkpoint import CheckpointError, checkpoint_tokenizer, load_checkpoint

    model, meta = load_checkpoint(path)
    checkpoint_tokenizer(path, meta, tokenizer)
    history = meta.get("history", [])
    if not isinstance(history, list) or any(
        not isinstance(entry, dict)
        or not isinstance(entry.get("step"), int)
        or not isinstance(entry.get("eval_bpb"), float)
        for entry in history
    ):
        raise CheckpointError(
            f"{path}: its training history is damaged; retrain it with `corpusmill train`"
        )
    info = {
        "file": str(path),
        "bytes": path.stat().st_size,
        "params": model.num_params(),
        "held_out": meta.get("held_out"),
        "history": history,
    }
    return CheckpointModel(model, meta["tokenizer"]["eos_id"]), info
