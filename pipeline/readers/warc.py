"""WARC and WET files to documents: HTML responses through `extract`, WET conversions as they are.

Records are framed here rather than by fastwarc's ArchiveIterator, which silently returns a record
cut by the end of the file and raises without a position on garbage; fastwarc parses each framed
record's HTTP part. Two layouts are read:

- per-record gzip (Common Crawl, and what WARC writers produce): each record is its own gzip member,
  a record's offset is its member's offset in the stored file, a member's records are kept only
  when its CRC checks out, and a split starting mid-file resyncs at the next member that starts a
  WARC record;
- anything else (plain WARC, one gzip or zstd stream): records are read from the (decompressed)
  byte stream, a record's offset is its position in that stream; plain files are split at byte
  ranges and resync at the next record (below), compressed streams are read whole.

A record of a byte stream whose block does not end at a record boundary (blank lines, then a
header or the end) but holds a record that does declared too long a Content-Length: it is rejected
as `bad_length`, and reading resumes at the record it swallowed. A split of a plain file starts
at a record ending at a boundary, so not at a WARC header quoted in a page (which rarely frames
one).

A split reads the records that start before its end. Damage is reported by whoever reads up to
it: a split that resyncs skips silently to the first record it may start at, and the split before
reads on past its own end up to that record, reporting the garbage and damaged records (cut short,
followed by junk, too long a Content-Length) between, so nothing is reported twice or lost.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from fastwarc.warc import WarcRecord
from zlib_ng import zlib_ng

from corpusmill.pipeline.extract import (
    decode_counting,
    html_to_text,
    page_charset,
    utf16_codec,
    utf16_without_bom,
)
from corpusmill.pipeline.readers.records import (
    Count,
    Document,
    Record,
    Rejection,
    damage,
    to_meta,
)
from corpusmill.pipeline.readers.streams import (
    RAW_CHUNK,
    SNIFF_BYTES,
    ByteReader,
    DecompressSource,
    binary_magic,
    decoded_reader,
    looks_binary,
    open_raw,
    raw_reader,
)

if TYPE_CHECKING:
    from corpusmill.pipeline.readers.discover import ReadConfig, Split

# WARC headers are small; Common Crawl's are under 1 KiB. Anything longer is not a header.
_MAX_HEADER = 1 << 16
_INNER_HEADER = b"WARC/1."
# Enough to see past the blank lines that end a record.
_BOUNDARY_PEEK = 1 << 10
# The first gzip member of a per-record WARC is one record, usually the small warcinfo; a first
# member larger than this is read as a single stream (correct, just not split).
_FIRST_MEMBER_BYTES = 1 << 20
_MAX_MEMBER = 16 << 20
# Members looked at when the first ones are damaged, before the file is taken as one stream.
_MEMBER_TRIES = 16
# Enough compressed bytes to decompress the start of a gzip member and see "WARC/".
_PROBE = 1 << 12
_GZIP_MEMBER = b"\x1f\x8b\x08"
_SHORT = "record ends before its Content-Length"
# Fields a record has once; twice means a cut header ran into the next record's.
_FRAMING_FIELDS = ("warc-type", "content-length")
_DOCUMENT_TYPES = ("response", "resource", "conversion")
# Records every crawl holds plenty of (redirects, images, stylesheets, pages with no text): logged
# at info level, so that warnings stay for damaged or malformed input.
_ORDINARY = frozenset({"http_status", "binary_content", "content_type", "empty_text"})
# A chunk-size line (RFC 9112 7.1: hex size, optional extensions) and the line end after the data;
# bare LF is accepted as HTTP parsers do.
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")
_CHUNK_END = re.compile(rb"\r?\n")
# A first chunk-size line cut by the end or followed by a byte no text has there; the last chunk.
_BROKEN_CHUNK = re.compile(rb"[0-9a-fA-F]{1,16}(?:[^\sG-Zg-z]|\r?\Z)")
_LAST_CHUNK = b"\n0\r\n\r\n"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_BINARY_FAMILIES = ("image/", "audio/", "video/", "font/")
# An HTML document's start, after an optional XML declaration and comments (WHATWG sniffing
# looks for the same tags; XHTML served as text/xml starts with <?xml).
_HTML_START = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)[\s>/]",
    re.IGNORECASE | re.DOTALL,
)


def read_warc(split: Split, config: ReadConfig) -> Iterator[Record]:
    """Documents and rejected records of the WARC records that start in the split."""
    file = split.file
    with open_raw(file.url, file.options) as handle:
        if file.compression == "gzip" and gzip_warc_per_record(handle):
            yield from _member_records(raw_reader(handle, split.start), split, config)
            return
        # A compressed stream cannot be entered mid-way: it is one split, read from the start.
        plain = file.compression == "none"
        reader = decoded_reader(raw_reader(handle, split.start if plain else 0), file.compression)
        if split.start == 0 and reader.at_end() and not reader.problem:
            yield Count("empty_files")
        end = split.end if plain else math.inf
        yield from _stream_records(reader, split.start, end, config, file.size)


def gzip_warc_per_record(handle: BinaryIO) -> bool:
    """True if an open gzip WARC file compresses each record as its own gzip member.

    Such files (Common Crawl's, and what WARC writers produce) can be split at member starts, and
    a record's offset is its member's offset in the stored file; other gzip files are one stream.
    The first member that is not damaged decides; the handle is left at an unspecified position.
    """
    handle.seek(0)
    head = handle.read(_FIRST_MEMBER_BYTES)
    start = 0
    for _ in range(_MEMBER_TRIES):
        verdict = _one_record_member(head[start:])
        if verdict is not None:
            return verdict
        start = head.find(_GZIP_MEMBER, start + 1)
        if start < 0:
            break
    return False


def _one_record_member(data: bytes) -> bool | None:
    """Whether the gzip member `data` starts with holds one WARC record and nothing else; None if
    it is damaged or holds no WARC record, False if it does not end within `data`."""
    decompressor = zlib_ng.decompressobj(31)
    try:
        member = decompressor.decompress(data, _MAX_MEMBER)
    except zlib_ng.error:
        return None
    header = _parse_header(member[:_MAX_HEADER])
    if header is None:
        return None
    if not decompressor.eof:
        return False
    header_length, _, length = header
    return not member[header_length + length :].strip(b"\r\n")


@dataclass
class _Record:
    """A framed WARC record; `block` is None when it is larger than max_doc_bytes."""

    offset: int
    headers: dict[str, str]
    header_bytes: bytes
    block: bytes | None
    length: int

    @property
    def url(self) -> str | None:
        return _target_uri(self.headers)


def _target_uri(headers: dict[str, str]) -> str | None:
    uri = headers.get("warc-target-uri")
    return uri.strip("<>") if uri else None


def _stream_records(
    reader: ByteReader, start: int, end: float, config: ReadConfig, size: int
) -> Iterator[Record]:
    """Records of a WARC byte stream that start in [start, end), then damage right after them."""
    record_at = partial(_record_at, max_doc_bytes=config.max_doc_bytes)
    if start > 0 and not _seek(reader, b"WARC/", record_at, limit=end):
        return
    damage_reported = False
    while True:
        _skip_newlines(reader)
        if reader.at_end():
            break
        at = reader.pos
        header = _parse_header(reader.peek(_MAX_HEADER))
        if header is None:
            # Garbage, or a header cut by the end of the stream: report it up to the next record.
            reason = "truncated" if _cut_header(reader) else "corrupt"
            reader.skip(1)
            _seek(reader, b"WARC/", _header_at, limit=None)
            if reader.at_end() and reader.problem:
                reason, damage_reported = reader.problem.reason, True
            yield Rejection(
                at, reason, reader.pos - at, "not a WARC record; resumed at the next one"
            )
            continue
        if at >= end and record_at(reader):
            break
        outcome = _next_record(reader, at, header, config.max_doc_bytes, record_at)
        if isinstance(outcome, int):
            detail = f"Content-Length {header[2]} runs over the record at byte {outcome}"
            yield Rejection(at, "bad_length", outcome - at, detail, url=_target_uri(header[1]))
            continue
        record, complete = outcome
        if complete:
            yield from _convert(record, config)
        else:
            damage_reported = reader.problem is not None
            reason = reader.problem.reason if reader.problem else "truncated"
            yield Rejection(at, reason, reader.pos - at, _SHORT, url=record.url)
    if reader.problem and not damage_reported:
        yield damage(reader, size)


def _next_record(
    reader: ByteReader,
    at: int,
    header: tuple[int, dict[str, str], int],
    max_doc_bytes: int,
    record_at: Callable[[ByteReader], bool],
) -> tuple[_Record, bool] | int:
    """The record at the reader's position and whether it is complete; or, if its Content-Length
    runs over another record, where that one starts (the reader is then there)."""
    header_length, headers, length = header
    if length <= max_doc_bytes:
        inner = _inner_record(reader, header, max_doc_bytes)
        if inner is None:
            return _read_record(reader, at, header, max_doc_bytes)
        reader.skip(inner)
        return at + inner
    # Not held, so searched as it is read: the first place a split could start inside it is
    # where a record it swallowed starts (a larger record quoting a whole WARC file is rarer).
    header_bytes = reader.read(header_length)
    block_end = reader.pos + length
    if _seek(reader, b"WARC/", record_at, limit=block_end):
        return reader.pos
    reader.skip(block_end - reader.pos)
    return _Record(at, headers, header_bytes, None, length), reader.pos == block_end


def _member_records(raw: ByteReader, split: Split, config: ReadConfig) -> Iterator[Record]:
    """Records of a per-record gzip WARC whose members start in the split, then damage after."""
    if split.start > 0 and not _seek(raw, _GZIP_MEMBER, _member_at, limit=split.end):
        return
    while not raw.at_end():
        at = raw.pos
        if at >= split.end and _member_at(raw):
            break
        source = DecompressSource(raw, "gzip", single_member=True)
        member = ByteReader(source)
        records, broken = _member_content(member, at, config.max_doc_bytes)
        if broken:
            member.drain()  # moves raw to the end of the member
        if source.problem:
            # The member is cut or corrupt, so its CRC never vouched for what it decompressed to
            # (deflate turns damaged bytes into text before it fails): none of it is kept, and
            # reading resumes at the next member that starts a record.
            raw.skip(max(at + 1 - raw.pos, 0))
            _seek(raw, _GZIP_MEMBER, _member_at, limit=None)
            detail = broken.detail if broken else source.problem.detail
            yield Rejection(at, source.problem.reason, raw.pos - at, detail)
        else:
            for record in records:
                yield from _convert(record, config)
            if broken:
                yield Rejection(broken.offset, broken.reason, raw.pos - at, broken.detail)


class _Damage(NamedTuple):
    offset: int
    reason: str
    detail: str


def _member_content(
    member: ByteReader, at: int, max_doc_bytes: int
) -> tuple[list[_Record], _Damage | None]:
    """The complete records of the gzip member at `at`, read to its end, and any damage after them.

    A member normally holds one record. Should one hold several, the k-th gets offset `at + k`.
    """
    records: list[_Record] = []
    while True:
        _skip_newlines(member)
        offset = at + len(records)
        if member.at_end():
            return records, None
        header = _parse_header(member.peek(_MAX_HEADER))
        if header is None:
            reason = "truncated" if _cut_header(member) else "corrupt"
            return records, _Damage(offset, reason, "gzip member does not hold a WARC record")
        record, complete = _read_record(member, offset, header, max_doc_bytes)
        if not complete:
            return records, _Damage(offset, "truncated", _SHORT)
        records.append(record)


def _parse_header(head: bytes) -> tuple[int, dict[str, str], int] | None:
    """(header length, lowercased headers, Content-Length) if `head` starts with a WARC header."""
    if not head.startswith(b"WARC/"):
        return None
    end = head.find(b"\r\n\r\n")
    if end < 0:
        return None
    headers: dict[str, str] = {}
    for line in head[:end].split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        key = name.strip().lower().decode("latin-1")
        if not colon or key in _FRAMING_FIELDS and key in headers:
            return None
        headers[key] = value.strip().decode("utf-8", "replace")
    length = headers.get("content-length", "")
    if "warc-type" not in headers or not length.isdigit():
        return None
    return end + 4, headers, int(length)


def _cut_header(reader: ByteReader) -> bool:
    """True if the stream ends inside what starts like a WARC header."""
    head = reader.peek(_MAX_HEADER)
    return head.startswith(b"WARC/") and len(head) < _MAX_HEADER and b"\r\n\r\n" not in head


def _read_record(
    reader: ByteReader, offset: int, header: tuple[int, dict[str, str], int], max_doc_bytes: int
) -> tuple[_Record, bool]:
    """Read one record (its block only if small enough); True if it was complete."""
    header_length, headers, length = header
    header_bytes = reader.read(header_length)
    if length > max_doc_bytes:
        block, got = None, reader.skip(length)
    else:
        block = reader.read(length)
        got = len(block)
    return _Record(offset, headers, header_bytes, block, length), got == length


def _inner_record(
    reader: ByteReader, header: tuple[int, dict[str, str], int], max_doc_bytes: int
) -> int | None:
    """Where a record starts inside the block of the record at the reader's position (bytes from
    it), if that record does not end at a record boundary; else None.

    A record whose Content-Length is too long swallows the next record this way; a header quoted
    in a page rarely frames a record that ends at a boundary. Records larger than max_doc_bytes
    are not held, so they cannot be searched: they are read as declared.
    """
    if _framed(reader, 0, header, max_doc_bytes):
        return None
    header_length, _, length = header
    end = header_length + length
    # A header that starts in the block may run past its end.
    record = reader.peek(end + len(_INNER_HEADER) - 1)
    start = record.find(_INNER_HEADER, header_length)
    while 0 <= start < end:
        inner = _parse_header(reader.peek(_MAX_HEADER, start))
        if inner is not None and _framed(reader, start, inner, max_doc_bytes):
            return start
        start = record.find(_INNER_HEADER, start + 1)
    return None


def _framed(
    reader: ByteReader, start: int, header: tuple[int, dict[str, str], int], max_doc_bytes: int
) -> bool:
    """True if the record whose parsed `header` is `start` bytes ahead ends at a record boundary,
    or is larger than max_doc_bytes (not held, so taken as declared)."""
    header_length, _, length = header
    if length > max_doc_bytes:
        return True
    end = start + header_length + length
    if not reader.peek(1, end - 1):  # the stream ends inside the record
        return False
    tail = reader.peek(_BOUNDARY_PEEK, end)
    return _is_boundary(tail, more=len(tail) == _BOUNDARY_PEEK)


def _is_boundary(head: bytes, more: bool) -> bool:
    """True if `head` is blank lines, then the start of a WARC header (checked when it is read)
    or nothing, when there is no `more` stream after it."""
    rest = head.lstrip(b"\r\n")
    return rest.startswith(b"WARC/") if rest else not more


def _skip_newlines(reader: ByteReader) -> None:
    """Consume the CR/LF that end a record (and any extra blank lines between records)."""
    while True:
        head = reader.peek(64)
        stripped = len(head) - len(head.lstrip(b"\r\n"))
        if not stripped:
            return
        reader.skip(stripped)


def _seek(reader: ByteReader, needle: bytes, starts_here, limit: float | None) -> bool:
    """Move to the next `needle` at which `starts_here(reader)` holds, starting before `limit` if
    given; False if there is none (the reader is then at `limit` or at the end of the stream).
    """
    while limit is None or reader.pos < limit:
        span = RAW_CHUNK if limit is None else min(RAW_CHUNK, limit - reader.pos)
        found = reader.find(needle, span + len(needle) - 1)
        if 0 <= found < span:
            reader.skip(found)
            if starts_here(reader):
                return True
            reader.skip(1)
        elif reader.skip(span) < span:
            return False
    return False


def _record_at(reader: ByteReader, max_doc_bytes: int) -> bool:
    """True if a split may start at the reader's position: at a valid WARC header whose record
    ends at a record boundary (one larger than max_doc_bytes is taken as declared). A header
    quoted in a page rarely does; a record cut short, followed by junk or swallowing the next
    record does not, and is read by the split before, which reads past its end up to such a start.
    """
    header = _parse_header(reader.peek(_MAX_HEADER))
    return header is not None and _framed(reader, 0, header, max_doc_bytes)


def _header_at(reader: ByteReader) -> bool:
    """True if a valid WARC header starts at the reader's position."""
    return _parse_header(reader.peek(_MAX_HEADER)) is not None


