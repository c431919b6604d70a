"""Atomic writes: a file appears whole or not at all, and a killed writer's leftovers are swept."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusmill.pipeline.atomic import atomic_path, remove_stale_temporaries, write_json


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


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path: Path):
    (tmp_path / "clean" / "_done").mkdir(parents=True)
    leftovers = [
        tmp_path / "clean" / ".part-00001.parquet.3f2a.tmp",
        tmp_path / "clean" / "_done" / ".x.json.9.tmp",
    ]
    kept = [
        tmp_path / "clean" / "part-00000.parquet",
        tmp_path / "clean" / ".hidden",
        tmp_path / "a.tmp",
    ]
    for path in leftovers + kept:
        path.write_text("x")
    assert remove_stale_temporaries(tmp_path) == 2
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)
    assert remove_stale_temporaries(tmp_path / "missing") == 0
