"""`corpusmill train`: the small numpy language model trained on a run's shards."""

from __future__ import annotations

import argparse
from pathlib import Path

from threadpoolctl import threadpool_limits

from corpusmill.cli.flags import add_config_flags, config_from_flags
from corpusmill.pipeline.config import ConfigError
from corpusmill.train.loop import TrainConfig, train


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    """Register the `train` subcommand."""
    parser = subparsers.add_parser(
        "train",
        parents=parents,
        help="train the small numpy language model on a run's shards",
        description=(
            "Train a tiny GPT (numpy, float32) on the tokenized run in OUT, reporting the loss in "
            "nats per token and bits per byte (bits over the documents' own UTF-8 bytes) on "
            "held-out documents chosen by a hash of their id, the ones `corpusmill report` "
            "measures, and save weights, config and tokenizer reference in one checkpoint file."
        ),
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="a tokenized run's output folder")
    parser.add_argument(
        "--ckpt",
        type=Path,
        default=Path("model.npz"),
        help="checkpoint file to write (default: %(default)s)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (log lines only)"
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="threads of numpy's BLAS; this model's matrices are small, and one thread per "
        "process is several times faster than sharing two cores (default: %(default)s)",
    )
    add_config_flags(parser, TrainConfig, title="model and optimization")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Train with the flags given, write the checkpoint and print the final losses."""
    config = config_from_flags(args, TrainConfig)
    if args.blas_threads < 1:
        raise ConfigError(f"--blas-threads {args.blas_threads} must be at least 1")
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        stats = train(args.out, config, args.ckpt, progress=not args.no_progress)
    first, last, held = stats["history"][0], stats["history"][-1], stats["held_out"]
    print(
        f"{args.ckpt}: {stats['params']} parameters, {stats['steps']} steps in "
        f"{stats['seconds']:.1f} s ({stats['cpu_seconds']:.1f} CPU-seconds of steps); "
        f"on {held['docs']} held-out documents ({held['bytes']} bytes"
        f"{', the validation split' if held['validation_fraction'] else ''}): "
        f"loss {first['eval_loss']:.3f} -> {last['eval_loss']:.3f} nats/token, "
        f"{first['eval_bpb']:.3f} -> {last['eval_bpb']:.3f} bits/byte"
    )
    return 0