def _member_at(raw: ByteReader) -> bool:
    """True if a gzip member whose content starts with "WARC/" starts at the reader's position."""
    try:
        return zlib_ng.decompressobj(31).decompress(raw.peek(_PROBE), 16).startswith(b"WARC/")
    except zlib_ng.error:
        return False


class _Text(NamedTuple):
    """What a record's payload reads as, before it is a document."""

    text: str
    title: str | None
    charset: str
    invalid_bytes: int
    meta: dict[str, str | None]


def _convert(record: _Record, config: ReadConfig) -> Iterator[Record]:
    """One complete record as a document (and its counts) or a rejection; other record types
    are counted."""
    if record.headers["warc-type"] not in _DOCUMENT_TYPES:
        yield Count("skipped_warc_records")
        return
    outcome = _outcome(record, config)
    if isinstance(outcome, Rejection):
        ordinary = outcome.reason in _ORDINARY
        yield outcome._replace(offset=record.offset, url=record.url, ordinary=ordinary)
        return
    meta = {
        "warc_date": record.headers.get("warc-date"),
        "warc_truncated": record.headers.get("warc-truncated"),
        **outcome.meta,
        "charset": outcome.charset,
    }
    yield Document(record.offset, outcome.text, record.url, outcome.title, to_meta(meta))
    if "http_chunked" in outcome.meta:
        yield Count("incomplete_chunked_docs")
    if outcome.invalid_bytes:
        utf8 = outcome.charset.startswith("utf-8")
        yield Count("invalid_utf8_docs" if utf8 else "invalid_charset_docs")


