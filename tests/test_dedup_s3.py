"""The dedup stage with its run folder on an object store (an S3 server on 127.0.0.1,
tests/conftest.py): every file it writes has the bytes of a local run's, and a rerun redoes
only what is missing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_dedup_stage import clean
from test_dedup_stage import client as client  # noqa: F401 (its fixture)

from corpusmill.core.atomic import write_bytes
from corpusmill.core.storage import ObjectPath, remove
from corpusmill.pipeline.dedup.stage import DedupConfig, run_dedup
from corpusmill.pipeline.worker_storage import credentials_on_workers


def upload(folder: Path, destination: ObjectPath) -> None:
    """Copy every file below a local folder to the same names below `destination`."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            write_bytes(destination / path.relative_to(folder).as_posix(), path.read_bytes())


def objects(folder: ObjectPath) -> dict[str, ObjectPath]:
    """The objects below `folder`, by their names relative to it."""
    found = folder.fs.find(folder.path)
    return {name[len(folder.path) + 1 :]: folder / name[len(folder.path) + 1 :] for name in found}


def modified(folder: ObjectPath) -> dict[str, object]:
    """When each object below `folder` was last written."""
    return {name: path.fs.info(path.path)["LastModified"] for name, path in objects(folder).items()}


@pytest.mark.parametrize(
    "config",
    [DedupConfig(), DedupConfig(local_max_edges=0, partition_edges=20)],
    ids=["local components", "distributed components"],
)
def test_dedup_on_an_object_store_writes_a_local_runs_bytes_and_resumes(
    client,  # noqa: F811
    s3_bucket,
    tmp_path,
    config,
):
    with credentials_on_workers(client, s3_bucket.options):
        local = clean(tmp_path / "local", client, 256 << 10)
        run = s3_bucket / "run"
        upload(local / "clean", run / "clean")
        stats = run_dedup(local, config, client)
        assert stats["removed"]["near"]["docs"] > 0 and stats["removed"]["exact"]["docs"] > 0

        remote_stats = run_dedup(run, config, client)
        assert {k: v for k, v in remote_stats.items() if k != "seconds"} == {
            k: v for k, v in stats.items() if k != "seconds"
        }
        files = {
            path.relative_to(local / "dedup").as_posix(): path
            for path in (local / "dedup").rglob("*")
            if path.is_file() and path.name != "_done.json"
        }
        written = objects(run / "dedup")
        assert set(written) == {*files, "_done.json"}
        assert len(files) > 8 * 5
        for name, path in files.items():
            assert written[name].read_bytes() == path.read_bytes(), name

        assert run_dedup(run, config, client) == remote_stats  # finished: skipped
        remove(run / "dedup" / "_done.json")
        redone = "signatures/part-00003.arrow"
        remove(run / "dedup" / redone)
        before = modified(run / "dedup" / "signatures")
        time.sleep(1.1)  # the store's times are in whole seconds: a rewrite must show
        run_dedup(run, config, client)
        after = modified(run / "dedup" / "signatures")
        assert {name for name in after if after[name] != before.get(name)} == {"part-00003.arrow"}
        assert (run / "dedup" / redone).read_bytes() == files[redone].read_bytes()
        removed = "removed.parquet"
        assert (run / "dedup" / removed).read_bytes() == files[removed].read_bytes()
