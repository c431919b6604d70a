"""A Dask cluster started apart from corpusmill, as a user starts one: `dask scheduler` and
`dask worker` processes on 127.0.0.1, optionally each in a working directory of its own."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from distributed import Client

BIN = Path(sys.executable).parent


@contextlib.contextmanager
def cluster_started_apart(
    folder: Path, workers: int = 1, own_folders: bool = False
) -> Iterator[tuple[str, list[Path]]]:
    """A scheduler and `workers` single-threaded workers, stopped on leaving: the scheduler's
    address and the files in `folder` each worker's stderr goes to.

    With `own_folders`, each process runs in its own working directory, `folder/scheduler` or
    `folder/worker-N`, with its own temporary folder `tmp` in it (TMPDIR), as on machines that
    share no local path.
    """
    scheduler_file = folder / "scheduler.json"
    logs = [folder / f"worker-{n}.txt" for n in range(workers)]
    dashboard = ["--dashboard-address", ":0"]
    processes = [
        subprocess.Popen(
            [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", *dashboard]
            + ["--scheduler-file", scheduler_file],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **_own_folder(folder / "scheduler", own_folders),
        )
    ]
    for log in logs:
        with log.open("w") as stderr:
            processes.append(
                subprocess.Popen(
                    [BIN / "dask", "worker", "--scheduler-file", scheduler_file, *dashboard]
                    + ["--host", "127.0.0.1", "--nthreads", "1"],
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    **_own_folder(folder / log.stem, own_folders),
                )
            )
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, logs
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _own_folder(cwd: Path, wanted: bool) -> dict[str, object]:
    """Popen's cwd and env for a process in the working directory `cwd` with its TMPDIR in it;
    nothing unless `wanted`."""
    if not wanted:
        return {}
    (cwd / "tmp").mkdir(parents=True)
    return {"cwd": cwd, "env": {**os.environ, "TMPDIR": str(cwd / "tmp")}}
