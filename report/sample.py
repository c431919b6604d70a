"""The documents a report measures: the held-out documents `corpusmill train` evaluates on
(train/heldout.py: the run's validation split, else the first by the xxh3-64 of their id, up to
`held_out_bytes`), and a training part, the next ones in that order up to `train_bytes`, that
models and dictionaries are fit on.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.storage import Location, location
from corpusmill.loader.format import read_manifest
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.corpus import read_kept
from corpusmill.pipeline.readers import InputError
from corpusmill.train.heldout import split_rows


def held_out_split(
    out: Location | str, held_out_bytes: int, train_bytes: int
) -> tuple[pa.Table, pa.Table]:
    """(held-out, training) tables of `id` and `text` of a run's deduplicated documents, each in
    corpus order; the run is a local folder or an object store's URL."""
    fraction = validation_fraction(out)
    layout = RunLayout(location(out))
    parts = run_parts(out)
    ids, sizes = [], []
    for part in parts:
        table = read_kept(layout, part)
        ids += table["id"].to_pylist()
        sizes.append(pc.binary_length(table["text"]).to_numpy().astype(np.int64))
    held, train = split_rows(ids, np.concatenate(sizes), held_out_bytes, train_bytes, fraction)
    return _take(layout, parts, held), _take(layout, parts, train)


def validation_fraction(out: Location | str) -> float:
    """The fraction of the run's validation split (loader/split.py), 0 when it has none or has
    not been tokenized."""
    layout = RunLayout(location(out))
    return read_manifest(out).validation_fraction if layout.manifest.exists() else 0.0


def run_parts(out: Location | str) -> list[int]:
    """The clean part numbers of the run in folder or URL `out`, in input order; an InputError
    without any."""
    layout = RunLayout(location(out))
    if not layout.root.is_dir():
        raise InputError(f"{out} is not a folder: name a run's output folder")
    parts = layout.clean_parts() if layout.clean.is_dir() else []
    if not parts:
        raise InputError(
            f"{out} holds no run: {layout.clean} has no part; run `corpusmill run` first"
        )
    return parts


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
