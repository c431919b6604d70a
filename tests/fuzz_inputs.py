"""Seeded generators of valid inputs with known records, and corruptions that say which records
they leave intact; test_fuzz.py reads them.

A `Sample` is one file's stored bytes and its records, each with the offset its id must carry and
the span of bytes it depends on. A corruption returns the damaged bytes and the records it leaves
intact, by one rule (`Sample.intact`), so the readers can be held to keeping exactly those.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

# Per format, the compressions a file of it is generated in. "members" is a gzip member per WARC
# record (as Common Crawl stores them); Parquet's are the codecs of its column chunks.
COMPRESSIONS = {
    "warc": ("none", "gzip", "members", "zstd"),
    "wet": ("none", "members", "zstd"),
    "jsonl": ("none", "gzip", "zstd"),
    "text": ("none", "gzip", "zstd"),
    "parquet": ("none", "snappy", "zstd"),
}
_NAMES = {"warc": "crawl.warc", "wet": "crawl.warc.wet", "jsonl": "dump.jsonl", "text": "doc.txt"}
_SUFFIXES = {"none": "", "gzip": ".gz", "members": ".gz", "zstd": ".zst"}
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

_NOUNS = (
    "river city garden letter morning teacher market window village bridge story harbour farmer "
    "kitchen mountain station library painter doctor forest engine island museum sailor "
    "orchard lantern council ferry meadow workshop festival journey castle valley student"
).split()
_VERBS = (
    "opened carried followed painted answered visited measured described repaired watched "
    "crossed borrowed finished remembered noticed cleaned planted explained"
).split()
_ADJECTIVES = (
    "quiet early bright narrow patient careful distant ordinary wooden ancient crowded "
    "gentle famous hidden empty golden rainy modest"
).split()
_CONTENT_WORDS = _NOUNS + _VERBS + _ADJECTIVES
_STOP_WORDS = "the of and to with that a in was it for on have be".split()
# Pages in a charset other than UTF-8: (charset, text written in it).
_LEGACY_PAGES = (
    ("windows-1252", "Le café du marché ouvre tôt, et la crème brûlée y est très appréciée."),
    ("iso-8859-1", "Die Brücke über den Fluß wurde im Frühling für alle Fußgänger geöffnet."),
    ("koi8-r", "Утром в городе открылся новый рынок, и жители пришли посмотреть на него."),
    ("shift_jis", "今日は朝から雨が降っていたので、私たちは図書館で本を読んで過ごしました。"),
)
_UNICODE_WORDS = ("naïve", "façade", "Zürich", "Ελλάδα", "東京", "Москва", "emoji 🙂")


@dataclass(frozen=True)
class Record:
    """One record: its bytes in the file's content, and the document the readers must make of it."""

    raw: bytes
    text: str
    url: str | None


@dataclass(frozen=True)
class Placed:
    """A record where it lies: `offset` is its id's offset; [start, end) the bytes it depends on:
    stored bytes of plain files and per-record gzip files (its member), decompressed bytes of
    gzip/zstd streams, its row group's column chunks in Parquet."""

    offset: int
    start: int
    end: int
    text: str
    url: str | None

    def moved(self, shift: int) -> Placed:
        return Placed(
            self.offset + shift, self.start + shift, self.end + shift, self.text, self.url
        )


