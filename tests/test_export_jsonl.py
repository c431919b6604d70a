"""`corpusmill export --format jsonl`: the deduplicated corpus as Dolma's documents, read back here
with plain zstandard, gzip and json and compared with the dataset's Parquet parts."""

from __future__ import annotations

import argparse
import gzip
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard
from test_dataset import client as client  # noqa: F401 (its fixture)
from test_dataset import finished as finished  # noqa: F401 (its fixture)

from corpusmill.cli import export as export_command
from corpusmill.cli.main import describe
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.meta import plain_meta


def export(out: Path, dest: Path, *flags: str) -> list[str]:
    """Run `export --format jsonl` through a parser built as `corpusmill` builds it; the names of
    the files in DEST/documents afterwards."""
    parser = argparse.ArgumentParser(prog="corpusmill")
    export_command.add_parser(parser.add_subparsers(), parents=[])
    args = parser.parse_args(["export", str(out), str(dest), "--format", "jsonl", *flags])
    assert args.handler(args) == 0
    return sorted(path.name for path in (dest / "documents").iterdir())


def read_zstd_lines(path: Path) -> list[dict]:
    data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(path.read_bytes())).read()
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def test_each_dataset_part_becomes_a_file_of_dolma_documents_holding_its_rows(finished, tmp_path):
    out, _ = finished
    layout = RunLayout(out)
    parts = layout.clean_parts()
    names = export(out, tmp_path / "dolma")
    assert names == [f"part-{part:05d}.jsonl.zst" for part in parts]
    every_meta = []
    for part, name in zip(parts, names, strict=True):
        table = pq.read_table(layout.dataset_part(part))
        metas = plain_meta(table["meta"].combine_chunks())
        every_meta += metas
        docs = read_zstd_lines(tmp_path / "dolma" / "documents" / name)
        assert [doc["id"] for doc in docs] == table["id"].to_pylist()
        for doc, row, meta in zip(docs, table.drop_columns("meta").to_pylist(), metas, strict=True):
            assert set(doc) == {"id", "text", "source", "metadata"}
            assert (doc["text"], doc["source"]) == (row["text"], row["source"])
            assert doc["metadata"].pop("meta") == meta
            assert doc["metadata"] == {
                key: value for key, value in row.items() if key not in ("id", "text", "source")
            }
    assert any(meta and meta["meta"] for meta in every_meta)  # the JSONL records' own fields
    exported = sum(len(read_zstd_lines(p)) for p in (tmp_path / "dolma" / "documents").iterdir())
    assert exported == pq.read_table(out / "dataset").num_rows > 0


def test_an_export_is_the_same_bytes_every_time_and_gzip_holds_the_same_lines(finished, tmp_path):
    out, _ = finished
    export(out, tmp_path / "a")
    export(out, tmp_path / "b")
    gzipped = export(out, tmp_path / "c", "--compression", "gzip")
    export(out, tmp_path / "d", "--compression", "gzip")
    for zst, gz in zip(sorted((tmp_path / "a" / "documents").iterdir()), gzipped, strict=True):
        assert zst.read_bytes() == (tmp_path / "b" / "documents" / zst.name).read_bytes()
        gz_bytes = (tmp_path / "c" / "documents" / gz).read_bytes()
        assert gz_bytes == (tmp_path / "d" / "documents" / gz).read_bytes()
        lines = [json.loads(line) for line in gzip.decompress(gz_bytes).splitlines()]
        assert lines == read_zstd_lines(zst)


def test_a_new_export_replaces_an_earlier_ones_parts_and_keeps_other_files(finished, tmp_path):
    out, _ = finished
    documents = tmp_path / "dolma" / "documents"
    documents.mkdir(parents=True)
    (documents / "part-00999.jsonl.gz").write_bytes(b"stale")
    (documents / "notes.txt").write_text("mine")
    names = export(out, tmp_path / "dolma")
    assert "part-00999.jsonl.gz" not in names and "notes.txt" in names
    assert all(not name.startswith(".") for name in names)


def test_a_run_whose_dataset_is_unfinished_is_refused_exit_2(finished, tmp_path):
    out, _ = finished
    layout = RunLayout(out)
    marker = Path(layout.dataset_marker(1))
    saved = marker.read_bytes()
    marker.unlink()
    try:
        with pytest.raises(Exception) as unfinished:
            export(out, tmp_path / "dolma")
    finally:
        marker.write_bytes(saved)
    message, code = describe(unfinished.value)
    assert code == 2
    assert f"{layout.dataset} is not complete (part 1 of" in message
    assert f"--out {out}" in message
    assert not (tmp_path / "dolma" / "documents").exists()


def test_an_unknown_compression_is_refused_naming_the_choices(finished, tmp_path):
    out, _ = finished
    with pytest.raises(Exception) as unknown:
        export(out, tmp_path / "dolma", "--compression", "xz")
    assert describe(unknown.value) == ("--compression xz: unknown; give one of zstd, gzip", 2)
