"""Entry point of the `corpusmill` command: global options and subcommand dispatch."""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import version

from corpusmill.cli import inspect, report, run, sample, train, train_tokenizer
from corpusmill.loader.format import FormatError, MissingRunError
from corpusmill.pipeline.cluster import LOG_FORMAT
from corpusmill.pipeline.config import ConfigError
from corpusmill.pipeline.errors import StageError
from corpusmill.pipeline.readers import InputError
from corpusmill.tokenizer.encode import TokenizerFileError
from corpusmill.train.checkpoint import CheckpointError


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, set up logging and run the chosen subcommand."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose - args.quiet)
    try:
        return args.handler(args)
    except (  # what was asked
        ConfigError,
        InputError,
        CheckpointError,
        MissingRunError,
        TokenizerFileError,
    ) as exc:
        print(f"corpusmill {args.command}: {exc}", file=sys.stderr)
        return 2
    except (StageError, FormatError) as exc:  # what the data turned out to be
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
    train_tokenizer.add_parser(subparsers, parents=[verbosity])
    inspect.add_parser(subparsers, parents=[verbosity])
    train.add_parser(subparsers, parents=[verbosity])
    sample.add_parser(subparsers, parents=[verbosity])
    report.add_parser(subparsers, parents=[verbosity])
    return parser


def configure_logging(level: int) -> None:
    """Log to stderr: warnings by default, info with -v, debug with -vv, errors only with -q."""
    levels = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}
    logging.basicConfig(
        level=levels.get(max(-1, level), logging.DEBUG),
        format=LOG_FORMAT,
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


if __name__ == "__main__":
    sys.exit(main())
