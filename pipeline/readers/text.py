"""Plain text files to documents: each file is one document, decoded as UTF-8 (or UTF-16, with
a byte-order mark or recognised by its NUL bytes).

Invalid UTF-8 bytes are replaced and counted; a file that starts like binary data, or that is
larger than `max_doc_bytes`, is rejected without being held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from corpusmill.pipeline.extract import decode_counting, utf16_codec
from corpusmill.pipeline.readers.records import Count, Document, Record, Rejection, damage
from corpusmill.pipeline.readers.streams import (
    SNIFF_BYTES,
    ByteReader,
    decoded_reader,
    looks_binary,
    open_raw,
    raw_reader,
)

if TYPE_CHECKING:
    from corpusmill.pipeline.readers.discover import InputFile, ReadConfig, Split


def read_text(split: Split, config: ReadConfig) -> Iterator[Record]:
    """The file's one document, or its rejection, or nothing but a count for an empty file."""
    file = split.file
    with open_raw(file.url, file.options) as handle:
        reader = decoded_reader(raw_reader(handle), file.compression)
        yield from _document(reader, file, config)


def _document(reader: ByteReader, file: InputFile, config: ReadConfig) -> Iterator[Record]:
    head = reader.peek(SNIFF_BYTES)
    if not head:
        yield damage(reader, file.size) if reader.problem else Count("empty_files")
        return
    charset = _charset(head)
    if looks_binary(head) and not charset.startswith("utf-16"):
        yield Rejection(0, "binary_content", reader.drain(), "binary data, not text")
        return
    data = reader.read(config.max_doc_bytes + 1)
    if len(data) > config.max_doc_bytes:
        size = len(data) + reader.drain()
        yield Rejection(0, "too_large", size, f"{size} bytes > max_doc_bytes")
        return
    text, invalid = decode_counting(data, charset)
    problem = reader.problem
    if problem and not problem.trailing:
        yield Rejection(0, problem.reason, len(data), problem.detail, text=text)
        return
    yield Document(0, text)
    if invalid:
        yield Count("invalid_utf8_docs")
    if problem:  # garbage after the whole compressed document, which was read and checked
        yield damage(reader, file.size)


def _charset(head: bytes) -> str:
    """UTF-16 if the file says so with a byte-order mark or looks like it (NUL high bytes of
    ASCII), else UTF-8 (minus any BOM)."""
    return utf16_codec(head) or "utf-8-sig"
