"""`corpusmill train-tokenizer`: a byte-level BPE `tokenizer.json` from a run or raw inputs, and
beside one so named the files transformers reads with it."""

from __future__ import annotations

import argparse
from pathlib import Path

from corpusmill.cli.flags import add_config_flags, config_from_flags, config_overrides
from corpusmill.core.atomic import unwritable_file
from corpusmill.core.errors import UserError
from corpusmill.loader.layout import TOKENIZER
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.corpus import Corpus
from corpusmill.pipeline.readers import ReadConfig
from corpusmill.tokenizer.config import TokenizerConfig
from corpusmill.tokenizer.hf_files import write_transformers_files
from corpusmill.tokenizer.train import save_tokenizer, train_tokenizer

# Keys of the [tokenizer] section that concern a run, not training.
_RUN_ONLY = ("path", "train")


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    """Register the `train-tokenizer` subcommand."""
    parser = subparsers.add_parser(
        "train-tokenizer",
        parents=parents,
        help="train a byte-level BPE tokenizer on a corpus",
        description=(
            "Train a byte-level BPE tokenizer (GPT-4 split regex, NFC, special tokens) with HF "
            "tokenizers, on a sample of at most --sample-bytes drawn evenly over the inputs. "
            "Inputs are `corpusmill run` output folders (their deduplicated clean documents) or "
            "JSONL, Parquet, text and WARC files, folders and globs (read twice: once to "
            "measure, once to sample)."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="run output folders or inputs")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(TOKENIZER),
        help="file to write; missing folders are created. A file named tokenizer.json gets "
        "tokenizer_config.json and special_tokens_map.json beside it, so that transformers' "
        "AutoTokenizer.from_pretrained(FOLDER) loads it with its special tokens (default: "
        "%(default)s)",
    )
    add_config_flags(parser, TokenizerConfig, skip=_RUN_ONLY, title="training")
    add_config_flags(parser, ReadConfig, title="reading raw inputs", prefix="read.")
    parser.set_defaults(handler=train)


def train(args: argparse.Namespace) -> int:
    """Train on the inputs and write the tokenizer."""
    _check_out(args.out)
    overrides = config_overrides(args)
    read = load_config(overrides={k: v for k, v in overrides.items() if k.startswith("read.")}).read
    config = config_from_flags(args, TokenizerConfig)
    tokenizer, stats = train_tokenizer(Corpus(args.inputs, read), config)
    save_tokenizer(tokenizer, args.out)
    # transformers reads the companion files only beside a tokenizer.json; under another name they
    # would only overwrite those of another tokenizer in the same folder.
    if args.out.name == TOKENIZER:
        write_transformers_files(args.out, config)
    print(
        f"{args.out}: {stats['vocab_size']} tokens, trained on {stats['bytes'] / 1e6:.1f} MB "
        f"({stats['docs']} documents, {stats['sample_fraction']:.1%} of "
        f"{stats['corpus_bytes'] / 1e6:.1f} MB) in {stats['seconds']:.1f} s"
    )
    return 0


def _check_out(path: Path) -> None:
    """Raise UserError unless `path` can be written as a file (its missing folders created)."""
    if path.is_dir():
        raise UserError(
            f"--out {path} is a folder; give the file to write, e.g. {path / TOKENIZER}"
        )
    if problem := unwritable_file(path):
        raise UserError(f"--out {path}: {problem}; choose another path")