@dataclass(frozen=True)
class Sample:
    """A valid file: its name, stored bytes and records (`skipped`: WARC records that are not
    documents, which the readers count as skipped_warc_records)."""

    fmt: str
    compression: str
    name: str
    data: bytes
    records: tuple[Record, ...]
    placed: tuple[Placed, ...]
    skipped: int = 0
    # Parquet: where the footer (the metadata every row needs) starts.
    footer: int = 0

    @property
    def layout(self) -> str:
        """How records lie in the stored bytes, which decides what damage can reach them."""
        if self.fmt == "parquet":
            return "parquet"
        if self.fmt == "text":
            return "whole"
        if self.compression in ("gzip", "zstd"):
            return "stream"
        return "plain"  # uncompressed, or a gzip member per record

    def intact(self, start: int, end: int, shift: int) -> list[Placed]:
        """The records that changing stored bytes [start, end) leaves readable, as the readers
        must report them (`shift`: bytes the change adds, moving everything after it):

        - plain and per-record gzip files: records ending at or before `start`, and records
          starting after `end` (at least one intact byte between: a damaged separator, a JSON
          line's newline or the end of a gzip member, may join the record after it);
        - gzip/zstd streams: records within the content that the stored bytes before `start`
          decompress to (a stream cannot be entered after damage; all of it may be lost);
        - a text file: its one record, only if the change is past the end of its compressed
          stream (appended garbage); its text ends where the file does;
        - Parquet: rows of row groups before the change or, if it moves no byte, after it,
          provided the magic number and the footer are untouched.
        """
        return [p for p in self._readable(start, end, shift) if p.text]

    def gone(self, start: int, end: int) -> int:
        """How many documents removing stored bytes [start, end) removes whole from a plain or
        per-record gzip file, or from any file it empties: they are not there to be read at all.
        A stream or Parquet file cut anywhere else is damaged, and the damage must be reported."""
        if start == 0 and end >= len(self.data):
            return len(self.documents)
        if self.layout == "plain":
            return sum(start <= p.start and p.end <= end for p in self.documents)
        return 0

    @property
    def documents(self) -> list[Placed]:
        """The records that are documents (WARC warcinfo and request records are not)."""
        return [p for p in self.placed if p.text]

    def _readable(self, start: int, end: int, shift: int) -> list[Placed]:
        if self.layout == "plain":
            before = [p for p in self.placed if p.end <= start]
            return before + [p.moved(shift) for p in self.placed if p.start > end]
        if self.layout == "stream":
            readable = len(decompressed_prefix(self.data[:start], self.compression))
            return [p for p in self.placed if p.end <= readable]
        if self.layout == "whole":
            past_end = start >= len(self.data) and self.compression != "none"
            return list(self.placed) if past_end else []
        if start < 4 or end > self.footer:
            return []
        return [p for p in self.placed if p.end <= start or (shift == 0 and p.start >= end)]

    def repacked(self, records: list[Record]) -> Sample:
        """The same file with other records (as a corruption of some records' content makes it)."""
        return pack(self.fmt, self.compression, records, self.skipped)


@dataclass(frozen=True)
class Corrupted:
    """A damaged file: its bytes, the records it must still yield, and how many records the
    damage removed whole."""

    data: bytes
    intact: list[Placed]
    gone: int = 0
    # The charset records were re-encoded in, if they were.
    charset: str = "utf-8"


def make_sample(fmt: str, compression: str, seed: int) -> Sample:
    """A valid file of a few small records, the same for the same arguments."""
    rng = random.Random(f"{fmt}-{compression}-{seed}")
    if fmt == "parquet":
        return _parquet(rng, compression)
    records, skipped = _RECORDS[fmt](rng)
    return pack(fmt, compression, records, skipped)


def pack(fmt: str, compression: str, records: list[Record], skipped: int = 0) -> Sample:
    """Records stored in a file of a format and compression, each placed where it lies."""
    name = _NAMES[fmt] + _SUFFIXES[compression]
    placed, data, position = [], b"", 0
    for record in records:
        raw = gzip.compress(record.raw, mtime=0) if compression == "members" else record.raw
        end = position + len(raw)
        placed.append(Placed(position, position, end, record.text, record.url))
        data += raw
        position = end
    if compression in ("gzip", "zstd"):
        data = _compress_stream(data, compression, [len(r.raw) for r in records])
    if fmt == "text":
        placed = [Placed(0, 0, len(records[0].raw), records[0].text, None)]
    return Sample(fmt, compression, name, data, tuple(records), tuple(placed), skipped)


def decompressed_prefix(data: bytes, compression: str) -> bytes:
    """What the start of a gzip or zstd stream decompresses to, without what follows it."""
    if compression == "gzip":
        return zlib.decompressobj(31).decompress(data)
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def _compress_stream(content: bytes, compression: str, sizes: list[int]) -> bytes:
    """One gzip stream, or one zstd frame with a block ending after each record (as a streaming
    writer flushing per record makes them), so damage in one block leaves the blocks before it."""
    if compression == "gzip":
        return gzip.compress(content, mtime=0)
    writer = zstandard.ZstdCompressor(level=3, write_checksum=True).compressobj()
    out, position = b"", 0
    for size in sizes:
        out += writer.compress(content[position : position + size])
        out += writer.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        position += size
    return out + writer.flush()


