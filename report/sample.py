"""The documents a report measures: a held-out sample and a training part, chosen by id hash.

Documents are ordered by the xxh3-64 of their id; the first ones, up to `held_out_bytes` of text,
are held out and the next ones, up to `train_bytes`, are what models and dictionaries are fit on.
The choice depends only on the ids, never on how the corpus was partitioned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.corpus import read_kept
from corpusmill.pipeline.readers import InputError


def held_out_split(out: Path, held_out_bytes: int, train_bytes: int) -> tuple[pa.Table, pa.Table]:
    """(held-out, training) tables of `id` and `text` of a run's deduplicated documents, each in
    corpus order."""
    layout = RunLayout(Path(out))
    parts = run_parts(out)
    hashes, sizes = [], []
    for part in parts:
        table = read_kept(layout, part)
        hashes.append(_id_hashes(table["id"]))
        sizes.append(_sizes(table["text"]))
    held, train = select(np.concatenate(hashes), np.concatenate(sizes), held_out_bytes, train_bytes)
    return _take(layout, parts, held), _take(layout, parts, train)


def run_parts(out: Path) -> list[int]:
    """The clean part numbers of the run in folder `out`, in input order; an InputError without
    any."""
    if not Path(out).is_dir():
        raise InputError(f"{out} is not a folder: name a run's output folder")
    layout = RunLayout(Path(out))
    parts = layout.clean_parts()
    if not parts:
        raise InputError(
            f"{out} holds no run: {layout.clean} has no part; run `corpusmill run` first"
        )
    return parts


def select(
    hashes: np.ndarray, sizes: np.ndarray, held_out_bytes: int, train_bytes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row numbers of the held-out and training documents (at least one held out)."""
    order = np.lexsort((np.arange(len(hashes)), hashes))
    cumulative = np.cumsum(sizes[order])
    held = max(1, int(np.searchsorted(cumulative, held_out_bytes, side="right")))
    rest = cumulative[held:] - (cumulative[held - 1] if held else 0)
    train = held + int(np.searchsorted(rest, train_bytes, side="right"))
    return np.sort(order[:held]), np.sort(order[held:train])


def _id_hashes(ids: pa.ChunkedArray) -> np.ndarray:
    """xxh3-64 of each id's UTF-8 bytes."""
    return np.fromiter(
        (xxhash.xxh3_64_intdigest(doc_id.encode()) for doc_id in ids.to_pylist()),
        dtype=np.uint64,
        count=len(ids),
    )


def _sizes(texts: pa.ChunkedArray) -> np.ndarray:
    """UTF-8 bytes of each text."""
    return pc.binary_length(texts).to_numpy().astype(np.int64)


def _take(layout: RunLayout, parts: list[int], rows: np.ndarray) -> pa.Table:
    """The kept documents at the given corpus-order row numbers, read part by part."""
    tables, first = [], 0
    for part in parts:
        table = read_kept(layout, part)
        local = rows[(rows >= first) & (rows < first + table.num_rows)] - first
        if len(local):
            tables.append(table.take(pa.array(local)))
        first += table.num_rows
    if not tables:
        return pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.large_string())})
    return pa.concat_tables(tables)
