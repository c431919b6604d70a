"""Parquet files to documents: one row per document, its text in a configurable column.

A split holds the row groups whose data starts in its byte range. A document's offset is its row
number in the file (rows have no byte offset of their own), so ids do not depend on splitting.
The text and URL columns take the same (dotted) keys as JSONL fields; other columns go to `meta`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusmill.pipeline.extract import decode_counting
from corpusmill.pipeline.readers.jsonl import split_record
from corpusmill.pipeline.readers.streams import BatchBuilder, ReadBatch, open_raw

if TYPE_CHECKING:
    from corpusmill.pipeline.readers.discover import ReadConfig, Split


def read_parquet(split: Split, config: ReadConfig) -> Iterator[ReadBatch]:
    """Documents and rejected rows of the row groups that start in the split."""
    file = split.file
    builder = BatchBuilder(file.url, file.source, config.batch_docs, config.batch_bytes)
    yield from builder.run(_rows(split, config, builder))


def _rows(split: Split, config: ReadConfig, builder: BatchBuilder) -> Iterator[None]:
    file = split.file
    with open_raw(file.url) as handle:
        try:
            parquet = pq.ParquetFile(handle)
        except (pa.ArrowException, OSError) as exc:
            if split.start == 0:
                builder.reject(0, "corrupt", file.size, f"not a readable Parquet file ({exc})")
            return
        metadata = parquet.metadata
        if split.start == 0 and metadata.num_rows == 0:
            builder.count("empty_files")
        starts = row_group_starts(metadata)
        groups = [i for i, start in enumerate(starts) if split.start <= start < split.end]
        if not groups:
            return
        row = sum(metadata.row_group(i).num_rows for i in range(groups[0]))
        names = parquet.schema_arrow.names
        if not config.keep_fields:
            wanted = {key.partition(".")[0] for key in (config.text_key, config.url_key)}
            names = [name for name in names if name in wanted]
        for batch in parquet.iter_batches(
            batch_size=config.batch_docs, row_groups=groups, columns=names, use_threads=False
        ):
            _add_batch(pa.Table.from_batches([batch]), row, config, builder)
            row += batch.num_rows
            yield


def row_group_starts(metadata: pq.FileMetaData) -> list[int]:
    """The stored byte offset where each row group's data starts, in row-group order."""
    starts = []
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        starts.append(min(_column_start(group.column(c)) for c in range(group.num_columns)))
    return starts


def _column_start(column: pq.ColumnChunkMetaData) -> int:
    if column.has_dictionary_page and column.dictionary_page_offset:
        return min(column.dictionary_page_offset, column.data_page_offset)
    return column.data_page_offset


def _add_batch(table: pa.Table, row: int, config: ReadConfig, builder: BatchBuilder) -> None:
    """Add one record batch: rows with a text of allowed size become documents."""
    offsets = pa.array(np.arange(row, row + table.num_rows, dtype=np.int64))
    texts = _text_column(table, config, builder)
    urls = _string_column(table, config.url_key)
    sizes = pc.fill_null(pc.binary_length(texts), 0)
    missing = texts.is_null()
    large = pc.greater(sizes, config.max_doc_bytes)
    for mask, reason, detail in (
        (missing, "missing_text", f"no string in column {config.text_key!r}"),
        (large, "too_large", "text longer than max_doc_bytes"),
    ):
        if pc.any(mask).as_py():
            builder.reject_rows(
                offsets.filter(mask).to_pylist(), reason, sizes.filter(mask).to_pylist(), detail
            )
    keep = pc.invert(pc.or_(missing, large))
    metas = None
    if config.keep_fields:
        # A struct that holds a nested text or URL key stays: split_record takes the leaf out.
        taken = (config.text_key, config.url_key)
        others = [name for name in table.column_names if name not in taken]
        rows = table.select(others).filter(keep).to_pylist()
        metas = pa.array([split_record(record, config)[2] for record in rows], pa.string())
    builder.add_docs(offsets.filter(keep), texts.filter(keep), urls.filter(keep), metas)


def _text_column(table: pa.Table, config: ReadConfig, builder: BatchBuilder) -> pa.Array:
    """The text column as strings (binary decoded as UTF-8); all null if absent or not text."""
    column = _column(table, config.text_key)
    if column is not None and _is_binary(column.type):
        decoded = [
            None if value is None else decode_counting(value, "utf-8")
            for value in column.to_pylist()
        ]
        builder.count("invalid_utf8_docs", sum(1 for value in decoded if value and value[1]))
        return pa.array([value and value[0] for value in decoded], pa.large_string())
    if column is None or not _is_string(column.type):
        return pa.nulls(table.num_rows, pa.large_string())
    return column.cast(pa.large_string())


def _string_column(table: pa.Table, key: str) -> pa.Array:
    """The column at `key` as strings; all null if absent or not text."""
    column = _column(table, key)
    if column is None or not _is_string(column.type):
        return pa.nulls(table.num_rows, pa.string())
    return column.cast(pa.string())


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_binary(kind: pa.DataType) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


def _column(table: pa.Table, key: str) -> pa.Array | None:
    """The column at a dotted key (struct fields for the parts after the first), or None."""
    first, *rest = key.split(".")
    if first not in table.column_names:
        return None
    column = table.column(first).combine_chunks()
    for name in rest:
        if not pa.types.is_struct(column.type) or column.type.get_field_index(name) < 0:
            return None
        column = pc.struct_field(column, name)
    return column
