"""Object storage: storage options from the config and the environment, locations by URL, whole
writes under final names, the lock, and one-line errors for an unreachable bucket; against an S3
server on 127.0.0.1 (tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
from pathlib import Path

import fsspec.config
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.core.atomic import (
    LockedError,
    atomic_path,
    folder_lock,
    remove_stale_temporaries,
    write_bytes,
    write_json,
    write_text,
)
from corpusmill.core.errors import UserError
from corpusmill.core.storage import (
    CREDENTIAL_VARIABLES,
    ObjectPath,
    StorageConfig,
    check_storage,
    file_sizes,
    location,
    open_input,
    remove,
    storage_options,
)


def test_config_keys_win_over_the_environment_and_credentials_come_only_from_it():
    environ = {
        "AWS_ENDPOINT_URL": "http://env:9000",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "SECRET",
    }
    assert storage_options(StorageConfig(), environ) == {
        "use_listings_cache": False,
        "endpoint_url": "http://env:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
        "key": "AKID",
        "secret": "SECRET",
    }
    config = StorageConfig(endpoint_url="http://config:9000", region="us-west-2")
    options = storage_options(config, {**environ, "AWS_ENDPOINT_URL_S3": "http://s3-only:1"})
    assert options["endpoint_url"] == "http://config:9000"
    assert options["client_kwargs"] == {"region_name": "us-west-2"}
    assert (
        storage_options(StorageConfig(endpoint_url=""), {"AWS_ENDPOINT_URL_S3": "http://a:1"})[
            "endpoint_url"
        ]
        == "http://a:1"
    )


def test_anonymous_access_sends_no_credentials():
    options = storage_options(StorageConfig(anon=True), {"AWS_ACCESS_KEY_ID": "AKID"})
    assert options == {"use_listings_cache": False, "anon": True}


def test_local_paths_and_file_urls_are_paths_other_urls_object_paths(tmp_path: Path):
    assert location(str(tmp_path)) == tmp_path
    assert location(f"file://{tmp_path}") == tmp_path
    remote = location("s3://outb/run1/", {"key": "k"})
    assert isinstance(remote, ObjectPath) and str(remote) == "s3://outb/run1"
    assert str(remote / "clean" / "part-00000.parquet") == "s3://outb/run1/clean/part-00000.parquet"
    shard = remote / "shard-00003.arrow"
    assert (shard.name, shard.stem, shard.suffix) == ("shard-00003.arrow", "shard-00003", ".arrow")
    assert shard.parent == remote and shard.with_suffix(".json").name == "shard-00003.json"


def test_an_object_path_pickles_with_its_options_and_no_connection(s3_bucket: ObjectPath):
    path = s3_bucket / "a" / "b.txt"
    write_text(path, "hello")
    copy = pickle.loads(pickle.dumps(path))
    assert copy == path and copy.options == s3_bucket.options
    assert copy.read_text() == "hello"


def test_writes_read_list_and_remove_on_an_object_store(s3_bucket: ObjectPath):
    run = s3_bucket / "run1"
    write_json(run / "stats.json", {"b": 1, "a": [1, 2]})
    write_bytes(run / "clean" / "_done" / "part-00000.json", b"{}")
    with atomic_path(run / "clean" / "part-00000.parquet") as tmp:
        pq.write_table(pa.table({"text": ["one", "two"]}), tmp)
    assert (run / "stats.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    assert pq.read_table((run / "clean" / "part-00000.parquet").open("rb"))["text"].to_pylist() == [
        "one",
        "two",
    ]
    assert [p.name for p in (run / "clean").glob("part-*.parquet")] == ["part-00000.parquet"]
    assert (run / "clean").is_dir() and (run / "clean" / "_done" / "part-00000.json").is_file()
    assert [p.name for p in run.iterdir()] == ["clean", "stats.json"]
    assert file_sizes(run) == {"stats.json": len((run / "stats.json").read_bytes())}
    assert (run / "stats.json").stat().st_size == file_sizes(run)["stats.json"]
    write_text(run / "clean2" / "mine.txt", "a sibling whose name starts like the folder's")
    write_text(run / "stats.json.bak", "and a file's")
    remove(run / "clean")
    remove(run / "stats.json")
    assert [p.name for p in run.iterdir()] == ["clean2", "stats.json.bak"]
    remove(run / "clean")  # gone already: nothing to do


@pytest.mark.parametrize("where", ["local", "s3"])
def test_arrow_and_parquet_files_read_back_through_open_input(where, s3_bucket, tmp_path):
    root = s3_bucket if where == "s3" else tmp_path
    table = pa.table({"id": ["a", "b", "c"], "n": [1, 2, 3]})
    with atomic_path(root / "part.arrow") as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    with atomic_path(root / "part.parquet") as tmp:
        pq.write_table(table, tmp)
    with open_input(root / "part.arrow") as source:
        assert pa.ipc.open_file(source).read_all().equals(table)
    with open_input(root / "part.parquet") as source:
        assert pq.ParquetFile(source).read(columns=["n"])["n"].to_pylist() == [1, 2, 3]


def test_a_failed_write_leaves_no_object_and_no_local_temporary(s3_bucket: ObjectPath, tmp_path):
    target = s3_bucket / "run" / "part-00000.parquet"
    write_bytes(target, b"the old part")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half of a new part")
        temporary = tmp
        raise RuntimeError("writer died")
    assert target.read_bytes() == b"the old part"
    assert not temporary.exists()
    with pytest.raises(RuntimeError), atomic_path(s3_bucket / "run" / "new.parquet") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer died")
    assert [p.name for p in (s3_bucket / "run").iterdir()] == ["part-00000.parquet"]
    assert remove_stale_temporaries(s3_bucket / "run") == 0


def test_a_large_upload_that_fails_midway_is_aborted_leaving_no_object(
    s3_bucket: ObjectPath, monkeypatch
):
    import s3fs

    async def broken_parts(*args, **kwargs):
        raise ConnectionResetError("the connection dropped after some parts")

    monkeypatch.setattr(s3fs.S3FileSystem, "_upload_file_part_concurrent", broken_parts)
    target = s3_bucket / "run" / "shard-00000.arrow"
    with pytest.raises(ConnectionResetError), atomic_path(target) as tmp:
        with tmp.open("wb") as handle:  # sparse: past the size s3fs uploads in parts
            handle.truncate(101 << 20)
    assert not target.exists()
    uploads = s3_bucket.fs.call_s3("list_multipart_uploads", Bucket=s3_bucket.path)
    assert uploads.get("Uploads", []) == []


def test_reading_an_object_that_does_not_exist_is_file_not_found(s3_bucket: ObjectPath):
    with pytest.raises(FileNotFoundError):
        (s3_bucket / "index.json").read_text()
    assert not (s3_bucket / "index.json").exists()
    assert file_sizes(s3_bucket / "nothing") == {}
    with pytest.raises(ValueError, match="reading only"):
        (s3_bucket / "x").open("wb")


def test_an_object_store_lock_admits_one_holder(s3_bucket: ObjectPath):
    lock = s3_bucket / "run1" / "run.lock"
    with folder_lock(lock):
        holder = json.loads(lock.read_text())
        assert holder["host"] == socket.gethostname()
        with pytest.raises(LockedError, match="s3://.*/run1 is in use by another run"):
            with folder_lock(lock):
                pass
    assert not lock.exists()


def test_an_object_store_lock_of_a_dead_process_is_taken_over(s3_bucket: ObjectPath):
    lock = s3_bucket / "run.lock"
    dead = {"pid": 2**22 + 12345, "host": socket.gethostname(), "started": "2020-01-01T00:00:00"}
    write_json(lock, dead)
    with folder_lock(lock):
        assert json.loads(lock.read_text())["pid"] != dead["pid"]
    elsewhere = {**dead, "host": "another-machine"}
    write_json(lock, elsewhere)
    with pytest.raises(LockedError, match="another-machine"):
        with folder_lock(lock):
            pass


def test_a_reachable_bucket_passes_the_check(s3_server, s3_bucket: ObjectPath):
    check_storage([f"{s3_bucket}/run1", "/local/path", "gs://other/x"], s3_server.options)


@pytest.mark.parametrize(
    "url, problem",
    [
        ("s3:///run1", "names no bucket"),
        ("s3://no-such-bucket/run1", "bucket no-such-bucket does not exist"),
    ],
)
def test_a_bad_bucket_is_one_line_naming_it(s3_server, url, problem):
    with pytest.raises(UserError, match=problem) as raised:
        check_storage([url], s3_server.options)
    assert "\n" not in str(raised.value)


def test_an_unreachable_endpoint_is_one_line_naming_the_setting(s3_server):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    options = {**s3_server.options, "endpoint_url": f"http://127.0.0.1:{port}"}
    with pytest.raises(UserError, match="cannot reach http://127.0.0.1:.*storage.endpoint_url"):
        check_storage(["s3://outb/run1"], options)


def test_missing_credentials_are_one_line_naming_the_variables(s3_server, monkeypatch, tmp_path):
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    options = storage_options(StorageConfig(endpoint_url=s3_server.endpoint), {})
    with pytest.raises(UserError, match="no credentials .*AWS_ACCESS_KEY_ID"):
        check_storage(["s3://outb/run1"], options)


def test_the_readers_read_s3_inputs_with_the_options_each_input_carries(
    s3_server, s3_bucket: ObjectPath, monkeypatch
):
    from corpusmill.pipeline.readers import ReadConfig, discover_inputs, plan_splits, read_split

    sample = Path(__file__).resolve().parents[1] / "sample_data"
    names = ["crawl-00000.warc.gz", "dump-00000.jsonl.zst"]
    for name in names:
        s3_bucket.fs.put_file(str(sample / name), f"{s3_bucket.path}/in/{name}")
    # Neither the environment nor fsspec's defaults reach the server: only the options given.
    monkeypatch.setattr(fsspec.config, "conf", {})
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(variable, raising=False)
    config = ReadConfig(split_bytes=1 << 20)

    def texts(splits: list) -> list[str]:
        return [
            doc
            for split in splits
            for batch in read_split(split, config)
            for doc in batch.docs.column("text").to_pylist()
        ]

    files = discover_inputs([f"{s3_bucket}/in/"], config, options=s3_server.options)
    splits = [pickle.loads(pickle.dumps(split)) for split in plan_splits(files, config)]
    local = discover_inputs([str(sample / name) for name in names], config)
    assert [file.source for file in files] == names
    assert texts(splits) == texts(plan_splits(local, config)) and len(texts(splits)) > 100
    # Another store's options on one file (another run's, on the same worker) reach only it.
    elsewhere = {**s3_server.options, "endpoint_url": "http://127.0.0.1:9"}
    moved = dataclasses.replace(splits[-1], file=dataclasses.replace(files[-1], options=elsewhere))
    [failed] = read_split(moved, config)
    assert failed.docs.num_rows == 0
    assert failed.rejected.column("reason").to_pylist() == ["error"]
    assert texts(splits[:1]) == texts(plan_splits(local, config)[:1])


def test_the_options_travel_to_a_worker_process_given_the_runs_credentials_in_memory(
    s3_bucket: ObjectPath, monkeypatch
):
    from distributed import Client, LocalCluster

    from corpusmill.pipeline.worker_storage import credentials_on_workers

    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", *CREDENTIAL_VARIABLES.values()):
        monkeypatch.delenv(variable, raising=False)

    def write_pid(path: ObjectPath) -> int:
        write_json(path, {"pid": os.getpid()})
        return os.getpid()

    def plugins(dask_scheduler) -> list[str]:
        return sorted(dask_scheduler.worker_plugins)

    target = s3_bucket / "run" / "from-worker.json"
    cluster = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, Client(cluster) as client:
        without = client.submit(lambda path: sorted(path.options), target).result()
        with credentials_on_workers(client, target.options):
            pid = client.submit(write_pid, target).result()
            [plugin] = [name for name in client.run_on_scheduler(plugins) if "corpusmill" in name]
        after = client.run_on_scheduler(plugins)
    assert without == ["endpoint_url", "use_listings_cache"]
    assert pid != os.getpid()
    assert json.loads(target.read_text()) == {"pid": pid}
    assert plugin.startswith("corpusmill-credentials-") and plugin not in after


def test_a_pickled_object_path_names_its_credentials_by_an_id_kept_through_other_processes(
    s3_server, monkeypatch
):
    options = {**s3_server.options, "key": "AKIA-PICKLE-TEST", "secret": "pickle-secret-value"}
    path = ObjectPath("s3://bucket/run/index.json", options)
    data = pickle.dumps(path)
    assert b"pickle-secret-value" not in data and b"AKIA-PICKLE-TEST" not in data
    assert pickle.loads(data).options == options
    # A process never given them (Dask's scheduler, say) unpickles the rest, botocore finding its
    # own credentials there, and pickles them again by the same id for a worker that has them.
    elsewhere = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    hop = (
        "import pickle, sys\n"
        "path = pickle.load(sys.stdin.buffer)\n"
        "print(sorted(path.options), file=sys.stderr)\n"
        "sys.stdout.buffer.write(pickle.dumps(path))\n"
    )
    passed = subprocess.run(
        [sys.executable, "-c", hop], input=data, env=elsewhere, capture_output=True, check=True
    )
    assert passed.stderr.decode().strip() == "['endpoint_url', 'use_listings_cache']"
    assert pickle.loads(passed.stdout).options == options


def test_a_killed_writers_staged_upload_is_deleted_by_the_next_writer_on_the_host(
    s3_server, s3_bucket: ObjectPath, tmp_path
):
    staging = tmp_path / "tmp"
    staging.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(staging),
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.options["key"],
        "AWS_SECRET_ACCESS_KEY": s3_server.options["secret"],
    }
    killed = (
        "import os, signal, sys\n"
        "from corpusmill.core.atomic import atomic_path\n"
        "from corpusmill.core.storage import location\n"
        "with atomic_path(location(sys.argv[1])) as tmp:\n"
        "    tmp.write_bytes(bytes(1000))\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    writes = (
        "import sys\n"
        "from corpusmill.core.atomic import atomic_path\n"
        "from corpusmill.core.storage import location\n"
        "with atomic_path(location(sys.argv[1])) as tmp:\n"
        "    tmp.write_bytes(b'whole')\n"
    )
    target = s3_bucket / "run" / "shard-00000.arrow"
    first = subprocess.Popen([sys.executable, "-c", killed, str(target)], env=env)
    assert first.wait(timeout=60) == -signal.SIGKILL
    [left] = staging.iterdir()
    assert left.name == f"corpusmill-{socket.gethostname()}-{first.pid}"
    assert [path.stat().st_size for path in left.iterdir()] == [1000]
    assert not target.exists()
    subprocess.run([sys.executable, "-c", writes, str(target)], env=env, check=True)
    assert target.read_bytes() == b"whole"
    assert list(staging.iterdir()) == []


def test_discovery_skips_an_s3_output_folder_inside_the_input_prefix(s3_server, s3_bucket):
    from corpusmill.pipeline.readers import InputError, ReadConfig, discover_inputs

    crawl = s3_bucket / "crawl"
    write_text(crawl / "a.jsonl", '{"text": "a"}\n')
    write_text(crawl / "runner.jsonl", '{"text": "b"}\n')
    write_text(crawl / "run" / "dataset" / "part-00000.jsonl", '{"text": "ours"}\n')
    files = discover_inputs([f"{crawl}/"], ReadConfig(), out=f"{crawl}/run/", options=crawl.options)
    assert [file.source for file in files] == ["a.jsonl", "runner.jsonl"]
    with pytest.raises(InputError, match="matches no file outside the output folder"):
        discover_inputs(
            [f"{crawl}/run"], ReadConfig(), out=str(crawl / "run"), options=crawl.options
        )
