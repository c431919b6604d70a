"""The Dask client a run works on: a local cluster sized to the machine, or an existing cluster."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from distributed import Client, LocalCluster

log = logging.getLogger(__name__)


@contextlib.contextmanager
def dask_client(scheduler: str = "", workers: int = 0) -> Iterator[Client]:
    """Connect to `scheduler`, or start a local cluster of `workers` single-threaded processes.

    Processes, not threads: extraction and filtering hold the GIL for much of their time.
    Workers of an existing cluster must have corpusmill installed and see the same input paths.
    """
    if scheduler:
        with Client(scheduler, timeout="30s") as client:
            log.info(
                "connected to Dask scheduler %s, dashboard %s", scheduler, client.dashboard_link
            )
            yield client
        return
    n_workers = workers or os.cpu_count() or 1
    with (
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
        yield client
