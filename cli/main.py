"""Entry point of the `corpusmill` command: global options and subcommand dispatch."""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import version

from corpusmill.cli import run
from corpusmill.pipeline.clean import StageError
from corpusmill.pipeline.config import ConfigError
from corpusmill.pipeline.readers import InputError

# Subcommands whose implementation has not landed yet: name -> what it will do.
PLANNED = {
    "train-tokenizer": "train a byte-level BPE tokenizer on a corpus",
    "inspect": "summarize and verify a run's shards and manifest",
    "train": "train the small numpy language model on a run's shards",
    "sample": "generate text from a trained checkpoint",
    "report": "measure a corpus's compression: zstd, tokenizer, entropy, model bits per byte",
}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, set up logging and run the chosen subcommand."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose - args.quiet)
    try:
        return args.handler(args)
    except (ConfigError, InputError) as exc:
        print(f"corpusmill {args.command}: {exc}", file=sys.stderr)
        return 2
    except StageError as exc:
        print(f"corpusmill {args.command}: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand."""
    verbosity = _verbosity_parser(default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="corpusmill",
        description="Turn a web crawl into clean, deduplicated, tokenized LLM pretraining data.",
        parents=[_verbosity_parser(default=0)],
    )
    parser.add_argument("--version", action="version", version=version("corpusmill"))
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_parser(subparsers, parents=[verbosity])
    for name, summary in PLANNED.items():
        planned = subparsers.add_parser(name, parents=[verbosity], help=summary)
        planned.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        planned.set_defaults(handler=_not_available)
    return parser


def configure_logging(level: int) -> None:
    """Log to stderr: warnings by default, info with -v, debug with -vv, errors only with -q."""
    levels = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}
    logging.basicConfig(
        level=levels.get(max(-1, level), logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _verbosity_parser(default: object) -> argparse.ArgumentParser:
    """`-v/-q` flags, accepted before and after the subcommand."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "-v", "--verbose", action="count", default=default, help="more log output (repeatable)"
    )
    parser.add_argument(
        "-q", "--quiet", action="count", default=default, help="only errors in the log"
    )
    return parser


def _not_available(args: argparse.Namespace) -> int:
    """Say that a subcommand has not landed yet, without a traceback."""
    print(f"corpusmill {args.command}: not available yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
