"""One bad record, file or document never fails a task: it is rejected alone with a reason and its
offset, the records around it are kept, and `read == kept + rejected` holds; only a fault that is
not in the data (a missing model) fails the task."""

from __future__ import annotations

import codecs
import gzip
import io
import json
import logging
import os
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_filters import ENGLISH
from test_readers import compress, read, rows

from corpusmill.pipeline import clean, langid, readers
from corpusmill.pipeline.clean import clean_batch, clean_task, plan_tasks
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.filters import GopherQuality, build_filters
from corpusmill.pipeline.readers import (
    InputError,
    InputFile,
    ReadConfig,
    discover_inputs,
    plan_splits,
    read_split,
)
from corpusmill.pipeline.readers.parquet import row_group_spans

POISON = "poison pill"


def lines_file(path: Path, lines: list[bytes]) -> list[int]:
    """Write lines to a file; return the offset of each."""
    path.write_bytes(b"".join(lines))
    return [sum(map(len, lines[:i])) for i in range(len(lines))]


def json_line(text: str, **fields: str) -> bytes:
    return json.dumps({"text": text, **fields}).encode() + b"\n"


@pytest.mark.parametrize("keep_fields", [True, False])
def test_lone_surrogates_in_jsonl_url_and_text_are_replaced_counted_and_kept(
    tmp_path: Path, keep_fields: bool
):
    # A JSON escape can spell a lone surrogate, which is not text and cannot be stored as UTF-8.
    lines = [
        b'{"text": "before", "url": "http://s.example/1"}\n',
        b'{"text": "bad url", "url": "\\ud800"}\n',
        b'{"text": "bad text \\udc00", "title": "\\ud83d", "id": "\\udfff"}\n',
        b'{"text": "after"}\n',
    ]
    lines_file(tmp_path / "s.jsonl", lines)
    docs, rejected, counters = read(tmp_path / "s.jsonl", ReadConfig(keep_fields=keep_fields))
    assert rows(docs, "text", "url") == [
        ("before", "http://s.example/1"),
        ("bad url", "\ufffd"),
        ("bad text \ufffd", None),
        ("after", None),
    ]
    assert rejected.num_rows == 0 and counters == {"invalid_utf8_docs": 2}
    # Other fields reach meta as ASCII JSON, which escapes them.
    metas = docs["meta"].to_pylist()
    assert metas[2] == ('{"id": "\\udfff", "title": "\\ud83d"}' if keep_fields else None)


@pytest.mark.parametrize("keep_fields", [True, False])
def test_bytes_that_are_not_utf8_in_jsonl_are_replaced_and_counted(
    tmp_path: Path, keep_fields: bool
):
    # Arrow's parser, given a schema, lets such bytes into its strings unchecked.
    lines = [
        b'{"text": "caf\xe9 au lait", "url": "http://s.example/\xff"}\n',
        b'{"text": "encoded \xed\xa0\x80 surrogate"}\n',
        b'{"text": "fine"}\n',
    ]
    lines_file(tmp_path / "u.jsonl", lines)
    docs, rejected, counters = read(tmp_path / "u.jsonl", ReadConfig(keep_fields=keep_fields))
    docs.validate(full=True)
    assert rows(docs, "text", "url") == [
        ("caf\ufffd au lait", "http://s.example/\ufffd"),
        ("encoded \ufffd\ufffd\ufffd surrogate", None),
        ("fine", None),
    ]
    assert rejected.num_rows == 0 and counters == {"invalid_utf8_docs": 2}


def test_deeply_nested_json_line_is_rejected_and_neighbours_kept(tmp_path: Path, caplog):
    deep = b'{"text": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    offsets = lines_file(tmp_path / "d.jsonl", [json_line("before"), deep, json_line("after")])
    with caplog.at_level(logging.WARNING):
        docs, rejected, _ = read(tmp_path / "d.jsonl")
    assert rows(docs, "offset", "text") == [(offsets[0], "before"), (offsets[2], "after")]
    assert rows(rejected, "offset", "step", "reason", "bytes") == [
        (offsets[1], "read", "error", len(deep) - 1)
    ]
    assert f"d.jsonl at byte {offsets[1]}: read:error (RecursionError: " in caplog.text


