"""Resuming the clean stage in a folder an earlier split plan wrote: the parts of that plan are
redone or removed, never taken for this plan's."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.clean import run_clean
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.readers import discover_inputs

# Every built-in filter off, so every document read is kept and counts are easy to check.
NO_FILTERS = {
    f"filters.{family}.enabled": False
    for family in ("language", "gopher_repetition", "gopher_quality", "c4", "fineweb")
}


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=1) as client:
        yield client


def clean(inputs: Path, out: Path, client, split_bytes: int) -> RunLayout:
    config = load_config(
        overrides={
            "inputs": (str(inputs),),
            "out": str(out),
            "read.split_bytes": split_bytes,
            **NO_FILTERS,
        }
    )
    layout = RunLayout(out)
    run_clean(config, client, discover_inputs(config.inputs, config.read), layout)
    return layout


def kept_ids(layout: RunLayout) -> list[str]:
    return [
        doc_id
        for index in layout.clean_parts()
        for doc_id in pq.read_table(layout.clean_part(index))["id"].to_pylist()
    ]


def test_a_resumed_run_redoes_the_parts_of_another_plan_and_removes_those_past_its_own(
    tmp_path, client
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(4):
        lines = [json.dumps({"text": f"Document {j} of file {i}, in words."}) for j in range(3)]
        (inputs / f"f{i}.jsonl").write_text("\n".join(lines) + "\n")
    # A split and a task per file, then one task of them all.
    old = clean(inputs, tmp_path / "out", client, split_bytes=(inputs / "f0.jsonl").stat().st_size)
    assert old.clean_parts() == [0, 1, 2, 3]

    resumed = clean(inputs, tmp_path / "out", client, split_bytes=1 << 20)
    fresh = clean(inputs, tmp_path / "fresh", client, split_bytes=1 << 20)
    assert resumed.clean_parts() == fresh.clean_parts() == [0]
    assert kept_ids(resumed) == kept_ids(fresh)
    assert len(set(kept_ids(resumed))) == 12
    assert not list((tmp_path / "out" / "rejected").glob("part-0000[1-3]*"))
    assert not list((tmp_path / "out" / "clean" / "_done").glob("part-0000[1-3]*"))
    marker = json.loads(resumed.clean_marker(0).read_text())
    sizes = [(inputs / f"f{i}.jsonl").stat().st_size for i in range(4)]
    assert marker["splits"] == [[f"f{i}.jsonl", 0, size] for i, size in enumerate(sizes)]
    assert marker["kept"]["docs"] == 12