def _outcome(record: _Record, config: ReadConfig) -> _Text | Rejection:
    """What a response, resource or conversion record becomes; a rejection's offset and URL are
    the caller's to set."""
    if record.block is None:
        return _rejection("too_large", record.length, f"{record.length} bytes > max_doc_bytes")
    kind = record.headers["warc-type"]
    if kind == "conversion":
        text, invalid = decode_counting(record.block, "utf-8")
        return _Text(text, None, "utf-8", invalid, {})
    if kind == "resource":
        mime, charset = _content_type(record.headers.get("content-type"))
        return _payload(mime, charset, record.block, config)
    http = _http(record)
    if http is None:
        return _rejection("corrupt", record.length, "unreadable HTTP response")
    if http.status is None or not 200 <= http.status < 300:
        return _rejection("http_status", record.length, f"HTTP status {http.status}")
    if http.chunked == "unreadable":
        return _rejection(
            "bad_chunked", record.length, "chunked body whose first chunk is unreadable"
        )
    outcome = _payload(http.mime, http.charset, http.body, config)
    if http.chunked is None or isinstance(outcome, Rejection):
        return outcome
    return outcome._replace(meta={**outcome.meta, "http_chunked": http.chunked})


def _payload(mime: str, charset: str | None, body: bytes, config: ReadConfig) -> _Text | Rejection:
    """HTML is extracted, plain text decoded; binaries and other types are rejected."""
    meta = {"content_type": mime or None, "http_charset": charset}
    kind = _payload_kind(mime, body)
    if kind == "html":
        page = html_to_text(body, charset, config.extract)
        if not page.text:
            return _rejection("empty_text", len(body), "no text extracted", step="extract")
        return _Text(page.text, page.title, page.charset, page.invalid_bytes, meta)
    if kind == "text":
        encoding = page_charset(body, charset)
        text, invalid = decode_counting(body, encoding)
        return _Text(text, None, encoding, invalid, meta)
    reason = "binary_content" if kind == "binary" else "content_type"
    return _rejection(reason, len(body), f"content type {mime or 'missing'}")


