"""The shard format of a tokenized run, the one definition the writer and the loader share.

A run's tokens live in `OUT/shard-NNNNN.arrow`, described by `OUT/index.json`:

- A shard is an uncompressed Arrow IPC file, so `pyarrow.memory_map` + `pyarrow.ipc.open_file`
  read it without copying. Its rows are documents in corpus order: `id` (string), `tokens` (list of
  uint16 when every token id fits, else uint32: the document's tokens, then the EOS id) and
  `num_bytes` (UTF-8 bytes of the document's text). A record batch holds the documents that start
  in one window of BATCH_TOKENS tokens of its file, so batch boundaries depend only on the
  documents, never on how the writer was parallelized.
- The manifest tells a reader everything it needs to plan and validate without opening a shard:
  the format version, the tokenizer file and its xxh3, the vocabulary size, token type and EOS id,
  and per shard its documents, tokens, source bytes, file size and xxh3-64 checksum, with totals.

Only numpy, pyarrow, the standard library, corpusmill.core (errors, checksums) and the run layout
(loader/layout.py) are imported here.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import mmap
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.checksums import file_checksum
from corpusmill.core.errors import CorpusmillError, UserError
from corpusmill.core.storage import Location, ObjectPath, location, open_input
from corpusmill.loader.layout import SPLITS, RunLayout

FORMAT_VERSION = 1
# About a million tokens per record batch: a loader's unit of reading, and far below the 2**31
# values a list column's int32 offsets can address.
BATCH_TOKENS = 1 << 20
# The token types a manifest may name, and how many ids each holds.
_TOKEN_DTYPES = {"uint16": 1 << 16, "uint32": 1 << 32}
# The largest vocabulary a manifest may name, as the tokenizer's own bound (tokenizer/config.py,
# which this format does not import): a damaged vocab_size would otherwise size a model's tables.
_MAX_VOCAB_SIZE = 1 << 24


class FormatError(CorpusmillError, ValueError):
    """A manifest or shard that does not follow this format; the message names the file."""


class MissingRunError(UserError, FormatError):
    """A folder without a manifest: not a tokenized run's output, so the wrong one was named."""


@dataclass(frozen=True)
class ShardInfo:
    """One shard as the manifest lists it; `tokens` counts the EOS ending each document."""

    name: str
    docs: int
    tokens: int
    num_bytes: int
    size: int
    xxh3: str


@dataclass(frozen=True)
class Manifest:
    """The contents of `index.json`: the tokenizer, the token type and every shard: `shards` the
    training split's, `validation` those of the documents held out (loader/split.py) at
    `validation_fraction`, none when it is 0."""

    tokenizer: str
    tokenizer_xxh3: str
    vocab_size: int
    token_dtype: str
    eos_id: int
    tokens_per_shard: int
    shards: tuple[ShardInfo, ...]
    format_version: int = FORMAT_VERSION
    validation: tuple[ShardInfo, ...] = ()
    validation_fraction: float = 0.0

    def split(self, name: str) -> tuple[ShardInfo, ...]:
        """The shards of split `name`, "train" or "validation"."""
        if name not in SPLITS:
            raise ValueError(f"split {name!r} is unknown: give one of {', '.join(SPLITS)}")
        return self.shards if name == "train" else self.validation

    def all_shards(self) -> tuple[ShardInfo, ...]:
        """Every shard of the run: the training ones, then the validation ones."""
        return self.shards + self.validation

    def totals(self, split: str = "train") -> dict[str, Any]:
        """Documents, tokens, source bytes and file bytes over a split's shards, and bytes per
        token."""
        shards = self.split(split)
        totals = {
            field: sum(getattr(shard, field) for shard in shards)
            for field in ("docs", "tokens", "num_bytes", "size")
        }
        totals["shards"] = len(shards)
        totals["bytes_per_token"] = round(totals["num_bytes"] / max(totals["tokens"], 1), 4)
        return totals

    def to_json(self) -> str:
        """The manifest as stable JSON (sorted keys, no timestamps): equal runs, equal bytes.
        `shards` and `totals` are the training split's, as in a run without validation split."""
        data = {
            "format_version": self.format_version,
            "tokenizer": {"file": self.tokenizer, "xxh3": self.tokenizer_xxh3},
            "vocab_size": self.vocab_size,
            "token_dtype": self.token_dtype,
            "eos_id": self.eos_id,
            "tokens_per_shard": self.tokens_per_shard,
            "shards": [dataclasses.asdict(shard) for shard in self.shards],
            "totals": self.totals(),
        }
        if self.validation_fraction:
            data["validation"] = {
                "fraction": self.validation_fraction,
                "shards": [dataclasses.asdict(shard) for shard in self.validation],
                "totals": self.totals("validation"),
            }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def token_type(vocab_size: int) -> pa.DataType:
    """uint16 when every id of a `vocab_size` vocabulary fits in it, else uint32."""
    return pa.uint16() if vocab_size <= 1 << 16 else pa.uint32()


