"""Dedup step 2, a task per shuffle bucket: star pairs of the rows sharing a key, centred on the
first in the keeper policy's order (`lsh.candidate_pairs`) -> pairs/bucket-N.arrow, sorted by the
partition that verifies each pair, and the keys they touch -> keys/bucket-N.arrow, sorted by
key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pyarrow as pa
from distributed import Client, Future

from corpusmill.core.storage import Location
from corpusmill.pipeline.dedup.config import DedupConfig
from corpusmill.pipeline.dedup.files import DedupFiles
from corpusmill.pipeline.dedup.lsh import Pairs, candidate_pairs, unique_pairs
from corpusmill.pipeline.dedup.shuffle import partition_of, read_range, write_sorted
from corpusmill.pipeline.dedup.signatures import Signed


class Candidates(NamedTuple):
    """A bucket's candidate pairs and the keys they touch."""

    pairs: Location
    keys: Location


def submit_candidates(
    client: Client, files: DedupFiles, config: DedupConfig, signed: Sequence[Future]
) -> list[Future]:
    """A future of each bucket's Candidates, from every part's Signed."""
    return [
        client.submit(candidates_task, j, signed, files, config, pure=False)
        for j in range(files.buckets)
    ]


def candidates_task(
    j: int, signed: Sequence[Signed], files: DedupFiles, config: DedupConfig
) -> Candidates:
    """Pair up bucket j's rows that share a key; write the pairs by verification partition and
    the keys they touch by key. Memory: the bucket's rows (~165 bytes each)."""
    rows = read_range([part.signatures for part in signed], j, j + 1)
    column = {name: rows.column(name).to_numpy() for name in rows.column_names}
    pairs = unique_pairs(
        candidate_pairs(
            column["band"],
            column["high"],
            column["low"],
            column["key"],
            config.bands,
            column.get("bytes"),
        )
    )
    destination = partition_of(
        pairs.a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + pairs.b.astype(np.uint64),
        files.buckets,
    )
    order = np.argsort(destination, kind="stable")
    found = Candidates(files.file("pairs", j), files.file("keys", j))
    write_sorted(
        found.pairs,
        pa.table(
            {
                "partition": destination[order],
                "a": pairs.a[order],
                "b": pairs.b[order],
                "exact": pairs.exact[order],
            }
        ),
    )
    write_sorted(found.keys, _touched_keys(pairs))
    return found


def _touched_keys(pairs: Pairs) -> pa.Table:
    """Each key of a pair once, sorted, with whether it has an earlier exact duplicate (`exact`)
    and whether it is in a near pair (`near`, so its shingles are needed to verify)."""
    keys = np.concatenate([pairs.a, pairs.b])
    exact = np.concatenate([np.zeros(len(pairs.a), bool), pairs.exact])
    near = np.concatenate([~pairs.exact, ~pairs.exact])
    if not len(keys):
        return pa.table({"key": keys, "exact": exact, "near": near})
    order = np.argsort(keys, kind="stable")
    keys, exact, near = keys[order], exact[order], near[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return pa.table(
        {
            "key": keys[starts],
            "exact": np.logical_or.reduceat(exact, starts),
            "near": np.logical_or.reduceat(near, starts),
        }
    )
