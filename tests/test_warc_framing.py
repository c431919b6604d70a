"""WARC framing, HTTP bodies and encodings on damaged and unusual input: each record is read or
rejected as a careful reader sees it, and on valid files exactly the records warcio reads."""

from __future__ import annotations

import gzip
import io
import re
import tempfile
import zlib
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from test_readers import compress, gzip_members, page, read, rows, warc_record
from warcio.archiveiterator import ArchiveIterator

from corpusmill.pipeline.extract import page_charset
from corpusmill.pipeline.readers import ReadConfig

PAGES = [
    warc_record(f"http://l.example/{i}", page(f"L{i}", f"Page {i} says something of its own."))
    for i in range(6)
]
TITLE = "Chunks"
PARAGRAPHS = [
    "The first paragraph arrives in the first chunk of the body.",
    "The second paragraph arrives in a chunk of its own, after it.",
    "The third paragraph closes the page in the last chunk.",
]
CHUNKS = [
    f"<html><head><title>{TITLE}</title></head><body><p>{PARAGRAPHS[0]}</p>".encode(),
    f"<p>{PARAGRAPHS[1]}</p>".encode(),
    f"<p>{PARAGRAPHS[2]}</p></body></html>".encode(),
]


def chunked(chunks: list[bytes]) -> bytes:
    """A complete chunked body: each chunk behind its hex size line, then the last-chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def response(uri: str, body: bytes, http_headers: str) -> bytes:
    """A WARC response record whose HTTP part has exactly the given headers and body."""
    block = f"HTTP/1.1 200 OK\r\n{http_headers}\r\n".encode() + body
    return (
        (
            f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {uri}\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n"
        ).encode()
        + block
        + b"\r\n\r\n"
    )


def test_chunked_bodies_cut_or_broken_keep_their_chunks_and_never_chunk_size_lines(
    tmp_path: Path,
):
    headers = "Content-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"
    whole = chunked(CHUNKS)
    two_chunks = chunked(CHUNKS[:2])[: -len(b"0\r\n\r\n")]
    bodies = {
        "http://c.example/complete": whole,
        "http://c.example/no-last-chunk": whole[: -len(b"0\r\n\r\n")],
        "http://c.example/cut-in-a-size-line": two_chunks + b"3",
        "http://c.example/cut-in-the-data": two_chunks + b"%x\r\n<p>The third par" % len(CHUNKS[2]),
        "http://c.example/broken-size-line": two_chunks + b"zz\r\n" + CHUNKS[2] + b"\r\n0\r\n\r\n",
        "http://c.example/stored-unchunked": b"".join(CHUNKS),
        # Nothing can be read of these: their first chunk-size line is damaged or cut.
        "http://c.example/first-size-line-damaged": b"\x90" + whole[1:],
        "http://c.example/cut-in-the-first-size-line": whole[:1],
    }
    records = [response(uri, body, headers) for uri, body in bodies.items()]
    # A declared content encoding the body does not have (Common Crawl stores bodies decoded).
    records.append(
        response("http://c.example/not-gzip", whole, headers + "Content-Encoding: gzip\r\n")
    )
    data, _ = gzip_members(records)
    (tmp_path / "c.warc.gz").write_bytes(data)
    docs, rejected, counters = read(tmp_path / "c.warc.gz")
    first_two = "\n\n".join(PARAGRAPHS[:2])
    full = "\n\n".join(PARAGRAPHS)
    assert rows(docs, "url", "title", "text") == [
        ("http://c.example/complete", TITLE, full),
        ("http://c.example/no-last-chunk", TITLE, full),
        ("http://c.example/cut-in-a-size-line", TITLE, first_two),
        ("http://c.example/cut-in-the-data", TITLE, first_two + "\n\nThe third par"),
        ("http://c.example/broken-size-line", TITLE, first_two),
        ("http://c.example/stored-unchunked", TITLE, full),
        ("http://c.example/not-gzip", TITLE, full),
    ]
    # Only the last-chunk missing loses nothing: fastwarc reads that body as complete.
    incomplete = ['"http_chunked": "incomplete"' in m for m in docs["meta"].to_pylist()]
    assert incomplete == [False, False, True, True, True, False, False]
    assert rows(rejected, "url", "reason") == [
        ("http://c.example/first-size-line-damaged", "bad_chunked"),
        ("http://c.example/cut-in-the-first-size-line", "bad_chunked"),
    ]
    assert counters == {"incomplete_chunked_docs": 3}


def with_content_length(record: bytes, length: int) -> bytes:
    return re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % length, record, count=1)


def declared_length(record: bytes) -> int:
    return int(re.search(rb"Content-Length: (\d+)", record).group(1))


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_an_oversized_content_length_rejects_only_that_record_and_the_next_is_read(
    tmp_path: Path, compression: str
):
    records = list(PAGES)
    # Record 1 runs into record 2's header; record 4 runs past the end of the file, over record 5.
    records[1] = with_content_length(records[1], declared_length(records[1]) + 150)
    records[4] = with_content_length(records[4], declared_length(records[4]) + 10_000)
    offsets = [sum(map(len, records[:i])) for i in range(len(records))]
    (tmp_path / "l.warc").write_bytes(compress(b"".join(records), compression))
    # Plain files split anywhere, so that the damaged records start at, before or after splits' ends.
    split_sizes = [1 << 30, *(range(23, 900, 29) if compression == "none" else [])]
    for split_bytes in split_sizes:
        docs, rejected, counters = read(tmp_path / "l.warc", ReadConfig(split_bytes=split_bytes))
        assert rows(docs, "offset", "url") == [
            (offsets[i], f"http://l.example/{i}") for i in (0, 2, 3, 5)
        ], split_bytes
        assert rows(rejected, "offset", "url", "reason", "bytes") == [
            (offsets[1], "http://l.example/1", "bad_length", len(records[1])),
            (offsets[4], "http://l.example/4", "bad_length", len(records[4])),
        ], split_bytes
        assert counters == {}


def read_whole_and_in_splits(path: Path) -> list[tuple[list[tuple], list[tuple]]]:
    """(offset, url) of the documents and (offset, reason, bytes) of the rejected rows of a file
    read whole and in splits of many sizes."""
    readings = []
    for split_bytes in [1 << 30, *range(23, path.stat().st_size, 31)]:
        docs, rejected, _ = read(path, ReadConfig(split_bytes=split_bytes))
        readings.append((rows(docs, "offset", "url"), rows(rejected, "offset", "reason", "bytes")))
    return readings


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_a_content_length_too_large_to_hold_swallows_no_record(tmp_path: Path, compression: str):
    records = list(PAGES)
    records[2] = with_content_length(records[2], 99_999_999_999)
    offsets = [sum(map(len, records[:i])) for i in range(len(records))]
    (tmp_path / "b.warc").write_bytes(compress(b"".join(records), compression))
    expected_docs = [(offsets[i], f"http://l.example/{i}") for i in (0, 1, 3, 4, 5)]
    expected_rejected = [(offsets[2], "bad_length", len(records[2]))]
    for reading in read_whole_and_in_splits(tmp_path / "b.warc"):
        assert reading == (expected_docs, expected_rejected)


def test_a_record_cut_inside_its_block_is_bad_length_and_the_next_is_read(tmp_path: Path):
    cut = PAGES[1][: len(PAGES[1]) - 40]  # its end and the blank lines after it are gone
    records = [PAGES[0], cut, PAGES[2], PAGES[3]]
    offsets = [sum(map(len, records[:i])) for i in range(len(records))]
    (tmp_path / "c.warc").write_bytes(b"".join(records))
    expected_docs = [(offsets[i], f"http://l.example/{i}") for i in (0, 2, 3)]
    expected_rejected = [(offsets[1], "bad_length", len(cut))]
    for reading in read_whole_and_in_splits(tmp_path / "c.warc"):
        assert reading == (expected_docs, expected_rejected)


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        # The declared end falls inside the next record's "WARC/1.0".
        (lambda page: page[: len(page) - 7], "bad_length"),
        # A header cut short runs into the next record's header.
        (lambda page: page[: page.index(b"WARC-Record-ID") + 30], "corrupt"),
    ],
    ids=["block_cut_before_the_next_header", "header_cut_into_the_next_one"],
)
def test_a_record_cut_short_is_rejected_alone_in_one_split_or_many(
    tmp_path: Path, cut, reason: str
):
    records = [PAGES[0], cut(PAGES[1]), PAGES[2], PAGES[3]]
    offsets = [sum(map(len, records[:i])) for i in range(len(records))]
    (tmp_path / "c.warc").write_bytes(b"".join(records))
    expected_docs = [(offsets[i], f"http://l.example/{i}") for i in (0, 2, 3)]
    expected_rejected = [(offsets[1], reason, len(records[1]))]
    for reading in read_whole_and_in_splits(tmp_path / "c.warc"):
        assert reading == (expected_docs, expected_rejected)


def test_a_warc_header_quoted_in_a_page_starts_no_record_in_any_split(tmp_path: Path):
    quoted = (
        b"<html><body><p>A WARC record starts like this:</p><pre>\r\nWARC/1.0\r\n"
        b"WARC-Type: response\r\nContent-Length: 1234\r\n\r\n</pre></body></html>"
    )
    records = [PAGES[0], warc_record("http://q.example/", quoted), PAGES[1]]
    data = b"".join(records)
    (tmp_path / "q.warc").write_bytes(data)
    expected = [(0, PAGES[0]), (len(PAGES[0]), records[1]), (len(data) - len(PAGES[1]), PAGES[1])]
    for split_bytes in [1 << 30, *range(19, len(data), 23)]:
        docs, rejected, _ = read(tmp_path / "q.warc", ReadConfig(split_bytes=split_bytes))
        assert rows(docs, "offset", "url") == [
            (offset, re.search(rb"WARC-Target-URI: (\S+)", r).group(1).decode())
            for offset, r in expected
        ], split_bytes
        assert rejected.num_rows == 0, split_bytes


def test_a_record_whose_header_fastwarc_refuses_is_corrupt_and_its_neighbours_kept(tmp_path: Path):
    mangled = PAGES[1].replace(b"WARC/1.0", b"WARC/1WARC/1.0", 1)
    (tmp_path / "m.warc").write_bytes(PAGES[0] + mangled + PAGES[2])
    docs, rejected, _ = read(tmp_path / "m.warc")
    assert docs["url"].to_pylist() == ["http://l.example/0", "http://l.example/2"]
    assert rows(rejected, "offset", "url", "reason") == [
        (len(PAGES[0]), "http://l.example/1", "corrupt")
    ]


def test_trailing_junk_after_a_record_of_the_right_length_keeps_the_record(tmp_path: Path):
    junk = b"\x00 not a record \xff" * 4
    (tmp_path / "j.warc").write_bytes(PAGES[0] + junk + PAGES[1])
    docs, rejected, _ = read(tmp_path / "j.warc")
    assert docs["url"].to_pylist() == ["http://l.example/0", "http://l.example/1"]
    assert rows(rejected, "offset", "reason", "bytes") == [(len(PAGES[0]), "corrupt", len(junk))]


GERMAN = (
    "Zugvögel finden ihren Weg über tausende Kilometer mit Hilfe der Sterne und des Magnetfelds."
)
UTF16_PAGE = (
    f"<!DOCTYPE html><html><head><title>Vögel</title></head><body><p>{GERMAN}</p></body></html>"
)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("content_type", ["text/html", None])
def test_utf16_pages_without_bom_or_charset_extract_their_text(
    tmp_path: Path, encoding: str, content_type: str | None
):
    body = UTF16_PAGE.encode(encoding)
    record = warc_record("http://u.example/", body, content_type=content_type)
    (tmp_path / "u.warc").write_bytes(record)
    docs, rejected, counters = read(tmp_path / "u.warc")
    assert rows(docs, "title", "text") == [("Vögel", GERMAN)]
    assert f'"charset": "{encoding}"' in docs["meta"][0].as_py()
    assert rejected.num_rows == 0 and counters == {}


def test_utf16_byte_order_beats_a_declared_charset_and_plain_text_decodes_too(tmp_path: Path):
    assert page_charset(UTF16_PAGE.encode("utf-16-be"), "utf-16") == "utf-16-be"
    assert page_charset(UTF16_PAGE.encode("utf-16-le"), "utf-8") == "utf-16-le"
    assert page_charset(UTF16_PAGE.encode("utf-8"), None) == "utf-8"
    record = warc_record(
        "http://u.example/t", GERMAN.encode("utf-16-le"), content_type="text/plain"
    )
    (tmp_path / "t.warc").write_bytes(record)
    docs, _, _ = read(tmp_path / "t.warc")
    assert docs["text"].to_pylist() == [GERMAN]


def test_binary_payloads_with_nul_bytes_are_still_binary(tmp_path: Path):
    counters_le = b"".join(i.to_bytes(4, "little") for i in range(2000))
    shorts = bytes(b for i in range(3000) for b in (i % 251, 0x80 | i % 7))
    records = [
        warc_record("http://b.example/ints", counters_le, content_type=None),
        warc_record("http://b.example/shorts", shorts, content_type="application/octet-stream"),
    ]
    (tmp_path / "b.warc").write_bytes(b"".join(records))
    docs, rejected, _ = read(tmp_path / "b.warc")
    assert docs.num_rows == 0
    assert rejected["reason"].to_pylist() == ["binary_content", "binary_content"]


def warcio_records(data: bytes) -> list[tuple[str, str | None]]:
    """(type, target URI) of every record warcio reads in a plain or gzip WARC file."""
    return [
        (record.rec_type, record.rec_headers.get_header("WARC-Target-URI"))
        for record in ArchiveIterator(io.BytesIO(data))
    ]


def test_a_multi_megabyte_compressible_page_in_a_gzip_member_is_one_record(tmp_path: Path):
    # About 3.4 MB of markup that gzip shrinks ~300x: one member's output is many read steps.
    table = "".join(f"<p>Section {i % 10}: the same entry again.</p>\n" for i in range(80_000))
    records = [
        PAGES[0],
        warc_record("http://big.example/toc", f"<html><body>{table}</body></html>".encode()),
        PAGES[1],
    ]
    data, offsets = gzip_members(records)
    assert offsets[2] - offsets[1] < len(records[1]) // 100
    (tmp_path / "big.warc.gz").write_bytes(data)
    docs, rejected, counters = read(tmp_path / "big.warc.gz")
    assert docs["offset"].to_pylist() == offsets
    assert [uri for _, uri in warcio_records(data)] == docs["url"].to_pylist()
    assert rejected.num_rows == 0 and counters == {}


# Payload pieces that test the framing: CR/LF runs, "WARC/" lines that are not headers, bytes
# that are not UTF-8, words.
PIECES = [
    b"WARC/1.0\r\n",
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"<p>",
    b"</p>",
    b"word ",
    b"\xff\x00",
    b"x",
]
KINDS = ["response", "response", "resource", "conversion", "warcinfo", "request", "metadata"]


@st.composite
def warc_files(draw) -> list[bytes]:
    """Valid WARC records of every type, with payloads that contain framing-like bytes."""
    records = []
    for i in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(KINDS))
        body = b"".join(draw(st.lists(st.sampled_from(PIECES), max_size=60)))
        if kind == "response":
            status = draw(st.sampled_from([200, 200, 404]))
            records.append(
                warc_record(f"http://p.example/{i}", page(f"P{i}", "t") + body, status=status)
            )
        else:
            content_type = "text/plain" if kind != "request" else None
            records.append(
                warc_record(f"http://p.example/{i}", body, kind=kind, content_type=content_type)
            )
    return records


DOCUMENT_TYPES = ("response", "resource", "conversion")


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    records=warc_files(),
    layout=st.sampled_from(["plain", "per-record gzip", "gzip", "zstd"]),
    split_bytes=st.one_of(st.integers(40, 3000), st.just(1 << 30)),
)
def test_valid_warc_files_read_as_warcio_reads_them_in_any_split(
    records: list[bytes], layout: str, split_bytes: int
):
    plain = b"".join(records)
    data = {
        "plain": plain,
        "per-record gzip": gzip_members(records)[0],
        "gzip": gzip.compress(plain, mtime=0),
        "zstd": compress(plain, "zstd"),
    }[layout]
    # warcio reads neither zstd nor a whole-file gzip stream: it reads their content.
    expected = warcio_records(data if layout in ("plain", "per-record gzip") else plain)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.warc"
        path.write_bytes(data)
        docs, rejected, counters = read(path, ReadConfig(split_bytes=split_bytes))
    read_records = pa.concat_tables(
        [docs.select(["offset", "url"]), rejected.select(["offset", "url"])]
    ).sort_by("offset")
    skipped = counters.get("skipped_warc_records", 0)
    assert read_records.num_rows + skipped == len(expected)
    assert read_records["url"].to_pylist() == [u for t, u in expected if t in DOCUMENT_TYPES]
    assert set(rejected["reason"].to_pylist()) <= {"http_status", "empty_text", "binary_content"}


def zstd_blocks(records: list[bytes]) -> tuple[bytes, list[int]]:
    """One zstd frame with a block ending after each record (as a writer flushing per record
    makes it), and where each record's block starts."""
    writer = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    data, starts = b"", []
    for record in records:
        starts.append(len(data))
        data += writer.compress(record) + writer.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    return data + writer.flush(), starts