def _rejection(reason: str, size: int, detail: str, step: str = "read") -> Rejection:
    """A rejection of a record's payload, at no offset yet: `_convert` places it."""
    return Rejection(0, reason, size, detail, step=step)


def _http(record: _Record) -> _Http | None:
    """The parsed HTTP response of a record, its transfer and content encodings undone; None if
    its HTTP header is unreadable.

    A declared content encoding that does not decode (the body was stored decoded, as Common
    Crawl does) leaves the body as stored. A chunked body cut short or broken keeps the data of
    its chunks up to the damage (a payload cut at the crawler's size limit is such a body), never
    the chunk-size lines: `chunked` is "incomplete". One that does not start with a chunk was
    stored unchunked, and is taken as it is, unless its first chunk-size line is damaged or it
    ends with the last chunk: `chunked` is then "unreadable".
    """
    for decode in ("all", "transfer"):
        warc = _parse_http(record, decode)
        if warc is not None:
            return _response(warc, warc.reader.read(), chunked=None)
    warc = _parse_http(record, "none")
    if warc is None or warc.http_headers is None:
        return None
    body = warc.reader.read()
    chunks = _dechunk(body)
    if chunks is not None:
        data, complete = chunks
        return _response(warc, data, chunked=None if complete else "incomplete")
    if _BROKEN_CHUNK.match(body) or body.endswith(_LAST_CHUNK):
        return _response(warc, body, chunked="unreadable")
    return _response(warc, body, chunked=None)


