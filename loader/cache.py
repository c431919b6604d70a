"""A local copy of the shards of a run on an object store, downloaded ahead of use and bounded in
bytes, as MosaicML streaming and litdata keep theirs.

A shard is downloaded to a temporary file, checked against the manifest's size and xxh3 and only
then renamed into the cache, so a cached file is always a whole, verified shard. Its name holds
its checksum, so a run uploaded again never serves an older shard. Before a download, the least
recently used cached files (by modification time, which every use renews) are deleted until the
new shard fits under the bound; the bound covers the whole cache folder, so processes sharing it
(ranks on one machine, a DataLoader's workers) share it too. A shard handed out is locked (a
shared flock) until it is mapped, and eviction skips a file it cannot lock exclusively, so neither
this process's downloads nor another process sharing the cache delete a shard between its hand-out
and its mapping; a mapped shard that is deleted stays readable (its mapping holds the data) until
it is unmapped, and one deleted before it was locked is downloaded again. Shards this process
prefetched and waits for are not evicted by it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from corpusmill.core.atomic import atomic_path, is_temporary
from corpusmill.core.checksums import file_checksum
from corpusmill.core.storage import ObjectPath
from corpusmill.loader.format import FormatError, ShardInfo
from corpusmill.loader.layout import MANIFEST

log = logging.getLogger(__name__)

# 32 GiB: a few hundred shards of the tokenize stage's default size (200 MB), far more than a
# shuffle window touches, and little beside the disk of a training machine.
DEFAULT_CACHE_BYTES = 32 << 30
# Shards downloaded at once: enough to keep a connection to an object store busy while the
# loader reads the shards before them.
_DOWNLOADS = 4
# A temporary file untouched this long is a killed download's, no longer one under way.
_STALE_TEMPORARY_NS = 3600 * 10**9
# Downloads of one shard that another process deleted each time before it was locked.
_ATTEMPTS = 3

T = TypeVar("T")


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/corpusmill/shards`, by default `~/.cache/corpusmill/shards`."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "corpusmill" / "shards"


class ShardCache:
    """The local files of `shards` (as the manifest lists them) of `folder`, a run on an object
    store, under `cache_dir`, holding at most about `max_bytes` (the shards one batch needs at
    once may exceed it)."""

    def __init__(
        self,
        folder: ObjectPath,
        shards: tuple[ShardInfo, ...],
        cache_dir: str | Path | None = None,
        max_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"cache_bytes ({max_bytes}) must be at least 1")
        self.folder, self.shards, self.max_bytes = folder, shards, max_bytes
        self.root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.folder_cache = self.root / hashlib.sha256(folder.url.encode()).hexdigest()[:16]
        self._start()

    def open(self, shard: int, mapper: Callable[[Path], T]) -> T:
        """`mapper` applied to shard `shard`'s local file (downloaded now unless it is cached or
        on its way), which stays locked against eviction until `mapper` returns: it must map
        the file, whose mapping outlives a deletion. A file deleted before it was locked is
        downloaded again."""
        for attempt in range(1, _ATTEMPTS + 1):
            path = self._path(shard)
            try:
                with open(path, "rb") as handle:
                    fcntl.flock(handle, fcntl.LOCK_SH)
                    if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                        return mapper(path)
            except FileNotFoundError:
                pass
            log.debug("%s was evicted before it was mapped (attempt %d)", path, attempt)
        raise FormatError(
            f"{self.folder / self.shards[shard].name}: its cached copy in {self.folder_cache} was "
            f"deleted {_ATTEMPTS} times before it could be read; raise cache_bytes, now "
            f"{self.max_bytes}, above what the processes sharing the cache read at once"
        )

    def prefetch(self, shards: Iterable[int]) -> None:
        """Start downloading those of `shards` that are neither cached nor on their way."""
        self._after_fork()
        with self._lock:
            for shard in shards:
                if shard not in self._downloads and not self._cached(shard).is_file():
                    self._submit(shard)

    def _path(self, shard: int) -> Path:
        """The local file of shard `shard`, downloaded now unless it is cached or on its way."""
        self._after_fork()
        with self._lock:
            download = self._downloads.get(shard) or self._submit(shard)
        try:
            return download.result()
        finally:
            with self._lock:
                if self._downloads.get(shard) is download:
                    del self._downloads[shard]

    def __getstate__(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in self.__dict__.items()
            if key not in ("_pid", "_lock", "_downloads", "_pool")
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start()

    def _start(self) -> None:
        """The state a process builds for itself: no thread or lock survives a fork or a pickle."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._downloads: dict[int, Future[Path]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def _after_fork(self) -> None:
        """Start afresh in a forked process: the parent's threads are not here, and its lock may
        have been held when it forked."""
        if self._pid != os.getpid():
            self._start()

    def _submit(self, shard: int) -> Future[Path]:
        """Queue shard `shard`'s download (or the renewal of its cached file); the lock is held."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_DOWNLOADS, thread_name_prefix="corpusmill-download")
        download = self._pool.submit(self._fetch, shard)
        self._downloads[shard] = download
        return download

    def _cached(self, shard: int) -> Path:
        """Where shard `shard` is cached: its name with its checksum."""
        info = self.shards[shard]
        stem, _, suffix = info.name.rpartition(".")
        return self.folder_cache / f"{stem}.{info.xxh3}.{suffix}"

    def _fetch(self, shard: int) -> Path:
        """Shard `shard`'s cached file, its use recorded; downloaded and checked if missing."""
        path = self._cached(shard)
        try:
            os.utime(path)
            return path
        except FileNotFoundError:
            pass
        info = self.shards[shard]
        remote = self.folder / info.name
        self._make_room(info.size)
        log.debug("downloading %s (%d bytes) to %s", remote, info.size, path)
        with atomic_path(path) as tmp:
            remote.fs.get_file(remote.path, str(tmp))
            size = tmp.stat().st_size
            digest = file_checksum(tmp) if size == info.size else None
            if digest != info.xxh3:
                found = f"xxh3 {digest}" if digest else f"{size} bytes"
                expected = f"xxh3 {info.xxh3}" if digest else f"{info.size}"
                raise FormatError(
                    f"{remote}: {found}, the manifest {self.folder / MANIFEST} says "
                    f"{expected}; the object was damaged or replaced: upload the run again or "
                    "rerun the tokenize stage"
                )
        return path

    def _make_room(self, size: int) -> None:
        """Delete the least recently used cached shards until `size` more bytes fit, sparing the
        shards this process waits for, downloads under way (a killed download's temporary goes
        after an hour untouched) and shards locked until they are mapped, by any process; a file
        another process deletes first is skipped."""
        with self._lock:
            waiting = {self._cached(shard) for shard in self._downloads}
        files = []
        for folder in self.root.glob("*"):
            for entry in os.scandir(folder) if folder.is_dir() else ():
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                files.append((stat.st_mtime_ns, stat.st_size, Path(entry.path)))
        total = sum(file_size for _, file_size, _ in files)
        stale = time.time_ns() - _STALE_TEMPORARY_NS
        for mtime, file_size, path in sorted(files):
            if total + size <= self.max_bytes:
                return
            if path in waiting or (is_temporary(path) and mtime > stale):
                continue
            if _evict(path):
                total -= file_size
        if total + size > self.max_bytes:
            log.debug(
                "cache %s: %d bytes in use and %d to come exceed its bound of %d",
                self.root,
                total,
                size,
                self.max_bytes,
            )


def _evict(path: Path) -> bool:
    """Delete a cached file unless a process holds it locked until it has mapped it; True if it
    is gone."""
    try:
        with open(path, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink()
    except FileNotFoundError:
        return True
    except BlockingIOError:
        return False
    return True