def test_a_damaged_zstd_block_costs_only_the_records_from_it_on(tmp_path: Path):
    data, starts = zstd_blocks(PAGES)
    damaged = bytearray(data)
    damaged[starts[3]] |= 0b110  # the block type of record 3's block: reserved, so corrupt
    (tmp_path / "z.warc.zst").write_bytes(bytes(damaged))
    docs, rejected, _ = read(tmp_path / "z.warc.zst")
    offsets = [sum(map(len, PAGES[:i])) for i in range(len(PAGES))]
    assert rows(docs, "offset", "url") == [(offsets[i], f"http://l.example/{i}") for i in range(3)]
    assert rows(rejected, "offset", "reason") == [(offsets[3], "corrupt")]


def test_damage_in_a_gzip_stream_keeps_the_records_before_it(tmp_path: Path):
    # One gzip stream, flushed after each record, so each record's deflate block starts a byte.
    writer = zlib.compressobj(wbits=31)
    data, starts = b"", []
    for record in PAGES:
        starts.append(len(data))
        data += writer.compress(record) + writer.flush(zlib.Z_FULL_FLUSH)
    damaged = bytearray(data + writer.flush())
    damaged[starts[3]] |= 0b110  # the block type of record 3's block: reserved, so corrupt
    (tmp_path / "g.warc.gz").write_bytes(bytes(damaged))
    docs, rejected, _ = read(tmp_path / "g.warc.gz")
    offsets = [sum(map(len, PAGES[:i])) for i in range(len(PAGES))]
    assert rows(docs, "offset", "url") == [(offsets[i], f"http://l.example/{i}") for i in range(3)]
    assert rows(rejected, "offset", "reason") == [(offsets[3], "corrupt")]


