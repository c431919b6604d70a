"""Readers: discovery, splitting, every format and compression, and the sample crawl's labels.

The helpers at the top build small real inputs (WARC records, compressed files) and read them the
way the clean stage does; test_bad_input.py and test_extract.py use them too.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import re
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from corpusmill.pipeline.clean import CleanTask, clean_tasks
from corpusmill.pipeline.readers import (
    InputError,
    InputFile,
    ReadConfig,
    discover_inputs,
    plan_splits,
    read_split,
    split_size,
)
from corpusmill.pipeline.readers.jsonl import read_jsonl
from corpusmill.pipeline.readers.parquet import read_parquet
from corpusmill.pipeline.readers.records import (
    Batcher,
    Count,
    Document,
    DocumentBlock,
    Rejection,
    Rejections,
)
from corpusmill.pipeline.readers.streams import (
    ByteReader,
    DecompressSource,
    Problem,
    raw_reader,
)
from corpusmill.pipeline.readers.warc import read_warc

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
DEFAULT_READ = ReadConfig()


def warc_record(
    uri: str,
    payload: bytes,
    *,
    kind: str = "response",
    status: int = 200,
    content_type: str | None = "text/html; charset=utf-8",
) -> bytes:
    """One WARC record; for a response, `payload` is wrapped in an HTTP response."""
    if kind == "response":
        headers = f"HTTP/1.1 {status} X\r\n"
        if content_type:
            headers += f"Content-Type: {content_type}\r\n"
        block = headers.encode() + b"\r\n" + payload
        block_type = "application/http; msgtype=response"
    else:
        block, block_type = payload, content_type or "application/octet-stream"
    return (
        (
            f"WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Target-URI: {uri}\r\n"
            f"WARC-Date: 2024-03-01T10:00:00Z\r\nWARC-Record-ID: <urn:uuid:{abs(hash(uri))}>\r\n"
            f"Content-Type: {block_type}\r\nContent-Length: {len(block)}\r\n\r\n"
        ).encode()
        + block
        + b"\r\n\r\n"
    )


def page(title: str, body: str) -> bytes:
    return f"<html><head><title>{title}</title></head><body><p>{body}</p></body></html>".encode()


def gzip_members(records: list[bytes]) -> tuple[bytes, list[int]]:
    """Records gzipped one member each, as Common Crawl stores them, and each member's offset."""
    data, offsets = b"", []
    for record in records:
        offsets.append(len(data))
        data += gzip.compress(record, mtime=0)
    return data, offsets


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def read(inputs, config: ReadConfig = DEFAULT_READ) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """All documents, rejected rows and summed counters of some inputs, split as planned."""
    inputs = [str(i) for i in (inputs if isinstance(inputs, list) else [inputs])]
    docs, rejected, counters = [], [], {}
    for split in plan_splits(discover_inputs(inputs, config), config):
        for batch in read_split(split, config):
            docs.append(batch.docs)
            rejected.append(batch.rejected)
            for name, value in batch.counters.items():
                counters[name] = counters.get(name, 0) + value
    return pa.concat_tables(docs), pa.concat_tables(rejected), counters


def rows(table: pa.Table, *columns: str) -> list[tuple]:
    return list(zip(*(table[c].to_pylist() for c in columns), strict=True))


HTML_RECORDS = [
    warc_record("http://a.example/1", page("One", "The first page says hello to every reader.")),
    warc_record("http://a.example/2", page("Two", "The second page has a different sentence.")),
]
EXPECTED_HTML = [
    ("http://a.example/1", "One", "The first page says hello to every reader."),
    ("http://a.example/2", "Two", "The second page has a different sentence."),
]


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_warc_html_responses_in_every_compression(tmp_path: Path, compression: str):
    stream = b"".join(HTML_RECORDS)
    path = tmp_path / "crawl.warc"
    path.write_bytes(compress(stream, compression))
    docs, rejected, _ = read(path)
    assert rows(docs, "url", "title", "text") == EXPECTED_HTML
    # Whole-stream offsets: positions in the decompressed stream.
    assert docs["id"].to_pylist() == ["crawl.warc#0", f"crawl.warc#{len(HTML_RECORDS[0])}"]
    assert rejected.num_rows == 0


