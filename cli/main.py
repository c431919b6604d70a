"""Entry point of the `corpusmill` command: global options, subcommand dispatch, and the one place
where any error becomes a one-line message and an exit status."""

from __future__ import annotations

import argparse
import errno
import importlib.util
import logging
import sys
from importlib.metadata import version

from corpusmill.cli import (
    export,
    inspect,
    refilter,
    report,
    run,
    sample,
    train,
    train_tokenizer,
)
from corpusmill.core import progress
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.logs import LOG_FORMAT

log = logging.getLogger("corpusmill")

# What to do about a failed file operation, by errno.
_OS_HINTS = {
    errno.ENOSPC: "free some space and rerun the same command to resume",
    errno.EDQUOT: "free some space and rerun the same command to resume",
    errno.EACCES: "check the permissions of the path, or choose another",
    errno.EPERM: "check the permissions of the path, or choose another",
    errno.EROFS: "choose a path on a writable file system",
}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, set up logging and run the chosen subcommand; any error is told in
    one line (with its traceback in the log under -v) and sets the exit status."""
    if argv is None:
        spawn_without_script()
    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = args.verbose - args.quiet
    configure_logging(verbosity)
    try:
        return args.handler(args)
    except KeyboardInterrupt as exc:
        message, status = "interrupted; rerun the same command to resume", 130
        return _report(args.command, exc, message, status, verbosity > 0)
    except Exception as exc:
        return _report(args.command, exc, *describe(exc, verbosity > 0), verbosity > 0)


def describe(exc: Exception, verbose: bool = False) -> tuple[str, int]:
    """The one-line message and exit status of an error: 2 for the user's mistakes, 1 for damaged
    data, a failed file operation (its path and reason) or a defect of corpusmill (whose
    traceback -v shows)."""
    if isinstance(exc, CorpusmillError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError):
        paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
        reason = "; ".join(filter(None, [exc.strerror or str(exc), _OS_HINTS.get(exc.errno)]))
        return f"{paths}: {reason}" if paths else reason, 1
    hint = "" if verbose else " (rerun with -v for the traceback)"
    return f"internal error: {type(exc).__name__}: {exc}{hint}", 1


def spawn_without_script() -> None:
    """Have the processes this command spawns (a local cluster's workers) skip the `corpusmill`
    script, as they do under `python -m corpusmill.cli`: Python's spawn runs the parent's main
    script in each child first, and this one imports every subcommand, which took a local
    cluster twice as long to start."""
    script = sys.modules.get("__main__")
    if script is not None and getattr(script, "__spec__", None) is None:
        script.__spec__ = importlib.util.find_spec("corpusmill.cli.__main__")


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
    refilter.add_parser(subparsers, parents=[verbosity])
    train_tokenizer.add_parser(subparsers, parents=[verbosity])
    inspect.add_parser(subparsers, parents=[verbosity])
    train.add_parser(subparsers, parents=[verbosity])
    sample.add_parser(subparsers, parents=[verbosity])
    report.add_parser(subparsers, parents=[verbosity])
    export.add_parser(subparsers, parents=[verbosity])
    return parser


def configure_logging(level: int) -> None:
    """Log to stderr: warnings and progress lines by default, info with -v, debug with -vv,
    errors only with -q."""
    levels = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}
    logging.basicConfig(
        level=levels.get(max(-1, level), logging.DEBUG),
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    progress.log.setLevel(logging.INFO if level >= 0 else logging.ERROR)


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


def _report(command: str, exc: BaseException, message: str, status: int, verbose: bool) -> int:
    """Tell the user what went wrong in one line, after its traceback if verbose; return the
    exit status."""
    if verbose:
        log.error("traceback of the error below", exc_info=exc)
    print(f"corpusmill {command}: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
