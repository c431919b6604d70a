"""`corpusmill run` from s3:// inputs to an s3:// output folder, against an S3 server on 127.0.0.1
(tests/conftest.py): every object holds the bytes of a local run's file, also on a cluster
started apart that shares no local folder with the output; a rerun rewrites nothing finished,
--force starts afresh (here with the trained tokenizer given), a run killed with SIGKILL finishes
on rerun with the same objects, inspect and export read the run by its URL, and an unreachable
store is one line and exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cluster_apart import cluster_started_apart
from kill_at import KILLED, run_killed_at

from corpusmill.core.atomic import write_bytes
from corpusmill.core.storage import ObjectPath

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
CORPUSMILL = Path(sys.executable).with_name("corpusmill")
SAMPLES = sorted(SAMPLE.glob("*.gz")) + sorted(SAMPLE.glob("*.zst"))
# Ten clean tasks, a trained tokenizer and several shards: every stage writes several files.
SPLITS = ["--read-split-bytes", "262144"]
TRAIN = ["--tokenizer-train", "--tokenizer-vocab-size", "1024"]
SHARDS = ["--shards-tokens-per-shard", "250000"]
ARGS = [*SPLITS, *TRAIN, *SHARDS]
# Files whose bytes hold timings; they are compared without them.
TIMED = {"stats.json", "dedup/_done.json", "tokenize/_done/train.json"}
# Files that name where the run read and wrote; they are compared without the names.
NAMING = {"config.toml", "inputs.json"}
# Config keys a run's config.toml names its place and cluster by.
PLACES = {"inputs", "out", "scheduler", "workers", "storage"}


def corpusmill(
    *args: Any, env: dict[str, str], command: str = "run", **kwargs: Any
) -> subprocess.CompletedProcess:
    """`corpusmill -q COMMAND ARGS...`, its output captured."""
    return subprocess.run(
        [CORPUSMILL, "-q", command, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def objects(root: ObjectPath) -> dict[str, bytes]:
    """Every object below `root`, by its name relative to it."""
    return {
        name.removeprefix(f"{root.path}/"): root.fs.cat_file(name)
        for name in sorted(root.fs.find(root.path))
    }


def local_files(root: Path) -> dict[str, bytes]:
    """Every file below `root`, by its name relative to it."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def comparable(files: dict[str, bytes]) -> dict[str, Any]:
    """A run's files with their timings and the names of its places left out."""
    return {name: _comparable(name, data) for name, data in files.items()}


@pytest.fixture(scope="module")
def env(s3_server) -> dict[str, str]:
    """The environment of a run that reaches the S3 server: its endpoint and credentials."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.options["key"],
        "AWS_SECRET_ACCESS_KEY": s3_server.options["secret"],
    }


@pytest.fixture(scope="module")
def inputs(s3_server) -> list[str]:
    """The sample crawl in a bucket, as the globs a run is given."""
    bucket = s3_server.bucket()
    for path in SAMPLES:
        bucket.fs.put_file(str(path), f"{bucket.path}/sample/{path.name}")
    return [f"{bucket}/sample/*.gz", f"{bucket}/sample/*.zst"]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    """A local run of the sample crawl on one worker."""
    out = tmp_path_factory.mktemp("local") / "out"
    done = corpusmill(*SAMPLES, *ARGS, "--workers", "1", "--out", out, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def reference(local_run) -> dict[str, Any]:
    """The files of the local run, comparable with another run's."""
    return comparable(local_files(local_run))


