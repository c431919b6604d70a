"""The Dask client a run works on: a local cluster sized to the machine, or an existing cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dask
import pyarrow as pa
from distributed import Client, LocalCluster, as_completed
from tqdm import tqdm

from corpusmill.pipeline.errors import StageError

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def dask_client(scheduler: str = "", workers: int = 0) -> Iterator[Client]:
    """Connect to `scheduler`, or start a local cluster of `workers` single-threaded processes.

    Processes, not threads: extraction and filtering hold the GIL for much of their time.
    Local workers keep glibc's adaptive malloc thresholds: Dask's default MALLOC_TRIM_THRESHOLD_
    fixes them, which sends every allocation over 128 KiB to mmap and made the clean stage 15 %
    slower. Every worker allocates Arrow memory with malloc too (`_configure_worker`). Workers of
    an existing cluster must have corpusmill installed and see the same input paths.
    """
    level = logging.getLogger("corpusmill").getEffectiveLevel()
    if scheduler:
        with Client(scheduler, timeout="30s") as client:
            log.info(
                "connected to Dask scheduler %s, dashboard %s", scheduler, client.dashboard_link
            )
            client.run(_configure_worker, level)
            yield client
        return
    n_workers = workers or os.cpu_count() or 1
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        log.info("local Dask cluster of %d workers, dashboard %s", n_workers, client.dashboard_link)
        client.run(_configure_worker, level)
        yield client


def _configure_worker(level: int) -> None:
    """Set a worker up for corpusmill's tasks; idempotent, as a cluster outlives a run.

    Arrow allocates with the system's malloc rather than its bundled mimalloc, with which the
    quality filters took a fifth longer and workers peaked higher. corpusmill's log lines (a
    damaged file and its offset) go to the worker's stderr at the client's level and in its
    format."""
    pa.set_memory_pool(pa.system_memory_pool())
    logger = logging.getLogger("corpusmill")
    if not any(getattr(handler, "corpusmill", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.corpusmill = True
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)


def run_tasks(
    client: Client,
    function: Callable[..., Any],
    tasks: Sequence[Any],
    describe: Callable[[Any], str],
    desc: str,
    done: int = 0,
    **kwargs: Any,
) -> None:
    """Run `function` over tasks on the cluster with a progress bar (starting at `done` tasks
    finished earlier); raise a StageError naming every failed task once all have ended."""
    futures = client.map(function, tasks, pure=False, **kwargs)
    by_key = {future.key: task for future, task in zip(futures, tasks, strict=True)}
    failures = []
    total = done + len(tasks)
    with tqdm(total=total, initial=done, desc=desc, unit="task", disable=None) as bar:
        for future in as_completed(futures):
            if future.status == "error":
                failures.append(f"{describe(by_key[future.key])}: {future.exception()!r}")
                log.error("%s: %s", desc, failures[-1])
            bar.update()
    if failures:
        raise StageError(
            f"{desc}: these tasks failed (finished ones are kept; rerun the same command to "
            "retry):\n" + "\n".join(failures)
        )