def test_a_per_record_gzip_file_whose_first_member_is_damaged_is_still_read_per_record(
    tmp_path: Path,
):
    data, offsets = gzip_members(PAGES)
    damaged = data[:40] + b"\x00damage\xff" + data[40:]
    (tmp_path / "d.warc.gz").write_bytes(damaged)
    docs, rejected, _ = read(tmp_path / "d.warc.gz")
    shift = len(b"\x00damage\xff")
    assert rows(docs, "offset", "url") == [
        (offsets[i] + shift, f"http://l.example/{i}") for i in range(1, len(PAGES))
    ]
    assert rows(rejected, "offset", "reason", "bytes") == [(0, "corrupt", offsets[1] + shift)]


def test_a_gzip_member_that_fails_its_crc_is_rejected_whole(tmp_path: Path):
    data, offsets = gzip_members(PAGES[:3])
    damaged = bytearray(data)
    damaged[offsets[2] - 8] ^= 0xFF  # the CRC-32 of the member holding record 1
    (tmp_path / "c.warc.gz").write_bytes(bytes(damaged))
    docs, rejected, _ = read(tmp_path / "c.warc.gz")
    assert docs["url"].to_pylist() == ["http://l.example/0", "http://l.example/2"]
    assert rows(rejected, "offset", "reason") == [(offsets[1], "corrupt")]
