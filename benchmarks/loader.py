"""The streaming loader next to two references, on the same tokens in one run.

Rows, all batches of 32 x (1024 + 1) uint16 tokens from a page-cached synthetic run:
- TokenStream sequential (shuffle=False) and shuffled (blocks of 1M tokens, windows of 8 blocks);
- memcpy limit: a numpy memmap of one flat token file, read sequentially, one copy per batch;
- nanoGPT get_batch: the memmap opened anew per batch, x and y as np.stack of int64 random windows
  (as nanoGPT's train.py does), and the same with one memmap and one uint16 window per row.
Also: the time to open a run of 1,000 shards (and to yield its first batch), and the resident
memory before and after a shuffled epoch. Each row is timed `--rounds` times in a row, each time
on a fresh reader from its first batch, and keeps its best: a row timed right after another one
runs up to a sixth slower, and other load skews single timings. Machines differ, so read the
ratios between rows of one run.

    python benchmarks/loader.py [--tokens 64000000] [--shard-tokens 1000000] [--work DIR]

The best of three runs on a 2-core machine (the memcpy row ranged from 4.1 to 5.0 G tokens/s
over the runs, which puts the shuffled rate at 0.42 to 0.50 of it):

| reader | M tokens/s | / memcpy | / nanoGPT | / np.stack |
|---|---|---|---|---|
| TokenStream, sequential | 2221 | 0.51 | 35.0 | 5.8 |
| TokenStream, shuffled | 2055 | 0.47 | 32.4 | 5.4 |
| memcpy limit: flat memmap, sequential | 4373 | 1.00 | 69.0 | 11.4 |
| nanoGPT get_batch (memmap per batch, int64 x, y) | 63 | 0.01 | 1.0 | 0.2 |
| np.stack of random uint16 windows, one memmap | 382 | 0.09 | 6.0 | 1.0 |

1,000 shards: open 7.1 ms, first batch after 52.9 ms. RSS over a shuffled epoch of 128 MB of
tokens: 82 MB before, 207 MB peak and after.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from corpusmill.loader import TokenStream
from corpusmill.loader.format import Manifest, tokens_array, write_shard
from corpusmill.loader.layout import shard_name

BATCH, SEQ_LEN = 32, 1024
SEED = 20240317


def main() -> None:
    """Write (or reuse) the synthetic runs, then print the throughput table and startup/RSS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/corpusmill-bench-loader"))
    parser.add_argument("--tokens", type=int, default=64_000_000, help="tokens in the run")
    parser.add_argument("--shard-tokens", type=int, default=1_000_000, help="tokens per shard")
    parser.add_argument("--batches", type=int, default=1500, help="batches timed per row")
    parser.add_argument("--rounds", type=int, default=3, help="timings per row, best kept")
    args = parser.parse_args()
    run = args.work / f"run-{args.tokens}-{args.shard_tokens}"
    flat = run / "tokens.bin"
    if not flat.exists():
        write_run(run, args.tokens, args.shard_tokens, flat)
    for path in run.iterdir():  # into the page cache: the rows compare memory, not disk
        path.read_bytes()

    rows = {
        "TokenStream, sequential": lambda: stream_batches(run, shuffle=False),
        "TokenStream, shuffled": lambda: stream_batches(run, shuffle=True),
        "memcpy limit: flat memmap, sequential": lambda: memcpy_batches(flat),
        "nanoGPT get_batch (memmap per batch, int64 x, y)": lambda: nanogpt_batches(flat),
        "np.stack of random uint16 windows, one memmap": lambda: stacked_batches(flat),
    }
    rates = {
        name: max(tokens_per_second(batches(), args.batches) for _ in range(args.rounds))
        for name, batches in rows.items()
    }
    memcpy = rates["memcpy limit: flat memmap, sequential"]
    nanogpt = rates["nanoGPT get_batch (memmap per batch, int64 x, y)"]
    stacked = rates["np.stack of random uint16 windows, one memmap"]
    print(
        f"{args.tokens:,} tokens in shards of {args.shard_tokens:,}; batch {BATCH} x {SEQ_LEN + 1}"
    )
    print("| reader | M tokens/s | / memcpy | / nanoGPT | / np.stack |")
    print("|---|---|---|---|---|")
    for name, rate in rates.items():
        print(
            f"| {name} | {rate / 1e6:.0f} | {rate / memcpy:.2f} | {rate / nanogpt:.1f} "
            f"| {rate / stacked:.1f} |"
        )

    many = args.work / "run-1000-shards"
    if not many.exists():
        write_run(many, 1000 * 4096, 4096, None)
    opened = first = float("inf")
    for _ in range(args.rounds):
        started = time.perf_counter()
        stream = TokenStream(many, SEQ_LEN, BATCH, seed=SEED)
        opened = min(opened, time.perf_counter() - started)
        next(iter(stream))
        first = min(first, time.perf_counter() - started)
    print(f"\n1,000 shards: open {opened * 1e3:.1f} ms, first batch after {first * 1e3:.1f} ms")

    stream = TokenStream(run, SEQ_LEN, BATCH, seed=SEED)
    before = rss_mb()
    peak = before
    for index, _ in enumerate(stream):
        if index % 200 == 0:
            peak = max(peak, rss_mb())
    print(
        f"RSS over a shuffled epoch of {args.tokens * 2 / 1e6:.0f} MB of tokens: "
        f"{before:.0f} MB before, {max(peak, rss_mb()):.0f} MB peak, {rss_mb():.0f} MB after"
    )