def test_nul_byte_early_in_jsonl_costs_only_its_line(tmp_path: Path):
    lines = [json_line(f"line {i}") for i in range(2002)]
    lines[3] = b'{"text": "a raw \x00 byte"}\n'
    offsets = lines_file(tmp_path / "n.jsonl", lines)
    docs, rejected, _ = read(tmp_path / "n.jsonl")
    assert docs["text"].to_pylist() == [f"line {i}" for i in range(2002) if i != 3]
    assert rows(rejected, "offset", "reason", "bytes") == [
        (offsets[3], "invalid_json", len(lines[3]) - 1)
    ]


def test_dangling_and_looping_symlinks_are_skipped_with_a_warning(tmp_path: Path, caplog):
    (tmp_path / "ok.jsonl").write_bytes(json_line("ok"))
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "ok.jsonl")  # a working link is read
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (tmp_path / "self.jsonl").symlink_to(tmp_path / "self.jsonl")
    (tmp_path / "a.jsonl").symlink_to(tmp_path / "b.jsonl")
    (tmp_path / "b.jsonl").symlink_to(tmp_path / "a.jsonl")
    (tmp_path / "up").symlink_to(tmp_path)  # a folder link, which would loop if followed
    for spec in (tmp_path, tmp_path / "*.jsonl"):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            files = discover_inputs([str(spec)], ReadConfig())
        assert [file.source for file in files] == ["link.jsonl", "ok.jsonl"]
        assert sorted(record.getMessage().split(": ")[0] for record in caplog.records) == [
            f"skipped input {tmp_path / name}"
            for name in ("a.jsonl", "b.jsonl", "dangling.jsonl", "self.jsonl")
        ] + ([f"skipped input {tmp_path / 'up'}"] if spec == tmp_path else [])
    docs, rejected, _ = read(tmp_path)
    assert rows(docs, "id", "text") == [("link.jsonl#0", "ok"), ("ok.jsonl#0", "ok")]
    assert rejected.num_rows == 0


def _timeout(signum, frame):
    raise TimeoutError("discovery opened the FIFO and waited for a writer")


def test_fifo_input_is_skipped_not_read(tmp_path: Path, caplog):
    (tmp_path / "ok.jsonl").write_bytes(json_line("ok"))
    os.mkfifo(tmp_path / "x.jsonl")
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(20)  # opening a FIFO blocks until a writer comes: fail instead of hanging
    try:
        with caplog.at_level(logging.WARNING):
            in_folder = discover_inputs([str(tmp_path)], ReadConfig())
            in_glob = discover_inputs([str(tmp_path / "*.jsonl")], ReadConfig())
            with pytest.raises(InputError, match="x.jsonl matches no file"):
                discover_inputs([str(tmp_path / "x.jsonl")], ReadConfig())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [f.source for f in in_folder] == [f.source for f in in_glob] == ["ok.jsonl"]
    assert [r.getMessage() for r in caplog.records] == [
        f"skipped input {tmp_path / 'x.jsonl'}: not a regular file (a FIFO, socket or device)"
    ] * 3


TEXT_TYPES = {
    "string": lambda array: array,
    "dictionary": lambda array: array.dictionary_encode(),
    "string_view": lambda array: array.cast(pa.string_view()),
    "large_string": lambda array: array.cast(pa.large_string()),
    "binary": lambda array: array.cast(pa.binary()),
    "large_binary": lambda array: array.cast(pa.large_binary()),
    "binary_view": lambda array: array.cast(pa.binary_view()),
}


@pytest.mark.parametrize("kind", TEXT_TYPES)
def test_dictionary_and_string_view_text_columns_are_read(tmp_path: Path, kind: str):
    texts = pa.array(["first text", None, "second text", "first text"])
    urls = pa.array(["http://p.example/1", None, None, "http://p.example/4"])
    convert = TEXT_TYPES[kind]
    pq.write_table(pa.table({"text": convert(texts), "url": convert(urls)}), tmp_path / "t.parquet")
    docs, rejected, counters = read(tmp_path / "t.parquet")
    assert rows(docs, "offset", "text", "url") == [
        (0, "first text", "http://p.example/1"),
        (2, "second text", None),
        (3, "first text", "http://p.example/4"),
    ]
    assert rows(rejected, "offset", "reason") == [(1, "missing_text")]
    assert counters == {}


