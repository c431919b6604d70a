"""Atomic writes: a file appears whole or not at all, a killed writer's leftovers (and nothing
else) are swept, and a folder's lock admits one holder."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from corpusmill.core.atomic import (
    LockedError,
    atomic_path,
    folder_lock,
    remove_stale_temporaries,
    write_json,
)


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path: Path):
    target = tmp_path / "part.parquet"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer died")
    assert list(tmp_path.iterdir()) == []


def test_a_finished_write_replaces_the_old_file(tmp_path: Path):
    target = tmp_path / "stats.json"
    write_json(target, {"b": 1, "a": [1, 2]})
    write_json(target, {"b": 2})
    assert target.read_text() == '{\n  "b": 2\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]


def test_a_killed_writers_temporaries_are_removed_and_no_other_file(tmp_path: Path):
    (tmp_path / "clean" / "_done").mkdir(parents=True)
    with (
        pytest.raises(KeyboardInterrupt),
        atomic_path(tmp_path / "clean" / "part-1.parquet") as tmp,
    ):
        tmp.write_text("half")
        leftover = tmp_path / "clean" / "_done" / tmp.name.replace("part-1.parquet", "x.json")
        leftover.write_text("half")  # as a killed writer leaves it
        raise KeyboardInterrupt
    kept = [
        tmp_path / "clean" / "part-00000.parquet",
        tmp_path / "clean" / ".hidden",
        tmp_path / "clean" / ".notes.tmp",
        tmp_path / "clean" / ".part-00001.parquet.3f2a.tmp",
        tmp_path / "a.tmp",
    ]
    for path in kept:
        path.write_text("x")
    assert remove_stale_temporaries(tmp_path / "clean" / "_done", recursive=False) == 1
    assert not leftover.exists()
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)
    assert remove_stale_temporaries(tmp_path / "missing") == 0


def test_a_lock_is_exclusive_and_released(tmp_path: Path):
    lock = tmp_path / "run.lock"
    with folder_lock(lock):
        holder = json.loads(lock.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(LockedError, match=f"pid {os.getpid()} on"), folder_lock(lock):
            pass
        assert json.loads(lock.read_text()) == holder
    assert not lock.exists()


@pytest.mark.parametrize("content", ["", "{", '{"pid": "12", "host": "h", "started": "t"}'])
def test_an_empty_or_damaged_lock_is_not_taken_over(tmp_path: Path, content: str):
    lock = tmp_path / "run.lock"
    lock.write_text(content)
    with pytest.raises(LockedError, match="a run that is starting, or one whose lock file is dam"):
        with folder_lock(lock):
            pass
    assert lock.read_text() == content