def shard_schema(tokens: pa.DataType) -> pa.Schema:
    """The columns of a shard whose token ids are of type `tokens`."""
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("tokens", pa.list_(tokens), nullable=False),
            pa.field("num_bytes", pa.int64(), nullable=False),
        ]
    )


def tokens_array(ids: Sequence[np.ndarray], eos_id: int, tokens: pa.DataType) -> pa.ListArray:
    """A `tokens` column from each document's token ids, the EOS id appended to every document."""
    lengths = np.fromiter((len(doc) for doc in ids), dtype=np.int64, count=len(ids))
    flat = np.concatenate(ids) if len(ids) else np.empty(0, dtype=np.int64)
    values = np.insert(flat, np.cumsum(lengths), eos_id).astype(tokens.to_pandas_dtype())
    offsets = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum(lengths + 1, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def write_shard(
    path: Path, tables: Iterable[pa.Table], tokens: pa.DataType, name: str | None = None
) -> ShardInfo:
    """Write documents (tables with the shard columns) to `path` as one shard file.

    Rows are regrouped into record batches by BATCH_TOKENS windows, so the file's bytes depend only
    on the documents and not on how they were chunked on the way in. `name` (default: the file's)
    is the name the manifest will list.
    """
    schema = shard_schema(tokens)
    docs = total_tokens = num_bytes = 0
    pending: list[pa.Table] = []
    window = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for table in tables:
            table = table.select(schema.names).cast(schema)
            lengths = pc.list_value_length(table["tokens"]).to_numpy().astype(np.int64)
            windows = (total_tokens + np.cumsum(lengths) - lengths) // BATCH_TOKENS
            for start, stop in runs(windows):
                if windows[start] != window and pending:
                    _write_batch(writer, pending)
                    pending = []
                window = int(windows[start])
                pending.append(table.slice(start, stop - start))
            docs += table.num_rows
            total_tokens += int(lengths.sum())
            num_bytes += int(pc.sum(table["num_bytes"]).as_py() or 0)
        if pending:
            _write_batch(writer, pending)
    return ShardInfo(
        name=name or path.name,
        docs=docs,
        tokens=total_tokens,
        num_bytes=num_bytes,
        size=path.stat().st_size,
        xxh3=file_checksum(path),
    )


def open_shard(path: Path) -> pa.ipc.RecordBatchFileReader:
    """Open a shard memory-mapped: its batches point into the mapping, nothing is copied.

    The mapping is Python's, wrapped as an Arrow buffer: through `pyarrow.memory_map`, reading a
    batch advises the kernel to read all of it ahead (madvise WILLNEED), which doubled the time to
    open a shard already in the page cache.
    """
    try:
        with open(path, "rb") as handle:
            mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return pa.ipc.open_file(pa.py_buffer(mapping))
    except (OSError, ValueError, pa.ArrowInvalid) as exc:
        raise FormatError(
            f"{path} is not a readable shard ({exc}); rerun the tokenize stage"
        ) from None


@contextmanager
def shard_reader(path: Location) -> Iterator[pa.ipc.RecordBatchFileReader]:
    """A shard (or an encoded part) opened for the length of a `with` block, wherever it is: a
    local file memory-mapped (open_shard); an object, which cannot be mapped, through a file of
    its store's range requests, closed on leaving, so a reader fetches only the batches it gets."""
    if not isinstance(path, ObjectPath):
        yield open_shard(path)
        return
    with open_input(path) as handle:
        try:
            reader = pa.ipc.open_file(handle)
        except (OSError, ValueError, pa.ArrowInvalid) as exc:
            raise FormatError(
                f"{path} is not a readable shard ({exc}); rerun the tokenize stage"
            ) from None
        yield reader


def batch_bounds(lengths: np.ndarray) -> np.ndarray:
    """The first row of each record batch that write_shard writes for documents of these token
    counts, then the row count: a reader of some rows gets only the batches holding them."""
    lengths = np.asarray(lengths, dtype=np.int64)
    windows = (np.cumsum(lengths) - lengths) // BATCH_TOKENS
    return np.array([*(start for start, _ in runs(windows)), len(lengths)], dtype=np.int64)


def checked_batch(
    path: Path, reader: pa.ipc.RecordBatchFileReader, index: int, schema: pa.Schema
) -> pa.RecordBatch:
    """Record batch `index` of shard `path`, checked for its columns and fully validated: a
    flipped bit in a list offset would otherwise abort the process reading its documents."""
    try:
        batch = reader.get_batch(index)
        if not batch.schema.equals(schema):
            raise pa.ArrowInvalid(f"its columns are {batch.schema}, not {schema}")
        batch.validate(full=True)
    except (OSError, pa.ArrowException) as exc:
        message = str(exc).replace("\n", "; ")
        raise FormatError(
            f"{path}: record batch {index} is damaged ({message}); rerun the tokenize stage"
        ) from None
    return batch


def read_manifest(folder: str | Location) -> Manifest:
    """The manifest of the tokenized run in `folder` (a local folder or an object store's URL),
    checked for version, completeness and types, its files named as plain file names inside
    `folder`."""
    path = RunLayout(location(folder)).manifest
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise MissingRunError(
            f"{path} does not exist: {folder} holds no tokenized run (run the tokenize stage)"
        ) from None
    except (IsADirectoryError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path} is not a JSON file ({exc}); rerun the tokenize stage") from None
    fields = _Fields(path, data, "")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{path} has format version {version!r}, this corpusmill reads version "
            f"{FORMAT_VERSION}: rerun the tokenize stage or use a matching corpusmill"
        )
    tokenizer = _Fields(path, fields.get("tokenizer", dict), "tokenizer.")
    vocab_size = fields.count("vocab_size", low=1, high=_MAX_VOCAB_SIZE)
    token_dtype = fields.get("token_dtype", str)
    if token_dtype not in _TOKEN_DTYPES or vocab_size > _TOKEN_DTYPES[token_dtype]:
        fields.fail("token_dtype", token_dtype, f"uint16 or uint32, holding {vocab_size} ids")
    eos_id = fields.count("eos_id")
    if eos_id >= vocab_size:
        fields.fail("eos_id", eos_id, f"an id below vocab_size {vocab_size}")
    validation, fraction = (), 0.0
    if "validation" in data:  # a manifest written before the split, or without one, has none
        split = _Fields(path, data["validation"], "validation.")
        fraction = split.get("fraction", float)
        if not 0 < fraction < 1:
            split.fail("fraction", fraction, "a number above 0 and below 1")
        validation = _shard_infos(split, token_dtype)
    return Manifest(
        tokenizer=tokenizer.file_name("file"),
        tokenizer_xxh3=tokenizer.get("xxh3", str),
        vocab_size=vocab_size,
        token_dtype=token_dtype,
        eos_id=eos_id,
        tokens_per_shard=fields.count("tokens_per_shard", low=1),
        shards=_shard_infos(fields, token_dtype),
        validation=validation,
        validation_fraction=fraction,
    )