def test_per_record_gzip_warc_offsets_are_member_offsets(tmp_path: Path):
    data, offsets = gzip_members(HTML_RECORDS)
    (tmp_path / "crawl.warc.gz").write_bytes(data)
    docs, _, _ = read(tmp_path / "crawl.warc.gz")
    assert docs["offset"].to_pylist() == offsets
    assert rows(docs, "url", "title", "text") == EXPECTED_HTML
    meta = json.loads(docs["meta"][0].as_py())
    assert meta == {
        "warc_date": "2024-03-01T10:00:00Z",
        "content_type": "text/html",
        "http_charset": "utf-8",
        "charset": "utf-8",
    }


def test_wet_conversion_records_are_taken_as_text(tmp_path: Path):
    records = [
        warc_record(
            "", b"software: test\r\n", kind="warcinfo", content_type="application/warc-fields"
        ),
        warc_record(
            "http://w.example/1",
            "Première ligne.\nSeconde ligne.".encode(),
            kind="conversion",
            content_type="text/plain",
        ),
    ]
    data, offsets = gzip_members(records)
    (tmp_path / "x.warc.wet.gz").write_bytes(data)
    docs, rejected, counters = read(tmp_path / "x.warc.wet.gz")
    assert rows(docs, "offset", "url", "text") == [
        (offsets[1], "http://w.example/1", "Première ligne.\nSeconde ligne.")
    ]
    assert rejected.num_rows == 0 and counters == {"skipped_warc_records": 1}


def test_requests_and_metadata_are_not_documents_and_errors_are_http_status(tmp_path: Path):
    records = [
        warc_record(
            "", b"software: test\r\n", kind="warcinfo", content_type="application/warc-fields"
        ),
        warc_record(
            "http://a.example/1",
            b"GET / HTTP/1.1\r\n\r\n",
            kind="request",
            content_type="application/http; msgtype=request",
        ),
        HTML_RECORDS[0],
        warc_record(
            "http://a.example/1",
            b"fetchTimeMs: 5\r\n",
            kind="metadata",
            content_type="application/warc-fields",
        ),
        warc_record("http://a.example/gone", page("Gone", "Not here."), status=404),
        warc_record("http://a.example/moved", b"", status=301, content_type=None),
    ]
    data, offsets = gzip_members(records)
    (tmp_path / "c.warc.gz").write_bytes(data)
    docs, rejected, counters = read(tmp_path / "c.warc.gz")
    assert rows(docs, "offset", "url") == [(offsets[2], "http://a.example/1")]
    assert rows(rejected, "offset", "url", "step", "reason") == [
        (offsets[4], "http://a.example/gone", "read", "http_status"),
        (offsets[5], "http://a.example/moved", "read", "http_status"),
    ]
    assert counters == {"skipped_warc_records": 3}


JSONL = (
    b'{"id": 7, "url": "http://j.example/1", "text": "first"}\n{"text": "second", "lang": "en"}\n'
)


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_jsonl_in_every_compression(tmp_path: Path, compression: str):
    (tmp_path / "d.jsonl").write_bytes(compress(JSONL, compression))
    docs, rejected, _ = read(tmp_path / "d.jsonl")
    assert rows(docs, "id", "url", "text", "meta") == [
        ("d.jsonl#0", "http://j.example/1", "first", '{"id": 7}'),
        ("d.jsonl#56", None, "second", '{"lang": "en"}'),
    ]
    assert rejected.num_rows == 0


def test_nested_jsonl_keys_and_the_record_id_go_where_configured(tmp_path: Path):
    line = {
        "doc_id": "a1",
        "page": {"url": "http://n.example/"},
        "body": {"content": "nested", "lang": "de"},
    }
    (tmp_path / "n.jsonl").write_text(json.dumps(line) + "\n")
    config = ReadConfig(text_key="body.content", url_key="page.url", id_key="doc_id")
    docs, _, _ = read(tmp_path / "n.jsonl", config)
    assert rows(docs, "url", "text") == [("http://n.example/", "nested")]
    assert json.loads(docs["meta"][0].as_py()) == {"id": "a1", "body": {"lang": "de"}}


