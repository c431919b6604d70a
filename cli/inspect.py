"""`corpusmill inspect`: a tokenized run's manifest summary, checksums, decoded documents."""

from __future__ import annotations

import argparse

import numpy as np
import pyarrow as pa
from tokenizers import Tokenizer

from corpusmill.core.storage import Location, check_location, location
from corpusmill.loader.format import (
    Manifest,
    checked_batch,
    read_manifest,
    run_tokenizer,
    shard_reader,
    shard_schema,
    tokenizer_problem,
    verify_shards,
)
from corpusmill.pipeline.config import ConfigError


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    """Register the `inspect` subcommand."""
    parser = subparsers.add_parser(
        "inspect",
        parents=parents,
        help="summarize and verify a run's shards and manifest",
        description="Print what OUT/index.json says about a run's shards; optionally verify "
        "every shard's checksum and decode documents back to text.",
    )
    parser.add_argument(
        "out",
        type=location,
        metavar="OUT",
        help="a run's output folder, or its URL (s3://BUCKET/PREFIX, reached with the AWS_* "
        "variables)",
    )
    parser.add_argument(
        "--verify", action="store_true", help="check every shard's size and xxh3 checksum"
    )
    parser.add_argument(
        "--show", type=int, default=0, metavar="N", help="decode the first N documents to text"
    )
    parser.set_defaults(handler=inspect)


def inspect(args: argparse.Namespace) -> int:
    """Print the summary, then the verification and the decoded documents asked for."""
    if args.show < 0:
        raise ConfigError(f"--show {args.show}: give how many documents to decode, at least 0")
    check_location(args.out)
    manifest = read_manifest(args.out)
    print(summary(args.out, manifest))
    status = 0
    if args.verify:
        problems = list(_problems(args.out, manifest))
        for problem in problems:
            print(f"FAILED {problem}")
        if problems:
            print(f"verify: {len(problems)} problems")
        else:
            print(
                f"verify: the tokenizer and all {len(manifest.all_shards())} shards match their "
                "checksums"
            )
        status = 1 if problems else 0
    if args.show:
        print(show(args.out, manifest, args.show))
    return status


def summary(out: Location, manifest: Manifest) -> str:
    """The manifest as a table: a line per shard, the validation split's after the training
    split's, and the totals of each split."""
    totals = manifest.totals()
    rows = [
        (s.name, s.docs, s.tokens, s.num_bytes / 1e6, s.num_bytes / max(s.tokens, 1), s.size / 1e6)
        for s in manifest.all_shards()
    ]
    rows.append(_total_row("total", totals))
    lines = [
        f"{out}: {totals['shards']} shards, {totals['docs']} documents, {totals['tokens']} tokens "
        f"({manifest.token_dtype}, vocabulary {manifest.vocab_size}, EOS {manifest.eos_id}), "
        f"{totals['bytes_per_token']:.3f} bytes/token",
    ]
    if manifest.validation_fraction:
        held = manifest.totals("validation")
        rows.append(_total_row("validation total", held))
        lines.append(
            f"validation: {held['shards']} shards, {held['docs']} documents, {held['tokens']} "
            f"tokens, {held['bytes_per_token']:.3f} bytes/token, held out at fraction "
            f"{manifest.validation_fraction}"
        )
    width = max(len(row[0]) for row in rows)
    lines += [
        f"tokenizer: {manifest.tokenizer} (xxh3 {manifest.tokenizer_xxh3}), "
        f"format version {manifest.format_version}",
        "",
        f"{'shard':<{width}} {'docs':>9} {'tokens':>13} {'text MB':>9} {'bytes/tok':>9} "
        f"{'file MB':>9}",
    ]
    lines += [
        f"{name:<{width}} {docs:>9} {tokens:>13} {text:>9.2f} {ratio:>9.3f} {size:>9.2f}"
        for name, docs, tokens, text, ratio, size in rows
    ]
    return "\n".join(lines)


def show(out: Location, manifest: Manifest, count: int) -> str:
    """The first `count` documents decoded back to text, the EOS token written out."""
    tokenizer = Tokenizer.from_str(run_tokenizer(out, manifest).read_text(encoding="utf-8"))
    schema = shard_schema(pa.from_numpy_dtype(np.dtype(manifest.token_dtype)))
    blocks = []
    for shard in manifest.shards:
        with shard_reader(out / shard.name) as reader:
            for index in range(reader.num_record_batches):
                batch = checked_batch(out / shard.name, reader, index, schema)
                for doc_id, tokens, num_bytes in zip(
                    batch["id"].to_pylist(),
                    batch["tokens"],
                    batch["num_bytes"].to_pylist(),
                    strict=True,
                ):
                    ids = tokens.values.to_numpy().tolist()
                    text = tokenizer.decode(ids, skip_special_tokens=False)
                    blocks.append(f"--- {doc_id} ({len(ids)} tokens, {num_bytes} bytes)\n{text}")
                    if len(blocks) == count:
                        return "\n".join(blocks)
    return "\n".join(blocks)


def _problems(out: Location, manifest: Manifest) -> list[str]:
    """Every mismatch between the files and the manifest, the tokenizer file included."""
    problem = tokenizer_problem(out, manifest)
    return ([problem] if problem else []) + list(verify_shards(out, manifest))


def _total_row(name: str, totals: dict) -> tuple[str, int, int, float, float, float]:
    """A split's totals as a row of the summary's table."""
    return (
        name,
        totals["docs"],
        totals["tokens"],
        totals["num_bytes"] / 1e6,
        totals["bytes_per_token"],
        totals["size"] / 1e6,
    )
