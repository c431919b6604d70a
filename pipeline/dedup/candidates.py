"""Dedup step 2, a task per shuffle bucket: star pairs of the rows sharing a key, centred on the
first in the keeper policy's order (`lsh.candidate_pairs`) -> pairs/bucket-N.arrow, sorted by the
partition that verifies each pair, and the keys they touch -> keys/bucket-N.arrow, sorted by
key.

Every row of a key lands in one bucket, so a page copied G times adds G rows to each bucket of
its keys. A bucket of more rows than `chunk_rows(config)` is paired in chunks of at most that
many, merged in key order from the parts' signature files (each sorted by key, then in the keeper
policy's order: signatures.py); a key whose rows run on into the next chunk is paired with its
first row, carried over. The pairs are those of the whole bucket at once, in a file per chunk
(pairs/bucket-N-C.arrow and keys/bucket-N-C.arrow for chunk C >= 1), so a task's memory is bounded
by `dedup.pair_rows` whatever the size of the bucket and the number of copies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from distributed import Client, Future

from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location
from corpusmill.pipeline.cluster import collected
from corpusmill.pipeline.dedup.config import DedupConfig
from corpusmill.pipeline.dedup.files import DedupFiles
from corpusmill.pipeline.dedup.lsh import Pairs, candidate_pairs, unique_pairs
from corpusmill.pipeline.dedup.shuffle import (
    partition_of,
    range_rows,
    read_range,
    read_range_rows,
    write_sorted,
)
from corpusmill.pipeline.dedup.signatures import Signed, score_column

# The columns a bucket's rows are merged by: the key, then the keeper policy's order in it (its
# score largest first, then the document key; signatures.py sorts them so).
_KEY = ("band", "high", "low")
# The name a row's keeper score goes by here, whatever the policy's column is called.
_SCORE = "score"


class Candidates(NamedTuple):
    """A bucket's candidate pairs and the keys they touch, a file of each per chunk."""

    pairs: tuple[Location, ...]
    keys: tuple[Location, ...]


def submit_candidates(
    client: Client, files: DedupFiles, config: DedupConfig, signed: Sequence[Future]
) -> list[Future]:
    """A future of each bucket's Candidates, from every part's Signed."""
    every = collected(client, signed)
    return [
        client.submit(candidates_task, j, every, files, config, pure=False)
        for j in range(files.buckets)
    ]


def pair_files(candidates: Sequence[Candidates]) -> list[Location]:
    """Every pairs file of the buckets, for a reader of one partition's pairs."""
    return [path for found in candidates for path in found.pairs]


def key_files(candidates: Sequence[Candidates]) -> list[Location]:
    """Every touched-keys file of the buckets, for a reader of one part's keys."""
    return [path for found in candidates for path in found.keys]


