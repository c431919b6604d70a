"""Bad input never crashes, hangs or disappears: good records around it are kept, each bad one is a
rejected row with a reason and offset, and a warning names the file and the byte offset."""

from __future__ import annotations

import gzip
import json
import logging
import random
import tracemalloc
import zlib
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard
from test_readers import (
    DEFAULT_READ,
    HTML_RECORDS,
    gzip_members,
    page,
    read,
    rows,
    warc_record,
)

from corpusmill.pipeline.readers import ReadConfig


@pytest.fixture
def read_logged(caplog):
    """Read a file; check that every rejected row was logged with the file's path and offset
    (at info level for records every crawl has, such as images; as a warning otherwise)."""

    def run(path: Path, config: ReadConfig = DEFAULT_READ) -> tuple[pa.Table, pa.Table, dict]:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            docs, rejected, counters = read(path, config)
        messages = [r.getMessage() for r in caplog.records]
        for offset in rejected["offset"].to_pylist():
            assert any(m.startswith(f"{path} at byte {offset}: ") for m in messages), (
                offset,
                messages,
            )
        return docs, rejected, counters

    return run


def json_lines(n: int) -> list[bytes]:
    return [
        json.dumps({"text": f"line number {i} " + "abc " * (i % 9)}).encode() + b"\n"
        for i in range(n)
    ]


def expected_after_cut(lines: list[bytes], content: bytes) -> tuple[list[str], int]:
    """Texts of the lines wholly in `content` (what the cut stream still holds), and the offset of
    the first line it cuts."""
    complete = content.count(b"\n")
    texts = [json.loads(line)["text"] for line in lines[:complete]]
    return texts, sum(map(len, lines[:complete]))