def sentence(rng: random.Random) -> str:
    """An English sentence of 9 to 15 words drawn at random, a third of them stop words, so that
    quality filters keep it and no two sentences share a run of words."""
    words = [
        rng.choice(_STOP_WORDS) if rng.random() < 0.35 else rng.choice(_CONTENT_WORDS)
        for _ in range(rng.randint(9, 15))
    ]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, unicode: bool = False) -> str:
    """Six to nine sentences, and a word in another script at the end if asked."""
    text = " ".join(sentence(rng) for _ in range(rng.randint(6, 9)))
    return f"{text} {rng.choice(_UNICODE_WORDS)}." if unicode else text


def warc_record(kind: str, uri: str, block: bytes, block_type: str) -> bytes:
    """A WARC record with its Content-Length."""
    return (
        (
            f"WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Target-URI: {uri}\r\n"
            f"WARC-Date: 2024-03-01T10:00:00Z\r\nWARC-Record-ID: <urn:uuid:{uri}>\r\n"
            f"Content-Type: {block_type}\r\nContent-Length: {len(block)}\r\n\r\n"
        ).encode()
        + block
        + b"\r\n\r\n"
    )


def http_response(body: bytes, charset: str | None, chunked: bool) -> bytes:
    """An HTTP response block, its body chunked in pieces if asked."""
    content_type = "text/html" + (f"; charset={charset}" if charset else "")
    headers = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
    if chunked:
        headers += "Transfer-Encoding: chunked\r\n"
        pieces = [body[i : i + 700] for i in range(0, len(body), 700)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    return headers.encode() + b"\r\n" + body


def html_page(title: str, paragraphs: list[str], meta_charset: str | None) -> str:
    meta = f'<meta charset="{meta_charset}">' if meta_charset else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head>{meta}<title>{title}</title></head>"
        f"<body><article><h1>{title}</h1>{body}</article></body></html>"
    )


_WARCINFO = Record(
    warc_record("warcinfo", "", b"software: fuzz\r\n", "application/warc-fields"), "", None
)


def _warc_records(rng: random.Random) -> tuple[list[Record], int]:
    """A warcinfo record, then HTML responses (some chunked, some in legacy charsets declared in
    the HTTP header or in a meta tag) with a request record among them."""
    records, skipped = [_WARCINFO], 1
    for i in range(rng.randint(3, 6)):
        uri = f"http://fuzz.example/{rng.randrange(10**6)}/{i}"
        title = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}, part {i}"
        charset, legacy = rng.choice(_LEGACY_PAGES) if rng.random() < 0.35 else ("utf-8", "")
        unicode = not legacy and rng.random() < 0.3
        paragraphs = [paragraph(rng, unicode) for _ in range(rng.randint(1, 3))]
        if legacy:
            paragraphs.append(legacy)
        declared_in = rng.choice(["header", "meta"])
        page = html_page(title, paragraphs, charset if declared_in == "meta" else None)
        block = http_response(
            page.encode(charset), charset if declared_in == "header" else None, rng.random() < 0.3
        )
        raw = warc_record("response", uri, block, "application/http; msgtype=response")
        records.append(Record(raw, "\n\n".join([title, *paragraphs]), uri))
        if rng.random() < 0.3:
            request = b"GET / HTTP/1.1\r\nHost: fuzz.example\r\n\r\n"
            records.append(
                Record(
                    warc_record("request", uri, request, "application/http; msgtype=request"),
                    "",
                    None,
                )
            )
            skipped += 1
    return records, skipped


