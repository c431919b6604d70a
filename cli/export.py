"""`corpusmill export`: a tokenized run's documents as llm.c's train and validation token files, or
a run's deduplicated corpus as JSONL documents in Dolma's layout."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from corpusmill.core.errors import ConfigError, UserError
from corpusmill.core.storage import Location, ObjectPath, check_location, location
from corpusmill.loader.format import (
    FormatError,
    Manifest,
    checked_batch,
    read_manifest,
    shard_reader,
    shard_schema,
    token_type,
)
from corpusmill.loader.llmc import GPT2_VOCAB_SIZE, MAX_FILE_TOKENS, TokenFile, TokenFileWriter
from corpusmill.loader.split import hash_threshold, id_hashes
from corpusmill.pipeline.dolma import SUFFIXES, write_dolma

log = logging.getLogger(__name__)

FORMATS = ("llmc", "jsonl")
# The share of documents held out for validation when the run holds out none.
DEFAULT_VAL_FRACTION = 0.005


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    """Register the `export` subcommand."""
    parser = subparsers.add_parser(
        "export",
        parents=parents,
        help="write a run's tokens as llm.c's .bin files, or its documents as Dolma's JSONL",
        description="--format llmc: write the documents of the tokenized run in OUT to DIR as "
        "llm.c's token files (NAME_val_000000.bin, NAME_train_000001.bin, ...), which llm.c's "
        "train_gpt2 and nanoGPT-style readers of that format train on: whole documents, each "
        "after its EOS, the validation ones chosen by a hash of their ids. --format jsonl: write "
        "the deduplicated corpus of OUT (OUT/dataset/) to DIR/documents/ in Dolma's layout, a "
        "compressed JSONL file per dataset part, one document (id, text, source, metadata) a line.",
    )
    parser.add_argument(
        "out",
        type=location,
        metavar="OUT",
        help="a tokenized run's output folder, or its URL (s3://BUCKET/PREFIX)",
    )
    parser.add_argument(
        "dest",
        type=Path,
        metavar="DIR",
        help="folder for the files (created if missing; an earlier export's files of the same "
        "format there are replaced)",
    )
    parser.add_argument(
        "--format",
        required=True,
        help="the files to write: llmc (llm.c's .bin token files) or jsonl (Dolma's documents)",
    )
    parser.add_argument(
        "--compression",
        default="zstd",
        help="jsonl only: zstd (part-N.jsonl.zst) or gzip (part-N.jsonl.gz, as Dolma's own "
        "files) (default: %(default)s)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        metavar="FRACTION",
        help="llmc only: share of documents for validation, chosen by a hash of their ids "
        "(loader/split.py), at least one document each for validation and training when there "
        "are several (default: the run's validation split, shards.validation_fraction, else "
        f"{DEFAULT_VAL_FRACTION})",
    )
    parser.add_argument(
        "--shard-tokens",
        type=int,
        default=10**8,
        metavar="N",
        help="llmc only: tokens per file at most, files cut between documents; a longer document "
        "gets a file of its own (default: %(default)s, as llm.c's fineweb.py)",
    )
    parser.add_argument(
        "--name", help="llmc only: the files' name prefix (default: OUT's folder name)"
    )
    parser.set_defaults(handler=export)


def export(args: argparse.Namespace) -> int:
    """Check the flags, the run and DIR, then write the files and print each one."""
    name = _check_flags(args)
    check_location(args.out)
    if args.format == "jsonl":
        _check_dest(args.dest)
        for dolma_file in write_dolma(args.out, args.dest, args.compression):
            print(f"{dolma_file.path}: {dolma_file.docs} documents")
        return 0
    manifest = read_manifest(args.out)
    _check_dest(args.dest)
    _warn_of_vocabulary(manifest.vocab_size)
    fraction = args.val_fraction
    if fraction is None:
        fraction = manifest.validation_fraction or DEFAULT_VAL_FRACTION
    files = write_llmc(args.out, manifest, args.dest, name, fraction, args.shard_tokens)
    for file in files:
        print(f"{file.path}: {file.docs} documents, {file.tokens} tokens")
    return 0


def write_llmc(
    out: Location, manifest: Manifest, dest: Path, name: str, val_fraction: float, file_tokens: int
) -> list[TokenFile]:
    """Write the run's documents to llm.c token files, a record batch at a time: those whose id
    hashes below `val_threshold` are validation documents, the others training ones."""
    threshold = 0
    if val_fraction and (extremes := _hash_extremes(out, manifest)):
        threshold = val_threshold(val_fraction, *extremes)
    dtype = token_type(manifest.vocab_size).to_pandas_dtype()
    with TokenFileWriter(dest, name, dtype, file_tokens) as writer:
        for path, batch in _batches(out, manifest):
            values, lengths = _documents(path, batch, manifest)
            val = id_hashes(batch.column("id").to_pylist()) < np.uint64(threshold)
            for split, chosen in (("val", val), ("train", ~val)):
                writer.write(split, values[np.repeat(chosen, lengths)], lengths[chosen])
        return writer.finish()


def val_threshold(fraction: float, lowest: int, highest: int) -> int:
    """The id hash below which documents are validation ones: `fraction` of the hash range, but
    above the `lowest` hash and at most the `highest`, so that at least one document of a run
    goes to each split when it has several."""
    return min(max(hash_threshold(fraction), lowest + 1), highest)


def _check_flags(args: argparse.Namespace) -> str:
    """Refuse flags out of range; return the files' name prefix."""
    if args.format not in FORMATS:
        raise ConfigError(f"--format {args.format}: unknown; give one of {', '.join(FORMATS)}")
    if args.compression not in SUFFIXES:
        raise ConfigError(
            f"--compression {args.compression}: unknown; give one of {', '.join(SUFFIXES)}"
        )
    if args.val_fraction is not None and not 0 <= args.val_fraction < 1:
        raise ConfigError(f"--val-fraction {args.val_fraction} must be at least 0 and below 1")
    if not 1 <= args.shard_tokens <= MAX_FILE_TOKENS:
        raise ConfigError(
            f"--shard-tokens {args.shard_tokens} must be from 1 to {MAX_FILE_TOKENS} (the file "
            "header counts tokens in an int32)"
        )
    if args.name is not None:
        name = args.name
    else:
        name = args.out.name if isinstance(args.out, ObjectPath) else args.out.absolute().name
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        flag = "--name" if args.name is not None else f"--name (default: OUT {args.out}'s name)"
        raise ConfigError(
            f"{flag} {name!r}: give letters, digits, '_', '.' or '-', which a glob such as "
            "NAME_train_*.bin matches as written"
        )
    return name