def chunk_rows(config: DedupConfig) -> int:
    """The most rows a candidates task pairs at once: `pair_rows`, and no more than 1.25 x
    `bucket_rows` (buckets are hash partitions whose sizes spread by about the square root of
    `bucket_rows` around it). With the defaults a full bucket is paired in about 8 chunks; with
    `pair_rows` above 1.25 x `bucket_rows`, only a bucket swollen by the many rows of a few keys
    is."""
    return min(config.pair_rows, config.bucket_rows + config.bucket_rows // 4)


def candidates_task(
    j: int, signed: Sequence[Signed], files: DedupFiles, config: DedupConfig
) -> Candidates:
    """Pair up bucket j's rows that share a key; write the pairs by verification partition and
    the keys they touch by key, a file of each per chunk. Memory: ~165 bytes per row of a chunk,
    at most `chunk_rows(config)` rows."""
    pairs, keys = [], []
    paths = [part.signatures for part in signed]
    score = score_column(config.keeper)
    for chunk, column in enumerate(bucket_chunks(paths, j, chunk_rows(config), score)):
        found = unique_pairs(
            candidate_pairs(
                column["band"],
                column["high"],
                column["low"],
                column["key"],
                config.bands,
                column.get(_SCORE),
            )
        )
        pairs.append(files.chunk("pairs", j, chunk))
        keys.append(files.chunk("keys", j, chunk))
        _write_pairs(pairs[-1], found, files.buckets)
        write_sorted(keys[-1], _touched_keys(found))
    return Candidates(tuple(pairs), tuple(keys))


def bucket_chunks(
    paths: Sequence[Location], j: int, limit: int, score: str | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Bucket j's rows of the signature files `paths`, as columns (band, high, low, key, and the
    keeper score of column `score` as "score"): all at once when they are at most `limit`, else
    merged in key order in chunks of at most `limit` rows, each after the first led by the first
    row of the key its predecessor ended with (alone in its key unless that key runs on), so
    that star pairs per chunk are the bucket's star pairs."""
    sizes = np.array([range_rows(path, j, j + 1) for path in paths], np.int64)
    if sizes.sum() <= limit:
        yield _columns(read_range(paths, j, j + 1), score)
        return
    read = np.zeros(len(paths), np.int64)
    take = np.full(len(paths), max(1, limit // len(paths)), np.int64)
    carried: list[dict[str, np.ndarray]] = []
    while (read < sizes).any():
        window = _next_rows(paths, j, read, take, sizes, limit, score)
        rows = _sorted(_concat(carried + window))
        del window  # the window's copies go before the chunk is paired
        start = _last_key_start(rows)
        carried = [_take(rows, slice(start, start + 1))]
        yield rows


def _next_rows(
    paths: Sequence[Location],
    j: int,
    read: np.ndarray,
    take: np.ndarray,
    sizes: np.ndarray,
    limit: int,
    score: str | None,
) -> list[dict[str, np.ndarray]]:
    """The next rows of bucket j in merge order, at most `limit`, a piece per file; advances
    `read` past them and sets each file's next `take`. A window of each file is read, and the
    rows up to the smallest last row of the windows of files not read to their end go out, as
    every row not read yet comes after it. Each file's next window is twice the rows that went
    out of it, at least half an even share, scaled down to `limit` in all: a key whose rows run
    through one file after another (as part numbers order keys) is read mostly from the file it
    is in, not a sliver of each."""
    active = np.flatnonzero(read < sizes).tolist()
    share = take[active]
    if share.sum() > limit:
        share = np.maximum(1, share * limit // share.sum())
    window = {
        i: _window(paths[i], j, read[i], read[i] + n, score)
        for i, n in zip(active, share.tolist(), strict=True)
    }
    unfinished = [i for i in active if read[i] + len(window[i]["key"]) < sizes[i]]
    if unfinished:
        bound = min(_order(window[i], -1) for i in unfinished)
        window = {i: _take(rows, _up_to(rows, bound)) for i, rows in window.items()}
    floor = max(1, limit // (2 * len(active)))
    for i, rows in window.items():
        read[i] += len(rows["key"])
        take[i] = max(floor, 2 * len(rows["key"]))
    return list(window.values())


def _window(
    path: Location, j: int, start: int, stop: int, score: str | None
) -> dict[str, np.ndarray]:
    """Rows `start` to `stop` of bucket j in a signature file, which must be in merge order."""
    rows = _columns(read_range_rows(path, j, j + 1, start, stop), score)
    columns = _merge_columns(rows)
    if not _at_or_before([c[:-1] for c in columns], [c[1:] for c in columns]).all():
        raise StageError(f"dedup: {path} is not sorted by key; delete it and rerun")
    return rows


def _columns(table: pa.Table, score: str | None) -> dict[str, np.ndarray]:
    """The merge columns of signature rows as numpy arrays, the score column as "score" (copies,
    so no mapped file stays referenced)."""
    names = {name: name for name in (*_KEY, "key")}
    if score is not None:
        names[_SCORE] = score
    return {name: table.column(column).to_numpy().copy() for name, column in names.items()}


def _take(rows: dict[str, np.ndarray], which: np.ndarray | slice) -> dict[str, np.ndarray]:
    return {name: values[which] for name, values in rows.items()}


def _concat(pieces: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([piece[name] for piece in pieces]) for name in pieces[0]}


def _merge_columns(rows: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The columns rows are merged by, first to last: the band key (band, high, low), the score
    descending, the document key."""
    score = [-rows[_SCORE]] if _SCORE in rows else []
    return [rows[name] for name in _KEY] + score + [rows["key"]]


def _order(rows: dict[str, np.ndarray], index: int) -> tuple[int | float, ...]:
    """Where row `index` of `rows` comes in the merge order, as a comparable tuple."""
    return tuple(column[index].item() for column in _merge_columns(rows))


def _up_to(rows: dict[str, np.ndarray], bound: tuple[int | float, ...]) -> np.ndarray:
    """Which rows come at or before `bound` in the merge order."""
    return _at_or_before(_merge_columns(rows), list(bound))


def _at_or_before(columns: list[np.ndarray], other: list[Any]) -> np.ndarray:
    """Whether each row of `columns` comes at or before the row of `other` (columns, or the
    values of one row) in lexicographic order."""
    before = columns[-1] <= other[-1]
    for column, limit in zip(columns[-2::-1], other[-2::-1], strict=True):
        before = (column < limit) | ((column == limit) & before)
    return before


def _sorted(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return _take(rows, np.lexsort(_merge_columns(rows)[::-1]))


def _last_key_start(rows: dict[str, np.ndarray]) -> int:
    """The first row of the last key of rows in merge order."""
    same = np.ones(len(rows["key"]), bool)
    for name in _KEY:
        same &= rows[name] == rows[name][-1]
    return int(np.argmax(same))


def _write_pairs(path: Location, pairs: Pairs, partitions: int) -> None:
    """Write pairs sorted by the partition that verifies them."""
    destination = partition_of(
        pairs.a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + pairs.b.astype(np.uint64),
        partitions,
    )
    order = np.argsort(destination, kind="stable")
    write_sorted(
        path,
        pa.table(
            {
                "partition": destination[order],
                "a": pairs.a[order],
                "b": pairs.b[order],
                "exact": pairs.exact[order],
            }
        ),
    )


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
