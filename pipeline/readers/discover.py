"""Inputs to files to splits: what the clean stage reads, and how it is cut into Dask tasks.

Discovery and planning run once, on the client. Discovery expands paths, folders, globs and fsspec
URLs into files with a format and a compression (from the extension and the first bytes). Planning
cuts each file into splits: byte ranges a task can read on its own, so two large files still keep
every worker busy. Reading a file as one split or as many yields the same records in the same order.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import posixpath
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow.parquet as pq
import zstandard
from fsspec.implementations.local import LocalFileSystem
from zlib_ng import zlib_ng

from corpusmill.core.checks import POSITIVE, Checked
from corpusmill.core.errors import UserError
from corpusmill.core.storage import storage_options, url_options
from corpusmill.pipeline.extract import ExtractConfig
from corpusmill.pipeline.readers.parquet import row_group_spans
from corpusmill.pipeline.readers.streams import GZIP_MAGIC, ZSTD_MAGIC, open_raw
from corpusmill.pipeline.readers.warc import gzip_warc_per_record

log = logging.getLogger(__name__)

_EXTENSIONS = {
    ".warc": "warc",
    ".wet": "warc",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",  # only when its first line is a JSON object: see _is_json_lines
    ".txt": "text",
    ".parquet": "parquet",  # without PAR1 at its start, the reader reports it (empty or corrupt)
}
_COMPRESSIONS = (".gz", ".zst", ".zstd")
# Enough to decompress the first zstd block (128 KiB of output) and see a JSON file's first line.
_HEAD_BYTES = 1 << 16
_HEADS_AT_ONCE = 256
# Content bytes per stored byte, for planning only: 5 MB of a crawl's WARC.gz hold about 24 MB of
# HTML, and zstd packs web text about as tightly; Parquet's own compression about 3 to 1.
_EXPANSION = {"gzip": 5, "zstd": 5}
_PARQUET_EXPANSION = 3
# The least content a split is cut to: below this a task's fixed costs (filters built, part files
# written, its marker) outweigh what finer splits gain in balance.
_MIN_SPLIT_CONTENT = 8 << 20
# Keys of fsspec's listing info that change with a file's content: the local modification time,
# S3's ETag and LastModified, GCS's generation and update time, Azure's etag and last_modified.
_VERSION_KEYS = ("mtime", "ETag", "LastModified", "generation", "updated", "etag", "last_modified")


class InputError(UserError, ValueError):
    """An input that cannot be read; the message names it and says what to do."""


@dataclass(frozen=True)
class ReadConfig(Checked):
    """How inputs are split, read and bounded, and how HTML is turned into text."""

    split_bytes: int = field(
        default=64 << 20,
        metadata={
            "help": "most stored bytes per split of a file; splits are read independently, and "
            "inputs too small to make `splits` splits of this size are cut finer",
            "checks": (POSITIVE,),
        },
    )
    splits: int = field(
        default=64,
        metadata={
            "help": "splits the inputs are cut into, so that every worker gets work: fewer when "
            "that makes splits of less than 8 MiB of content, more when it makes them larger "
            "than split_bytes",
            "checks": (POSITIVE,),
        },
    )
    batch_docs: int = field(
        default=10_000,
        metadata={"help": "most documents a reader hands on at once", "checks": (POSITIVE,)},
    )
    batch_bytes: int = field(
        default=64 << 20,
        metadata={
            "help": "about the most text a reader hands on at once, in UTF-8 bytes",
            "checks": (POSITIVE,),
        },
    )
    max_doc_bytes: int = field(
        default=8 << 20,
        metadata={
            "help": "larger records are rejected as too_large, without being held in memory",
            "checks": (POSITIVE,),
        },
    )
    text_key: str = field(
        default="text",
        metadata={"help": "JSONL field or Parquet column holding the text; dotted for nested keys"},
    )
    url_key: str = field(
        default="url", metadata={"help": "JSONL field or Parquet column holding the URL, if any"}
    )
    id_key: str = field(
        default="id",
        metadata={
            "help": "JSONL field or Parquet column holding a record's own id, kept in meta as id"
        },
    )
    keep_fields: bool = field(
        default=True,
        metadata={
            "help": "keep the other fields of JSONL/Parquet records in meta as JSON; off reads "
            "JSONL with Arrow's parser, several times faster"
        },
    )
    extract: ExtractConfig = field(
        default_factory=ExtractConfig, metadata={"help": "HTML text extraction"}
    )


@dataclass(frozen=True)
class InputFile:
    """One input file: `url` opens it with the fsspec storage `options`, `source` is its path
    relative to the common input root, `modified` its version as its filesystem lists it (to tell
    a changed file; never read).

    The options travel with the file to the worker that reads it, so runs with different stores
    share a cluster, and no worker needs the options set beforehand."""

    url: str
    source: str
    format: str  # "warc", "jsonl", "parquet" or "text"
    compression: str  # "none", "gzip" or "zstd"
    size: int
    modified: str
    options: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Split:
    """The part of a file one task reads: the records that start in stored bytes [start, end).

    Always a byte range of the stored file. For Parquet it holds the row groups whose data starts
    in it, as `row_group_spans` estimates it; for files that cannot be split (compressed streams,
    text files) it is the whole file.
    """

    file: InputFile
    start: int
    end: int


def discover_inputs(
    inputs: Sequence[str],
    config: ReadConfig,
    out: str = "",
    options: dict[str, Any] | None = None,
) -> list[InputFile]:
    """Expand inputs into readable files, sorted by URL; unknown formats in folders are skipped,
    and so is the folder `out`, where a run writes (its outputs are not its inputs). URLs are
    reached with the storage `options` (default: `storage_options()` of the environment).

    `config` is not needed to find files today; it is taken so callers need not change when it is.
    """
    if not inputs:
        raise InputError("no inputs given: pass files, folders, globs or fsspec URLs")
    options = storage_options() if options is None else options
    found: dict[str, tuple[tuple[str, str], dict[str, Any]]] = {}
    roots = []
    skipped: Counter[str] = Counter()
    for spec in inputs:
        fs, root, listing, explicit = _expand(spec, out, url_options(spec, options))
        roots.append(fs.unstrip_protocol(root))
        kinds = _kinds(fs, listing)
        for path, kind in kinds.items():
            if kind is None and explicit:
                raise InputError(
                    f"cannot tell the format of {spec}: name it *.warc[.gz], *.wet.gz, *.jsonl, "
                    "*.parquet or *.txt (each optionally .gz or .zst)"
                )
            if kind is None:
                skipped[_extension(path)] += 1
            else:
                found[fs.unstrip_protocol(path)] = (kind, listing[path])
        if not any(kinds.values()):
            raise InputError(
                f"input {spec} holds no file of a known format "
                f"({_describe(Counter(map(_extension, kinds)))})"
            )
    if skipped:
        log.warning(
            "skipped %d input files of unknown format: %s",
            sum(skipped.values()),
            _describe(skipped),
        )
    root = _common_root(roots)
    return [
        InputFile(
            url=_local_or_url(url),
            source=printable(_relative(url, root)),
            format=kind[0],
            compression=kind[1],
            size=info["size"],
            modified=_version(info),
            options=url_options(url, options),
        )
        for url, (kind, info) in sorted(found.items())
    ]


def plan_splits(files: Sequence[InputFile], config: ReadConfig) -> list[Split]:
    """Cut files into splits of about `split_size(files, config)` stored bytes, in file order."""
    size = split_size(files, config)
    return [split for file in files for split in _file_splits(file, size)]


def split_size(files: Sequence[InputFile], config: ReadConfig) -> int:
    """Stored bytes per split: the inputs' total cut into `config.splits` splits of equal content,
    each of at least `_MIN_SPLIT_CONTENT` and at most `config.split_bytes` stored bytes.

    Content is estimated from the stored sizes, compressed files weighted by a typical expansion
    (`_EXPANSION`), so a crawl of compressed WARC files is cut as finely as the same crawl stored
    plain. It depends on the inputs' sizes and the config only, never on the cluster, so any
    number of workers reads the same splits into the same parts.
    """
    stored = sum(file.size for file in files)
    content = sum(file.size * _expansion(file) for file in files)
    if not content:
        return config.split_bytes
    per_split = max(content / config.splits, _MIN_SPLIT_CONTENT) * stored / content
    return max(1, min(config.split_bytes, math.ceil(per_split)))


def printable(name: str) -> str:
    """A file name as valid UTF-8 for Arrow columns, ids and JSON or TOML records: bytes that are
    not UTF-8 (which the filesystem hands over as lone surrogates) written as backslash escapes,
    e.g. bad\\xff.jsonl."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _expand(
    spec: str, out: str, options: dict[str, Any]
) -> tuple[Any, str, dict[str, dict[str, Any]], bool]:
    """(filesystem, root, {regular file path: its info}, named explicitly) for one input reached
    with `options`, without the files in the folder `out`."""
    try:
        fs, path = fsspec.core.url_to_fs(spec, **options)
    except (ImportError, ValueError) as exc:
        raise InputError(f"input {spec} cannot be opened: {exc}") from None
    if glob.has_magic(path):
        root, entries, explicit = _glob_root(path), {}, False
        for match, info in fs.glob(path, detail=True).items():
            if info["type"] == "directory":
                entries.update(fs.find(match, detail=True))
            else:
                entries[match] = info
    elif fs.isdir(path):
        root, entries, explicit = path, fs.find(path, detail=True), False
    elif fs.exists(path):
        root, entries, explicit = posixpath.dirname(path), {path: fs.info(path)}, True
    else:
        raise InputError(f"input {spec} does not exist")
    listing = _regular_files(fs, entries)
    ours = _in_folder(fs, root, listing, out)
    if ours:
        log.info("input %s: skipped %d files in the output folder %s", spec, len(ours), out)
    listing = {path: info for path, info in listing.items() if path not in ours}
    if not listing:
        where = f" outside the output folder {out}: choose another --out" if ours else ""
        raise InputError(f"input {spec} matches no file{where}")
    return fs, root, listing, explicit