def _wet_records(rng: random.Random) -> tuple[list[Record], int]:
    """A warcinfo record, then text conversions of a few lines each."""
    records = [_WARCINFO]
    for i in range(rng.randint(3, 7)):
        uri = f"http://wet.example/{rng.randrange(10**6)}/{i}"
        text = "\n".join(
            paragraph(rng, unicode=rng.random() < 0.5) for _ in range(rng.randint(1, 3))
        )
        records.append(
            Record(warc_record("conversion", uri, text.encode(), "text/plain"), text, uri)
        )
    return records, 1


def _jsonl_records(rng: random.Random) -> tuple[list[Record], int]:
    """JSON lines with a URL and nested fields beside the text, some escaping non-ASCII."""
    records = []
    for i in range(rng.randint(4, 12)):
        text = paragraph(rng, unicode=rng.random() < 0.4)
        url = f"http://json.example/{i}" if rng.random() < 0.8 else None
        fields = {"id": i, "text": text, "meta": {"lang": "en", "tags": ["a", i], "score": i / 3}}
        if url:
            fields["url"] = url
        line = json.dumps(fields, ensure_ascii=rng.random() < 0.5) + "\n"
        records.append(Record(line.encode(), text, url))
    return records, 0


def _text_records(rng: random.Random) -> tuple[list[Record], int]:
    """One document of a few paragraphs."""
    text = "\n\n".join(paragraph(rng, unicode=True) for _ in range(rng.randint(1, 4)))
    return [Record(text.encode(), text, None)], 0


_RECORDS: dict[str, Callable[[random.Random], tuple[list[Record], int]]] = {
    "warc": _warc_records,
    "wet": _wet_records,
    "jsonl": _jsonl_records,
    "text": _text_records,
}


def _parquet(rng: random.Random, codec: str) -> Sample:
    """A table of a few row groups: text, URL and a nested struct, in the given column codec,
    with or without dictionaries and page checksums, in data pages of either version."""
    rows = rng.randint(6, 14)
    texts = [paragraph(rng, unicode=rng.random() < 0.4) for _ in range(rows)]
    urls = [f"http://parquet.example/{i}" for i in range(rows)]
    table = pa.table(
        {
            "text": texts,
            "url": urls,
            "meta": [{"lang": "en", "n": i} for i in range(rows)],
        }
    )
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        row_group_size=rng.randint(2, 5),
        compression=codec,
        use_dictionary=rng.random() < 0.5,
        write_page_checksum=rng.random() < 0.5,
        data_page_version=rng.choice(["1.0", "2.0"]),
    )
    data = sink.getvalue()
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    placed, row, footer = [], 0, 4
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        chunks = [group.column(c) for c in range(group.num_columns)]
        start = min(_chunk_start(c) for c in chunks)
        end = max(_chunk_start(c) + c.total_compressed_size for c in chunks)
        footer = max(footer, end)
        for _ in range(group.num_rows):
            placed.append(Placed(row, start, end, texts[row], urls[row]))
            row += 1
    return Sample("parquet", codec, "table.parquet", data, (), tuple(placed), footer=footer)


def _chunk_start(chunk: pq.ColumnChunkMetaData) -> int:
    if chunk.has_dictionary_page and chunk.dictionary_page_offset:
        return min(chunk.dictionary_page_offset, chunk.data_page_offset)
    return chunk.data_page_offset


# Corruptions, each (sample, rng) -> Corrupted: of the stored bytes, or of some records' content
# (the file then packed again).


def truncate(sample: Sample, rng: random.Random) -> Corrupted:
    """The file cut at a random byte."""
    cut = rng.randrange(len(sample.data))
    end = len(sample.data)
    return Corrupted(sample.data[:cut], sample.intact(cut, end, 0), sample.gone(cut, end))


def flip_bits(sample: Sample, rng: random.Random) -> Corrupted:
    """One to four bits flipped within 16 bytes at a random place."""
    return _flipped(sample, rng, rng.randrange(len(sample.data)), 16)


def flip_bits_in_a_record(sample: Sample, rng: random.Random) -> Corrupted:
    """Bits flipped inside one record's stored bytes (anywhere in streams and text files, whose
    records have no stored bytes of their own)."""
    if sample.layout in ("plain", "parquet"):
        record = rng.choice(sample.placed)
        return _flipped(
            sample, rng, rng.randrange(record.start, record.end), record.end - record.start
        )
    return flip_bits(sample, rng)


