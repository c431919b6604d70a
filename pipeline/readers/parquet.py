"""Parquet files to documents: one row per document, its text in a configurable column.

A split holds the row groups whose data starts in its byte range (by `row_group_spans`). A
document's offset is its row number in the file (rows have no byte offset of their own), so ids
do not depend on splitting. The text and URL columns take the same (dotted) keys as JSONL fields;
other columns go to `meta`. A damaged row group costs its own rows, rejected as `corrupt`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusmill.pipeline.extract import decode_counting
from corpusmill.pipeline.readers.jsonl import split_record
from corpusmill.pipeline.readers.records import (
    Count,
    DocumentBlock,
    Record,
    Rejection,
    Rejections,
)
from corpusmill.pipeline.readers.streams import open_raw

if TYPE_CHECKING:
    from corpusmill.pipeline.readers.discover import ReadConfig, Split

# The string types, each with the binary type of its layout, which reads the same bytes unchecked.
_STRING_BYTES = {
    pa.string(): pa.binary(),
    pa.large_string(): pa.large_binary(),
    pa.string_view(): pa.binary_view(),
}


def read_parquet(split: Split, config: ReadConfig) -> Iterator[Record]:
    """Documents and rejected rows of the row groups that start in the split, a block of each
    per record batch."""
    file = split.file
    if file.size == 0:
        yield Count("empty_files")
        return
    with open_raw(file.url, file.options) as handle:
        try:
            parquet = pq.ParquetFile(handle, page_checksum_verification=True)
        except Exception as exc:  # a damaged footer can raise anything, even UnicodeDecodeError
            if split.start == 0:
                yield Rejection(0, "corrupt", file.size, f"not a readable Parquet file ({exc})")
            return
        metadata = parquet.metadata
        if split.start == 0 and metadata.num_rows == 0:
            yield Count("empty_files")
        spans = row_group_spans(metadata, file.size)
        groups = [i for i, (start, _) in enumerate(spans) if split.start <= start < split.end]
        row = sum(metadata.row_group(i).num_rows for i in range(groups[0])) if groups else 0
        names = parquet.schema_arrow.names
        if not config.keep_fields:
            wanted = {key.partition(".")[0] for key in (config.text_key, config.url_key)}
            names = [name for name in names if name in wanted]
        for group in groups:
            stored = spans[group][1] - spans[group][0]
            yield from _row_group(parquet, group, row, stored, names, config)
            row += metadata.row_group(group).num_rows


def _row_group(
    parquet: pq.ParquetFile,
    group: int,
    row: int,
    stored: int,
    names: list[str],
    config: ReadConfig,
) -> Iterator[Record]:
    """One row group's rows, whose first is row `row` of the file. Damage (a bad page header,
    a failed checksum, fewer rows than the footer counts, duplicate column names) rejects the
    group's rows not yet read, each with its share of the group's `stored` bytes; the other row
    groups are read as usual."""
    rows = parquet.metadata.row_group(group).num_rows
    done = 0
    try:
        for batch in parquet.iter_batches(
            batch_size=config.batch_docs, row_groups=[group], columns=names, use_threads=False
        ):
            records = _batch_records(pa.Table.from_batches([batch]), row + done, config)
            done += batch.num_rows
            yield from records
        if done < rows:  # pages that decode to fewer rows than the footer counts
            raise pa.ArrowInvalid(f"the footer counts {rows} rows, the pages hold {done}")
    except Exception as exc:  # one damaged row group must not cost the others
        reason = "corrupt" if isinstance(exc, (pa.ArrowException, OSError)) else "error"
        offsets, sizes = _unread_rows(parquet.metadata, group, row, done, stored)
        yield Rejections(offsets, reason, sizes, f"row group {group}: {type(exc).__name__}: {exc}")


def _unread_rows(
    metadata: pq.FileMetaData, group: int, row: int, done: int, stored: int
) -> tuple[list[int], list[int]]:
    """Offsets and bytes of a row group's rows from its `done`-th on, each row with its share of
    the group's stored bytes. A count below zero or above the whole file's is damaged and not
    spelled out in rows (it could be billions): the group's rest is then one record."""
    rows = metadata.row_group(group).num_rows
    if not 0 <= rows <= metadata.num_rows:
        return [row + done], [stored]
    share = np.full(rows, stored // max(rows, 1), np.int64)
    share[: stored % max(rows, 1)] += 1
    return list(range(row + done, row + rows)), share[done:].tolist()


def row_group_spans(metadata: pq.FileMetaData, size: int) -> list[tuple[int, int]]:
    """The stored bytes [start, end) of each row group of a file of `size` bytes, estimated: the
    bytes between the leading magic number and the footer, shared out in order in proportion to
    the groups' uncompressed sizes. Planning and reading compute the same spans, so every row
    group belongs to one split.

    Estimated, not read from the column chunks' offsets: pyarrow aborts the whole process (it
    raises nothing) when a damaged footer holds an invalid column chunk and its metadata is
    asked for, whereas reading that row group raises an error that rejects it.
    """
    sizes = [max(metadata.row_group(i).total_byte_size, 0) for i in range(metadata.num_row_groups)]
    first, last = 4, max(size - metadata.serialized_size - 8, 4)
    total = max(sum(sizes), 1)
    bounds = [
        first + (last - first) * before // total
        for before in itertools.accumulate(sizes, initial=0)
    ]
    return list(itertools.pairwise(bounds))


def _batch_records(table: pa.Table, row: int, config: ReadConfig) -> list[Record]:
    """The records of one record batch: rows with a text of allowed size become a block of
    documents, the others rejections. All are worked out before any is yielded, so a batch that
    fails yields nothing."""
    offsets = pa.array(np.arange(row, row + table.num_rows, dtype=np.int64))
    texts, invalid = _as_text(_column(table, config.text_key), table.num_rows, pa.large_string())
    urls, _ = _as_text(_column(table, config.url_key), table.num_rows, pa.string())
    sizes = pc.fill_null(pc.binary_length(texts), 0)
    missing = texts.is_null()
    large = pc.greater(sizes, config.max_doc_bytes)
    keep = pc.invert(pc.or_(missing, large))
    metas = None
    if config.keep_fields:
        # A struct that holds a nested text or URL key stays: split_record takes the leaf out.
        taken = (config.text_key, config.url_key)
        others = [name for name in table.column_names if name not in taken]
        rows = _records(table.select(others).filter(keep))
        metas = pa.array([split_record(record, config)[2] for record in rows], pa.string())
    records: list[Record] = [
        Rejections(offsets.filter(mask).to_pylist(), reason, sizes.filter(mask).to_pylist(), detail)
        for mask, reason, detail in (
            (missing, "missing_text", f"no string in column {config.text_key!r}"),
            (large, "too_large", "text longer than max_doc_bytes"),
        )
        if pc.any(mask).as_py()
    ]
    records.append(
        DocumentBlock(offsets.filter(keep), texts.filter(keep), urls.filter(keep), metas)
    )
    if invalid:
        records.append(Count("invalid_utf8_docs", invalid))
    return records


def _as_text(column: pa.Array | None, num_rows: int, kind: pa.DataType) -> tuple[pa.Array, int]:
    """A column as strings of `kind`, and how many values had invalid UTF-8 (replaced): strings,
    string views and binaries, plain or dictionary-encoded; all null if absent or not text."""
    if column is not None and pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if column is None or not _is_text(column.type):
        return pa.nulls(num_rows, kind), 0
    try:
        texts = column.cast(kind)
        texts.validate(full=True)  # Parquet does not check that its strings are UTF-8
        return texts, 0
    except pa.ArrowInvalid:  # bytes that are not all UTF-8: only then decoded value by value
        values = column.cast(pa.large_binary()).to_pylist()
        decoded = [None if v is None else decode_counting(v, "utf-8") for v in values]
        texts = pa.array([value and value[0] for value in decoded], kind)
        return texts, sum(1 for value in decoded if value and value[1])


def _records(table: pa.Table) -> list[dict[str, Any]]:
    """A table's rows as dicts, strings that are not UTF-8, at any depth (in a struct, list or
    map column), with their bad bytes replaced."""
    try:
        return table.to_pylist()
    except UnicodeDecodeError:  # rare, so only then are the strings read as bytes and decoded
        kind = pa.struct(list(table.schema))
        rows = table.cast(pa.schema(list(_as_bytes(kind)))).to_pylist()
        return [_decoded(row, kind) for row in rows]


def _as_bytes(kind: pa.DataType) -> Any:
    """`kind` with its string types, at any depth, made the binary types of the same layout."""
    if _is_string(kind):
        return _STRING_BYTES[kind]
    if pa.types.is_struct(kind):
        return pa.struct([field.with_type(_as_bytes(field.type)) for field in kind])
    if pa.types.is_map(kind):
        return pa.map_(_as_bytes(kind.key_type), _as_bytes(kind.item_type))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        make = pa.list_ if pa.types.is_list(kind) else pa.large_list
        return make(kind.value_field.with_type(_as_bytes(kind.value_type)))
    if pa.types.is_dictionary(kind):
        return pa.dictionary(kind.index_type, _as_bytes(kind.value_type))
    return kind


def _decoded(value: Any, kind: pa.DataType) -> Any:
    """A value read as `_as_bytes(kind)`, its bytes that were strings decoded (bad bytes
    replaced)."""
    if value is None:
        return None
    if _is_string(kind):
        return decode_counting(value, "utf-8")[0]
    if pa.types.is_struct(kind):
        return {field.name: _decoded(value[field.name], field.type) for field in kind}
    if pa.types.is_map(kind):
        return [(_decoded(k, kind.key_type), _decoded(v, kind.item_type)) for k, v in value]
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return [_decoded(item, kind.value_type) for item in value]
    if pa.types.is_dictionary(kind):
        return _decoded(value, kind.value_type)
    return value


def _is_text(kind: pa.DataType) -> bool:
    """True for the Arrow types a text column may have: strings or bytes, plain or views."""
    return _is_string(kind) or kind in _STRING_BYTES.values()


def _is_string(kind: pa.DataType) -> bool:
    return kind in _STRING_BYTES


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
