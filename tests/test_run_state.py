"""What a run records of itself and how a rerun uses it: inputs that changed are refused by name,
--force starts afresh whatever the folder holds, one run at a time holds a folder, only the run's
own files are ever removed, and mistakes are reported in one line before the cluster starts."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import psutil
import pytest
from test_filters import ENGLISH

from corpusmill.cli.main import main
from corpusmill.core.errors import StageError
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import ConfigError, load_config
from corpusmill.pipeline.readers import InputError
from corpusmill.pipeline.run import prepared_run, run_pipeline

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
FILES = ("crawl-00000.warc.gz", "dump-00000.jsonl.zst", "wet-00000.warc.wet.gz")
# Files whose bytes hold timings or the folder's own paths, so differ between equal runs.
UNSTABLE = {"stats.json", "config.toml", "inputs.json", "dedup/_done.json"}


def config_for(inputs: Path | str, out: Path | str, **overrides):
    return load_config(overrides={"inputs": (str(inputs),), "out": str(out), **overrides})


def results(out: Path) -> dict[str, bytes]:
    """Every file a run wrote, by path relative to its folder, but the unstable ones."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and str(p.relative_to(out)) not in UNSTABLE
    }


def refusal(argv: list[str], capsys) -> str:
    """The one line `corpusmill run` prints when it exits 2 without running."""
    assert main(["run", *argv, "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def client():
    with dask_client("", 1) as client:
        yield client


@pytest.fixture(scope="module")
def finished(tmp_path_factory, client) -> Path:
    """A folder of three sample inputs (in/) and the finished run on them (out/)."""
    root = tmp_path_factory.mktemp("finished")
    (root / "in").mkdir()
    for name in FILES:
        shutil.copy2(SAMPLE / name, root / "in" / name)
    run_pipeline(config_for(root / "in", root / "out"), client=client)
    return root


@pytest.fixture
def copied(finished, tmp_path) -> Path:
    """A copy of the finished run and its inputs, modification times kept: the same run."""
    shutil.copytree(finished, tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_a_copy_of_a_run_and_its_inputs_resumes_as_the_same_run(copied, client, finished):
    before = results(copied / "out")
    run_pipeline(config_for(copied / "in", copied / "out"), client=client)
    assert results(copied / "out") == before == results(finished / "out")


def test_a_rerun_without_an_input_is_refused_naming_it(copied, capsys):
    (copied / "in" / "dump-00000.jsonl.zst").unlink()
    err = refusal([str(copied / "in"), "--out", str(copied / "out")], capsys)
    assert "inputs removed: dump-00000.jsonl.zst)" in err and "--force" in err


def test_a_rerun_with_an_added_input_is_refused_naming_it(copied, capsys):
    for i in range(5):
        shutil.copy(SAMPLE / "crawl-00001.warc.gz", copied / "in" / f"more-{i}.warc.gz")
    err = refusal([str(copied / "in"), "--out", str(copied / "out")], capsys)
    assert "inputs added: more-0.warc.gz, more-1.warc.gz, more-2.warc.gz and 2 more)" in err


@pytest.mark.parametrize("change", ["modification time", "size"])
def test_a_rerun_on_a_changed_input_is_refused_naming_it(copied, capsys, change):
    path = copied / "in" / "wet-00000.warc.wet.gz"
    if change == "size":
        before = path.stat()
        path.write_bytes(path.read_bytes()[:-100])
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:
        os.utime(path, (1e9, 1e9))
    err = refusal([str(copied / "in"), "--out", str(copied / "out")], capsys)
    assert "inputs changed: wet-00000.warc.wet.gz)" in err


def test_force_after_an_input_change_gives_the_output_of_a_fresh_run(copied, client, tmp_path):
    (copied / "in" / "dump-00000.jsonl.zst").unlink()
    (copied / "out" / ".notes.tmp").write_text("mine")
    (copied / "out" / "notes.txt").write_text("mine")
    # What `corpusmill report` and a run that tokenized wrote, stale after --force.
    (copied / "out" / "report").mkdir()
    (copied / "out" / "report" / "report.html").write_text("<p>the previous run</p>")
    (copied / "out" / "tokenizer_config.json").write_text("{}")
    (copied / "out" / "special_tokens_map.json").write_text("{}")
    run_pipeline(config_for(copied / "in", copied / "out"), force=True, client=client)
    run_pipeline(config_for(copied / "in", tmp_path / "fresh"), client=client)
    assert results(copied / "out") == {
        **results(tmp_path / "fresh"),
        ".notes.tmp": b"mine",
        "notes.txt": b"mine",
    }
    recorded = json.loads((copied / "out" / "inputs.json").read_text())["files"]
    assert [file["source"] for file in recorded] == ["crawl-00000.warc.gz", "wet-00000.warc.wet.gz"]


def test_force_starts_afresh_when_the_recorded_config_is_damaged(copied, client, finished, capsys):
    (copied / "out" / "config.toml").write_text("[filters\nmin_words = ")
    argv = [str(copied / "in"), "--out", str(copied / "out")]
    assert "its config cannot be read: config file" in refusal(argv, capsys)
    run_pipeline(config_for(copied / "in", copied / "out"), force=True, client=client)
    assert results(copied / "out") == results(finished / "out")


def test_results_without_their_config_are_refused(copied, capsys):
    (copied / "out" / "config.toml").unlink()
    err = refusal([str(copied / "in"), "--out", str(copied / "out")], capsys)
    assert "(clean, rejected, signals and 3 more, and no config.toml of theirs)" in err


def test_the_same_out_spelled_differently_or_moved_is_the_same_run(finished, tmp_path, monkeypatch):
    shutil.copytree(finished / "in", tmp_path / "in")
    shutil.copytree(finished / "out", tmp_path / "o")  # results, so another config is refused
    monkeypatch.chdir(tmp_path)
    for out in ["o", "./o", str(tmp_path / "o"), "in/../o"]:
        with prepared_run(config_for("in", out)) as run:
            assert run.config.out == str(tmp_path / "o")
    (tmp_path / "o").rename(tmp_path / "moved")
    with prepared_run(config_for("./in", "moved")):
        pass
    with pytest.raises(ConfigError, match="changed: read.batch_docs"):
        with prepared_run(config_for("in", "moved", **{"read.batch_docs": 5})):
            pass


def test_how_the_storage_is_reached_never_makes_another_run(finished, tmp_path):
    shutil.copytree(finished / "in", tmp_path / "in")
    shutil.copytree(finished / "out", tmp_path / "out")
    storage = {
        "storage.endpoint_url": "http://127.0.0.1:9000",
        "storage.region": "eu-west-1",
        "storage.anon": True,
    }
    with prepared_run(config_for(tmp_path / "in", tmp_path / "out", **storage)) as run:
        assert run.layout.root == tmp_path / "out"


def test_an_out_inside_an_input_folder_is_not_read_as_input(finished, tmp_path, caplog):
    shutil.copytree(finished / "in", tmp_path / "in")
    out = tmp_path / "in" / "out"
    config = config_for(tmp_path / "in", out)
    with prepared_run(config):
        pass
    shutil.copytree(finished / "out" / "clean", out / "clean")
    ours = sum(path.is_file() for path in out.rglob("*"))
    with caplog.at_level(logging.INFO), prepared_run(config) as run:
        assert [file.source for file in run.files] == sorted(FILES)
    assert f"input {tmp_path / 'in'}: skipped {ours} files in the output folder {out}" in (
        caplog.text
    )
    (tmp_path / "link").symlink_to(tmp_path / "in")  # the same folder by another name
    with prepared_run(config_for(tmp_path / "link", out)) as run:
        assert [file.source for file in run.files] == sorted(FILES)
    with pytest.raises(InputError, match=f"input {out} matches no file outside the output folder"):
        with prepared_run(config_for(out, out)):
            pass


@pytest.mark.parametrize("named", ["its folder", "itself"])
def test_a_file_name_that_is_not_utf8_is_recorded_escaped_and_rerun_as_the_same_run(
    tmp_path, named
):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / os.fsdecode(b"bad\xff.jsonl")).write_text(json.dumps({"text": ENGLISH}))
    spec = tmp_path / "in" / (os.fsdecode(b"bad\xff.jsonl") if named == "itself" else "")
    argv = ["run", str(spec), "--out", str(tmp_path / "out"), "--workers", "1"]
    assert main(argv) == 0
    assert main(argv) == 0
    escaped = str(tmp_path / "in" / "bad\\xff.jsonl")
    recorded = json.loads((tmp_path / "out" / "inputs.json").read_text())["files"]
    assert [(file["source"], file["url"]) for file in recorded] == [("bad\\xff.jsonl", escaped)]
    config = tomllib.loads((tmp_path / "out" / "config.toml").read_text())
    assert config["inputs"] == [escaped if named == "itself" else str(tmp_path / "in")]


def test_a_run_removes_its_own_temporaries_and_leaves_the_users_files(copied, client):
    out = copied / "out"
    ours = out / "clean" / f".part-00000.parquet.{'0' * 32}.corpusmill-tmp"
    ours.write_bytes(b"half")
    users = [out / ".notes.tmp", out / "clean" / ".draft.tmp", out / "keep" / ".x.json.9.tmp"]
    users[-1].parent.mkdir()
    for path in users:
        path.write_text("mine")
    run_pipeline(config_for(copied / "in", out), client=client)
    assert not ours.exists()
    assert [path.read_text() for path in users] == ["mine"] * 3


def lock_of(pid: int, host: str | None = None) -> str:
    host = host or socket.gethostname()
    return json.dumps({"pid": pid, "host": host, "started": "2026-01-01T00:00:00+00:00"})


def test_a_second_run_on_a_locked_folder_is_refused(copied, capsys):
    lock = copied / "out" / "run.lock"
    with subprocess.Popen(["sleep", "60"]) as live:
        lock.write_text(lock_of(live.pid))
        err = refusal([str(copied / "in"), "--out", str(copied / "out")], capsys)
        live.kill()
    assert f"in use by another run (pid {live.pid} on {socket.gethostname()}" in err
    assert f"delete {lock}" in err
    lock.write_text(lock_of(1, host="elsewhere"))
    assert "(pid 1 on elsewhere, started 2026-01-01" in refusal(
        [str(copied / "in"), "--out", str(copied / "out")], capsys
    )
    assert lock.read_text() == lock_of(1, host="elsewhere")


def test_the_lock_of_a_run_that_died_is_taken_over(copied, caplog):
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = copied / "out" / "run.lock"
    lock.write_text(lock_of(dead.pid))
    with caplog.at_level(logging.WARNING), prepared_run(config_for(copied / "in", copied / "out")):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert (
        f"taking over the lock {lock} of a run that no longer runs (pid {dead.pid}" in caplog.text
    )
    assert not lock.exists()


def test_an_out_that_is_a_file_exits_2_in_one_line(finished, tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    err = refusal([str(finished / "in"), "--out", str(tmp_path / "out")], capsys)
    assert f"--out {tmp_path / 'out'} is a file" in err


@pytest.mark.parametrize("address", ["nonsense", "http://127.0.0.1:8786", "tcp://127.0.0.1:1"])
def test_a_wrong_scheduler_fails_fast_in_one_line(finished, tmp_path, capsys, address):
    started = time.monotonic()
    err = refusal(
        [str(finished / "in"), "--out", str(tmp_path / "o"), "--scheduler", address], capsys
    )
    assert time.monotonic() - started < 15
    assert address in err and "--scheduler" in err


def test_a_folder_claimed_by_a_run_that_never_started_takes_another_config(
    finished, tmp_path, capsys
):
    out = tmp_path / "o"
    argv = [str(finished / "in"), "--out", str(out)]
    refusal([*argv, "--scheduler", "tcp://127.0.0.1:1"], capsys)
    assert (out / "config.toml").exists()  # claimed, but nothing ran
    with prepared_run(config_for(finished / "in", out, **{"dedup.enabled": False})) as run:
        assert not run.config.dedup.enabled
    assert "enabled = false" in (out / "config.toml").read_text()


def test_the_local_cluster_listens_on_localhost_only(client):
    pids = {os.getpid(), *client.run(os.getpid).values()}
    addresses = {
        connection.laddr.ip
        for pid in pids
        for connection in psutil.Process(pid).net_connections("inet")
        if connection.status == psutil.CONN_LISTEN
    }
    assert addresses == {"127.0.0.1"}
    assert len(pids) == 2


def test_a_run_that_keeps_no_document_fails_naming_the_reasons(finished, client, tmp_path):
    config = config_for(
        finished / "in", tmp_path / "out", **{"filters.language.languages": ("eo",)}
    )
    with pytest.raises(StageError) as error:
        run_pipeline(config, client=client)
    message = str(error.value)
    assert error.value.exit_code == 1
    assert message.startswith("clean: none of the ") and "\n" not in message
    assert "(most rejected as language:not_allowed: " in message
    assert str(tmp_path / "out" / "rejected") in message
    assert not (tmp_path / "out" / "stats.json").exists()


# A filter of the user's that holds the run inside its clean stage until the test opens a gate,
# so that the run is surely running (its lock held, its work unfinished) when it is interrupted.
GATE_MODULE = """
import time
from pathlib import Path


def hold(docs):
    if docs.num_rows:
        Path({entered!r}).touch()
        while not Path({gate!r}).exists():
            time.sleep(0.01)
    return [True] * docs.num_rows
"""


def test_a_running_run_refuses_a_second_and_ctrl_c_ends_it_quietly_for_a_rerun(
    client, tmp_path, capsys
):
    (tmp_path / "in").mkdir()
    shutil.copy2(SAMPLE / "wet-00000.warc.wet.gz", tmp_path / "in")
    run_pipeline(config_for(tmp_path / "in", tmp_path / "reference"), client=client)
    entered, gate = tmp_path / "entered", tmp_path / "gate"
    module = GATE_MODULE.format(entered=str(entered), gate=str(gate))
    (tmp_path / "corpusmill_test_gate.py").write_text(module)
    (tmp_path / "held.toml").write_text(
        '[[filters.custom]]\ncallable = "corpusmill_test_gate:hold"\n'
    )
    out = tmp_path / "out"
    corpusmill = Path(sys.executable).with_name("corpusmill")
    argv = [corpusmill, "run", tmp_path / "held.toml", tmp_path / "in", "--out", out]
    argv += ["--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    # As from a terminal, the run starts with Ctrl-C's default action, even when this test runs
    # where SIGINT is ignored (a background job of a script), which the run would inherit.
    as_from_a_terminal = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    as_from_a_terminal += "os.execv(sys.argv[1], sys.argv[1:])"
    process = subprocess.Popen(
        [sys.executable, "-c", as_from_a_terminal, *argv],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not entered.exists() and process.poll() is None:
            time.sleep(0.01)
        # A Ctrl-C in the second the cluster starts is lost, so only a run held in its filter
        # is interrupted.
        assert entered.exists(), "the run never reached its held filter"
        second = refusal([str(tmp_path / "in"), "--out", str(out)], capsys)
        assert f"in use by another run (pid {process.pid} on {socket.gethostname()}" in second
        os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it, to every process of the run
        _, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("corpusmill run: ")
    assert not (out / "stats.json").exists() and not (out / "run.lock").exists()
    gate.touch()
    assert subprocess.run(argv, capture_output=True, env=env).returncode == 0
    assert results(out) == results(tmp_path / "reference")