def insert_bytes(sample: Sample, rng: random.Random) -> Corrupted:
    """A run of random bytes and framing tokens inserted at a random place."""
    at = rng.randrange(len(sample.data) + 1)
    junk = junk_bytes(rng, rng.randint(1, 48))
    data = sample.data[:at] + junk + sample.data[at:]
    return Corrupted(data, sample.intact(at, at, len(junk)))


def delete_bytes(sample: Sample, rng: random.Random) -> Corrupted:
    """A run of one to 48 bytes removed at a random place."""
    start = rng.randrange(len(sample.data))
    end = min(start + rng.randint(1, 48), len(sample.data))
    data = sample.data[:start] + sample.data[end:]
    return Corrupted(data, sample.intact(start, end, start - end), sample.gone(start, end))


def append_garbage(sample: Sample, rng: random.Random) -> Corrupted:
    """Random bytes after the end of the file. Those that start like another gzip member or zstd
    frame are a damaged continuation of the stream, so they damage a text file's one text."""
    end = len(sample.data)
    junk = junk_bytes(rng, rng.randint(1, 300))
    continued = sample.layout == "whole" and junk.startswith((_GZIP_MAGIC, _ZSTD_MAGIC))
    return Corrupted(sample.data + junk, [] if continued else sample.intact(end, end, len(junk)))


def empty(sample: Sample, rng: random.Random) -> Corrupted:
    """Nothing left: an empty file of the sample's name."""
    return Corrupted(b"", [], len(sample.documents))


def break_length_field(sample: Sample, rng: random.Random) -> Corrupted:
    """A length the format stores, overwritten: a WARC record's Content-Length; a gzip member's
    flags or size trailer; a zstd block's size; a Parquet page header or the footer's length."""
    if sample.fmt in ("warc", "wet") and (sample.compression == "none" or rng.random() < 0.5):
        return _wrong_content_length(sample, rng)
    if sample.compression in ("gzip", "members"):
        member = rng.choice(sample.placed) if sample.layout == "plain" else None
        start, end = (member.start, member.end) if member else (0, len(sample.data))
        at = rng.choice([start + 3, end - 8, end - 4])  # FLG, CRC32, ISIZE
        return _overwritten(sample, at, rng.randbytes(1 if at == start + 3 else 4))
    if sample.compression == "zstd":
        return _overwritten(sample, rng.choice(zstd_block_headers(sample.data)), rng.randbytes(3))
    if sample.fmt == "parquet":
        record = rng.choice(sample.placed)
        at = rng.choice([len(sample.data) - 8, record.start])  # footer length, page header
        return _overwritten(sample, at, rng.randbytes(4))
    raise ValueError(f"{sample.name} stores no length")


def reencode(sample: Sample, rng: random.Random) -> Corrupted:
    """Text in another charset than the file says or implies: a WARC record's payload, every
    JSON line, or the text file, re-encoded. Records whose bytes do not change stay intact."""
    charset = rng.choice(["cp1252", "shift_jis", "utf-16", "utf-16-le", "utf-16-be", "koi8-r"])
    if sample.fmt in ("warc", "wet"):
        index = rng.choice([i for i, r in enumerate(sample.records) if r.text])
        records = list(sample.records)
        records[index] = _reencoded_warc_record(records[index], charset)
        damaged = {index}
    else:
        records = [
            Record(r.raw.decode().encode(charset, "replace"), r.text, r.url) for r in sample.records
        ]
        damaged = {
            i
            for i, (a, b) in enumerate(zip(records, sample.records, strict=True))
            if a.raw != b.raw
        }
    changed = sample.repacked(records)
    intact = [p for i, p in enumerate(changed.placed) if i not in damaged and p.text]
    return Corrupted(changed.data, intact, charset=charset)