def _regular_files(fs: Any, entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{path: info} of the regular files among listed entries, symlinks followed. Anything else is
    skipped with a warning: a FIFO or device would block the reader, a broken link cannot be read.
    """
    files = {}
    for path, info in entries.items():
        try:
            target = fs.info(path) if info.get("islink") else info
        except OSError as exc:
            log.warning("skipped input %s: a broken or looping symbolic link (%s)", path, exc)
            continue
        if target["type"] == "file":
            files[path] = target
        elif target["type"] != "directory":
            log.warning("skipped input %s: not a regular file (a FIFO, socket or device)", path)
        elif info.get("islink"):  # not followed, so that a link to a parent cannot loop
            log.warning("skipped input %s: a symbolic link to a folder (name the folder)", path)
    return files


def _in_folder(fs: Any, root: str, listing: dict[str, Any], folder: str) -> set[str]:
    """The listed files of an input that lie in `folder`: a URL on the input's filesystem, or a
    local folder, however the input's `root` names it (through a symbolic link, say)."""
    if not folder:
        return set()
    if "://" in folder and not isinstance(fs, LocalFileSystem):
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
        if folder.partition("://")[0] not in protocols:
            return set()
        named = fs._strip_protocol(folder).rstrip("/")
        return {path for path in listing if _within(path, named)}
    if not isinstance(fs, LocalFileSystem):
        return set()
    real_root, folder = os.path.realpath(root), os.path.realpath(folder)
    if _within(real_root, folder):
        return set(listing)
    if not _within(folder, real_root):
        return set()
    named = posixpath.join(root, posixpath.relpath(folder, real_root))
    return {path for path in listing if _within(path, named)}


def _within(path: str, folder: str) -> bool:
    """True if `path` is `folder` or below it (both absolute)."""
    return posixpath.commonpath([path, folder]) == folder


def _version(info: dict[str, Any]) -> str:
    """A file's version from fsspec's listing info: the values of its `_VERSION_KEYS`."""
    return " ".join(str(info[key]) for key in _VERSION_KEYS if info.get(key) is not None)


def _glob_root(pattern: str) -> str:
    """The folder part of a glob before its first wildcard."""
    parts = pattern.split("/")
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return "/".join(fixed) or "/"


def _kinds(fs: Any, listing: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str] | None]:
    """(format, compression) of each file, or None when it is of no known format."""
    paths = sorted(listing)
    kinds = {}
    # First bytes of many files at once (remote filesystems fetch them concurrently), in groups
    # so that a folder of a million files does not hold a million heads.
    for first in range(0, len(paths), _HEADS_AT_ONCE):
        group = paths[first : first + _HEADS_AT_ONCE]
        heads = fs.cat_ranges(group, [0] * len(group), [_HEAD_BYTES] * len(group))
        for path, head in zip(group, heads, strict=True):
            if isinstance(head, Exception):
                log.warning("skipped input %s: it cannot be read (%s)", path, head)
            else:
                kinds[path] = _detect(posixpath.basename(path), head)
    return kinds