@pytest.mark.parametrize("kind", ["binary", "string"])
def test_invalid_utf8_in_a_text_or_meta_column_is_replaced_and_counted(tmp_path: Path, kind: str):
    # Parquet does not check that a string column holds UTF-8, so Arrow strings can hold bytes
    # that are not: they must not reach the documents' Arrow columns.
    raw = pa.array([b"caf\xe9 au lait", b"plain", None], pa.binary())
    column = raw if kind == "binary" else raw.view(pa.string())
    table = pa.table({"text": column, "note": pa.array([b"ok", b"\xff", None]).view(pa.string())})
    pq.write_table(table, tmp_path / "b.parquet")
    docs, rejected, counters = read(tmp_path / "b.parquet")
    docs.validate(full=True)
    assert rows(docs, "text", "meta") == [
        ("caf\ufffd au lait", '{"note": "ok"}'),
        ("plain", '{"note": "\\ufffd"}'),
    ]
    assert rows(rejected, "offset", "reason") == [(2, "missing_text")]
    assert counters == {"invalid_utf8_docs": 1}


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_text_file_without_a_bom_is_read_as_its_text(tmp_path: Path, codec: str):
    # Every other byte is NUL, which the binary sniffing alone would reject.
    text = "Plain words in UTF-16, with no byte-order mark: é, ü and 中文.\n" * 3
    (tmp_path / "a.txt").write_bytes(text.encode(codec))
    (tmp_path / "b.txt").write_bytes(b"\x00\x01\x02\x03binary\x00\x00\xff" * 20)
    docs, rejected, counters = read(tmp_path)
    assert rows(docs, "id", "text") == [("a.txt#0", text)]
    assert rows(rejected, "id", "reason") == [("b.txt#0", "binary_content")]
    assert counters == {}