def test_arrow_block_parser_gives_the_same_documents_as_line_parsing(tmp_path: Path):
    lines = [{"text": f"text {i} \u00e9\u4e2d", "url": f"http://u/{i}", "n": i} for i in range(50)]
    lines.insert(20, {"url": "http://u/none"})
    lines.insert(30, {"meta": {"x": 1}, "text": "nested neighbour"})
    (tmp_path / "a.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n\n")
    fields = read(tmp_path / "a.jsonl", ReadConfig(keep_fields=True))
    arrow = read(tmp_path / "a.jsonl", ReadConfig(keep_fields=False))
    assert rows(arrow[0], "id", "url", "text") == rows(fields[0], "id", "url", "text")
    assert arrow[0]["meta"].null_count == arrow[0].num_rows
    assert rows(arrow[1], "id", "reason") == rows(fields[1], "id", "reason") != []


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_a_text_file_is_one_document(tmp_path: Path, compression: str):
    (tmp_path / "t.txt").write_bytes(compress(b"Ein ganzer Text.\nZweite Zeile.", compression))
    docs, _, _ = read(tmp_path / "t.txt")
    assert rows(docs, "id", "text", "url") == [("t.txt#0", "Ein ganzer Text.\nZweite Zeile.", None)]


def test_parquet_rows_with_configured_columns_and_other_columns_in_meta(tmp_path: Path):
    table = pa.table(
        {
            "content": ["alpha", None, "gamma"],
            "link": ["u1", "u2", None],
            "score": [1.5, 2.0, 3.0],
        }
    )
    pq.write_table(table, tmp_path / "p.parquet")
    docs, rejected, _ = read(tmp_path / "p.parquet", ReadConfig(text_key="content", url_key="link"))
    assert rows(docs, "id", "text", "url", "meta") == [
        ("p.parquet#0", "alpha", "u1", '{"score": 1.5}'),
        ("p.parquet#2", "gamma", None, '{"score": 3.0}'),
    ]
    assert rows(rejected, "id", "reason") == [("p.parquet#1", "missing_text")]


def test_parquet_nested_and_binary_text_columns(tmp_path: Path):
    body = pa.array(
        [{"content": b"caf\xc3\xa9", "lang": "fr"}, {"content": b"bad \xff", "lang": "en"}]
    )
    pq.write_table(pa.table({"body": body, "uid": ["a", "b"]}), tmp_path / "n.parquet")
    config = ReadConfig(text_key="body.content", id_key="uid")
    docs, _, counters = read(tmp_path / "n.parquet", config)
    assert rows(docs, "text", "meta") == [
        ("café", '{"id": "a", "body": {"lang": "fr"}}'),
        ("bad \ufffd", '{"id": "b", "body": {"lang": "en"}}'),
    ]
    assert counters == {"invalid_utf8_docs": 1}