def test_truncated_gzip_keeps_the_lines_before_the_cut(tmp_path: Path, read_logged):
    lines = json_lines(3000)
    data = gzip.compress(b"".join(lines), mtime=0)
    cut = data[: len(data) * 2 // 3]
    (tmp_path / "d.jsonl.gz").write_bytes(cut)
    texts, offset = expected_after_cut(lines, zlib.decompressobj(31).decompress(cut))
    docs, rejected, _ = read_logged(tmp_path / "d.jsonl.gz")
    assert 1000 < len(texts) < 3000
    assert docs["text"].to_pylist() == texts
    assert rows(rejected, "offset", "reason") == [(offset, "truncated")]


def test_truncated_gzip_warc_keeps_the_records_before_the_cut(tmp_path: Path, read_logged):
    pages = [
        warc_record(f"http://t.example/{i}", page(f"T{i}", f"Text of page {i}.")) for i in range(5)
    ]
    data, offsets = gzip_members(pages)
    (tmp_path / "c.warc.gz").write_bytes(data[: offsets[4] + 40])
    docs, rejected, _ = read_logged(tmp_path / "c.warc.gz")
    assert docs["offset"].to_pylist() == offsets[:4]
    assert rows(rejected, "offset", "reason", "bytes") == [(offsets[4], "truncated", 40)]


def test_truncated_zstd_keeps_the_lines_before_the_cut(tmp_path: Path, read_logged):
    lines = json_lines(20000)
    data = zstandard.ZstdCompressor(level=1).compress(b"".join(lines))
    cut = data[: len(data) * 2 // 3]
    (tmp_path / "d.jsonl.zst").write_bytes(cut)
    texts, offset = expected_after_cut(
        lines, zstandard.ZstdDecompressor().decompressobj().decompress(cut)
    )
    docs, rejected, _ = read_logged(tmp_path / "d.jsonl.zst")
    assert 1000 < len(texts) < 20000
    assert docs["text"].to_pylist() == texts
    assert rows(rejected, "offset", "reason") == [(offset, "truncated")]


GARBAGE = b"\x13\x37 this is not a WARC record \x00\xff" * 10


def test_garbage_after_the_last_plain_warc_record_is_one_corrupt_row(tmp_path: Path, read_logged):
    (tmp_path / "c.warc").write_bytes(b"".join(HTML_RECORDS) + GARBAGE)
    docs, rejected, _ = read_logged(tmp_path / "c.warc")
    assert docs["url"].to_pylist() == ["http://a.example/1", "http://a.example/2"]
    assert rows(rejected, "offset", "reason", "bytes") == [
        (sum(map(len, HTML_RECORDS)), "corrupt", len(GARBAGE))
    ]


def test_garbage_between_and_after_gzip_members_is_reported_and_skipped(
    tmp_path: Path, read_logged
):
    first, _ = gzip_members(HTML_RECORDS[:1])
    second, _ = gzip_members(HTML_RECORDS[1:])
    (tmp_path / "c.warc.gz").write_bytes(first + GARBAGE + second + GARBAGE)
    docs, rejected, _ = read_logged(tmp_path / "c.warc.gz")
    assert rows(docs, "offset", "url") == [
        (0, "http://a.example/1"),
        (len(first) + len(GARBAGE), "http://a.example/2"),
    ]
    assert rows(rejected, "offset", "reason", "bytes") == [
        (len(first), "corrupt", len(GARBAGE)),
        (len(first) + len(GARBAGE) + len(second), "corrupt", len(GARBAGE)),
    ]


def test_a_record_whose_content_length_runs_past_the_end_is_truncated(tmp_path: Path, read_logged):
    last = warc_record("http://a.example/3", page("Three", "Cut short."))
    cut = last[:-60]
    (tmp_path / "c.warc").write_bytes(b"".join(HTML_RECORDS) + cut)
    members, offsets = gzip_members([*HTML_RECORDS, cut])
    (tmp_path / "m.warc.gz").write_bytes(members)
    docs, rejected, _ = read_logged(tmp_path / "c.warc")
    assert docs.num_rows == 2
    assert rows(rejected, "offset", "url", "reason", "bytes") == [
        (sum(map(len, HTML_RECORDS)), "http://a.example/3", "truncated", len(cut))
    ]
    docs, rejected, _ = read_logged(tmp_path / "m.warc.gz")
    assert docs.num_rows == 2
    assert rows(rejected, "offset", "reason", "bytes") == [
        (offsets[2], "truncated", len(members) - offsets[2])
    ]


def test_broken_json_lines_are_rejected_and_their_neighbours_kept(tmp_path: Path, read_logged):
    lines = [
        b'{"text": "before"}\n',
        b'{"text": "unclosed\n',
        b"not json at all\n",
        b'{"text": "after"}\n',
    ]
    (tmp_path / "d.jsonl").write_bytes(b"".join(lines))
    docs, rejected, _ = read_logged(tmp_path / "d.jsonl", ReadConfig(keep_fields=False))
    assert rows(docs, "offset", "text") == [(0, "before"), (sum(map(len, lines[:3])), "after")]
    assert rows(rejected, "offset", "reason", "bytes", "text") == [
        (19, "invalid_json", 18, '{"text": "unclosed'),
        (38, "invalid_json", 15, "not json at all"),
    ]


def test_lines_that_are_not_objects_or_lack_the_text_are_rejected(tmp_path: Path, read_logged):
    lines = [
        b"[1, 2]\n",
        b'"just a string"\n',
        b'{"body": "no text key"}\n',
        b'{"text": 5}\n',
        b'{"text": "ok"}\n',
    ]
    (tmp_path / "d.jsonl").write_bytes(b"".join(lines))
    docs, rejected, _ = read_logged(tmp_path / "d.jsonl")
    starts = [sum(map(len, lines[:i])) for i in range(len(lines))]
    assert rows(docs, "offset", "text") == [(starts[4], "ok")]
    assert rows(rejected, "offset", "reason") == [
        (starts[0], "not_an_object"),
        (starts[1], "not_an_object"),
        (starts[2], "missing_text"),
        (starts[3], "missing_text"),
    ]


def test_invalid_utf8_is_replaced_counted_and_kept(tmp_path: Path, read_logged):
    (tmp_path / "d.jsonl").write_bytes(b'{"text": "caf\xe9 ok"}\n{"text": "clean"}\n')
    (tmp_path / "t.txt").write_bytes(b"na\xefve \xff\xfe text")
    docs, rejected, counters = read_logged(tmp_path / "d.jsonl")
    assert docs["text"].to_pylist() == ["caf\ufffd ok", "clean"]
    assert rejected.num_rows == 0 and counters == {"invalid_utf8_docs": 1}
    docs, rejected, counters = read_logged(tmp_path / "t.txt")
    assert docs["text"].to_pylist() == ["na\ufffdve \ufffd\ufffd text"]
    assert rejected.num_rows == 0 and counters == {"invalid_utf8_docs": 1}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("junk.txt", random.Random(0).randbytes(200_000)),
        ("junk.jsonl", b"\x89PNG\r\n\x1a\n" + random.Random(0).randbytes(200_000)),
    ],
)
def test_binary_junk_with_a_text_extension_is_one_binary_content_row(
    tmp_path: Path, read_logged, name, data
):
    (tmp_path / name).write_bytes(data)
    docs, rejected, _ = read_logged(tmp_path / name, ReadConfig(split_bytes=50_000))
    assert docs.num_rows == 0
    assert rows(rejected, "offset", "reason", "bytes") == [(0, "binary_content", len(data))]


