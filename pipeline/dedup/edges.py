"""Dedup step 4, a task per partition of pairs: each candidate pair once, exact pairs kept and
near pairs kept when their true Jaccard similarity reaches the threshold (all of them when it is
0) -> edges/partition-N.arrow, the edges of the duplicate graph."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pyarrow as pa
from distributed import Client, Future

from corpusmill.core.storage import Location
from corpusmill.pipeline.dedup.candidates import Candidates, pair_files
from corpusmill.pipeline.dedup.files import DedupFiles, rows_of
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.lsh import Pairs, unique_pairs
from corpusmill.pipeline.dedup.shuffle import read_range, read_table, write_sorted
from corpusmill.pipeline.dedup.verify import jaccard

# Candidate pairs verified at once: their shingle sets take about 16 bytes per shingle.
_VERIFY_PAIRS = 4096


class Edges(NamedTuple):
    """A partition's edge file and its counts of exact, candidate, verified and kept pairs."""

    path: Location
    counts: dict[str, int]


def submit_edges(
    client: Client,
    files: DedupFiles,
    threshold: float,
    candidates: Sequence[Future],
    shingles: Sequence[Future],
) -> list[Future]:
    """A future of each partition's Edges, from every bucket's Candidates and, when `threshold`
    is above 0, every clean part's shingles file."""
    return [
        client.submit(edges_task, j, candidates, shingles, files, threshold, pure=False)
        for j in range(files.buckets)
    ]


def edges_task(
    j: int,
    candidates: Sequence[Candidates],
    shingles: Sequence[Location],
    files: DedupFiles,
    threshold: float,
) -> Edges:
    """Keep partition j's exact pairs and its near pairs whose true Jaccard similarity reaches
    `threshold` (all near pairs when it is 0); write them as edges and return the counts.
    Memory: the partition's pairs (25 bytes each) and the sets of 4,096 pairs at a time."""
    rows = read_range(pair_files(candidates), j, j + 1)
    pairs = unique_pairs(
        Pairs(*(rows.column(name).to_numpy(zero_copy_only=False) for name in ("a", "b", "exact")))
    )
    similarity = np.full(len(pairs.a), np.nan, np.float32)
    near = np.flatnonzero(~pairs.exact)
    if threshold > 0:
        sets = _SetLookup(dict(zip(files.parts, shingles, strict=True)))
        for start in range(0, len(near), _VERIFY_PAIRS):
            chunk = near[start : start + _VERIFY_PAIRS]
            similarity[chunk] = jaccard(sets.get(pairs.a[chunk]), sets.get(pairs.b[chunk]))
        keep = pairs.exact | (similarity >= threshold)
    else:
        keep = np.ones(len(pairs.a), bool)
    path = files.file("edges", j)
    write_sorted(
        path,
        pa.table(
            {
                "a": pairs.a[keep],
                "b": pairs.b[keep],
                "exact": pairs.exact[keep],
                "jaccard": similarity[keep],
            }
        ),
    )
    counts = {
        "exact": int(pairs.exact.sum()),
        "candidates": len(near),
        "verified": int(keep.sum() - pairs.exact.sum()),
        "edges": int(keep.sum()),
    }
    return Edges(path, counts)


class _SetLookup:
    """Shingle sets by document key, from the memory-mapped shingles file of each key's part."""

    def __init__(self, paths: Mapping[int, Location]) -> None:
        self._paths = paths
        self._files: dict[int, tuple[np.ndarray, pa.Array]] = {}

    def get(self, keys: np.ndarray) -> pa.LargeListArray:
        """The sets of `keys`, in their order."""
        distinct, index = np.unique(keys, return_inverse=True)
        found = []
        for part in np.unique(distinct >> ROW_BITS).tolist():
            known, sets = self._file(part)
            wanted = distinct[(distinct >> ROW_BITS) == part]
            found.append(sets.take(rows_of(known, wanted, self._paths[part])))
        return pa.concat_arrays(found).take(index)

    def _file(self, part: int) -> tuple[np.ndarray, pa.Array]:
        if part not in self._files:
            table = read_table(self._paths[part])
            sets = table.column("shingles")
            self._files[part] = (
                table.column("key").to_numpy(),
                sets.combine_chunks() if sets.num_chunks != 1 else sets.chunk(0),
            )
        return self._files[part]