def test_discovery_expands_folders_and_globs_with_sources_relative_to_the_common_root(
    tmp_path: Path,
):
    for name in ["a/x.jsonl", "a/deep/y.warc.gz", "b/z.txt", "b/w.parquet.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    files = discover_inputs([str(tmp_path / "b" / "*.txt"), str(tmp_path / "a")], ReadConfig())
    assert [(f.source, f.format, f.compression) for f in files] == [
        ("a/deep/y.warc.gz", "warc", "none"),
        ("a/x.jsonl", "jsonl", "none"),
        ("b/w.parquet.txt", "text", "none"),
        ("b/z.txt", "text", "none"),
    ]
    assert files[0].url == str(tmp_path / "a" / "deep" / "y.warc.gz")
    single = discover_inputs([str(tmp_path / "a" / "x.jsonl")], ReadConfig())
    assert [f.source for f in single] == ["x.jsonl"]


def test_fsspec_urls_are_discovered_and_read():
    fs = fsspec.filesystem("memory")
    data, offsets = gzip_members(HTML_RECORDS)
    fs.pipe("/readers-test/crawl/a.warc.gz", data)
    fs.pipe("/readers-test/crawl/sub/b.jsonl", b'{"text": "hi"}\n')
    try:
        files = discover_inputs(["memory://readers-test/crawl"], ReadConfig())
        docs, _, _ = read(["memory://readers-test/crawl"])
    finally:
        fs.rm("/readers-test", recursive=True)
    assert [(f.url, f.source) for f in files] == [
        ("memory:///readers-test/crawl/a.warc.gz", "a.warc.gz"),
        ("memory:///readers-test/crawl/sub/b.jsonl", "sub/b.jsonl"),
    ]
    assert rows(docs, "id", "text") == [
        (f"a.warc.gz#{offsets[0]}", EXPECTED_HTML[0][2]),
        (f"a.warc.gz#{offsets[1]}", EXPECTED_HTML[1][2]),
        ("sub/b.jsonl#0", "hi"),
    ]


def test_unknown_formats_in_a_folder_are_skipped_with_one_warning(tmp_path: Path, caplog):
    for name in ["keep.jsonl", "a.html", "b.html", "c.pdf", "d.warc.wat.gz", "README"]:
        (tmp_path / name).write_bytes(b"x")
    with caplog.at_level(logging.WARNING):
        files = discover_inputs([str(tmp_path)], ReadConfig())
    assert [f.source for f in files] == ["keep.jsonl"]
    assert [r.getMessage() for r in caplog.records] == [
        "skipped 5 input files of unknown format: (none): 1, .html: 2, .pdf: 1, .wat.gz: 1"
    ]


def test_inputs_matching_nothing_or_of_unknown_format_are_errors(tmp_path: Path):
    (tmp_path / "notes.md").write_text("hi")
    with pytest.raises(InputError, match=re.escape(f"input {tmp_path / 'missing'} does not exist")):
        discover_inputs([str(tmp_path / "missing")], ReadConfig())
    with pytest.raises(
        InputError, match=re.escape(f"input {tmp_path / '*.jsonl'} matches no file")
    ):
        discover_inputs([str(tmp_path / "*.jsonl")], ReadConfig())
    with pytest.raises(
        InputError, match=re.escape(f"cannot tell the format of {tmp_path / 'notes.md'}")
    ):
        discover_inputs([str(tmp_path / "notes.md")], ReadConfig())
    with pytest.raises(InputError, match=r"holds no file of a known format \(\.md: 1\)"):
        discover_inputs([str(tmp_path)], ReadConfig())


def test_magic_bytes_override_misleading_names(tmp_path: Path):
    (tmp_path / "really-gzip.jsonl").write_bytes(gzip.compress(JSONL))
    (tmp_path / "plain.warc.gz").write_bytes(HTML_RECORDS[0])
    (tmp_path / "table.bin").write_bytes(b"PAR1")
    (tmp_path / "crawl.dat.zst").write_bytes(compress(HTML_RECORDS[0], "zstd"))
    files = discover_inputs([str(tmp_path)], ReadConfig())
    assert [(f.source, f.format, f.compression) for f in files] == [
        ("crawl.dat.zst", "warc", "zstd"),
        ("plain.warc.gz", "warc", "none"),
        ("really-gzip.jsonl", "jsonl", "gzip"),
        ("table.bin", "parquet", "none"),
    ]
    docs, _, _ = read(tmp_path / "really-gzip.jsonl")
    assert docs["text"].to_pylist() == ["first", "second"]


def test_json_files_are_read_only_when_they_are_lines_of_objects(tmp_path: Path):
    (tmp_path / "lines.json").write_bytes(JSONL)
    (tmp_path / "document.json").write_text('{\n  "text": "one pretty-printed document"\n}\n')
    (tmp_path / "array.json").write_text('[{"text": "a"}]\n')
    files = discover_inputs([str(tmp_path)], ReadConfig())
    assert [f.source for f in files] == ["lines.json"]


def read_in_splits(path: Path, split_bytes: int) -> tuple[int, list[tuple], list[tuple]]:
    """(number of splits, (id, text) of documents, (id, reason, bytes) of rejected rows)."""
    config = ReadConfig(split_bytes=split_bytes)
    splits = plan_splits(discover_inputs([str(path)], config), config)
    batches = [batch for split in splits for batch in read_split(split, config)]
    docs = pa.concat_tables(batch.docs for batch in batches)
    rejected = pa.concat_tables(batch.rejected for batch in batches)
    return len(splits), rows(docs, "id", "text"), rows(rejected, "id", "reason", "bytes")


def many_pages(n: int) -> list[bytes]:
    return [
        warc_record(
            f"http://s.example/{i}", page(f"P{i}", f"Page number {i} of the set. " * (i % 7 + 1))
        )
        for i in range(n)
    ]


# Damage that a split reaching it from the record before must report, even past its own end.
JUNK = b"\x00junk between records\xff" * 20


def test_per_record_gzip_warc_reads_the_same_in_one_split_or_many(tmp_path: Path):
    members = [gzip_members([record])[0] for record in many_pages(60)]
    members[20] += JUNK
    members[41] = members[41][:-30] + JUNK  # a cut member, then garbage
    data = b"".join(members) + JUNK
    (tmp_path / "big.warc.gz").write_bytes(data)
    one_split, whole, whole_rejected = read_in_splits(
        tmp_path / "big.warc.gz", split_bytes=len(data)
    )
    for split_bytes in (257, 1000):
        splits, pieces, pieces_rejected = read_in_splits(tmp_path / "big.warc.gz", split_bytes)
        assert splits == -(-len(data) // split_bytes)
        assert (pieces, pieces_rejected) == (whole, whole_rejected)
    offsets = [sum(map(len, members[:i])) for i in range(61)]
    assert one_split == 1
    assert [int(i.split("#")[1]) for i, _ in whole] == offsets[:41] + offsets[42:60]
    assert whole_rejected == [
        (f"big.warc.gz#{offsets[21] - len(JUNK)}", "corrupt", len(JUNK)),
        (f"big.warc.gz#{offsets[41]}", "corrupt", len(members[41])),
        (f"big.warc.gz#{offsets[60]}", "corrupt", len(JUNK)),
    ]


def test_plain_warc_reads_the_same_in_one_split_or_many(tmp_path: Path):
    records = many_pages(40)
    records[10] += JUNK
    (tmp_path / "big.warc").write_bytes(b"".join(records) + JUNK)
    _, whole, whole_rejected = read_in_splits(tmp_path / "big.warc", split_bytes=1 << 30)
    splits, pieces, pieces_rejected = read_in_splits(tmp_path / "big.warc", split_bytes=300)
    assert splits > 40 and len(whole) == 40 and len(whole_rejected) == 2
    assert (pieces, pieces_rejected) == (whole, whole_rejected)


def test_plain_jsonl_reads_the_same_in_one_split_or_many(tmp_path: Path):
    lines = [json.dumps({"text": f"line {i} " + "x" * (i % 13)}) for i in range(200)]
    lines[50] = "{broken"
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n")
    _, whole, whole_rejected = read_in_splits(tmp_path / "big.jsonl", split_bytes=1 << 30)
    splits, pieces, pieces_rejected = read_in_splits(tmp_path / "big.jsonl", split_bytes=37)
    assert splits > 100 and len(whole) == 199 and len(whole_rejected) == 1
    assert (pieces, pieces_rejected) == (whole, whole_rejected)


def test_single_stream_files_are_one_split(tmp_path: Path):
    (tmp_path / "one.warc.gz").write_bytes(gzip.compress(b"".join(many_pages(30))))
    (tmp_path / "one.jsonl.zst").write_bytes(compress(JSONL * 50, "zstd"))
    config = ReadConfig(split_bytes=100)
    splits = plan_splits(discover_inputs([str(tmp_path)], config), config)
    assert [(s.file.source, s.start, s.end) for s in splits] == [
        (s.file.source, 0, s.file.size) for s in splits
    ]
    assert len(splits) == 2


def planned_tasks(files: list[InputFile], config: ReadConfig = DEFAULT_READ) -> list[CleanTask]:
    """The clean stage's tasks of some files, as a run plans them."""
    return clean_tasks(files, config)


def sized(path: Path, size: int, fmt: str, compression: str) -> InputFile:
    """An input file planned as if it held `size` stored bytes (planning reads only its start)."""
    return InputFile(str(path), path.name, fmt, compression, size, modified="")


def test_a_few_compressed_crawl_files_make_dozens_of_tasks(tmp_path: Path):
    # The crawl of 8 WARC.gz files of 5 MB (about 24 MB of HTML each), one member per record.
    (tmp_path / "c.warc.gz").write_bytes(gzip_members(many_pages(30))[0])
    files = [sized(tmp_path / "c.warc.gz", 5_000_000, "warc", "gzip")] * 8
    tasks = planned_tasks(files)
    # 200 MB of content in splits of 8 MiB of it: 1.68 MB of each 5 MB file.
    assert len(tasks) == math.ceil(40_000_000 / (8 << 20) * 5) == 24
    sizes = {split.end - split.start for task in tasks for split in task.splits}
    assert max(sizes) == split_size(files, DEFAULT_READ) == math.ceil((8 << 20) / 5)


def test_one_huge_file_makes_as_many_tasks_as_configured_splits(tmp_path: Path):
    huge = [sized(tmp_path / "huge.jsonl", 1 << 30, "jsonl", "none")]
    assert len(planned_tasks(huge)) == DEFAULT_READ.splits == 64
    assert len(planned_tasks(huge, ReadConfig(splits=100))) == 100
    # Not below 8 MiB a split: 1 GiB makes at most 128.
    assert len(planned_tasks(huge, ReadConfig(splits=1000))) == 128
    # Splits stop at split_bytes: a larger file makes more of them.
    larger = [sized(tmp_path / "huge.jsonl", 16 << 30, "jsonl", "none")]
    assert len(planned_tasks(larger)) == 256


def test_small_crawls_are_not_cut_below_eight_mib_of_content(tmp_path: Path):
    few = [sized(tmp_path / f"f{i}.warc", 3 << 20, "warc", "none") for i in range(4)]
    assert split_size(few, DEFAULT_READ) == 8 << 20
    assert len(planned_tasks(few)) == 2
    # Many small files are grouped into tasks of about that size.
    many = [sized(tmp_path / f"s{i}.warc", 20_000, "warc", "none") for i in range(2000)]
    assert len(planned_tasks(many)) == math.ceil(2000 * 20_000 / (8 << 20)) == 5


def test_an_explicit_split_size_below_the_planned_one_is_kept(tmp_path: Path):
    huge = [sized(tmp_path / "huge.warc", 1 << 30, "warc", "none")]
    config = ReadConfig(split_bytes=1_000_000)
    splits = plan_splits(huge, config)
    assert len(splits) == math.ceil((1 << 30) / 1_000_000)
    assert {split.end - split.start for split in splits[:-1]} == {1_000_000}


def test_parquet_splits_hold_whole_row_groups_and_offsets_are_row_numbers(tmp_path: Path):
    table = pa.table({"text": [f"row {i} " * 20 for i in range(100)]})
    pq.write_table(table, tmp_path / "p.parquet", row_group_size=10)
    splits, pieces, _ = read_in_splits(tmp_path / "p.parquet", split_bytes=200)
    _, whole, _ = read_in_splits(tmp_path / "p.parquet", split_bytes=1 << 30)
    assert splits == 10
    assert pieces == whole == [(f"p.parquet#{i}", f"row {i} " * 20) for i in range(100)]


def test_batches_hold_at_most_batch_docs_documents(tmp_path: Path):
    (tmp_path / "d.jsonl").write_text(
        "".join(json.dumps({"text": str(i)}) + "\n" for i in range(10))
    )
    config = ReadConfig(batch_docs=4)
    (split,) = plan_splits(discover_inputs([str(tmp_path)], config), config)
    assert [b.docs.num_rows for b in read_split(split, config)] == [4, 4, 2]


def test_a_warc_reader_yields_one_typed_record_per_input_record(tmp_path: Path):
    records = [
        warc_record("", b"software: test\r\n", kind="warcinfo", content_type="text/plain"),
        HTML_RECORDS[0],
        warc_record("http://a.example/gone", page("Gone", "Not here."), status=404),
    ]
    data, offsets = gzip_members(records)
    (tmp_path / "c.warc.gz").write_bytes(data)
    (split,) = plan_splits(discover_inputs([str(tmp_path)], DEFAULT_READ), DEFAULT_READ)
    count, document, rejection = read_warc(split, DEFAULT_READ)
    assert count == Count("skipped_warc_records")
    assert (document.offset, document.url, document.title, document.text) == (
        offsets[1],
        *EXPECTED_HTML[0],
    )
    assert json.loads(document.meta)["charset"] == "utf-8"
    assert rejection == Rejection(
        offsets[2],
        "http_status",
        len(records[2]) - records[2].index(b"\r\n\r\n") - 8,
        "HTTP status 404",
        url="http://a.example/gone",
        ordinary=True,
    )


def test_bulk_readers_yield_blocks_not_a_record_per_document(tmp_path: Path):
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(100)]}), tmp_path / "p.parquet")
    lines = [json.dumps({"text": f"line {i}"}) for i in range(50)]
    lines[7] = json.dumps({"url": "http://x.example/"})
    (tmp_path / "l.jsonl").write_text("\n".join(lines) + "\n")
    config = ReadConfig(batch_docs=40, keep_fields=False)
    parquet, jsonl = plan_splits(discover_inputs([str(tmp_path)], config), config)[::-1]
    blocks = list(read_parquet(parquet, config))
    assert [type(block) for block in blocks] == [DocumentBlock] * 3
    assert [block.offsets.to_pylist() for block in blocks] == [
        list(range(0, 40)),
        list(range(40, 80)),
        list(range(80, 100)),
    ]
    missing, block = read_jsonl(jsonl, config)
    assert missing == Rejections(
        [sum(len(line) + 1 for line in lines[:7])],
        "missing_text",
        [len(lines[7])],
        "no string at 'text'",
    )
    assert block.texts.to_pylist() == [f"line {i}" for i in range(50) if i != 7]


