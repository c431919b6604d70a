"""The Dask client a run works on: a local cluster sized to the machine, or an existing cluster."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urljoin

import dask
import pyarrow as pa
from distributed import Client, Future, LocalCluster, as_completed
from distributed.comm.addressing import parse_host_port
from distributed.comm.registry import backends

from corpusmill.core.errors import ConfigError, StageError
from corpusmill.core.logs import LOG_FORMAT
from corpusmill.core.progress import progress

log = logging.getLogger(__name__)

# Seconds to wait for an existing scheduler: long enough for a remote one, short enough that a
# wrong --scheduler is reported before the user wonders (Dask's default is 30 s).
CONNECT_TIMEOUT = 5
# Everything a local cluster opens listens on this address only.
LOCAL_HOST = "127.0.0.1"
# bokeh's script, relative to the dashboard's status page: served only where the dashboard is.
BOKEH_SCRIPT = "static/js/bokeh.min.js"


@contextlib.contextmanager
def dask_client(scheduler: str = "", workers: int = 0) -> Iterator[Client]:
    """Connect to `scheduler`, or start a local cluster of `workers` single-threaded processes.

    Processes, not threads: extraction and filtering hold the GIL for much of their time.
    Local workers keep glibc's adaptive malloc thresholds: Dask's default MALLOC_TRIM_THRESHOLD_
    fixes them, which sends every allocation over 128 KiB to mmap and made the clean stage 15 %
    slower. Every worker allocates Arrow memory with malloc too, and what corpusmill logs on a
    worker reaches this process's log (`_configure_workers`). Workers of an existing cluster
    must have corpusmill installed and see the same input paths.
    """
    if scheduler:
        check_scheduler(scheduler)
        with _connect(scheduler) as client:
            log.info("connected to Dask scheduler %s", scheduler)
            _configure_workers(client, local=False)
            yield client
        return
    n_workers = workers or os.cpu_count() or 1
    with _local_cluster(n_workers) as cluster, Client(cluster) as client:
        log.info("local Dask cluster of %d workers", n_workers)
        _configure_workers(client, local=True)
        yield client


def dashboard_link(client: Client) -> str:
    """The address of the cluster's dashboard if it serves there, else "": a scheduler without
    bokeh answers at that address only with a page asking to install it.

    Asks for bokeh's script beside the status page rather than the page itself, whose every
    request has the scheduler build (and keep for a while) a document of a dozen live plots; and
    asks directly, not through an HTTP proxy the environment names, which cannot reach a local
    cluster's 127.0.0.1."""
    link = client.dashboard_link
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        request = urllib.request.Request(urljoin(link, BOKEH_SCRIPT), method="HEAD")
        with direct.open(request, timeout=CONNECT_TIMEOUT):
            return link
    except (OSError, ValueError) as exc:
        log.info(
            "the Dask dashboard at %s does not serve (%s); install bokeh where the scheduler "
            "runs to have one",
            link,
            exc,
        )
        return ""


def check_scheduler(address: str) -> None:
    """Raise ConfigError unless `address` reads as a Dask scheduler's, like tcp://HOST:8786."""
    scheme, _, location = address.rpartition("://")
    if scheme not in ("", *backends) or scheme == "inproc" or not _is_host_port(location):
        raise ConfigError(
            f"--scheduler {address!r} is not a Dask scheduler address; give one like "
            "tcp://HOST:8786"
        )


def _is_host_port(location: str) -> bool:
    """True if `location` is a host and a port, as Dask's network protocols address them."""
    try:
        parse_host_port(location)
    except ValueError:
        return False
    return True


def _connect(scheduler: str) -> Client:
    """A client of the scheduler at `scheduler`, or ConfigError once CONNECT_TIMEOUT passed."""
    try:
        return Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s")
    except OSError:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT} s; "
            "check --scheduler and that the scheduler runs"
        ) from None


def _local_cluster(n_workers: int) -> LocalCluster:
    """A cluster of `n_workers` single-threaded worker processes listening on LOCAL_HOST only.

    The workers start with SIGINT ignored, which they inherit: a Ctrl-C then reaches the client
    alone, which shuts them down, instead of every process printing its own traceback. (A Ctrl-C
    in the second the cluster takes to start is lost with them.)
    """
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            return LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                host=LOCAL_HOST,
                dashboard_address=f"{LOCAL_HOST}:0",
                silence_logs=logging.ERROR,
            )
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)


