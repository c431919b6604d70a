"""The report's whole-run compression: an input split is read one batch at a time and gives the
figures of the whole split compressed at once (the streams by streaming compressors); a clean
part's figures do not depend on the batch size; the deduplicated figures count the text the lines
stage left; the report of a run on S3 equals that of its local copy."""

from __future__ import annotations

import gc
import gzip
import os
import random
import subprocess
import weakref
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from test_dedup_s3 import upload
from test_lines import CORPUSMILL, lines_run

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.readers.records import ReadBatch
from corpusmill.report import stages
from corpusmill.report.build import build_report
from corpusmill.report.config import ReportConfig

WORDS = "tree street city water heat summer shade park river garden school bridge".split()


def texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 80))) for _ in range(count)]


@pytest.fixture(scope="module")
def client():
    with dask_client("", 2) as client:
        yield client


@pytest.fixture(scope="module")
def run(tmp_path_factory, client) -> Path:
    """test_lines.py's run of 40 documents, deduplicated and its frequent lines removed."""
    return lines_run(tmp_path_factory.mktemp("report_stages"), client, **{"dedup.enabled": True})


def test_an_input_split_is_read_one_batch_at_a_time_with_the_figures_of_the_whole(monkeypatch):
    batches = [texts(20, seed) for seed in range(6)]
    yielded: list[weakref.ref] = []
    held_at_resume: list[int] = []

    def read_split(split, read):
        for index, batch in enumerate(batches):
            docs = pa.table(
                {
                    "id": [f"{index}-{row}" for row in range(len(batch))],
                    "text": batch,
                    "source": [f"file-{row % 2}" for row in range(len(batch))],
                }
            )
            yielded.append(weakref.ref(docs))
            yield ReadBatch(docs, pa.table({}), {})
            del docs
            gc.collect()
            held_at_resume.append(sum(ref() is not None for ref in yielded))

    monkeypatch.setattr(stages, "read_split", read_split)
    raw = stages.raw_split(None, None)["raw"]

    # When the reader is asked for the next batch, only the last one is still held.
    assert held_at_resume == [1] * len(batches)
    encoded = [text.encode() for batch in batches for text in batch]
    stream = b"".join(encoded)
    zstd = zstandard.ZstdCompressor(level=19)
    assert raw["by_language"] == {
        "unknown": {
            "docs": len(encoded),
            "bytes": len(stream),
            "gzip -9": sum(len(gzip.compress(text, 9, mtime=0)) for text in encoded),
            "zstd -3": sum(len(zstandard.ZstdCompressor(level=3).compress(t)) for t in encoded),
            "zstd -19": sum(len(zstd.compress(text)) for text in encoded),
        }
    }
    assert raw["by_source"]["file-0"]["docs"] == raw["by_source"]["file-1"]["docs"] == 60
    streaming = zstd.compressobj()
    one_stream = raw["stream"]["all"]
    assert one_stream["gzip -9"] == len(gzip.compress(stream, 9, mtime=0))
    assert one_stream["zstd -19"] == len(streaming.compress(stream) + streaming.flush())
    # A streaming frame does not record its size: a few bytes from one-shot compression.
    assert abs(one_stream["zstd -19"] - len(zstd.compress(stream))) <= 16


def test_a_clean_part_gives_the_same_figures_whatever_its_batch_size(run, tmp_path, monkeypatch):
    parts = RunLayout(run).clean_parts()
    whole = [stages.clean_part(part, run, str(tmp_path / "whole")) for part in parts]
    monkeypatch.setattr(stages, "BATCH_ROWS", 3)
    batched = [stages.clean_part(part, run, str(tmp_path / "batched")) for part in parts]
    assert batched == whole
    assert pq.read_table(tmp_path / "batched").equals(pq.read_table(tmp_path / "whole"))
    assert pq.read_table(tmp_path / "whole").num_rows == 40
    assert (
        max(
            pq.ParquetFile(path).metadata.num_rows
            for path in RunLayout(run).clean.iterdir()
            if path.suffix == ".parquet"
        )
        > 3
    )


def test_deduplicated_figures_count_the_text_left_by_the_lines_stage(run, client, tmp_path):
    figures = stages.stage_compression(run, client, tmp_path / "documents")["stages"]
    dataset = pq.read_table(RunLayout(run).dataset, columns=["text"])["text"].to_pylist()
    deduplicated = figures["deduplicated"]["total"]
    assert deduplicated["docs"] == len(dataset) == 39
    assert deduplicated["bytes"] == sum(len(text.encode()) for text in dataset)
    assert figures["clean"]["total"]["bytes"] > deduplicated["bytes"]


def test_the_report_of_a_run_on_s3_equals_the_report_of_its_local_copy(
    run, client, s3_bucket, tmp_path
):
    upload(run, s3_bucket / "run")
    config = ReportConfig(held_out_bytes=2000, ngram_order=2)
    local = build_report(run, config, client=client, documents=tmp_path / "local")
    remote = build_report(s3_bucket / "run", config, client=client, documents=tmp_path / "s3")
    assert figures(remote) == figures(local)
    assert remote["stages"]["stages"]["deduplicated"]["total"]["docs"] == 39
    assert pq.read_table(tmp_path / "s3").equals(pq.read_table(tmp_path / "local"))


def test_the_report_of_a_run_on_s3_is_written_to_a_local_folder_named_after_it(
    run, s3_server, s3_bucket, tmp_path
):
    upload(run, s3_bucket / "run")
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.options["key"],
        "AWS_SECRET_ACCESS_KEY": s3_server.options["secret"],
    }
    command = [CORPUSMILL, "report", s3_bucket / "run", "--held-out-bytes", 2000, "--workers", 1]
    done = subprocess.run(
        list(map(str, command)), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    dest = tmp_path / "report-run"
    assert "the report goes to report-run" in done.stderr
    assert (dest / "report.json").is_file()
    assert pq.read_table(dest / "documents").num_rows == 40


def figures(report: dict) -> dict:
    """A report without its timings and the places of its files."""
    report = {key: value for key, value in report.items() if key != "seconds"}
    report["models"] = {
        name: {key: value for key, value in model.items() if key != "seconds"}
        for name, model in report["models"].items()
    }
    report["tokenizer"] = {k: v for k, v in report["tokenizer"].items() if k != "file"}
    report["stages"] = {k: v for k, v in report["stages"].items() if k != "documents"}
    return report
