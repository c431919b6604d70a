"""Dedup step 4, a task per partition of pairs: each candidate pair once, exact pairs kept and
near pairs kept when their true Jaccard similarity reaches the threshold (all of them when it is
0) -> edges/partition-N.arrow, the edges of the duplicate graph; the same edges by their member
end, with exact copies marked, -> members/partition-N.arrow, and the copies' firsts ->
firsts/partition-N.arrow (copies.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from distributed import Client, Future

from corpusmill.core.storage import Location
from corpusmill.pipeline.cluster import collected
from corpusmill.pipeline.dedup.candidates import Candidates, pair_files
from corpusmill.pipeline.dedup.copies import member_rows
from corpusmill.pipeline.dedup.files import DedupFiles, rows_of
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.lsh import Pairs, unique_pairs
from corpusmill.pipeline.dedup.shuffle import read_range, write_sorted
from corpusmill.pipeline.dedup.verify import jaccard

# Candidate pairs whose shingle sets are read at once (4 bytes per shingle, held about four
# times while both sides are put in order: 30-60 MB for pages of a few thousand words), and the
# most shingles of their sets compared at once (`jaccard` takes about 50 bytes per shingle while
# it sorts them): about 50 MB whatever the pages' lengths; a pair of longer pages goes alone.
_VERIFY_PAIRS = 512
_VERIFY_SHINGLES = 1 << 20


class Edges(NamedTuple):
    """A partition's edge, members and firsts files and its counts of exact, candidate, verified
    and kept pairs."""

    path: Location
    members: Location
    firsts: Location
    counts: dict[str, int]


def submit_edges(
    client: Client,
    files: DedupFiles,
    threshold: float,
    candidates: Sequence[Future],
    shingles: Sequence[Future],
    score: Callable[[np.ndarray], np.ndarray] | None = None,
    collapse: bool = True,
) -> list[Future]:
    """A future of each partition's Edges, from every bucket's Candidates and, when `threshold`
    is above 0, every clean part's shingles file; `score` and `collapse` as `edges_task` takes
    them."""
    pairs, sets = collected(client, candidates), collected(client, shingles)
    return [
        client.submit(edges_task, j, pairs, sets, files, threshold, score, collapse, pure=False)
        for j in range(files.buckets)
    ]


def edges_task(
    j: int,
    candidates: Sequence[Candidates],
    shingles: Sequence[Location],
    files: DedupFiles,
    threshold: float,
    score: Callable[[np.ndarray], np.ndarray] | None = None,
    collapse: bool = True,
) -> Edges:
    """Keep partition j's exact pairs and its near pairs whose true Jaccard similarity reaches
    `threshold` (all near pairs when it is 0); write them as edges, and by their member end in
    the order of the keeper policy's `score` with exact pairs marked as copies when `collapse`
    (copies.py); return the counts.
    Memory: the partition's pairs (25 bytes each), the sets of `_VERIFY_PAIRS` pairs at a time
    (read from the shingles files' record batches that hold them) and the sorting of at most
    `_VERIFY_SHINGLES` of their shingles."""
    rows = read_range(pair_files(candidates), j, j + 1)
    pairs = unique_pairs(
        Pairs(*(rows.column(name).to_numpy(zero_copy_only=False) for name in ("a", "b", "exact")))
    )
    similarity = np.full(len(pairs.a), np.nan, np.float32)
    near = np.flatnonzero(~pairs.exact)
    if threshold > 0:
        paths = dict(zip(files.parts, shingles, strict=True))
        for start in range(0, len(near), _VERIFY_PAIRS):
            chunk = near[start : start + _VERIFY_PAIRS]
            similarity[chunk] = _similarity(
                _shingle_sets(paths, pairs.a[chunk]), _shingle_sets(paths, pairs.b[chunk])
            )
        keep = pairs.exact | (similarity >= threshold)
    else:
        keep = np.ones(len(pairs.a), bool)
    written = Edges(files.file("edges", j), files.file("members", j), files.file("firsts", j), {})
    write_sorted(
        written.path,
        pa.table(
            {
                "a": pairs.a[keep],
                "b": pairs.b[keep],
                "exact": pairs.exact[keep],
                "jaccard": similarity[keep],
            }
        ),
    )
    members, firsts = member_rows(
        Pairs(pairs.a[keep], pairs.b[keep], pairs.exact[keep]), score, collapse
    )
    write_sorted(written.members, members)
    write_sorted(written.firsts, firsts)
    counts = {
        "exact": int(pairs.exact.sum()),
        "candidates": len(near),
        "verified": int(keep.sum() - pairs.exact.sum()),
        "edges": int(keep.sum()),
    }
    return written._replace(counts=counts)


def _similarity(sets_a: pa.LargeListArray, sets_b: pa.LargeListArray) -> np.ndarray:
    """`jaccard` of each pair of sets, over runs of pairs of at most `_VERIFY_SHINGLES` shingles
    in all (a pair of more alone)."""
    sizes = pc.list_value_length(sets_a).to_numpy(zero_copy_only=False) + pc.list_value_length(
        sets_b
    ).to_numpy(zero_copy_only=False)
    similarity = np.empty(len(sizes))
    start = 0
    while start < len(sizes):
        within = np.cumsum(sizes[start:]) <= _VERIFY_SHINGLES
        stop = start + max(1, int(within.sum()))
        similarity[start:stop] = jaccard(
            sets_a.slice(start, stop - start), sets_b.slice(start, stop - start)
        )
        start = stop
    return similarity


def _shingle_sets(paths: Mapping[int, Location], keys: np.ndarray) -> pa.LargeListArray:
    """The shingle sets of `keys`, in their order, copied from the record batches of each part's
    shingles file that hold them, so no file stays mapped or read once they are compared."""
    distinct, index = np.unique(keys, return_inverse=True)
    found = []
    for part in np.unique(distinct >> ROW_BITS).tolist():
        wanted = distinct[(distinct >> ROW_BITS) == part]
        rows = read_range([paths[part]], int(wanted[0]), int(wanted[-1]) + 1)
        known = rows.column("key").to_numpy()
        found.extend(rows.column("shingles").take(rows_of(known, wanted, paths[part])).chunks)
    sets = pa.concat_arrays(found)
    found.clear()  # held no longer than the copy of them all, while it is put in order
    return sets.take(index)
