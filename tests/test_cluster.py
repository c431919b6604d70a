"""Running a stage's tasks on Dask: how local workers are set up, every task ends, and the
failed ones are named together."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from distributed import Client

from corpusmill.core.errors import StageError
from corpusmill.pipeline.cluster import dask_client, run_tasks


def square_into(task: int, folder: Path) -> None:
    if task == 3:
        raise ValueError("bad record in part 3")
    (folder / str(task)).write_text(str(task * task))


def test_one_failed_task_is_named_after_all_others_finished(tmp_path: Path):
    with (
        Client(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
        ) as client,
        pytest.raises(StageError) as error,
    ):
        run_tasks(
            client,
            square_into,
            [1, 2, 3, 4],
            describe=lambda t: f"part {t}",
            desc="demo",
            folder=tmp_path,
        )
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"1": "1", "2": "4", "4": "16"}
    assert str(error.value) == (
        "demo: these tasks failed (finished ones are kept; rerun the same command to retry):\n"
        "part 3: ValueError: bad record in part 3"
    )


def test_a_failed_task_on_local_workers_is_one_line_without_a_traceback(capfd):
    with dask_client("", 1) as client, pytest.raises(StageError) as error:
        run_tasks(client, lambda t: 1 // (t - 2), [1, 2, 3], describe=str, desc="demo")
    assert str(error.value).splitlines()[1:] == [
        "2: ZeroDivisionError: integer division or modulo by zero"
    ]
    err = capfd.readouterr().err
    assert "Compute Failed" not in err and "Traceback" not in err


def test_local_workers_keep_glibc_adaptive_malloc_thresholds(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with dask_client("", 1) as client:
        environments = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert list(environments.values()) == [None]


def test_workers_allocate_arrow_memory_with_the_system_allocator():
    def arrow_pool() -> str:
        import pyarrow as pa

        return pa.default_memory_pool().backend_name

    with dask_client("", 2) as client:
        assert list(client.run(arrow_pool).values()) == ["system", "system"]