def run_tokenizer(folder: str | Location, manifest: Manifest) -> Location:
    """The run's tokenizer file, which must be the one the manifest names, byte for byte."""
    if problem := tokenizer_problem(folder, manifest):
        raise FormatError(f"{problem}; rerun the tokenize stage")
    return location(folder) / manifest.tokenizer


def tokenizer_problem(folder: str | Location, manifest: Manifest) -> str | None:
    """What is wrong with the run's tokenizer file against the manifest, or None."""
    path = location(folder) / manifest.tokenizer
    if not path.is_file():
        return f"{path}: missing"
    if (digest := file_checksum(path)) != manifest.tokenizer_xxh3:
        return f"{path}: xxh3 {digest}, the manifest says {manifest.tokenizer_xxh3}"
    return None


def verify_shards(folder: str | Location, manifest: Manifest) -> Iterator[str]:
    """Check every shard's presence, size and checksum against the manifest; yield each problem."""
    for shard in manifest.all_shards():
        path = location(folder) / shard.name
        if not path.is_file():
            yield f"{path}: missing"
        elif path.stat().st_size != shard.size:
            yield f"{path}: {path.stat().st_size} bytes, the manifest says {shard.size}"
        elif (digest := file_checksum(path)) != shard.xxh3:
            yield f"{path}: xxh3 {digest}, the manifest says {shard.xxh3}"


