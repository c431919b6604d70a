"""JSON Lines files to documents: one JSON object per line, its text under a configurable key.

Lines are read in blocks of whole lines. A line's offset is the position of its first byte in the
(decompressed) file, so a plain file can be split at any byte: a split reads the lines that start
in it. Each bad line is rejected with its offset (`invalid_json`, `not_an_object`, `missing_text`,
`too_large`, or `error` for anything else that fails on it) and the lines around it are kept.
Lines longer than `max_doc_bytes` are skipped without being held in memory. Only a file in a
known binary format (an image, an archive) is rejected as a whole: a stray NUL byte costs its line.

With `keep_fields`, every line is parsed with Python's json module so that a record's other fields
reach `meta` exactly as written (Arrow's parser would turn date strings into timestamps and mix ints
into floats, differently in each block). Without it, blocks go through Arrow's parser, and only a
block that Arrow rejects is parsed line by line.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from corpusmill.pipeline.extract import decode_counting
from corpusmill.pipeline.readers.records import (
    Count,
    Document,
    DocumentBlock,
    Record,
    Rejection,
    Rejections,
    damage,
    to_meta,
)
from corpusmill.pipeline.readers.streams import (
    SNIFF_BYTES,
    ByteReader,
    binary_magic,
    decoded_reader,
    open_raw,
    raw_reader,
)

if TYPE_CHECKING:
    from corpusmill.pipeline.readers.discover import ReadConfig, Split

log = logging.getLogger(__name__)

# Lines are parsed this many bytes at a time (whole lines; a longer line makes its own block).
_BLOCK = 8 << 20
_WHITESPACE = np.frombuffer(b" \t\r\n", np.uint8)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def read_jsonl(split: Split, config: ReadConfig) -> Iterator[Record]:
    """Documents and rejected records of the lines that start in the split: one record per line,
    or, for blocks Arrow parses, a block of documents and one of rejections."""
    file = split.file
    plain = file.compression == "none"
    with open_raw(file.url, file.options) as handle:
        head = handle.read(SNIFF_BYTES) if plain else b""
        # A split starts at the first line that starts at or after its start: the line holding
        # byte start-1 belongs to the split before.
        raw = raw_reader(handle, max(split.start - 1, 0) if plain else 0)
        reader = decoded_reader(raw, file.compression)
        if split.start > 0:
            reader.skip_past(b"\n")
        else:
            head = reader.peek(SNIFF_BYTES)
        if binary_magic(head):
            if split.start == 0:
                size = reader.drain()
                yield Rejection(0, "binary_content", size, "binary data, not JSON lines")
            return
        if split.start == 0 and reader.at_end() and not reader.problem:
            yield Count("empty_files")
        end = split.end if plain else math.inf
        damage_reported = False
        while reader.pos < end and not reader.at_end():
            damage_reported = yield from _next_block(reader, end, config, file.url)
        if reader.problem and not damage_reported:
            yield damage(reader, file.size)


def split_record(record: dict[str, Any], config: ReadConfig) -> tuple[Any, Any, str | None]:
    """(text, url, meta) of a parsed record: text and URL taken out, the rest as meta JSON.

    The field named by `id_key` is stored in meta as "id", its first key (where the dataset stage
    takes it from); without `keep_fields`, meta is None.
    """
    text = _pop_path(record, config.text_key)
    url = _pop_path(record, config.url_key)
    if not config.keep_fields:
        return text, url, None
    own_id = _pop_path(record, config.id_key)
    if own_id is not None:
        record = {"id": own_id, **record}
    return text, url, to_meta(record)


def _next_block(
    reader: ByteReader, end: float, config: ReadConfig, url: str
) -> Generator[Record, None, bool]:
    """Read and parse the next block of whole lines of the file at `url`; return True if it
    reported the stream's damage."""
    start = reader.pos
    window = reader.peek(_BLOCK)
    cut = _whole_lines(window, end - start)
    if cut == 0 and len(window) == _BLOCK:
        # One line longer than a block: parse it alone, or skip it if it is too large.
        newline = reader.find(b"\n", config.max_doc_bytes + 1)
        if newline < 0:
            reader.skip_past(b"\n")
            size = reader.pos - start
            yield Rejection(start, "too_large", size, f"a line of {size} bytes > max_doc_bytes")
            return False
        cut = newline + 1
    if cut == 0:
        # The last line has no newline: fine at the end of a file, or before garbage after the
        # compressed data; cut short if the stream broke.
        line = reader.read(len(window))
        problem = reader.problem
        if problem and not problem.trailing:
            text, _ = decode_counting(line, "utf-8")
            yield Rejection(start, problem.reason, len(line), problem.detail, text=text)
            return True
        yield from _parse_lines(line, start, config, url)
        return False
    block = reader.read(cut)
    parsed = None if config.keep_fields else _parse_block_arrow(block, start, config)
    yield from _parse_lines(block, start, config, url) if parsed is None else parsed
    return False


def _whole_lines(window: bytes, room: float) -> int:
    """Bytes of whole lines at the start of `window`, up to the line holding byte `room - 1`
    (the last line that starts in the split); 0 if the window holds no whole line.
    """
    if room - 1 < len(window):
        newline = window.find(b"\n", max(int(room) - 1, 0))
        if newline >= 0:
            return newline + 1
    return window.rfind(b"\n") + 1


