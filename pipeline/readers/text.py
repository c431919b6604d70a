"""Plain text files to documents: each file is one document, decoded as UTF-8 (or UTF-16, with
a byte-order mark or recognised by its NUL bytes).

Invalid UTF-8 bytes are replaced and counted; a file that starts like binary data, or that is
larger than `max_doc_bytes`, is rejected without being held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from corpusmill.pipeline.extract import decode_counting, utf16_codec
from corpusmill.pipeline.readers.streams import (
    SNIFF_BYTES,
    BatchBuilder,
    ByteReader,
    ReadBatch,
    decoded_reader,
    looks_binary,
    open_raw,
    raw_reader,
)

if TYPE_CHECKING:
    from corpusmill.pipeline.readers.discover import InputFile, ReadConfig, Split


def read_text(split: Split, config: ReadConfig) -> Iterator[ReadBatch]:
    """The file's one document, or its rejection, or nothing for an empty file."""
    file = split.file
    builder = BatchBuilder(file.url, file.source, config.batch_docs, config.batch_bytes)
    yield from builder.run(_document(split, config, builder))


def _document(split: Split, config: ReadConfig, builder: BatchBuilder) -> Iterator[None]:
    file = split.file
    with open_raw(file.url) as handle:
        _read_document(decoded_reader(raw_reader(handle), file.compression), file, config, builder)
    yield


def _read_document(
    reader: ByteReader, file: InputFile, config: ReadConfig, builder: BatchBuilder
) -> None:
    head = reader.peek(SNIFF_BYTES)
    if not head:
        if reader.problem:
            builder.reject_damage(reader, file.size)
        else:
            builder.count("empty_files")
        return
    charset = _charset(head)
    if looks_binary(head) and not charset.startswith("utf-16"):
        builder.reject(0, "binary_content", reader.drain(), "binary data, not text")
        return
    data = reader.read(config.max_doc_bytes + 1)
    if len(data) > config.max_doc_bytes:
        size = len(data) + reader.drain()
        builder.reject(0, "too_large", size, f"{size} bytes > max_doc_bytes")
        return
    text, invalid = decode_counting(data, charset)
    problem = reader.problem
    if problem and not problem.trailing:
        builder.reject(0, problem.reason, len(data), problem.detail, text=text)
        return
    builder.add_doc(0, text)
    if invalid:
        builder.count("invalid_utf8_docs")
    if problem:  # garbage after the whole compressed document, which was read and checked
        builder.reject_damage(reader, file.size)


def _charset(head: bytes) -> str:
    """UTF-16 if the file says so with a byte-order mark or looks like it (NUL high bytes of
    ASCII), else UTF-8 (minus any BOM)."""
    return utf16_codec(head) or "utf-8-sig"
