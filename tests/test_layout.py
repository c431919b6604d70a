"""The run layout names what a run writes: every file a run leaves in its folder is one of its
names, the names are those the README documents, and `--force`'s list covers the whole run but
the user's own files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from corpusmill.core.storage import ObjectPath
from corpusmill.loader.format import read_manifest
from corpusmill.loader.layout import DEDUP_STEPS, RunLayout
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.run import run_pipeline

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
FILES = ("crawl-00000.warc.gz", "dump-00000.jsonl.zst")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished run on two sample inputs, cut into several parts, deduplicated and tokenized
    with a tokenizer trained in the run."""
    root = tmp_path_factory.mktemp("layout")
    config = load_config(
        overrides={
            "inputs": tuple(str(SAMPLE / name) for name in FILES),
            "out": str(root / "out"),
            "read.split_bytes": 256 << 10,
            "tokenizer.train": True,
            "tokenizer.vocab_size": 512,
            "shards.tokens_per_shard": 100_000,
        }
    )
    with dask_client("", 1) as client:
        run_pipeline(config, client=client)
    return root / "out"


def named_files(layout: RunLayout) -> set[Path]:
    """Every file the layout names for the run in its folder, from its parts, buckets and shards."""
    parts = layout.clean_parts()
    buckets = json.loads(layout.dedup_marker.read_text())["buckets"]
    shards = len(read_manifest(layout.root).shards)
    counts = {"part": parts, "bucket": range(buckets), "partition": range(buckets)}
    return {
        layout.config,
        layout.inputs,
        layout.stats,
        layout.dedup_marker,
        layout.removed,
        layout.train_marker,
        layout.tokenizer,
        layout.tokenizer_config,
        layout.special_tokens_map,
        layout.manifest,
        *(layout.clean_part(n) for n in parts),
        *(layout.rejected_part(n) for n in parts),
        *(layout.signals_part(n) for n in parts),
        *(layout.clean_marker(n) for n in parts),
        *(layout.encoded_marker(n) for n in parts),
        *(layout.dataset_part(n) for n in parts),
        *(layout.dataset_marker(n) for n in parts),
        *(layout.dedup_file(step, n) for step, unit in DEDUP_STEPS.items() for n in counts[unit]),
        *(layout.shard(n) for n in range(shards)),
        *(layout.shard_marker(n) for n in range(shards)),
    }


def test_every_file_a_run_writes_is_named_by_the_layout(finished):
    layout = RunLayout(finished)
    written = {path for path in finished.rglob("*") if path.is_file()}
    assert len(layout.clean_parts()) > 1
    assert len(read_manifest(finished).shards) > 1
    assert written - named_files(layout) == set()
    assert {layout.clean_part(0), layout.removed_part(0), layout.shard(1)} <= written


def test_force_removes_the_whole_run_and_none_of_the_users_files(finished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    layout = RunLayout(out)
    layout.report.mkdir()
    (layout.report / "report.html").write_text("<html></html>")
    users = [out / "notes.txt", out / "mine" / "data.json", out / "shard-notes.txt"]
    users[1].parent.mkdir()
    for path in users:
        path.write_text("mine")
    outputs = layout.outputs()
    covered = {path for path in out.rglob("*") if any(path.is_relative_to(o) for o in outputs)}
    assert set(out.rglob("*")) - covered == {*users, users[1].parent}
    assert layout.report in outputs and layout.lock not in outputs


def test_the_names_are_those_the_readme_documents(tmp_path):
    layout = RunLayout(tmp_path)
    names = {
        "clean/part-00003.parquet": layout.clean_part(3),
        "rejected/part-00003.parquet": layout.rejected_part(3),
        "signals/part-00003.parquet": layout.signals_part(3),
        "clean/_done/part-00003.json": layout.clean_marker(3),
        "dedup/removed.parquet": layout.removed,
        "dedup/removed/part-00003.arrow": layout.removed_part(3),
        "dedup/_done.json": layout.dedup_marker,
        "dedup/pairs/bucket-00002.arrow": layout.dedup_file("pairs", 2),
        "dedup/edges/partition-00002.arrow": layout.dedup_file("edges", 2),
        "tokenize/part-00003.arrow": layout.encoded_part(3),
        "tokenize/_done/part-00003.json": layout.encoded_marker(3),
        "tokenize/_done/shard-00001.json": layout.shard_marker(1),
        "tokenize/_done/train.json": layout.train_marker,
        "shard-00001.arrow": layout.shard(1),
        "index.json": layout.manifest,
        "tokenizer.json": layout.tokenizer,
        "tokenizer_config.json": layout.tokenizer_config,
        "special_tokens_map.json": layout.special_tokens_map,
        "stats.json": layout.stats,
        "config.toml": layout.config,
        "inputs.json": layout.inputs,
        "reference-model.arrow": layout.reference_model,
        "run.lock": layout.lock,
        "report": layout.report,
    }
    assert {name: path.relative_to(tmp_path).as_posix() for name, path in names.items()} == {
        name: name for name in names
    }


def test_a_run_on_an_object_store_has_the_same_names_and_listings(finished, s3_bucket):
    s3_bucket.fs.put(str(finished), f"{s3_bucket.path}/run", recursive=True)
    local, remote = RunLayout(finished), RunLayout(s3_bucket / "run")

    def relative(paths) -> list[str]:
        return [
            str(path).removeprefix(f"{remote.root}/")
            if isinstance(path, ObjectPath)
            else path.relative_to(finished).as_posix()
            for path in paths
        ]

    assert remote.clean_parts() == local.clean_parts()
    assert relative(remote.shards()) == relative(local.shards())
    assert relative(remote.dedup_files("edges")) == relative(local.dedup_files("edges"))
    assert relative(remote.outputs()) == relative(local.outputs())
    assert relative([remote.clean_marker(2), remote.dataset_marker(2), remote.lock]) == [
        "clean/_done/part-00002.json",
        "dataset/.done/part-00002.json",
        "run.lock",
    ]
    assert read_manifest(remote.root) == read_manifest(local.root)
