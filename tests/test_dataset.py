"""The dataset stage writes the deduplicated corpus as one Parquet dataset: clean's documents but
dedup's removals, in input order, with the input record's own id as `source_id` and its other
fields as a `meta` struct of one type for the whole run, read as it is by pyarrow, HF datasets and
duckdb, and the same bytes with any number of workers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.parquet as pq
import pytest
import zstandard
from test_filters import ENGLISH

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.dataset import split_own_id
from corpusmill.pipeline.meta import JSON_FIELD, meta_kind, plain_meta, typed_meta
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
    assert table.schema.names == DATASET.names
    assert table.schema.remove(len(DATASET) - 1) == DATASET.remove(len(DATASET) - 1)
    assert {pq.read_schema(layout.dataset_part(n)) for n in parts} == {table.schema}
    assert table.schema.field("meta").type.field("meta").type == pa.struct(
        [("lang", pa.string()), ("source", pa.string())]
    )
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
        assert {k: v for k, v in doc["meta"].items() if v is not None} == {
            k: v for k, v in record.items() if k not in ("id", "url", "text")
        }


def test_the_records_own_id_is_no_field_of_meta(finished):
    out, _ = finished
    assert "id" not in pq.read_schema(RunLayout(out).dataset_part(0)).field("meta").type.names


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


# Records whose own fields differ in type, the two files' in different clean parts (splits of at
# most 2,000 bytes): meta's type is decided over all parts, and a field of kinds that do not unify
# is JSON text.
RECORDS = {
    "a.jsonl": [
        {"id": 1, "n": 1, "x": {"a": 1, "b": [1, 2]}, "tag": "s", "flag": True},
        {"id": 2, "n": 2, "x": {"b": []}, "when": "2024-01-01"},
    ],
    "b.jsonl": [
        {"id": "b1", "n": 2.5, "x": {"a": "one", "c": None}, "tag": 3, "extra": {}, "big": 2**70},
        {
            "id": "b2",
            "x": {"a": [1, "z"]},
            "flag": False,
            "deep": {"l": [{"k": 1}, {"k": 2.0, "m": "v"}]},
        },
    ],
}
JSON_TEXT = pa.field("a", pa.string(), metadata=JSON_FIELD)
META = pa.struct(
    [
        ("n", pa.float64()),
        (
            "x",
            pa.struct(
                [JSON_TEXT, ("b", pa.list_(pa.field("element", pa.int64()))), ("c", pa.null())]
            ),
        ),
        JSON_TEXT.with_name("tag"),
        ("flag", pa.bool_()),
        ("when", pa.string()),
        JSON_TEXT.with_name("extra"),
        JSON_TEXT.with_name("big"),
        (
            "deep",
            pa.struct(
                [
                    (
                        "l",
                        pa.list_(
                            pa.field(
                                "element", pa.struct([("k", pa.float64()), ("m", pa.string())])
                            )
                        ),
                    )
                ]
            ),
        ),
    ]
)


def typed_run(tmp_path: Path, client) -> Path:
    """A run without dedup on RECORDS, each record's text an English article."""
    for name, records in RECORDS.items():
        lines = [json.dumps({**record, "text": ENGLISH}) for record in records]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    inputs = tuple(str(tmp_path / name) for name in RECORDS)
    overrides = {
        "inputs": inputs,
        "out": str(out),
        "dedup.enabled": False,
        "read.split_bytes": 2000,
    }
    run_pipeline(load_config(overrides=overrides), client=client)
    return out


@pytest.fixture(scope="module")
def typed(tmp_path_factory, client) -> Path:
    return typed_run(tmp_path_factory.mktemp("typed"), client)


def test_meta_is_a_struct_of_the_fields_types_unified_over_every_part(typed):
    layout = RunLayout(typed)
    parts = {
        own_id: part
        for part in layout.clean_parts()
        for own_id in pq.read_table(layout.dataset_part(part))["source_id"].to_pylist()
    }
    assert parts["1"] != parts["b1"]
    for part in layout.clean_parts():
        meta = pq.read_schema(layout.dataset_part(part)).field("meta")
        assert meta.type.equals(META, check_metadata=True)
    table = pq.read_table(typed / "dataset")
    assert table["source_id"].to_pylist() == ["1", "2", "b1", "b2"]
    first = table["meta"][0].as_py()
    assert (first["n"], first["x"]["a"], first["tag"], first["big"]) == (1.0, "1", '"s"', None)
    assert table["meta"][2].as_py()["big"] == str(2**70)


def test_meta_read_back_holds_each_records_own_fields_as_given(typed):
    metas = plain_meta(pq.read_table(typed / "dataset")["meta"].combine_chunks())
    records = [{k: v for k, v in r.items() if k != "id"} for rs in RECORDS.values() for r in rs]
    # A field a record lacks reads as null, at any depth, and an int in a float field as a float.
    assert [without_nulls(meta) for meta in metas] == [without_nulls(r) for r in records]
    assert metas[0]["x"] == {"a": 1, "b": [1, 2], "c": None}
    assert metas[3]["deep"] == {"l": [{"k": 1.0, "m": None}, {"k": 2.0, "m": "v"}]}
    assert type(metas[0]["n"]) is float and metas[2]["extra"] == {}


def without_nulls(value):
    """A JSON value without the null-valued keys of its objects."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def test_hf_datasets_pandas_and_duckdb_read_the_dataset_as_it_is(typed, tmp_path, monkeypatch):
    table = pq.read_table(typed / "dataset")
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    loaded = datasets.load_dataset(
        "parquet", data_dir=str(typed / "dataset"), cache_dir=str(tmp_path)
    )["train"]
    assert loaded["source_id"] == table["source_id"].to_pylist()
    assert loaded["meta"] == table["meta"].to_pylist()
    pandas = pytest.importorskip("pandas")
    assert pandas.read_parquet(typed / "dataset")["source_id"].tolist() == ["1", "2", "b1", "b2"]
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(
        f"SELECT source_id, meta.n, meta.x.b, meta.deep.l[2].m "
        f"FROM read_parquet('{typed / 'dataset'}/*.parquet') ORDER BY id"
    ).fetchall()
    assert rows == [
        ("1", 1.0, [1, 2], None),
        ("2", 2.0, [], None),
        ("b1", 2.5, None, None),
        ("b2", None, None, "v"),
    ]


def test_the_dataset_is_the_same_bytes_with_one_worker_and_two(typed, tmp_path):
    with dask_client("", 1) as one:
        alone = typed_run(tmp_path, one)
    names = sorted(path.name for path in (typed / "dataset").glob("*.parquet"))
    assert names == sorted(path.name for path in (alone / "dataset").glob("*.parquet"))
    for name in names:
        assert (typed / "dataset" / name).read_bytes() == (alone / "dataset" / name).read_bytes()


def test_a_lone_surrogate_in_meta_becomes_the_replacement_character_and_bools_are_no_ints():
    metas = ['{"k": "a\\ud800", "\\udfff": true}', '{"k": 1, "\\udfff": 2}', None]
    typed = typed_meta(metas, meta_kind(metas))
    assert typed.type == pa.struct(
        [
            pa.field("k", pa.string(), metadata=JSON_FIELD),
            pa.field("\ufffd", pa.string(), metadata=JSON_FIELD),
        ]
    )
    assert typed.to_pylist() == [
        {"k": '"a\ufffd"', "\ufffd": "true"},
        {"k": "1", "\ufffd": "2"},
        None,
    ]
    assert plain_meta(typed) == [{"k": "a\ufffd", "\ufffd": True}, {"k": 1, "\ufffd": 2}, None]
