"""WARC framing, HTTP bodies and encodings on damaged and unusual input: each record is read or
rejected as a careful reader sees it, and on valid files exactly the records warcio reads."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from test_readers import compress, gzip_members, page, read, rows, warc_record
from warcio.archiveiterator import ArchiveIterator

from corpusmill.pipeline.readers import ReadConfig

PAGES = [
    warc_record(f"http://l.example/{i}", page(f"L{i}", f"Page {i} says something of its own."))
    for i in range(6)
]


def with_content_length(record: bytes, length: int) -> bytes:
    return re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % length, record, count=1)


def declared_length(record: bytes) -> int:
    return int(re.search(rb"Content-Length: (\d+)", record).group(1))


@pytest.mark.parametrize(
    ("compression", "split_bytes"),
    [("none", 1 << 30), ("none", 333), ("none", 97), ("gzip", 1 << 30), ("zstd", 1 << 30)],
)
def test_an_oversized_content_length_rejects_only_that_record_and_the_next_is_read(
    tmp_path: Path, compression: str, split_bytes: int
):
    records = list(PAGES)
    # Record 1 runs into record 2's header; record 4 runs past the end of the file, over record 5.
    records[1] = with_content_length(records[1], declared_length(records[1]) + 150)
    records[4] = with_content_length(records[4], declared_length(records[4]) + 10_000)
    offsets = [sum(map(len, records[:i])) for i in range(len(records))]
    (tmp_path / "l.warc").write_bytes(compress(b"".join(records), compression))
    docs, rejected, counters = read(tmp_path / "l.warc", ReadConfig(split_bytes=split_bytes))
    assert rows(docs, "offset", "url") == [
        (offsets[i], f"http://l.example/{i}") for i in (0, 2, 3, 5)
    ]
    assert rows(rejected, "offset", "url", "reason", "bytes") == [
        (offsets[1], "http://l.example/1", "bad_length", len(records[1])),
        (offsets[4], "http://l.example/4", "bad_length", len(records[4])),
    ]
    assert docs.num_rows + rejected.num_rows == len(records) and counters == {}


def test_trailing_junk_after_a_record_of_the_right_length_keeps_the_record(tmp_path: Path):
    junk = b"\x00 not a record \xff" * 4
    (tmp_path / "j.warc").write_bytes(PAGES[0] + junk + PAGES[1])
    docs, rejected, _ = read(tmp_path / "j.warc")
    assert docs["url"].to_pylist() == ["http://l.example/0", "http://l.example/1"]
    assert rows(rejected, "offset", "reason", "bytes") == [(len(PAGES[0]), "corrupt", len(junk))]


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