def zstd_block_headers(data: bytes) -> list[int]:
    """Offsets of the block headers of a zstd frame (after the frame header)."""
    descriptor = data[4]
    size_bytes = (0, 2, 4, 8)[descriptor >> 6]
    if descriptor >> 6 == 0 and descriptor & 0x20:
        size_bytes = 1
    window = 0 if descriptor & 0x20 else 1
    position = 5 + window + (0, 1, 2, 4)[descriptor & 3] + size_bytes
    headers = []
    while position + 3 <= len(data):
        headers.append(position)
        header = int.from_bytes(data[position : position + 3], "little")
        kind, size = (header >> 1) & 3, header >> 3
        position += 3 + (1 if kind == 1 else size)
        if header & 1:
            break
    return headers


def junk_bytes(rng: random.Random, n: int) -> bytes:
    """Random bytes mixed with pieces of framing the readers look for."""
    tokens = [
        b"WARC/1.0\r\n",
        b"\r\n\r\n",
        b"\n",
        b'{"text": "',
        _GZIP_MAGIC + b"\x08",
        b"\x00",
        b"PAR1",
    ]
    out = b""
    while len(out) < n:
        out += rng.choice(tokens) if rng.random() < 0.3 else rng.randbytes(rng.randint(1, 8))
    return out[:n]


def _flipped(sample: Sample, rng: random.Random, at: int, room: int) -> Corrupted:
    data = bytearray(sample.data)
    places = [
        min(at + rng.randrange(min(room, 16)), len(data) - 1) for _ in range(rng.randint(1, 4))
    ]
    for place in places:
        data[place] ^= 1 << rng.randrange(8)
    return Corrupted(bytes(data), sample.intact(min(places), max(places) + 1, 0))


def _overwritten(sample: Sample, at: int, value: bytes) -> Corrupted:
    data = sample.data[:at] + value + sample.data[at + len(value) :]
    return Corrupted(data, sample.intact(at, at + len(value), 0))


def _wrong_content_length(sample: Sample, rng: random.Random) -> Corrupted:
    """One record's Content-Length made larger, far beyond the file, smaller or not a number."""
    index = rng.choice([i for i, r in enumerate(sample.records) if r.text])
    record = sample.records[index]
    header, _, rest = record.raw.partition(b"\r\n\r\n")
    length = int(header.split(b"Content-Length: ")[1])
    wrong = rng.choice(
        [length + rng.randint(1, 5000), length * 10, 99_999_999_999, rng.randrange(length), -1]
    )
    value = str(wrong) if rng.random() < 0.9 else "12ab"
    raw = header.replace(b"Content-Length: %d" % length, f"Content-Length: {value}".encode())
    records = list(sample.records)
    records[index] = Record(raw + b"\r\n\r\n" + rest, record.text, record.url)
    changed = sample.repacked(records)
    return Corrupted(
        changed.data, [p for i, p in enumerate(changed.placed) if i != index and p.text]
    )


def _reencoded_warc_record(record: Record, charset: str) -> Record:
    """A WARC record whose payload is re-encoded, its Content-Length kept right."""
    header, _, rest = record.raw.partition(b"\r\n\r\n")
    block = rest[: -len(b"\r\n\r\n")]
    head, separator, payload = (
        block.partition(b"\r\n\r\n") if b"HTTP/1.1" in block[:9] else (b"", b"", block)
    )
    payload = payload.decode("utf-8", "replace").encode(charset, "replace")
    block = head + separator + payload
    length = int(header.split(b"Content-Length: ")[1])
    header = header.replace(b"Content-Length: %d" % length, b"Content-Length: %d" % len(block))
    return Record(header + b"\r\n\r\n" + block + b"\r\n\r\n", record.text, record.url)


CORRUPTIONS: dict[str, Callable[[Sample, random.Random], Corrupted]] = {
    "truncate": truncate,
    "flip_bits": flip_bits,
    "flip_bits_in_a_record": flip_bits_in_a_record,
    "insert_bytes": insert_bytes,
    "delete_bytes": delete_bytes,
    "append_garbage": append_garbage,
    "empty": empty,
    "break_length_field": break_length_field,
    "reencode": reencode,
}


def applicable(fmt: str, compression: str, corruption: str) -> bool:
    """Whether a corruption has something to act on in a file of a format and compression."""
    if corruption == "break_length_field":
        return not (compression == "none" and fmt in ("jsonl", "text"))
    if corruption == "reencode":
        return fmt != "parquet"
    return True