def _detect(name: str, head: bytes) -> tuple[str, str] | None:
    """Format and compression from the first bytes, else from the file name."""
    if head.startswith(b"PAR1"):
        return "parquet", "none"
    # The first bytes decide the compression, so a mislabeled file still reads.
    compression = _magic_compression(head) or "none"
    extension = _extensions(name)[0]
    content = _decompress_head(head, compression)
    if content.startswith(b"WARC/"):
        return "warc", compression
    kind = _EXTENSIONS.get(extension)
    if kind is None or (extension == ".json" and not _is_json_lines(content)):
        return None
    return kind, "none" if kind == "parquet" else compression


def _magic_compression(head: bytes) -> str | None:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def _decompress_head(head: bytes, compression: str) -> bytes:
    """As much of the start of a file's content as its first bytes decompress to."""
    try:
        if compression == "gzip":
            return zlib_ng.decompressobj(31).decompress(head, _HEAD_BYTES)
        if compression == "zstd":
            return zstandard.ZstdDecompressor().decompressobj().decompress(head)[:_HEAD_BYTES]
    except (zlib_ng.error, zstandard.ZstdError):
        return b""
    return head


def _is_json_lines(content: bytes) -> bool:
    """True if content starts with a JSON object on its own line (JSON Lines, not one document)."""
    text = content.lstrip()
    if not text.startswith(b"{"):
        return False
    line, newline, _ = text.partition(b"\n")
    if not newline:
        return True  # a first line longer than the head; a pretty-printed document breaks sooner
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _expansion(file: InputFile) -> float:
    """Typical content bytes per stored byte of a file."""
    if file.format == "parquet":
        return _PARQUET_EXPANSION
    return _EXPANSION.get(file.compression, 1)


