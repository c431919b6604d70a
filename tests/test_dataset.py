"""The dataset stage writes the deduplicated corpus as one Parquet dataset: clean's documents but
dedup's removals, in input order, with the input record's own id as `source_id`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.parquet as pq
import pytest
import zstandard

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.dataset import split_own_id
from corpusmill.pipeline.readers import ReadConfig
from corpusmill.pipeline.readers.jsonl import split_record
from corpusmill.pipeline.run import run_pipeline
from corpusmill.pipeline.schema import DATASET

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
INPUTS = tuple(str(p) for p in sorted(SAMPLE.glob("*.gz")) + sorted(SAMPLE.glob("*.zst")))
JSONL = "dump-00000.jsonl.zst"


@pytest.fixture(scope="module")
def client():
    with dask_client("", 2) as client:
        yield client


def sample_run(out: Path, client, **overrides) -> dict:
    """A run on the sample crawl in several parts, without tokenizing."""
    overrides = {"inputs": INPUTS, "out": str(out), "read.split_bytes": 256 << 10, **overrides}
    return run_pipeline(load_config(overrides=overrides), client=client)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, client) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("dataset") / "out"
    return out, sample_run(out, client)


def test_the_dataset_is_clean_minus_the_removed_duplicates_in_input_order(finished):
    out, stats = finished
    clean = pq.read_table(out / "clean")
    removed = set(pq.read_table(out / "dedup" / "removed.parquet")["id"].to_pylist())
    dataset = pq.read_table(out / "dataset")
    assert removed
    assert dataset["id"].to_pylist() == [i for i in clean["id"].to_pylist() if i not in removed]
    texts = dict(zip(clean["id"].to_pylist(), clean["text"].to_pylist(), strict=True))
    assert dataset["text"].to_pylist() == [texts[i] for i in dataset["id"].to_pylist()]
    assert stats["dataset"]["docs"] == dataset.num_rows == stats["dedup"]["kept"]["docs"]
    assert stats["dataset"]["bytes"] == stats["dedup"]["kept"]["bytes"]


def test_each_clean_part_has_its_dataset_part_and_all_read_as_one_table(finished):
    out, stats = finished
    layout = RunLayout(out)
    parts = layout.clean_parts()
    assert len(parts) > 1 and stats["dataset"]["parts"] == len(parts)
    assert sorted((out / "dataset").glob("*.parquet")) == [layout.dataset_part(n) for n in parts]
    table = pds.dataset(out / "dataset", format="parquet").to_table()
    assert table.schema == DATASET
    assert table.equals(pq.read_table(out / "dataset"))
    assert pq.read_metadata(layout.dataset_part(0)).row_group(0).column(0).compression == "ZSTD"


def test_source_id_is_the_jsonl_records_own_id_and_null_for_warc(finished):
    out, _ = finished
    dataset = pq.read_table(out / "dataset").to_pylist()
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO((SAMPLE / JSONL).read_bytes()))
    data = raw.read()
    jsonl = [doc for doc in dataset if doc["source"] == JSONL]
    assert jsonl and len(jsonl) < len(dataset)
    for doc in dataset:
        if doc["source"] != JSONL:
            assert doc["source_id"] is None
            continue
        offset = int(doc["id"].rpartition("#")[2])
        record = json.loads(data[offset : data.index(b"\n", offset)])
        assert doc["source_id"] == record["id"]
        assert "id" not in json.loads(doc["meta"] or "{}")
        assert json.loads(doc["meta"]) == {
            k: v for k, v in record.items() if k not in ("id", "url", "text")
        }


def test_without_dedup_the_dataset_holds_every_clean_document(tmp_path, client):
    stats = sample_run(tmp_path / "out", client, **{"dedup.enabled": False})
    clean = pq.read_table(tmp_path / "out" / "clean")
    dataset = pq.read_table(tmp_path / "out" / "dataset")
    assert dataset["id"].equals(clean["id"]) and dataset["text"].equals(clean["text"])
    assert stats["dataset"]["docs"] == stats["clean"]["kept"]["docs"]


def test_a_records_own_id_of_any_field_and_scalar_moves_out_of_meta():
    record = {"text": "t", "n": 1, "doc": {"key": '\u00e9"1'}}
    _, _, meta = split_record(record, ReadConfig(id_key="doc.key"))
    metas = [meta, '{"id": 12, "x": {"id": 3}}', '{"x": {"id": 3}}', '{"id": true}', None]
    source_id, rest = split_own_id(pa.chunked_array([metas], pa.string()))
    assert source_id.to_pylist() == ['\u00e9"1', "12", None, "true", None]
    assert rest.to_pylist() == [
        '{"n": 1}',
        '{"x": {"id": 3}}',
        '{"x": {"id": 3}}',
        None,
        None,
    ]


def test_a_lone_surrogate_in_an_own_id_becomes_the_replacement_character():
    ids = ["a\ud800b", "\ud83d\ude00", "\\ud800"]  # a lone one, a pair, an escaped backslash
    metas = pa.chunked_array([[json.dumps({"id": own_id}) for own_id in ids]], pa.string())
    assert split_own_id(metas)[0].to_pylist() == ["a\ufffdb", "\U0001f600", "\\ud800"]