def _check_dest(dest: Path) -> None:
    """Create DIR, refusing a path that is (or lies inside) a file."""
    existing = next(path for path in (dest, *dest.absolute().parents) if path.exists())
    if not existing.is_dir():
        raise UserError(
            f"DIR {dest}: {existing} is a file, not a folder; name a folder for the files"
        )
    dest.mkdir(parents=True, exist_ok=True)


def _warn_of_vocabulary(vocab_size: int) -> None:
    """Warn when llm.c's train_gpt2 cannot train on the files as its GPT-2 models are built."""
    if token_type(vocab_size) == pa.uint32():
        log.warning(
            "a vocabulary of %d ids needs uint32 tokens: writing LLaMA-3 token files (magic "
            "20240801), which llm.c's LLaMA-3 code reads and its train_gpt2 refuses",
            vocab_size,
        )
    elif vocab_size > GPT2_VOCAB_SIZE:
        log.warning(
            "a vocabulary of %d ids: llm.c's train_gpt2 models built from a descriptor (-e d12) "
            "embed GPT-2's %d, so train from a model of this vocabulary",
            vocab_size,
            GPT2_VOCAB_SIZE,
        )


def _batches(out: Location, manifest: Manifest) -> Iterator[tuple[Location, pa.RecordBatch]]:
    """Every record batch of the run's shards, the training split's then the validation
    split's, each checked, with its shard's path."""
    schema = shard_schema(pa.from_numpy_dtype(np.dtype(manifest.token_dtype)))
    for shard in manifest.all_shards():
        path = out / shard.name
        with shard_reader(path) as reader:
            for index in range(reader.num_record_batches):
                yield path, checked_batch(path, reader, index, schema)


def _hash_extremes(out: Location, manifest: Manifest) -> tuple[int, int] | None:
    """The lowest and highest id hash of the run's documents, None if it has none."""
    extremes = [
        (int(hashes.min()), int(hashes.max()))
        for hashes in (
            id_hashes(batch.column("id").to_pylist()) for _, batch in _batches(out, manifest)
        )
        if len(hashes)
    ]
    if not extremes:
        return None
    lows, highs = zip(*extremes, strict=True)
    return min(lows), max(highs)


def _documents(path: Location, batch: pa.RecordBatch, manifest: Manifest) -> tuple[np.ndarray, ...]:
    """A batch's tokens back to back and each document's length, checked to end with the EOS id
    and hold only ids of the vocabulary (they may be written as uint16)."""
    column = batch.column("tokens")
    lengths = np.diff(column.offsets.to_numpy())
    values = column.flatten().to_numpy()
    ends = np.cumsum(lengths)
    closed = lengths > 0
    closed[closed] = values[ends[closed] - 1] == manifest.eos_id
    if not closed.all():
        doc_id = batch.column("id")[int(np.argmin(closed))].as_py()
        raise FormatError(
            f"{path}: document {doc_id} does not end with the EOS id {manifest.eos_id}; rerun the "
            "tokenize stage"
        )
    if len(values) and values.max() >= manifest.vocab_size:
        raise FormatError(
            f"{path}: token id {int(values.max())} is outside the manifest's vocabulary of "
            f"{manifest.vocab_size}; rerun the tokenize stage"
        )
    return values, lengths