def test_no_reader_hands_on_a_lone_surrogate_in_a_text_url_id_or_meta(tmp_path: Path):
    # Arrow cannot hold a lone surrogate: a reader that made one would lose its batch at once.
    utf16 = "lone ".encode("utf-16-le") + b"\x00\xd8" + " high".encode("utf-16-le")
    (tmp_path / "a.txt").write_bytes(codecs.BOM_UTF16_LE + utf16)
    (tmp_path / "b.txt").write_bytes(b"encoded \xed\xa0\x80 surrogate")
    (tmp_path / "c.jsonl").write_bytes(
        b'{"text": "escaped \\ud800", "url": "\\udc00", "doc_id": "\\udfff", "k": ["\\ud83d"]}\n'
    )
    surrogate = pa.array([b"\xed\xa0\x80", b"\xff"]).view(pa.string())
    table = pa.table(
        {
            "text": surrogate,
            "url": surrogate,
            "doc_id": surrogate,
            "info": pa.StructArray.from_arrays([surrogate], names=["k"]),
            "tags": pa.ListArray.from_arrays(pa.array([0, 1, 2], pa.int32()), surrogate),
            "map": pa.MapArray.from_arrays(pa.array([0, 1, 2], pa.int32()), surrogate, surrogate),
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    docs, rejected, counters = read(tmp_path, ReadConfig(id_key="doc_id"))
    docs.validate(full=True)
    assert rows(docs, "id", "text", "url", "meta") == [
        ("a.txt#0", "lone \ufffd high", None, None),
        ("b.txt#0", "encoded \ufffd\ufffd\ufffd surrogate", None, None),
        ("c.jsonl#0", "escaped \ufffd", "\ufffd", json.dumps({"id": "\udfff", "k": ["\ud83d"]})),
        ("d.parquet#0", "\ufffd" * 3, "\ufffd" * 3, parquet_meta("\ufffd" * 3)),
        ("d.parquet#1", "\ufffd", "\ufffd", parquet_meta("\ufffd")),
    ]
    assert rejected.num_rows == 0
    assert counters == {"invalid_utf8_docs": 5}


def parquet_meta(value: str) -> str:
    """The meta of a row of the Parquet file above whose every string is `value`."""
    fields = {"id": value, "info": {"k": value}, "tags": [value], "map": [[value, value]]}
    return json.dumps(fields)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
@pytest.mark.parametrize("name", ["doc.txt", "lines.jsonl"])
def test_garbage_after_complete_compressed_data_costs_only_itself(
    tmp_path: Path, name: str, compression: str
):
    # The last JSON line has no newline: it ends where the compressed data does.
    content = b"one document" if name == "doc.txt" else json_line("first") + b'{"text": "last"}'
    data = compress(content, compression)
    path = tmp_path / f"{name}.{'gz' if compression == 'gzip' else 'zst'}"
    garbage = b"\x00 not compressed \xff"
    path.write_bytes(data + garbage)
    docs, rejected, _ = read(path)
    expected = ["one document"] if name == "doc.txt" else ["first", "last"]
    assert docs["text"].to_pylist() == expected
    assert rows(rejected, "offset", "reason", "bytes") == [(len(content), "corrupt", len(garbage))]


def test_an_empty_parquet_file_is_counted_as_empty(tmp_path: Path):
    (tmp_path / "e.parquet").write_bytes(b"")
    (tmp_path / "ok.jsonl").write_bytes(json_line("ok"))
    docs, rejected, counters = read(tmp_path)
    assert docs["id"].to_pylist() == ["ok.jsonl#0"]
    assert rejected.num_rows == 0 and counters == {"empty_files": 1}


def test_non_utf8_file_name_is_read(tmp_path: Path):
    (tmp_path / os.fsdecode(b"bad\xff.jsonl")).write_bytes(json_line("badly named"))
    (tmp_path / "ok.jsonl").write_bytes(json_line("ok"))
    docs, rejected, _ = read(tmp_path)
    # The name's undecodable byte is written as an escape, so it can be an Arrow string.
    assert rows(docs, "id", "source", "text") == [
        ("bad\\xff.jsonl#0", "bad\\xff.jsonl", "badly named"),
        ("ok.jsonl#0", "ok.jsonl", "ok"),
    ]
    assert rejected.num_rows == 0


def three_row_groups(checksums: bool = False) -> tuple[bytearray, pq.FileMetaData]:
    """An uncompressed Parquet file of 3 row groups of 10 texts, and its metadata."""
    texts = [f"document number {i} " * 5 for i in range(30)]
    buffer = io.BytesIO()
    pq.write_table(
        pa.table({"text": texts}),
        buffer,
        row_group_size=10,
        compression="none",
        use_dictionary=False,
        write_page_checksum=checksums,
    )
    return bytearray(buffer.getvalue()), pq.ParquetFile(io.BytesIO(buffer.getvalue())).metadata


@pytest.mark.parametrize("damage", ["page header", "page data with a checksum"])
@pytest.mark.parametrize("split_bytes", [64 << 20, 1000])
def test_bad_parquet_row_group_keeps_the_others(
    tmp_path: Path, caplog, damage: str, split_bytes: int
):
    data, metadata = three_row_groups(checksums=damage != "page header")
    column = metadata.row_group(1).column(0)
    # A flipped bit in the page header's first bytes, or in the last text of the page.
    where = column.data_page_offset + (
        0 if damage == "page header" else column.total_compressed_size - 30
    )
    data[where] ^= 0x01
    (tmp_path / "p.parquet").write_bytes(data)
    with caplog.at_level(logging.WARNING):
        docs, rejected, _ = read(tmp_path / "p.parquet", ReadConfig(split_bytes=split_bytes))
    assert docs["offset"].to_pylist() == [*range(10), *range(20, 30)]
    assert rows(rejected, "offset", "step", "reason") == [
        (r, "read", "corrupt") for r in range(10, 20)
    ]
    start, end = row_group_spans(metadata, len(data))[1]
    assert sum(rejected["bytes"].to_pylist()) == end - start
    assert "p.parquet at byte 10: read:corrupt (row group 1: OSError: " in caplog.text


def test_parquet_with_duplicate_column_names_rejects_each_row_with_the_error(
    tmp_path: Path, caplog
):
    table = pa.table([pa.array(["one", "two"]), pa.array(["uno", "dos"])], names=["text", "text"])
    pq.write_table(table, tmp_path / "dup.parquet")
    (tmp_path / "ok.jsonl").write_bytes(json_line("ok"))
    with caplog.at_level(logging.WARNING):
        docs, rejected, _ = read(tmp_path)
    assert rows(docs, "id", "text") == [("ok.jsonl#0", "ok")]
    assert rows(rejected, "id", "reason") == [
        ("dup.parquet#0", "error"),
        ("dup.parquet#1", "error"),
    ]
    assert 'Field "text" exists 2 times in schema' in caplog.text


def test_no_bit_flip_in_a_parquet_footer_crashes_or_loses_a_counted_row(tmp_path: Path):
    # Some flips make pyarrow abort the process when a column chunk's metadata is asked for
    # (a byte-array column said to be FLOAT, say): the readers never ask for it.
    texts = [f"text {i}" for i in range(6)]
    buffer = io.BytesIO()
    pq.write_table(
        pa.table({"text": texts}), buffer, row_group_size=2, compression="none", store_schema=False
    )
    data = buffer.getvalue()
    footer = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    config = ReadConfig(split_bytes=50)
    path = tmp_path / "f.parquet"
    for bit in range(0, (len(data) - 8 - footer) * 8, 7):  # every 7th bit: each bit position
        damaged = bytearray(data)
        damaged[footer + bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(damaged)
        file = InputFile(str(path), "f.parquet", "parquet", "none", len(damaged), modified="")
        batches = [b for split in plan_splits([file], config) for b in read_split(split, config)]
        docs = pa.concat_tables([batch.docs for batch in batches])
        rejected = pa.concat_tables([batch.rejected for batch in batches])
        assert set(docs["text"].to_pylist()) <= set(texts), bit
        counts = footer_row_counts(path)
        if counts is None:  # no readable footer, or counts it contradicts: nothing to count by
            assert docs.num_rows + rejected.num_rows >= 1, bit
        else:
            assert docs.num_rows + rejected.num_rows == sum(counts), bit


def footer_row_counts(path: Path) -> list[int] | None:
    """Each row group's row count, if the footer reads and its counts fit the file's own."""
    try:
        metadata = pq.ParquetFile(path).metadata
    except Exception:
        return None
    counts = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    return counts if all(0 <= count <= metadata.num_rows for count in counts) else None


@pytest.mark.parametrize("damage", ["truncated", "garbage footer"])
def test_a_parquet_file_without_a_readable_footer_is_one_corrupt_row(tmp_path: Path, damage: str):
    data, _ = three_row_groups()
    data = data[: len(data) // 2] if damage == "truncated" else data[:-12] + b"\xff" * 8 + b"PAR1"
    (tmp_path / "p.parquet").write_bytes(data)
    (tmp_path / "ok.jsonl").write_bytes(json_line("ok"))
    docs, rejected, _ = read(tmp_path)
    assert docs["id"].to_pylist() == ["ok.jsonl#0"]
    assert rows(rejected, "id", "reason", "bytes") == [("p.parquet#0", "corrupt", len(data))]


def test_a_reader_that_raises_costs_only_the_rest_of_its_split(tmp_path: Path, monkeypatch):
    offsets = lines_file(tmp_path / "r.jsonl", [json_line(f"line {i}") for i in range(10)])
    size = (tmp_path / "r.jsonl").stat().st_size
    read_jsonl = readers._READERS["jsonl"]

    def failing_after_one_batch(split, config):
        yield next(read_jsonl(split, config))
        raise OSError("the disk went away")

    monkeypatch.setitem(readers._READERS, "jsonl", failing_after_one_batch)
    (tmp_path / "s.txt").write_bytes(b"a text file")
    docs, rejected, _ = read(tmp_path, ReadConfig(batch_docs=4))
    assert rows(docs, "id", "text") == [
        *((f"r.jsonl#{offsets[i]}", f"line {i}") for i in range(4)),
        ("s.txt#0", "a text file"),
    ]
    # One row for the rest of the split, one past the last record read.
    assert rows(rejected, "offset", "reason", "bytes") == [
        (offsets[3] + 1, "error", size - offsets[3] - 1)
    ]


def test_a_file_gone_after_discovery_is_one_read_error(tmp_path: Path, caplog):
    (tmp_path / "gone.warc.gz").write_bytes(gzip.compress(b"WARC/1.0\r\n\r\n", mtime=0))
    (tmp_path / "ok.jsonl").write_bytes(json_line("ok"))
    config = ReadConfig()
    files = discover_inputs([str(tmp_path)], config)
    (tmp_path / "gone.warc.gz").unlink()
    with caplog.at_level(logging.WARNING):
        splits = plan_splits(files, config)
        batches = [batch for split in splits for batch in read_split(split, config)]
    docs = pa.concat_tables([batch.docs for batch in batches])
    rejected = pa.concat_tables([batch.rejected for batch in batches])
    assert docs["id"].to_pylist() == ["ok.jsonl#0"]
    assert rows(rejected, "id", "reason", "bytes") == [("gone.warc.gz#0", "error", files[0].size)]
    assert "gone.warc.gz at byte 0: read:error (FileNotFoundError: " in caplog.text


def poisoned(function):
    """`function` (a clean step, or a filter's __call__) raising on a batch holding POISON."""

    def step(*args, **kwargs):
        docs = next(arg for arg in args if isinstance(arg, pa.Table))
        if pc.any(pc.match_substring(docs["text"], POISON)).as_py():
            raise ValueError("this step cannot take that text")
        return function(*args, **kwargs)

    return step


def eight_documents(tmp_path: Path) -> pa.Table:
    """Six English articles (the fourth with POISON in it) and two too short to keep."""
    texts = [f"{ENGLISH}\n\nNote {i}." for i in range(6)] + ["short one", "short two"]
    texts[3] += f" A {POISON}."
    lines_file(tmp_path / "e.jsonl", [json_line(text) for text in texts])
    docs, _, _ = read(tmp_path / "e.jsonl")
    return docs


@pytest.mark.parametrize("step", ["normalize", "langid", "gopher_quality"])
def test_filter_error_on_one_document_rejects_only_it(
    tmp_path: Path, monkeypatch, caplog, step: str
):
    config = load_config(overrides={})
    filters = build_filters(config.filters)
    docs = eight_documents(tmp_path)
    poison = pc.match_substring(docs["text"], POISON)
    expected_kept, expected_rejected, _ = clean_batch(
        docs.filter(pc.invert(poison)), config, filters
    )
    if step == "gopher_quality":
        monkeypatch.setattr(GopherQuality, "__call__", poisoned(GopherQuality.__call__))
    else:
        name = {"normalize": "normalize_text", "langid": "identify_languages"}[step]
        monkeypatch.setattr(clean, name, poisoned(getattr(clean, name)))
    with caplog.at_level(logging.WARNING):
        kept, rejected, _ = clean_batch(docs, config, filters)
    poison_id = docs.filter(poison)["id"][0].as_py()
    assert kept.num_rows + rejected.num_rows == docs.num_rows == 8
    assert kept.to_pylist() == expected_kept.to_pylist() and kept.num_rows == 5
    assert sorted(rows(rejected, "id", "step", "reason")) == sorted(
        [(poison_id, step, "error"), *rows(expected_rejected, "id", "step", "reason")]
    )
    assert f"{poison_id}: {step}:error (ValueError: this step cannot take that text)" in caplog.text


def test_a_step_that_fails_with_no_document_at_all_fails_the_batch(tmp_path: Path, monkeypatch):
    def missing_model():
        raise RuntimeError("fastText language-id model not found")

    monkeypatch.setattr(langid, "_model", missing_model)
    config = load_config(overrides={})
    with pytest.raises(RuntimeError, match="model not found"):
        clean_batch(eight_documents(tmp_path), config, build_filters(config.filters))


def test_a_task_with_bad_files_keeps_the_good_files_documents(tmp_path: Path, monkeypatch):
    inputs = tmp_path / "in"
    inputs.mkdir()
    article = [f"{ENGLISH}\n\nNote {i}." for i in range(5)]
    deep = b'{"text": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    mixed = [json_line(article[0]), deep, json_line(article[1] + f" A {POISON}.")]
    mixed_offsets = lines_file(inputs / "a.jsonl", mixed)
    (inputs / os.fsdecode(b"b\xff.jsonl")).write_bytes(json_line(article[2]))
    (inputs / "c.jsonl").write_bytes(json_line(article[3]))
    (inputs / "d.parquet").write_bytes(b"PAR1 not really Parquet PAR1")
    (inputs / "e.jsonl").write_bytes(json_line(article[4]))
    config = load_config(overrides={"inputs": (str(inputs),), "out": str(tmp_path / "out")})
    (task,) = plan_tasks(
        plan_splits(discover_inputs(config.inputs, config.read), config.read), 1 << 30
    )
    (inputs / "c.jsonl").unlink()  # gone between planning and reading: an unreadable file
    monkeypatch.setattr(GopherQuality, "__call__", poisoned(GopherQuality.__call__))
    counts = clean_task(task, config)
    kept = pq.read_table(tmp_path / "out" / "clean" / "part-00000.parquet")
    rejected = pq.read_table(tmp_path / "out" / "rejected" / "part-00000.parquet")
    assert kept["id"].to_pylist() == ["a.jsonl#0", "b\\xff.jsonl#0", "e.jsonl#0"]
    assert rows(rejected, "id", "step", "reason") == [
        (f"a.jsonl#{mixed_offsets[1]}", "read", "error"),
        ("c.jsonl#0", "read", "error"),
        ("d.parquet#0", "read", "corrupt"),
        (f"a.jsonl#{mixed_offsets[2]}", "gopher_quality", "error"),
    ]
    # Seven records read (three lines, four files of one record): three kept, four rejected.
    assert counts["kept"]["docs"] == 3
    assert {reason: n["docs"] for reason, n in counts["rejected"].items()} == {
        "read:error": 2,
        "read:corrupt": 1,
        "gopher_quality:error": 1,
    }
