"""Atomic file writes and the lock of an output folder, local or on an object store.

A local write goes to a temporary name in the same folder, then is renamed into place: a reader
(or a rerun after a crash) sees either no file or the complete file, never a torn one. Temporaries
carry a name only this module makes, so sweeping a killed run's leftovers never touches a user's
files. An object (core/storage.py ObjectPath) is written once, complete, under its final name: a
single PUT of the whole data, or an upload of a finished local temporary file whose multipart
upload is aborted if it fails, so no partial object is ever visible; its temporary file is staged
in a folder of the writing process in the local temporary folder, which the next process on the
host to stage one deletes if that process was killed. The lock (created
exclusively, naming its pid, host and start time) keeps two runs out of one folder.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpusmill.core.errors import UserError
from corpusmill.core.storage import Location, ObjectPath

log = logging.getLogger(__name__)

_TEMPORARY_SUFFIX = ".corpusmill-tmp"
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{32}" + re.escape(_TEMPORARY_SUFFIX))
# The folder in the local temporary folder where a process stages its objects' uploads, named by
# its host (in case the temporary folder is shared) and pid, so that a dead writer's is known.
_STAGING = "corpusmill-{host}-{pid}"
_STAGING_PID = re.compile(r"corpusmill-(?P<host>.+)-(?P<pid>[0-9]+)")
# The staging folder of this process, made on its first upload: (pid, folder).
_staging: tuple[int, Path] | None = None


class LockedError(UserError):
    """A folder another live process holds the lock of; the message names it and what to do."""


@contextlib.contextmanager
def atomic_path(path: Location) -> Iterator[Path]:
    """Yield a local temporary path to write (any writer: pyarrow's, open(), ...); on success it
    becomes `path`, on error it is removed and `path` stays as it was.

    A local temporary sits beside `path` and is renamed to it; one for an object sits in the
    local temporary folder and is uploaded to `path` (core/storage.py) when the block ends.
    """
    if isinstance(path, ObjectPath):
        handle, name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=_TEMPORARY_SUFFIX, dir=_staging_folder()
        )
        os.close(handle)
        tmp = Path(name)
        try:
            yield tmp
            path.fs.put_file(str(tmp), path.path)
        finally:
            tmp.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{_TEMPORARY_SUFFIX}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Location, data: bytes) -> None:
    """Write a file atomically; an object with one PUT of all of `data`."""
    if isinstance(path, ObjectPath):
        path.fs.pipe_file(path.path, data)
        return
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Location, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Location, data: Any) -> None:
    """Write `data` as stable, human-readable JSON, atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def remove_stale_temporaries(folder: Location, recursive: bool = True) -> int:
    """Delete the temporaries `atomic_path` left in `folder` (and below it, if `recursive`) when
    its writer was killed; return how many there were. Other files, hidden or not, stay. An
    object store holds none: its objects are written under their final names only.

    Call it only while holding the folder's lock, so that no other writer's temporary goes.
    """
    if isinstance(folder, ObjectPath) or not folder.is_dir():
        return 0
    candidates = folder.rglob(f"*{_TEMPORARY_SUFFIX}") if recursive else folder.glob("*")
    stale = [path for path in candidates if is_temporary(path) and path.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def is_temporary(path: Path) -> bool:
    """Whether `path` is named as `atomic_path` names its local temporaries."""
    return _TEMPORARY.fullmatch(path.name) is not None


@contextlib.contextmanager
def folder_lock(path: Location) -> Iterator[None]:
    """Hold the lock file `path` while the block runs: created exclusively, it names this pid,
    host and start time. A lock whose pid no longer runs on this host is taken over; one held by
    a live process (or a process on another host) raises LockedError.

    On an object store the lock is an object created by a conditional PUT (If-None-Match: *),
    which S3, MinIO and moto refuse when it exists. A store that ignores the condition makes the
    lock advisory: the lock is read back after the PUT, which stops the earlier of two runs that
    start together, but not two runs whose PUTs and reads interleave.
    """
    mine = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    _create_lock(path, mine)
    try:
        yield
    finally:
        if _read_lock(path) == mine:
            path.unlink(missing_ok=True)


def _staging_folder() -> Path:
    """This process's folder for the local copies of objects being written, made on first use,
    after deleting the folders that processes of this host that no longer run left behind."""
    global _staging
    if _staging is None or _staging[0] != os.getpid():  # made anew in a forked child
        root = Path(tempfile.gettempdir())
        host = socket.gethostname()
        _sweep_staging(root, host)
        folder = root / _STAGING.format(host=host, pid=os.getpid())
        folder.mkdir(mode=0o700, exist_ok=True)
        atexit.register(_remove_if_empty, folder)
        _staging = (os.getpid(), folder)
    return _staging[1]


def _sweep_staging(root: Path, host: str) -> None:
    """Delete the staging folders in `root` of this host's processes that no longer run."""
    for folder in root.glob("corpusmill-*"):
        named = _STAGING_PID.fullmatch(folder.name)
        if not named or named["host"] != host or not folder.is_dir():
            continue
        holder = {"pid": int(named["pid"]), "host": host}
        if _is_stale(holder):
            log.info("deleting %s, left by a writer that was killed", folder)
            shutil.rmtree(folder, ignore_errors=True)


def _remove_if_empty(folder: Path) -> None:
    """Remove this process's staging folder at its exit, unless a write is still under way."""
    with contextlib.suppress(OSError):
        folder.rmdir()


def _create_lock(path: Location, mine: dict[str, Any]) -> None:
    """Create the lock file holding `mine`, taking over a stale one once."""
    for attempt in range(2):
        try:
            _create_exclusive(path, json.dumps(mine))
        except FileExistsError:
            holder = _read_lock(path)
            if attempt or not _is_stale(holder):
                raise LockedError(_held_message(path, holder)) from None
            log.warning(
                "taking over the lock %s of a run that no longer runs (pid %s, started %s)",
                path,
                holder["pid"],
                holder["started"],
            )
            path.unlink(missing_ok=True)
            continue
        return


def _create_exclusive(path: Location, text: str) -> None:
    """Create the file `path` holding `text`; FileExistsError if it exists."""
    if isinstance(path, ObjectPath):
        path.fs.pipe_file(path.path, text.encode("utf-8"), mode="create")
        if path.read_text() != text:
            raise FileExistsError(str(path))
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
    except BaseException:  # a full disk, say: leave no empty lock behind
        path.unlink(missing_ok=True)
        raise


def _read_lock(path: Location) -> dict[str, Any] | None:
    """The holder a lock file names, or None if it is gone, being written or damaged."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fields = {"pid": int, "host": str, "started": str}
    if not isinstance(holder, dict) or not all(
        isinstance(holder.get(k), t) for k, t in fields.items()
    ):
        return None
    return holder if holder["pid"] > 0 else None


def _is_stale(holder: dict[str, Any] | None) -> bool:
    """True if the process a lock (or a staging folder) names ran on this host and is gone."""
    if holder is None or holder["host"] != socket.gethostname():
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return False


def _held_message(path: Location, holder: dict[str, Any] | None) -> str:
    """Why the lock cannot be taken, and what to do."""
    if holder is None:
        who = "a run that is starting, or one whose lock file is damaged"
    else:
        who = f"another run (pid {holder['pid']} on {holder['host']}, started {holder['started']})"
    return (
        f"{path.parent} is in use by {who}; wait for it to end or choose another --out "
        f"(if no run is using it, delete {path})"
    )


def unwritable_file(path: Location) -> str | None:
    """Why `path` cannot be written as a file, its missing folders created, or None: checked
    before long work, so that a wrong path fails first, not last. An object's bucket is checked
    by core/storage.py `check_storage`."""
    if isinstance(path, ObjectPath):
        return f"{path} is a folder" if path.is_dir() else None
    if path.is_dir():
        return f"{path} is a folder"
    folder = next(parent for parent in path.absolute().parents if parent.exists())
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable"
    return None