class _Http(NamedTuple):
    status: int | None
    mime: str
    charset: str | None
    body: bytes
    chunked: str | None


def _parse_http(record: _Record, decode: str) -> WarcRecord | None:
    """fastwarc's parse of the record's HTTP part with `auto_decode=decode`, None if it fails."""
    try:
        warc = WarcRecord.from_bytes(record.header_bytes + record.block)
        warc.is_http = True
        warc.parse_http(auto_decode=decode)
    except OSError:
        return None
    return warc


def _response(warc: WarcRecord, body: bytes, chunked: str | None) -> _Http | None:
    if warc.http_headers is None:
        return None
    mime, _ = _content_type(warc.http_content_type)
    charset = (warc.http_charset or "").strip("\"' ").lower() or None
    return _Http(warc.http_headers.status_code, mime, charset, body, chunked)


def _dechunk(body: bytes) -> tuple[bytes, bool] | None:
    """(data, ended properly) of a chunked body: its chunks up to a cut or malformed one, with
    the part of a chunk cut by the end; None if the body does not start with a chunk.
    """
    parts: list[bytes] = []
    pos = 0
    while size_line := _CHUNK_SIZE.match(body, pos):
        size = int(size_line.group(1), 16)
        if size == 0:
            return b"".join(parts), True
        pos = size_line.end() + size
        parts.append(body[size_line.end() : pos])
        end = _CHUNK_END.match(body, pos)
        if end is None:
            break
        pos = end.end()
    return (b"".join(parts), False) if parts else None