def stream_batches(run: Path, shuffle: bool) -> Iterator[np.ndarray]:
    """TokenStream batches, epoch after epoch."""
    stream = TokenStream(run, SEQ_LEN, BATCH, seed=SEED, shuffle=shuffle)
    while True:
        yield from stream


def memcpy_batches(flat: Path) -> Iterator[np.ndarray]:
    """Consecutive (BATCH, SEQ_LEN + 1) blocks of one memmap, each copied once; sliced as a plain
    ndarray, since slicing an np.memmap costs about 1 us a batch, a seventh of the copy."""
    tokens = np.asarray(np.memmap(flat, dtype=np.uint16, mode="r"))
    size = BATCH * (SEQ_LEN + 1)
    while True:
        for start in range(0, len(tokens) - size + 1, size):
            yield np.array(tokens[start : start + size]).reshape(BATCH, SEQ_LEN + 1)


def nanogpt_batches(flat: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """nanoGPT's get_batch without torch: a new memmap per batch, random windows as int64."""
    rng = np.random.default_rng(SEED)
    while True:
        data = np.memmap(flat, dtype=np.uint16, mode="r")
        ix = rng.integers(len(data) - SEQ_LEN, size=BATCH)
        x = np.stack([data[i : i + SEQ_LEN].astype(np.int64) for i in ix])
        y = np.stack([data[i + 1 : i + 1 + SEQ_LEN].astype(np.int64) for i in ix])
        yield x, y


def stacked_batches(flat: Path) -> Iterator[np.ndarray]:
    """nanoGPT's random windows at their cheapest: one memmap, one uint16 window per row."""
    rng = np.random.default_rng(SEED)
    data = np.memmap(flat, dtype=np.uint16, mode="r")
    while True:
        ix = rng.integers(len(data) - SEQ_LEN - 1, size=BATCH)
        yield np.stack([data[i : i + SEQ_LEN + 1] for i in ix])


def tokens_per_second(batches: Iterator, count: int) -> float:
    """Tokens per second over the first `count` batches of a fresh reader, its start included: a
    warm-up would leave out work done ahead (TokenStream plans a few hundred batches at once)."""
    started = time.perf_counter()
    for _ in range(count):
        next(batches)
    return count * BATCH * SEQ_LEN / (time.perf_counter() - started)


def write_run(folder: Path, tokens: int, shard_tokens: int, flat: Path | None) -> None:
    """A run of random documents (about 700 tokens, EOS 0), and the same tokens as one flat file."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    infos = []
    with open(flat, "wb") if flat else contextlib.nullcontext() as sink:
        for index, start in enumerate(range(0, tokens, shard_tokens)):
            size = min(shard_tokens, tokens - start)
            cuts = np.sort(rng.choice(np.arange(1, size), size // 700, replace=False))
            lengths = np.diff(np.concatenate([[0], cuts, [size]]))
            ids = np.split(rng.integers(1, 50000, size, dtype=np.uint16), np.cumsum(lengths - 1))
            ids = [doc.astype(np.uint32) for doc in ids[: len(lengths)]]
            table = pa.table(
                {
                    "id": [f"doc{index}-{i}" for i in range(len(ids))],
                    "tokens": tokens_array(ids, 0, pa.uint16()),
                    "num_bytes": pa.array(lengths * 4, pa.int64()),
                }
            )
            infos.append(write_shard(folder / shard_name(index), [table], pa.uint16()))
            if sink:
                table.column("tokens").combine_chunks().flatten().to_numpy().tofile(sink)
    manifest = Manifest(
        tokenizer="tokenizer.json",
        tokenizer_xxh3="0" * 16,
        vocab_size=50000,
        token_dtype="uint16",
        eos_id=0,
        tokens_per_shard=shard_tokens,
        shards=tuple(infos),
    )
    (folder / "index.json").write_text(manifest.to_json())


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
