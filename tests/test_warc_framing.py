"""WARC framing, HTTP bodies and encodings on damaged and unusual input: each record is read or
rejected as a careful reader sees it, and on valid files exactly the records warcio reads."""

from __future__ import annotations

import io
from pathlib import Path

from test_readers import gzip_members, page, read, warc_record
from warcio.archiveiterator import ArchiveIterator

PAGES = [
    warc_record(f"http://l.example/{i}", page(f"L{i}", f"Page {i} says something of its own."))
    for i in range(6)
]


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