def _content_type(value: str | None) -> tuple[str, str | None]:
    """(lowercased mime type, charset parameter) of a Content-Type header value."""
    mime, _, params = (value or "").partition(";")
    charset = None
    for param in params.split(";"):
        name, _, arg = param.partition("=")
        if name.strip().lower() == "charset":
            charset = arg.strip("\"' ").lower() or None
    return mime.strip().lower(), charset


def _payload_kind(mime: str, body: bytes) -> str:
    """ "html", "text", "binary" or "other", from the declared type and the first bytes."""
    head = body[:SNIFF_BYTES]
    if binary_magic(head):
        return "binary"
    if mime in _HTML_TYPES or _starts_like_html(head):
        return "html"
    # UTF-16 without a BOM is text, though its NUL bytes look binary to `looks_binary`.
    if (looks_binary(head) and not utf16_without_bom(head)) or mime.startswith(_BINARY_FAMILIES):
        return "binary"
    if mime == "text/plain":
        return "text"
    return "other"


def _starts_like_html(head: bytes) -> bool:
    """True if a payload starts with an HTML document's first tag, in UTF-8 or UTF-16."""
    if utf16 := utf16_codec(head):
        head = head[:2048].decode(utf16, "ignore").encode()
    return _HTML_START.match(head[:1024]) is not None