@pytest.fixture(scope="module")
def remote(s3_server, inputs, env, tmp_path_factory) -> ObjectPath:
    """A run from the bucket of inputs to another bucket, on a scheduler and two workers started
    apart, which are given neither the storage's address nor its credentials, nor a folder to
    share: the client, the scheduler and each worker run in a working directory (and TMPDIR) of
    their own, where no file of the run stays."""
    out = s3_server.bucket() / "run"
    cluster = tmp_path_factory.mktemp("cluster")
    cwd = tmp_path_factory.mktemp("cwd")
    with cluster_started_apart(cluster, workers=2, own_folders=True) as (address, _):
        done = corpusmill(*inputs, *ARGS, "--scheduler", address, "--out", out, env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert list(cwd.iterdir()) == []
    for process in ("scheduler", "worker-0", "worker-1"):
        assert [path.name for path in (cluster / process).iterdir()] == ["tmp"]
        left = [
            path
            for path in (cluster / process / "tmp").rglob("*")
            if path.is_file() and "dask-scratch-space" not in path.parts
        ]
        assert left == []
    return out


def test_a_run_from_s3_to_s3_on_a_cluster_apart_writes_the_bytes_of_a_local_run(remote, reference):
    written = objects(remote)
    assert comparable(written) == reference
    assert {"index.json", "shard-00002.arrow", "dedup/removed/part-00009.arrow"} <= written.keys()
    assert "run.lock" not in written


def test_inspect_verifies_and_decodes_a_run_on_s3_as_its_local_copy(remote, local_run, env):
    shown = [
        corpusmill(out, "--verify", "--show", "3", env=env, command="inspect")
        for out in (remote, local_run)
    ]
    assert [done.returncode for done in shown] == [0, 0], shown[0].stderr
    remote_text, local_text = (done.stdout for done in shown)
    assert remote_text.startswith(f"{remote}: 8 shards, 328 documents, ")
    assert remote_text.replace(str(remote), str(local_run)) == local_text
    assert "verify: the tokenizer and all 8 shards match their checksums" in remote_text


@pytest.mark.parametrize("how", [["--format", "jsonl"], ["--format", "llmc", "--name", "sample"]])
def test_export_writes_from_a_run_on_s3_the_files_of_its_local_copy(
    remote, local_run, env, tmp_path, how
):
    exported = []
    for out, dest in ((remote, tmp_path / "remote"), (local_run, tmp_path / "local")):
        done = corpusmill(out, dest, *how, env=env, command="export")
        assert done.returncode == 0, done.stderr
        exported.append(local_files(dest))
    assert exported[0] == exported[1] and len(exported[0]) >= 2


def test_a_rerun_on_s3_rewrites_nothing_finished(remote, inputs, env):
    before = _versions(remote)
    done = corpusmill(*inputs, *ARGS, "--workers", "1", "--out", remote, env=env)
    assert done.returncode == 0, done.stderr
    after = _versions(remote)
    rewritten = {name for name in before if after.get(name) != before[name]}
    assert rewritten == {"config.toml", "inputs.json", "stats.json"}
    assert after.keys() == before.keys()


def test_force_on_s3_deletes_the_earlier_runs_objects_but_the_users(
    s3_server, remote, inputs, local_run, reference, env
):
    out = s3_server.bucket() / "run"
    for name in remote.fs.find(remote.path):
        remote.fs.copy(name, out.path + name.removeprefix(remote.path))
    other = ["--tokenizer-vocab-size", "1000"]
    refused = corpusmill(*inputs, *ARGS, *other, "--workers", "1", "--out", out, env=env)
    assert refused.returncode == 2
    assert f"{out} holds the output of another run (changed: tokenizer.vocab_size)" in (
        refused.stderr
    )
    write_bytes(out / "shard-00099.arrow", b"a shard of an earlier plan")
    write_bytes(out / "notes.txt", b"the user's own")
    # The tokenizer the first run trained, given this time: copied into the run, not trained.
    given = [*SPLITS, "--tokenizer", local_run / "tokenizer.json", *SHARDS]
    done = corpusmill(*inputs, *given, "--workers", "1", "--force", "--out", out, env=env)
    assert done.returncode == 0, done.stderr
    written = comparable(objects(out))
    assert written.pop("notes.txt") == b"the user's own"
    varying = {"config.toml", "stats.json", "tokenize/_done/train.json"}
    assert {name for name in reference if name not in written} == {"tokenize/_done/train.json"}
    assert {name: data for name, data in written.items() if name not in varying} == {
        name: data for name, data in reference.items() if name not in varying
    }


# Killed while an object is being uploaded; the local kill tests (test_resume.py) cover every
# stage's moments, which the object writes do not change.
@pytest.mark.parametrize("moment", ["tokenize, shard being written"])
def test_a_run_on_s3_killed_with_sigkill_finishes_on_rerun_with_the_same_objects(
    s3_server, inputs, reference, env, tmp_path, moment
):
    out = s3_server.bucket() / "run"
    command = [CORPUSMILL, "-q", "run", *inputs, *ARGS, "--workers", "1", "--out", out]
    assert run_killed_at(command, moment, tmp_path, env) == KILLED
    assert not (out / "index.json").exists()
    done = corpusmill(*inputs, *ARGS, "--workers", "1", "--out", out, env=env)
    assert done.returncode == 0, done.stderr
    assert comparable(objects(out)) == reference


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "cannot reach http://127.0.0.1:9"),
        ({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "no credentials for"),
    ],
)
def test_an_unreachable_store_is_one_line_and_exit_2_before_a_cluster_starts(
    inputs, env, tmp_path, change, says
):
    home = tmp_path / "home"
    home.mkdir()
    # Nor credentials of the machine's user or its instance role.
    elsewhere = {"AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"}
    changed = {name: value for name, value in env.items() if name not in elsewhere}
    changed.update(change, HOME=str(home), AWS_EC2_METADATA_DISABLED="true")
    done = corpusmill(*inputs, "--out", "s3://outb/run1", env=changed, cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("corpusmill run: s3://outb/run1: ") and says in line
    assert list(tmp_path.iterdir()) == [home]


@pytest.mark.parametrize(
    ("command", "args"), [("inspect", ["--verify"]), ("export", ["dest", "--format", "llmc"])]
)
def test_a_command_reading_a_run_on_an_unreachable_store_is_one_line_and_exit_2(
    env, tmp_path, command, args
):
    unreachable = {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    done = corpusmill("s3://outb/run1", *args, env=unreachable, command=command, cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"corpusmill {command}: s3://outb/run1: cannot reach http://127.0.0.1:9")
    assert list(tmp_path.iterdir()) == []


def test_an_output_url_without_a_bucket_is_refused_in_one_line(inputs, env, tmp_path):
    done = corpusmill(*inputs, "--out", "s3:///run1", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "corpusmill run: s3:///run1 names no bucket: write s3://BUCKET/PREFIX"
    )


def _versions(root: ObjectPath) -> dict[str, tuple[str, Any]]:
    """Each object's ETag and modification time, by its name relative to `root`."""
    return {
        name.removeprefix(f"{root.path}/"): (info["ETag"], info["LastModified"])
        for name, info in root.fs.find(root.path, detail=True).items()
    }


def _comparable(name: str, data: bytes) -> Any:
    """A file's bytes, or what of them does not depend on when and where the run ran."""
    if name in TIMED:
        return _without_seconds(json.loads(data))
    if name == "config.toml":
        return {
            key: value for key, value in tomllib.loads(data.decode()).items() if key not in PLACES
        }
    if name == "inputs.json":
        return [(file["source"], file["size"]) for file in json.loads(data)["files"]]
    return data


def _without_seconds(value: Any) -> Any:
    """JSON with every "seconds" key removed, at any depth."""
    if isinstance(value, dict):
        return {key: _without_seconds(item) for key, item in value.items() if key != "seconds"}
    return value