def test_jsonl_of_random_bytes_costs_each_line_not_the_file(tmp_path: Path):
    junk = random.Random(0).randbytes(200_000)
    (tmp_path / "junk.jsonl").write_bytes(junk)
    docs, rejected, _ = read(tmp_path / "junk.jsonl", ReadConfig(split_bytes=50_000))
    starts = [0, *(i + 1 for i, byte in enumerate(junk) if byte == ord("\n"))]
    lines = [(start, line) for start, line in zip(starts, junk.split(b"\n"), strict=True)]
    records = [(start, len(line)) for start, line in lines if line.strip()]
    assert docs.num_rows == 0
    assert rows(rejected, "offset", "bytes") == records
    assert set(rejected["reason"].to_pylist()) == {"invalid_json"}


def test_empty_files_give_no_documents_and_are_counted(tmp_path: Path, read_logged):
    (tmp_path / "a.txt").write_bytes(b"")
    (tmp_path / "b.jsonl").write_bytes(b"")
    (tmp_path / "c.warc.gz").write_bytes(b"")
    (tmp_path / "d.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b""))
    (tmp_path / "e.txt.gz").write_bytes(gzip.compress(b""))
    docs, rejected, counters = read_logged(tmp_path)
    assert (docs.num_rows, rejected.num_rows, counters) == (0, 0, {"empty_files": 5})


def test_a_64_mb_line_and_a_64_mb_text_file_are_too_large_and_never_held(
    tmp_path: Path, read_logged
):
    size = 64 << 20
    huge = b'{"text": "' + b"a" * (size - 12) + b'"}'
    (tmp_path / "big.jsonl").write_bytes(b'{"text": "small"}\n' + huge + b'\n{"text": "after"}\n')
    (tmp_path / "big.txt").write_bytes(b"word " * (size // 5))
    tracemalloc.start()
    docs, rejected, _ = read_logged(tmp_path / "big.jsonl")
    text_docs, text_rejected, _ = read_logged(tmp_path / "big.txt")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows(docs, "offset", "text") == [(0, "small"), (18 + size + 1, "after")]
    assert rows(rejected, "offset", "reason", "bytes") == [(18, "too_large", size + 1)]
    assert text_docs.num_rows == 0
    assert rows(text_rejected, "offset", "reason", "bytes") == [(0, "too_large", size // 5 * 5)]
    # The default max_doc_bytes is 8 MiB: buffers stay a small multiple of it, far below 64 MB.
    assert peak < 40 << 20


def test_image_payloads_in_a_warc_are_binary_content(tmp_path: Path, read_logged):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    records = [
        warc_record("http://i.example/a.png", png, content_type="image/png"),
        warc_record("http://i.example/mislabelled", png, content_type="text/html"),
        HTML_RECORDS[0],
    ]
    data, offsets = gzip_members(records)
    (tmp_path / "c.warc.gz").write_bytes(data)
    docs, rejected, _ = read_logged(tmp_path / "c.warc.gz")
    assert docs["url"].to_pylist() == ["http://a.example/1"]
    assert rows(rejected, "offset", "url", "reason", "bytes", "text") == [
        (offsets[0], "http://i.example/a.png", "binary_content", len(png), None),
        (offsets[1], "http://i.example/mislabelled", "binary_content", len(png), None),
    ]


def test_images_are_logged_at_info_level_and_damage_as_a_warning(tmp_path: Path, caplog):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    image = warc_record("http://i.example/a.png", png, content_type="image/png")
    data, _ = gzip_members([image, HTML_RECORDS[0]])
    (tmp_path / "c.warc.gz").write_bytes(data + b"\x1f\x8b\x08 not a gzip member")
    with caplog.at_level(logging.INFO):
        read(tmp_path / "c.warc.gz", ReadConfig())
    levels = {r.getMessage().split(": ")[1].split(" ")[0]: r.levelno for r in caplog.records}
    assert levels["read:binary_content"] == logging.INFO
    assert levels["read:corrupt"] == logging.WARNING