def _parse_lines(block: bytes, start: int, config: ReadConfig, url: str) -> Iterator[Record]:
    """Parse a block line by line with Python's json module; whatever fails on one line (JSON
    nested too deep for the parser, say) rejects that line alone as `error`."""
    offset = start
    for line in block.split(b"\n"):
        try:
            records = _parse_line(line, offset, config)
        except Exception as exc:  # one line must not cost the others
            detail = f"{type(exc).__name__}: {exc}"
            text, _ = decode_counting(line, "utf-8")
            records = [Rejection(offset, "error", len(line), detail, text=text)]
            log.debug("%s at byte %d: traceback", url, offset, exc_info=exc)
        yield from records
        offset += len(line) + 1


def _parse_line(line: bytes, offset: int, config: ReadConfig) -> list[Record]:
    """The records of one line: none for a blank line, else its document or its rejection."""
    if not line.strip():
        return []  # blank lines separate nothing and are not records
    if len(line) > config.max_doc_bytes:
        detail = f"a line of {len(line)} bytes > max_doc_bytes"
        return [Rejection(offset, "too_large", len(line), detail)]
    decoded, invalid = decode_counting(line, "utf-8")
    try:
        record = json.loads(decoded)
    except ValueError as exc:
        return [Rejection(offset, "invalid_json", len(line), str(exc), text=decoded)]
    if not isinstance(record, dict):
        detail = f"a JSON {type(record).__name__}"
        return [Rejection(offset, "not_an_object", len(line), detail, text=decoded)]
    text, url, meta = split_record(record, config)
    if not isinstance(text, str):
        detail = f"no string at {config.text_key!r}"
        return [Rejection(offset, "missing_text", len(line), detail, text=decoded)]
    # JSON escapes can spell lone surrogates, which are not text and cannot be stored as UTF-8:
    # they are replaced like invalid UTF-8 bytes (meta is ASCII JSON, which escapes them).
    text, escaped = _LONE_SURROGATE.subn("\ufffd", text)
    url, url_escaped = _LONE_SURROGATE.subn("\ufffd", url) if isinstance(url, str) else (None, 0)
    document = Document(offset, text, url=url, meta=meta)
    return (
        [document, Count("invalid_utf8_docs")] if invalid or escaped or url_escaped else [document]
    )


def _parse_block_arrow(block: bytes, start: int, config: ReadConfig) -> list[Record] | None:
    """Parse a block of whole lines with Arrow, keeping only text and URL: its documents as one
    block, after the rejections of lines without text; None if Arrow cannot parse it."""
    data = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(data == ord("\n"))  # the block ends with a newline
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    # Blank lines are not records. Only a line starting with whitespace can be blank.
    records = np.ones(len(starts), dtype=bool)
    for line in np.flatnonzero(np.isin(data[starts], _WHITESPACE)):
        records[line] = bool(block[starts[line] : ends[line]].strip())
    if np.any(ends - starts > config.max_doc_bytes):
        return None
    try:
        table = pj.read_json(
            io.BytesIO(block),
            read_options=pj.ReadOptions(block_size=len(block) + 1),
            parse_options=pj.ParseOptions(
                explicit_schema=_arrow_schema(config), unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if table.num_rows != int(records.sum()):
        return None
    offsets, lengths = starts[records] + start, (ends - starts)[records]
    texts, urls = _path_column(table, config.text_key), _path_column(table, config.url_key)
    try:
        texts.validate(full=True)
        urls.validate(full=True)
    except pa.ArrowInvalid:  # Arrow's parser lets some bytes that are not UTF-8 through
        return None
    missing = texts.is_null().to_numpy(zero_copy_only=False)
    parsed: list[Record] = []
    if missing.any():
        parsed.append(
            Rejections(
                offsets[missing].tolist(),
                "missing_text",
                lengths[missing].tolist(),
                f"no string at {config.text_key!r}",
            )
        )
        keep = pa.array(~missing)
        texts, urls = texts.filter(keep), urls.filter(keep)
    parsed.append(DocumentBlock(pa.array(offsets[~missing]), texts, urls))
    return parsed


def _arrow_schema(config: ReadConfig) -> pa.Schema:
    """Arrow's explicit schema for the text and URL keys (dotted keys become nested structs)."""
    fields: dict[str, Any] = {}
    for key in (config.text_key, config.url_key):
        node = fields
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = None
    return pa.schema(_arrow_fields(fields))


def _arrow_fields(tree: dict[str, Any]) -> list[pa.Field]:
    return [
        pa.field(name, pa.string() if child is None else pa.struct(_arrow_fields(child)))
        for name, child in tree.items()
    ]


def _path_column(table: pa.Table, key: str) -> pa.Array:
    """The string column at a dotted key of a parsed table."""
    first, *rest = key.split(".")
    column = table.column(first).combine_chunks()
    for name in rest:
        column = pc.struct_field(column, name)
    return column


def _pop_path(record: dict[str, Any], key: str) -> Any:
    """Remove and return the value at a dotted key (None if absent), dropping emptied parents."""
    first, _, rest = key.partition(".")
    if not rest:
        return record.pop(first, None)
    child = record.get(first)
    if not isinstance(child, dict):
        return None
    value = _pop_path(child, rest)
    if not child:
        del record[first]
    return value
