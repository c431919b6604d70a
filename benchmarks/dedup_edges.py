"""The edges step's memory: peak RSS of one edges task verifying a partition's near pairs.

Writes shingles files for `--parts` clean parts of `--docs` documents each (sets of 300 to 6,000
shingles drawn from 9,000 values, as pages of a few thousand words, so pairs range from unlike to
alike) and one partition of `--pairs` near pairs between random documents of any parts, then runs
`edges_task` on them in a fresh process and prints its peak RSS (ru_maxrss), the RSS after
imports, its seconds and counts. The defaults are the 30x generated crawl's single partition
(218 parts, 3,605 pairs), which touches every part's shingles file. Run
`python benchmarks/dedup_edges.py [--parts 218] [--docs 62] [--pairs 3605] [--threshold 0.2]`.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from corpusmill.pipeline.dedup.candidates import Candidates
from corpusmill.pipeline.dedup.edges import edges_task
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.shuffle import write_sorted


class Files:
    """What edges_task asks of a run's files: its parts and where its edges go."""

    def __init__(self, folder: Path, parts: int) -> None:
        self.folder = folder
        self.parts = list(range(parts))

    def file(self, step: str, j: int) -> Path:
        return self.folder / f"{step}-{j}.arrow"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=218)
    parser.add_argument("--docs", type=int, default=62, help="documents per part")
    parser.add_argument("--pairs", type=int, default=3605)
    parser.add_argument("--threshold", type=float, default=0.2)
    parser.add_argument("--task", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task is not None:
        run_task(args.task, args.parts, args.threshold)
        return
    with tempfile.TemporaryDirectory() as folder:
        write_inputs(Path(folder), args.parts, args.docs, args.pairs)
        command = [sys.executable, __file__, "--task", folder, "--parts", str(args.parts)]
        subprocess.run([*command, "--threshold", str(args.threshold)], check=True)


def write_inputs(folder: Path, parts: int, docs: int, pairs: int) -> None:
    """The shingles file of each part and the partition's pairs file."""
    rng = np.random.default_rng(0)
    for part in range(parts):
        keys = (np.int64(part) << ROW_BITS) + np.arange(docs)
        sets = [np.unique(rng.integers(0, 9000, rng.integers(300, 6000))) for _ in keys]
        column = pa.array([s.astype(np.uint32) for s in sets], pa.large_list(pa.uint32()))
        write_sorted(folder / f"shingles-{part}.arrow", pa.table({"key": keys, "shingles": column}))
    drawn = np.unique(np.sort(rng.integers(0, parts * docs, (pairs, 2)), axis=1), axis=0)
    drawn = drawn[drawn[:, 0] != drawn[:, 1]]
    a, b = (((drawn // docs) << ROW_BITS) + drawn % docs).T
    table = {
        "partition": np.zeros(len(a), np.int64),
        "a": a,
        "b": b,
        "exact": np.zeros(len(a), bool),
    }
    write_sorted(folder / "pairs.arrow", pa.table(table))


def run_task(folder: Path, parts: int, threshold: float) -> None:
    """One edges task on the inputs in `folder`, with its peak memory."""
    imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    shingles = [folder / f"shingles-{part}.arrow" for part in range(parts)]
    found = edges_task(
        0, [Candidates((folder / "pairs.arrow",), ())], shingles, Files(folder, parts), threshold
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"edges task: peak RSS {peak / 1024:.0f} MB ({imported / 1024:.0f} MB after imports)")
    print(f"{seconds:.1f} s; counts {found.counts}")


if __name__ == "__main__":
    main()
