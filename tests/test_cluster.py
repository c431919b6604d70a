"""Running a stage's tasks on Dask: how local workers are set up, every task ends, the failed ones
are named together, progress is told, and the dashboard address given serves."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from corpusmill.core.errors import StageError
from corpusmill.pipeline.cluster import LOCAL_HOST, dashboard_link, dask_client, gather, run_tasks


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


def test_task_progress_off_a_terminal_tells_tasks_and_megabytes_per_second(
    caplog: pytest.LogCaptureFixture,
):
    with (
        Client(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
        ) as client,
        caplog.at_level(logging.INFO, logger="corpusmill.core.progress"),
    ):
        run_tasks(
            client,
            time.sleep,
            [0.1, 0.1, 0.1],
            describe=str,
            desc="demo",
            done=1,
            task_bytes=lambda seconds: int(seconds * 10e6),
        )
    last = [r.getMessage() for r in caplog.records if r.name == "corpusmill.core.progress"][-1]
    assert re.fullmatch(r"demo: 4/4 tasks \(100%\), \d+\.\d MB/s, done in 00:0\d", last), last


def test_the_dashboard_address_serves_the_status_page():
    with dask_client("", 1) as client:
        link = dashboard_link(client)
        assert link.startswith(f"http://{LOCAL_HOST}:") and link.endswith("/status")
        with urllib.request.urlopen(link, timeout=10) as response:
            status, page = response.status, response.read().decode()
    assert status == 200
    assert (
        "<title>Dask Diagnostic UI</title>" in page
        and "bokeh" in page
        and "needs bokeh" not in page
    )


def test_no_dashboard_address_when_the_scheduler_cannot_serve_one(
    monkeypatch: pytest.MonkeyPatch,
):
    # As if bokeh were not installed: the scheduler answers there with a page asking for it.
    monkeypatch.setitem(sys.modules, "distributed.dashboard.scheduler", None)
    with (
        LocalCluster(n_workers=0, host=LOCAL_HOST, dashboard_address=f"{LOCAL_HOST}:0") as cluster,
        Client(cluster) as client,
    ):
        with urllib.request.urlopen(client.dashboard_link, timeout=10) as response:
            assert "Dask needs bokeh" in response.read().decode()
        assert dashboard_link(client) == ""


def test_gather_gives_results_in_order_and_logs_their_progress(caplog: pytest.LogCaptureFixture):
    with (
        Client(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
        ) as client,
        caplog.at_level(logging.INFO, logger="corpusmill.core.progress"),
    ):
        futures = [client.submit(time.sleep, s / 10, pure=False) for s in (3, 1, 2)]
        squares = [client.submit(lambda _, n=n: n * n, f) for n, f in enumerate(futures)]
        assert gather(client, squares, "dedup: squares") == [0, 1, 4]
    last = [r.getMessage() for r in caplog.records if r.name == "corpusmill.core.progress"][-1]
    assert last.startswith("dedup: squares: 3/3 tasks (100%), done in ")


def test_gather_raises_the_first_failure_without_waiting_for_the_rest():
    with Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
    ) as client:
        slow = client.submit(time.sleep, 4, pure=False)
        failed = client.submit(lambda: 1 // 0, pure=False)
        started = time.monotonic()
        with pytest.raises(ZeroDivisionError):
            gather(client, [slow, failed], "demo")
        assert time.monotonic() - started < 2