def _file_splits(file: InputFile, split_bytes: int) -> list[Split]:
    """A file's splits: byte ranges if records can be found from any offset, else the whole file."""
    if file.format == "parquet":
        return _parquet_splits(file, split_bytes)
    if file.size > split_bytes and _splittable(file):
        starts = range(0, file.size, split_bytes)
        return [Split(file, start, min(start + split_bytes, file.size)) for start in starts]
    return [Split(file, 0, file.size)]


def _splittable(file: InputFile) -> bool:
    """True if a reader can find where records start from any byte: plain WARC and JSONL, and
    gzip WARC with a member per record. Other compressed files are streams read from the start.
    """
    if file.compression == "none":
        return file.format in ("warc", "jsonl")
    if file.format == "warc" and file.compression == "gzip":
        try:
            with open_raw(file.url, file.options) as handle:
                return gzip_warc_per_record(handle)
        except OSError:  # gone or unreadable since discovery: its reader reports it
            return False
    return False


def _parquet_splits(file: InputFile, split_bytes: int) -> list[Split]:
    """Byte ranges holding whole row groups, about `split_bytes` of stored data each."""
    try:
        with open_raw(file.url, file.options) as handle:
            spans = row_group_spans(pq.ParquetFile(handle).metadata, file.size)
    except Exception:  # any damage (a column name that is not UTF-8, say): the reader reports it
        return [Split(file, 0, file.size)]
    splits, begin = [], 0
    for start, _ in spans[1:]:
        if start - begin >= split_bytes:
            splits.append(Split(file, begin, start))
            begin = start
    splits.append(Split(file, begin, file.size))
    return splits


def _common_root(roots: list[str]) -> str:
    """The deepest folder URL containing every input root ("" when they share no filesystem)."""
    protocols = {root.partition("://")[0] for root in roots}
    if len(protocols) > 1:
        return ""
    protocol = protocols.pop()
    paths = [root.partition("://")[2] for root in roots]
    return f"{protocol}://{posixpath.commonpath(paths)}"


def _relative(url: str, root: str) -> str:
    if not root:
        return url
    return posixpath.relpath(url.partition("://")[2], root.partition("://")[2])


def _local_or_url(url: str) -> str:
    """Local files as plain paths (readable in messages), others as fsspec URLs."""
    return url.removeprefix("file://")


def _extensions(name: str) -> tuple[str, ...]:
    """A file name's format extension and compression extension, e.g. ('.wat', '.gz') or ('',)."""
    stem, extension = posixpath.splitext(name.lower())
    if extension in _COMPRESSIONS:
        return posixpath.splitext(stem)[1], extension
    return (extension,)


def _extension(path: str) -> str:
    """How the unknown-format warning names a file's type, e.g. '.wat.gz' or '(none)'."""
    return "".join(_extensions(posixpath.basename(path))) or "(none)"


def _describe(counts: Counter[str]) -> str:
    return ", ".join(f"{ext}: {n}" for ext, n in sorted(counts.items())) or "empty"
