"""Where a run's files live: a local folder or an fsspec URL (s3:// first), and how to reach it.

A location is a `pathlib.Path` for local files and an `ObjectPath` (a URL and the fsspec storage
options that reach it) for anything else. Both join with `/` and offer the reading half of
pathlib (exists, is_dir, glob, open, read_text, stat, unlink, ...); writes go through
core/atomic.py, which puts either kind in place whole, under its final name. The storage options
are built once, on the machine that starts a run, from the `[storage]` config table and the
standard AWS environment variables, and travel inside every ObjectPath, their credentials by id
only (`StorageOptions`; a run gives its workers the credentials themselves, in memory): a worker
on another machine needs neither the config nor the environment.

What a stage does with a run's file `path` (a Path or an ObjectPath from loader/layout.py):
- write a Parquet or Arrow file: `with atomic_path(path) as tmp: pq.write_table(table, tmp)`
  (core/atomic.py; `tmp` is always a local Path);
- write JSON, text or bytes, such as markers and the manifest, after the files they vouch for:
  `write_json`, `write_text`, `write_bytes` (core/atomic.py);
- read: `open_input(path)` for pyarrow's readers, `path.read_text()`, `path.open("rb")`;
- check and list: `path.exists()`, `folder.glob(pattern)`, and `file_sizes(folder)`, which lists
  a folder of markers in one request;
- delete a file or a folder with all in it: `remove(path)`; lock a run folder:
  `folder_lock(layout.lock)` (core/atomic.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from corpusmill.core.checks import Checked
from corpusmill.core.errors import StageError, UserError

log = logging.getLogger(__name__)

# The protocols the storage options are meant for; other fsspec backends read their own settings.
S3_PROTOCOLS = ("s3", "s3a")
# Environment variables read into the storage options, first set one wins, as AWS tools do.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
CREDENTIAL_VARIABLES = {
    "key": "AWS_ACCESS_KEY_ID",
    "secret": "AWS_SECRET_ACCESS_KEY",
    "token": "AWS_SESSION_TOKEN",
}
# A reachability check fails in seconds: botocore would otherwise retry a refused connection for
# about ten.
_CHECK_CONFIG = {"connect_timeout": 5, "read_timeout": 10, "retries": {"max_attempts": 1}}
# The credentials this process was given, by their random id (`StorageOptions`): in memory only.
_CREDENTIALS: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class StorageConfig(Checked):
    """How to reach s3:// inputs and outputs. Credentials are never config keys: they come from
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (or botocore's own files), so
    the copy of the config a run writes holds no secret."""

    endpoint_url: str = field(
        default="",
        metadata={
            "help": "S3-compatible endpoint (e.g. http://127.0.0.1:9000); empty: "
            "AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS"
        },
    )
    region: str = field(
        default="",
        metadata={"help": "S3 region; empty: AWS_REGION or AWS_DEFAULT_REGION"},
    )
    anon: bool = field(
        default=False,
        metadata={"help": "unsigned requests, for public buckets; no credentials needed"},
    )


def storage_options(
    config: StorageConfig | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The fsspec storage options of s3:// URLs from `config` (default: all defaults) and the
    environment (default: os.environ): config keys win over environment variables.

    Listings are never cached: a listing made on the client before workers wrote would hide
    their files from it.
    """
    config = config or StorageConfig()
    environ = os.environ if environ is None else environ
    options = StorageOptions(use_listings_cache=False)
    endpoint = config.endpoint_url or _first(environ, ENDPOINT_VARIABLES)
    if endpoint:
        options["endpoint_url"] = endpoint
    region = config.region or _first(environ, REGION_VARIABLES)
    if region:
        options["client_kwargs"] = {"region_name": region}
    if config.anon:
        options["anon"] = True
    else:
        options.update(
            {name: environ[var] for name, var in CREDENTIAL_VARIABLES.items() if environ.get(var)}
        )
    return StorageOptions(options)


def url_options(url: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The storage options to open `url` with: `options` for an S3 URL; for others (whose
    fsspec backends read their own settings and may refuse S3's) only that listings are never
    cached."""
    protocol = url.partition("://")[0] if is_url(url) else "file"
    return StorageOptions(options) if protocol in S3_PROTOCOLS else {"use_listings_cache": False}


def credentials(options: Mapping[str, Any]) -> dict[str, str]:
    """The credentials among storage options (key, secret, token), to give to a cluster's
    workers with `remember_credentials`."""
    return {name: options[name] for name in CREDENTIAL_VARIABLES if options.get(name)}


def remember_credentials(secrets: Mapping[str, str], secrets_id: str = "") -> str:
    """Keep `secrets` in this process's memory under `secrets_id` (default: their id here, else a
    new random one, which reveals nothing of them), so that storage options naming that id hold
    them again when unpickled; return the id."""
    secrets = dict(secrets)
    if not secrets_id:
        known = (held_id for held_id, held in _CREDENTIALS.items() if held == secrets)
        secrets_id = next(known, uuid.uuid4().hex)
    _CREDENTIALS[secrets_id] = secrets
    return secrets_id


def is_url(spec: str | os.PathLike[str]) -> bool:
    """Whether `spec` names a location by URL (`s3://...`, `file://...`), not a local path."""
    return isinstance(spec, str) and "://" in spec


def location(
    spec: str | os.PathLike[str] | ObjectPath, options: Mapping[str, Any] | None = None
) -> Location:
    """A local path or `file://` URL as a Path, any other URL as an ObjectPath reached with
    `options` (default: `storage_options()` of the environment)."""
    if isinstance(spec, ObjectPath):
        return spec
    if not is_url(spec):
        return Path(spec)
    protocol, _, rest = str(spec).partition("://")
    if protocol in ("file", "local"):
        return Path(rest)
    return ObjectPath(str(spec), storage_options() if options is None else options)


def check_storage(urls: Iterable[str], options: Mapping[str, Any]) -> None:
    """Raise a one-line UserError if an s3:// URL among `urls` names no bucket, or its bucket
    cannot be reached with `options` (no endpoint, no credentials, no such bucket, no access).

    Meant to run before any cluster starts, so a wrong setting costs a second, not a traceback
    from the first task. Each bucket is asked once (a HEAD request).
    """
    buckets: dict[str, str] = {}
    for url in urls:
        if not is_url(url) or url.partition("://")[0] not in S3_PROTOCOLS:
            continue
        bucket = url.partition("://")[2].partition("/")[0]
        if not bucket:
            raise UserError(f"{url} names no bucket: write s3://BUCKET/PREFIX")
        buckets.setdefault(bucket, url)
    for bucket, url in buckets.items():
        _check_bucket(bucket, url, options)


def check_location(path: Location) -> None:
    """`check_storage` of one location: for an object, its bucket reached with its own options;
    nothing for a local path. Commands that read a run by its URL call it before the first
    read."""
    if isinstance(path, ObjectPath):
        check_storage([path.url], path.options)


def open_input(path: Location) -> Any:
    """A run's file opened for pyarrow's readers (`pa.ipc.open_file`, `pq.ParquetFile`,
    `pq.read_table`): a local one memory-mapped, so Arrow reads it without copying; an object
    through fsspec, whose reads of byte ranges become range requests."""
    import pyarrow as pa

    if isinstance(path, ObjectPath):
        return pa.PythonFile(path.open("rb"), mode="r")
    return pa.memory_map(str(path))


@contextlib.contextmanager
def damaged_file(path: Location, remedy: str) -> Iterator[None]:
    """Turn an Arrow reader's failure on the bytes of the file `path` (cut short, changed) into a
    StageError naming it and `remedy`: damaged data. The system's own errors (a missing file, no
    permission) pass as they are."""
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        reason = str(exc).strip().partition("\n")[0]
        raise StageError(f"{path} is damaged ({reason}); {remedy}") from exc


def remove(path: Location) -> None:
    """Delete a file or a folder with everything in it; nothing if it does not exist."""
    if isinstance(path, ObjectPath):
        if path.exists():
            path.fs.rm(path.path, recursive=True)
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def file_sizes(folder: Location) -> dict[str, int]:
    """{name: size in bytes} of the files directly in `folder` (empty if it does not exist), from
    one listing: one request on an object store instead of one per file."""
    if isinstance(folder, ObjectPath):
        try:
            listing = folder.fs.ls(folder.path, detail=True)
        except FileNotFoundError:
            return {}
        return {
            entry["name"].rpartition("/")[2]: int(entry["size"])
            for entry in listing
            if entry["type"] == "file"
        }
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {entry.name: entry.stat().st_size for entry in entries if entry.is_file()}


class ObjectPath:
    """A file or folder on an fsspec filesystem, named by its URL and reached with its storage
    options; it reads like a pathlib.Path. Object stores have no folders: a folder exists while
    an object's name starts with it, and `mkdir` does nothing.

    Pickled, it carries its URL and options (their credentials by id only: `StorageOptions`) and
    no connection, so a task that receives one reaches the store from any worker given them.
    """

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        protocol, sep, rest = url.partition("://")
        if not sep or not protocol:
            raise ValueError(f"{url!r} is not a URL (PROTOCOL://PATH)")
        self.protocol = protocol
        self.path = rest.rstrip("/") or rest
        self.url = f"{protocol}://{self.path}"
        self.options = StorageOptions(options or {})

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of the URL (fsspec keeps one per protocol and options)."""
        import fsspec

        return fsspec.filesystem(self.protocol, **url_options(self.url, self.options))

    def __truediv__(self, name: str) -> ObjectPath:
        return ObjectPath(f"{self.url}/{name}", self.options)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"ObjectPath({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __lt__(self, other: ObjectPath) -> bool:
        return self.url < other.url

    def __reduce__(self) -> tuple[Any, ...]:
        return ObjectPath, (self.url, self.options)

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def suffix(self) -> str:
        stem, dot, extension = self.name.rpartition(".")
        return f".{extension}" if dot and stem else ""

    @property
    def stem(self) -> str:
        return self.name.removesuffix(self.suffix)

    @property
    def parent(self) -> ObjectPath:
        folder = self.path.rpartition("/")[0]
        return ObjectPath(f"{self.protocol}://{folder or self.path}", self.options)

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    def with_suffix(self, suffix: str) -> ObjectPath:
        return self.with_name(self.stem + suffix)

    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def is_file(self) -> bool:
        return self.fs.isfile(self.path)

    def is_dir(self) -> bool:
        return self.fs.isdir(self.path)

    def stat(self) -> os.stat_result:
        """The object's size (st_size) as os.stat reports a regular file; FileNotFoundError if
        there is none."""
        size = int(self.fs.info(self.path)["size"])
        return os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 0, 0, size, 0, 0, 0))

    def iterdir(self) -> Iterator[ObjectPath]:
        """The files and folders directly in this folder, sorted."""
        for entry in sorted(self.fs.ls(self.path, detail=False)):
            yield ObjectPath(f"{self.protocol}://{entry}", self.options)

    def glob(self, pattern: str) -> Iterator[ObjectPath]:
        """The files and folders in this folder matching `pattern` (fsspec's glob), sorted."""
        for match in sorted(self.fs.glob(f"{self.path}/{pattern}")):
            yield ObjectPath(f"{self.protocol}://{match}", self.options)

    def open(self, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """Open the object for reading; writes go through core/atomic.py, which never leaves a
        partial object under the final name."""
        if any(flag in mode for flag in "wax+"):
            raise ValueError(f"{self}: open for reading only; write with corpusmill.core.atomic")
        return self.fs.open(self.path, mode, **kwargs)

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing: an object store's folders are the prefixes of its objects' names."""


class StorageOptions(dict):
    """Storage options whose pickle names their credentials (key, secret, token) by an id instead
    of holding them, so a task result that Dask spills to a worker's disk holds no secret.

    They take the credentials of their id that this process was given (`remember_credentials`:
    the process that built them, and a run's workers through pipeline/worker_storage.py) when
    unpickled or copied, else none, so that s3fs finds its own there (the AWS variables, ~/.aws,
    an instance role). The id stays when they are pickled again without them, as Dask's scheduler
    does with a task's arguments on their way to a worker.
    """

    def __init__(self, *args: Any, secrets_id: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        secrets = credentials(self)
        copied = getattr(args[0], "secrets_id", "") if args else ""
        self.secrets_id = secrets_id or copied
        if secrets:
            self.secrets_id = remember_credentials(secrets, self.secrets_id)
        elif self.secrets_id in _CREDENTIALS:
            self.update(_CREDENTIALS[self.secrets_id])

    def __reduce__(self) -> tuple[Any, ...]:
        public = {name: value for name, value in self.items() if name not in CREDENTIAL_VARIABLES}
        return _unpickled_options, (public, self.secrets_id)


# A file or folder of a run: local, or on an object store.
Location = Path | ObjectPath


def _unpickled_options(public: dict[str, Any], secrets_id: str) -> StorageOptions:
    """Storage options from their pickle: `public` and the credentials of `secrets_id`."""
    return StorageOptions(public, secrets_id=secrets_id)


def _first(environ: Mapping[str, str], names: Iterable[str]) -> str:
    """The value of the first of `names` set (non-empty) in `environ`, or ""."""
    return next((environ[name] for name in names if environ.get(name)), "")


def _check_bucket(bucket: str, url: str, options: Mapping[str, Any]) -> None:
    """Ask for `bucket` once; raise the UserError of what failed, naming the setting to fix."""
    import botocore.exceptions
    import s3fs

    endpoint = options.get("endpoint_url") or "AWS S3"
    # A fresh, uncached filesystem with a short timeout and no retries.
    fs = s3fs.S3FileSystem(**{**options, "config_kwargs": _CHECK_CONFIG}, skip_instance_cache=True)
    try:
        fs.call_s3("head_bucket", Bucket=bucket)
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError):
        raise UserError(
            f"{url}: no credentials for {endpoint}; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or storage.anon = true for a public bucket)"
        ) from None
    except (botocore.exceptions.EndpointConnectionError, ConnectionError) as exc:
        raise UserError(
            f"{url}: cannot reach {endpoint} ({exc}); set storage.endpoint_url or "
            "AWS_ENDPOINT_URL to your S3 server's address"
        ) from None
    except FileNotFoundError:
        raise UserError(
            f"{url}: bucket {bucket} does not exist at {endpoint}; create it, or fix the URL "
            "or storage.endpoint_url"
        ) from None
    except PermissionError as exc:
        raise UserError(
            f"{url}: {endpoint} refuses these credentials for bucket {bucket} ({exc}); check "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except (OSError, ValueError, botocore.exceptions.BotoCoreError) as exc:
        message = str(exc).replace("\n", "; ")
        raise UserError(
            f"{url}: cannot use bucket {bucket} at {endpoint} ({message}); check "
            "storage.endpoint_url, storage.region and the AWS_* variables"
        ) from None