def runs(values: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, stop) of each run of equal consecutive values."""
    bounds = [0, *(np.flatnonzero(np.diff(values)) + 1).tolist(), len(values)]
    return ((start, stop) for start, stop in itertools.pairwise(bounds) if stop > start)


def _write_batch(writer: pa.ipc.RecordBatchFileWriter, tables: list[pa.Table]) -> None:
    """Write tables as a single record batch of freshly built arrays.

    A sliced list array is written with its offsets as they are, not rebased to 0, so the same
    documents would give different bytes depending on how they were sliced; concatenation always
    builds new arrays.
    """
    table = pa.concat_tables(tables)
    columns = [pa.concat_arrays(column.chunks) for column in table.columns]
    writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=table.schema))


def _shard_infos(fields: _Fields, token_dtype: str) -> tuple[ShardInfo, ...]:
    """The entries of the `shards` list of a manifest's object."""
    shards = fields.get("shards", list)
    return tuple(
        _shard_info(_Fields(fields.path, shard, f"{fields.prefix}shards[{index}]."), token_dtype)
        for index, shard in enumerate(shards)
    )


def _shard_info(shard: _Fields, token_dtype: str) -> ShardInfo:
    """One entry of the manifest's shard list, whose tokens must fit in its file's size (a count
    no file holds would size a loader's plans by it)."""
    info = ShardInfo(
        name=shard.file_name("name"),
        docs=shard.count("docs"),
        tokens=shard.count("tokens"),
        num_bytes=shard.count("num_bytes"),
        size=shard.count("size"),
        xxh3=shard.get("xxh3", str),
    )
    most = info.size // np.dtype(token_dtype).itemsize
    if info.tokens > most:
        shard.fail("tokens", info.tokens, f"at most {most} {token_dtype} in {info.size} bytes")
    return info


class _Fields:
    """The values of one JSON object of a manifest, each checked for its type as it is read; a
    wrong one is a FormatError naming the file and the key (`prefix` + key)."""

    def __init__(self, path: Path, data: Any, prefix: str) -> None:
        self.path, self.data, self.prefix = path, data, prefix
        if not isinstance(data, dict):
            where = f"{prefix.rstrip('.')} is" if prefix else "holds"
            raise FormatError(
                f"{path} {where} a JSON {type(data).__name__}, not an object of manifest "
                "fields; rerun the tokenize stage"
            )

    def get(self, key: str, kind: type) -> Any:
        """The value of `key`, which must be of type `kind`."""
        if key not in self.data:
            raise FormatError(
                f"{self.path} lacks or misnames a field: {self.prefix}{key} is missing; rerun "
                "the tokenize stage"
            )
        value = self.data[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            self.fail(key, value, f"a JSON {kind.__name__}")
        return value

    def count(self, key: str, low: int = 0, high: int = (1 << 63) - 1) -> int:
        """The value of `key`, an integer from `low` to `high` (numpy's int64 holds them all)."""
        value = self.get(key, int)
        if not low <= value <= high:
            self.fail(key, value, f"an integer from {low} to {high}")
        return value

    def file_name(self, key: str) -> str:
        """The value of `key`, a file name inside the run's folder: no folder part, no `..`."""
        name = self.get(key, str)
        if name in ("", ".", "..") or any(char in name for char in "/\\\0"):
            self.fail(key, name, "a plain file name inside the run's folder")
        return name

    def fail(self, key: str, value: Any, expected: str) -> NoReturn:
        """Raise the FormatError of a value that is not what `key` must hold."""
        shown = json.dumps(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise FormatError(
            f"{self.path}: {self.prefix}{key} is {shown}, expected {expected}; rerun the "
            "tokenize stage"
        )
