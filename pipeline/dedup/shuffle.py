"""The stage's shuffles: each task writes its rows sorted by destination, and each reader takes its
key range from every writer's file, reading only the record batches that hold it: memory-mapped
when local, by range requests through fsspec when the run is on an object store
(core/storage.py `open_input`).

Files are uncompressed Arrow IPC, sorted by their first column (a partition number or a document
key), in record batches of at most 65,536 rows whose first and last values the schema metadata
lists: `pyarrow.ipc.open_file` reads them for inspection. Writing files rather than keeping rows
in worker memory keeps the memory of a step bounded by one task's share, whatever the corpus
size, and leaves every step's output inspectable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from corpusmill.core.atomic import atomic_path
from corpusmill.core.storage import Location, open_input
from corpusmill.pipeline.dedup.hashing import fmix64

_METADATA_KEY = b"corpusmill"
_BOUNDS_KEY = b"corpusmill.batches"
# Rows per record batch: a reader of a key range reads whole batches, so a few MB at most beyond
# its range (signature rows take 34 bytes).
_BATCH_ROWS = 1 << 16


def write_sorted(
    path: Location, table: pa.Table, metadata: Mapping[str, Any] | None = None
) -> None:
    """Write `table`, sorted by its first column, atomically; `metadata` is kept as JSON."""
    table = table.combine_chunks()
    first = table.column(0).to_numpy()
    bounds = [
        [int(first[start]), int(first[min(start + _BATCH_ROWS, len(first)) - 1])]
        for start in range(0, len(first), _BATCH_ROWS)
    ]
    labels = {_BOUNDS_KEY: json.dumps(bounds)}
    if metadata is not None:
        labels[_METADATA_KEY] = json.dumps(metadata, sort_keys=True)
    table = table.replace_schema_metadata(labels)
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
                writer.write_batch(batch)


def partition_of(values: np.ndarray, partitions: int) -> np.ndarray:
    """The partition of each value (a key or a hash): a mixed hash of it, modulo `partitions`."""
    return (fmix64(values.astype(np.uint64)) % np.uint64(partitions)).astype(np.int64)


def read_range(paths: Iterable[Location], low: int, high: int) -> pa.Table:
    """The rows of one or more files whose first column is in [low, high), file after file.
    Memory: the rows returned (batches outside the range are never read)."""
    sliced = []
    for path in paths:
        with open_input(path) as source:
            reader = pa.ipc.open_file(source)
            bounds = json.loads(reader.schema.metadata[_BOUNDS_KEY])
            schema = reader.schema.remove_metadata()
            for index, (first, last) in enumerate(bounds):
                if last < low or first >= high:
                    continue
                # An object's batch is read into memory; a local one stays mapped after closing.
                batch = reader.get_batch(index)
                start, end = np.searchsorted(batch.column(0).to_numpy(), [low, high])
                sliced.append(batch.slice(start, end - start))
    return pa.Table.from_batches(sliced, schema)


def range_rows(path: Location, low: int, high: int) -> int:
    """How many rows of file `path` have their first column in [low, high); reads at most the
    two record batches at the ends of the range."""
    with open_input(path) as source:
        reader = pa.ipc.open_file(source)
        return _row_of(reader, high) - _row_of(reader, low)


def read_range_rows(path: Location, low: int, high: int, start: int, stop: int) -> pa.Table:
    """Rows `start` to `stop` (counted from 0) of those of file `path` whose first column is in
    [low, high), reading only the record batches that hold them (and the first of the range)."""
    with open_input(path) as source:
        reader = pa.ipc.open_file(source)
        begin = _row_of(reader, low)
        first, stop = begin + start, min(begin + stop, _row_of(reader, high))
        schema = reader.schema.remove_metadata()
        batches = [
            reader.get_batch(index)
            for index in range(first // _BATCH_ROWS, -(-stop // _BATCH_ROWS))
        ]
    rows = pa.Table.from_batches(batches, schema)
    return rows.slice(first % _BATCH_ROWS, max(0, stop - first))


def _row_of(reader: pa.ipc.RecordBatchFileReader, value: int) -> int:
    """The number of rows whose first column is below `value`: every batch but the last holds
    `_BATCH_ROWS` rows (write_sorted), so only the batch where `value` falls is read."""
    bounds = json.loads(reader.schema.metadata[_BOUNDS_KEY])
    index = next((i for i, (_, last) in enumerate(bounds) if last >= value), None)
    if index is None:
        last = len(bounds) - 1
        return last * _BATCH_ROWS + reader.get_batch(last).num_rows if bounds else 0
    column = reader.get_batch(index).column(0).to_numpy()
    return index * _BATCH_ROWS + int(np.searchsorted(column, value))


def read_table(path: Location) -> pa.Table:
    """A whole file, memory-mapped when local: closing the file keeps the mapping while rows are
    used (an object's rows are read into memory)."""
    with open_input(path) as source:
        return pa.ipc.open_file(source).read_all()


def read_metadata(path: Location) -> dict[str, Any] | None:
    """The metadata a file was written with, or None if it does not exist, is damaged, has none
    or lists no batch bounds (written before files had them: `read_range` could not read it):
    its step then writes it again."""
    try:
        with open_input(path) as source:
            schema = pa.ipc.open_file(source).schema
    except (FileNotFoundError, pa.ArrowInvalid):
        return None
    labels = schema.metadata or {}
    raw = labels.get(_METADATA_KEY)
    return json.loads(raw) if raw and _BOUNDS_KEY in labels else None