def _configure_workers(client: Client, local: bool) -> None:
    """Have corpusmill's log records on every worker, at this process's level, handled by this
    process's loggers (each once: a local cluster's workers, which share the user's terminal,
    print none themselves); set each worker up for corpusmill's tasks."""
    level = logging.getLogger("corpusmill").getEffectiveLevel()
    client.forward_logging("corpusmill")
    client.run(_configure_worker, level, local)


def _configure_worker(level: int, local: bool) -> None:
    """Set a worker up for corpusmill's tasks; idempotent, as a cluster outlives a run.

    Arrow allocates with the system's malloc rather than its bundled mimalloc, with which the
    quality filters took a fifth longer and workers peaked higher. corpusmill's log lines (a
    damaged file and its offset) are logged at the client's level; a worker of a cluster started
    apart also prints them to its own stderr, in the client's format. On a `local` cluster,
    Dask's own report of a failed task, traceback and all, shows only from -v on."""
    pa.set_memory_pool(pa.system_memory_pool())
    logger = logging.getLogger("corpusmill")
    logger.propagate = False
    if not local and not any(getattr(handler, "corpusmill", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.corpusmill = True
        logger.addHandler(handler)
    logger.setLevel(level)
    dask_worker = logging.getLogger("distributed.worker")
    if local and not any(isinstance(f, _TaskFailureFilter) for f in dask_worker.filters):
        dask_worker.addFilter(_TaskFailureFilter())


class _TaskFailureFilter(logging.Filter):
    """Drops Dask's "Compute Failed" record (task, exception and traceback over several lines),
    which run_tasks reports in one line, unless corpusmill logs at INFO (-v) or below."""

    def filter(self, record: logging.LogRecord) -> bool:
        verbose = logging.getLogger("corpusmill").isEnabledFor(logging.INFO)
        return verbose or not str(record.msg).startswith("Compute Failed")


def run_tasks(
    client: Client,
    function: Callable[..., Any],
    tasks: Sequence[Any],
    describe: Callable[[Any], str],
    desc: str,
    done: int = 0,
    task_bytes: Callable[[Any], int] | None = None,
    **kwargs: Any,
) -> None:
    """Run `function` over tasks on the cluster, showing their progress (starting at `done` tasks
    finished earlier; in MB/s too when `task_bytes` tells a task's bytes of input); raise a
    StageError naming every failed task once all have ended."""
    failures = []
    with progress(desc, done + len(tasks), initial=done) as counts:
        futures = client.map(function, tasks, pure=False, **kwargs)
        by_key = {future.key: task for future, task in zip(futures, tasks, strict=True)}
        for future in as_completed(futures):
            task = by_key[future.key]
            if future.status == "error":
                failures.append(f"{describe(task)}: {_one_line(future.exception())}")
                log.error("%s: %s", desc, failures[-1])
            counts.update(nbytes=task_bytes(task) if task_bytes else 0)
    if failures:
        raise StageError(
            f"{desc}: these tasks failed (finished ones are kept; rerun the same command to "
            "retry):\n" + "\n".join(failures)
        )


def gather(client: Client, futures: Sequence[Future], desc: str, unit: str = "task") -> list[Any]:
    """The results of `futures` in order, as `client.gather` gives them (raising the first
    failure as soon as it happens), showing their progress as they finish."""
    with progress(desc, len(futures), unit) as counts:
        for future in as_completed(futures):
            if future.status == "error":
                break
            counts.update()
    return client.gather(list(futures))


def collected(client: Client, items: Sequence[Any]) -> Future:
    """One future of `items` (futures' results, or values) as a list. Tasks that each take all of
    them take this instead: n such tasks of m inputs then give the scheduler n + m dependencies,
    or one copy of the values, rather than n x m (722 parts' tasks, each on every part's result,
    grew the scheduler and the workers by hundreds of MB)."""
    return client.submit(list, list(items), pure=False)


def release_memory(client: Client) -> None:
    """Hand the heap memory that finished tasks freed back to the system, on every worker and
    here: glibc keeps it for reuse (the longer with the adaptive thresholds workers keep), so
    each stage would otherwise start from the high-water mark of those before it."""
    client.run(_trim_heap, on_error="ignore")  # a worker lost meanwhile is no reason to stop
    _trim_heap()


def _trim_heap() -> None:
    """glibc's malloc_trim(0); nothing under another C library."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _one_line(exc: BaseException) -> str:
    """An exception as its type and the first line of its message, without a traceback."""
    message = str(exc).strip().partition("\n")[0]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