def test_batches_are_sized_in_utf8_bytes_however_documents_come():
    text = "é" * 100  # 100 characters, 200 bytes
    one_by_one = [Document(i, text) for i in range(10)]
    batcher = Batcher("f.jsonl", "f.jsonl", batch_docs=100, batch_bytes=1000)
    assert [b.docs.num_rows for b in batcher.batches(one_by_one)] == [5, 5]
    blocks = [
        DocumentBlock(pa.array([i, i + 1]), pa.array([text, text]), pa.nulls(2, pa.string()))
        for i in range(0, 10, 2)
    ]
    batches = list(batcher.batches(blocks))
    assert [b.docs.num_rows for b in batches] == [6, 4]
    assert batches[0].docs["id"].to_pylist() == [f"f.jsonl#{i}" for i in range(6)]


@pytest.mark.skipif(not (SAMPLE_DIR / "labels.json").exists(), reason="sample_data not generated")
def test_sample_crawl_records_are_all_read_as_labelled():
    labels = json.loads((SAMPLE_DIR / "labels.json").read_text())["documents"]
    docs, rejected, _ = read(SAMPLE_DIR)
    kept = dict(zip(docs["url"].to_pylist(), docs["text"].to_pylist(), strict=True))
    reasons = dict(zip(rejected["url"].to_pylist(), rejected["reason"].to_pylist(), strict=True))
    assert docs.num_rows + rejected.num_rows == len(labels)
    assert set(kept) | set(reasons) == set(labels)
    expected = {"binary": "binary_content", "redirect": "http_status", "not_found": "http_status"}
    assert reasons == {
        url: expected[label["kind"]] for url, label in labels.items() if label["kind"] in expected
    }
    scripts = {
        "ru": re.compile("[\u0400-\u04ff]"),
        "de": re.compile("[äöüß]"),
        "fr": re.compile("[éèàç]"),
    }
    non_utf8 = [
        (url, label) for url, label in labels.items() if label["charset"] not in ("utf-8", None)
    ]
    assert non_utf8
    for url, label in non_utf8:
        assert scripts[label["lang"]].search(kept[url]), url
        assert "\ufffd" not in kept[url]


def test_a_url_whose_filesystem_is_not_installed_is_an_input_error():
    with pytest.raises(InputError, match=r"input nosuchfs://bucket/x.jsonl cannot be opened"):
        discover_inputs(["nosuchfs://bucket/x.jsonl"], ReadConfig())


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_garbage_after_complete_compressed_data_is_told_from_damage_inside_it(compression: str):
    content = b"".join(many_pages(5))
    data = compress(content, compression)
    garbage = io.BytesIO(data + b"\x00 not compressed \xff")
    reader = ByteReader(DecompressSource(raw_reader(garbage), compression))
    assert reader.read(len(content) + 1) == content
    assert reader.problem == Problem(
        "corrupt",
        len(data),
        f"garbage after the compressed data at stored byte {len(data)} (expected {compression})",
        trailing=True,
    )
    cut = ByteReader(DecompressSource(raw_reader(io.BytesIO(data[:-10])), compression))
    cut.drain()
    assert cut.problem is not None and not cut.problem.trailing
