"""The stage's shuffles: each task writes its rows sorted by destination, and each reader takes its
key range from every writer's file, memory-mapped, so it reads only the bytes it needs.

Files are uncompressed Arrow IPC, sorted by their first column (a partition number or a document
key), one record batch each: `pyarrow.ipc.open_file` reads them for inspection. Writing to disk
rather than keeping rows in worker memory keeps the memory of a step bounded by one task's share,
whatever the corpus size, and leaves every step's output inspectable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from corpusmill.core.atomic import atomic_path
from corpusmill.pipeline.dedup.hashing import fmix64

_METADATA_KEY = b"corpusmill"


def write_sorted(path: Path, table: pa.Table, metadata: Mapping[str, Any] | None = None) -> None:
    """Write `table`, sorted by its first column, atomically; `metadata` is kept as JSON."""
    if metadata is not None:
        table = table.replace_schema_metadata({_METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table.combine_chunks())


def partition_of(values: np.ndarray, partitions: int) -> np.ndarray:
    """The partition of each value (a key or a hash): a mixed hash of it, modulo `partitions`."""
    return (fmix64(values.astype(np.uint64)) % np.uint64(partitions)).astype(np.int64)


def read_range(paths: Iterable[Path], low: int, high: int) -> pa.Table:
    """The rows of one or more files whose first column is in [low, high), file after file.
    Memory: the rows returned (pages outside the range are never read)."""
    sliced = []
    for path in paths:
        table = _mapped(path)
        start, end = np.searchsorted(table.column(0).to_numpy(), [low, high])
        sliced.append(table.slice(start, end - start))
    return pa.concat_tables(sliced)


def read_table(path: Path) -> pa.Table:
    """A whole file, memory-mapped."""
    return _mapped(path)


def read_metadata(path: Path) -> dict[str, Any] | None:
    """The metadata a file was written with, or None if it does not exist or has none."""
    try:
        with pa.memory_map(str(path)) as source:
            schema = pa.ipc.open_file(source).schema
    except FileNotFoundError:
        return None
    raw = (schema.metadata or {}).get(_METADATA_KEY)
    return json.loads(raw) if raw else None


def _mapped(path: Path) -> pa.Table:
    """A file's table over a memory map: closing the file keeps the mapping while rows are used."""
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()
