"""The deduplicated corpus in Dolma's layout: `DIR/documents/part-N.jsonl.zst` (or `.jsonl.gz`),
one file per dataset part, one Dolma document (`id`, `text`, `source`, `metadata`) a line.

Dolma's documents are JSON lines of a mandatory `id` (unique within its `source`), `text` and
`source`, and a free-form `metadata` object (allenai/dolma docs/data-format.md). Here `id` is the
run's document id (`<input file>#<offset>`), `source` the input file it came from, and `metadata`
every other column of the dataset part, in its order: `url`, `title`, `lang`, `lang_score`,
`source_id` and the input record's own fields as `meta`. Dolma's optional `added` and `created`
timestamps are left out, as the run knows neither, so the same run always exports the same bytes.
A part is read a record batch at a time and written under a temporary name until it is complete.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from corpusmill.core.atomic import atomic_path
from corpusmill.core.errors import UserError
from corpusmill.core.progress import progress
from corpusmill.core.storage import Location, location, open_input
from corpusmill.loader.layout import RunLayout, part_name
from corpusmill.pipeline.meta import plain_meta

# Each compression's file name ending; zstd is the default, gzip what Dolma's own files use.
SUFFIXES = {"zstd": ".jsonl.zst", "gzip": ".jsonl.gz"}
_EXPORTED = re.compile(r"part-\d+(" + "|".join(map(re.escape, SUFFIXES.values())) + ")")
# Dolma's mandatory fields, taken from the dataset's columns of the same names.
_TOP = ("id", "text", "source")
# Rows converted to JSON at once: a few MB of text, whatever the part's size.
_BATCH_ROWS = 1024
_ZSTD_LEVEL = 3


@dataclass(frozen=True)
class DolmaFile:
    """A written file of documents and how many it holds."""

    path: Path
    docs: int


def write_dolma(out: str | Location, dest: Path, compression: str = "zstd") -> list[DolmaFile]:
    """Write every part of the dataset of the run in `out` (a local folder or a URL) to the local
    `dest/documents/`, replacing the files of an earlier export there; return the files written,
    in part order."""
    layout = RunLayout(location(out))
    parts = finished_parts(layout)
    folder = Path(dest) / "documents"
    written = []
    with progress("export", len(parts), unit="part") as counts:
        for part in parts:
            source = layout.dataset_part(part)
            path = folder / f"{part_name(part)}{SUFFIXES[compression]}"
            written.append(DolmaFile(path, _write_part(source, path, compression)))
            counts.update(1, source.stat().st_size)
    kept = {file.path.name for file in written}
    for path in folder.glob("part-*.jsonl.*"):
        if _EXPORTED.fullmatch(path.name) and path.name not in kept:
            path.unlink()
    return written


def finished_parts(layout: RunLayout) -> list[int]:
    """The run's dataset parts, refusing a run whose dataset stage has not written them all."""
    parts = layout.clean_parts()
    missing = [part for part in parts if not layout.dataset_marker(part).exists()]
    if not parts or missing:
        what = f"part {missing[0]} of {len(parts)}" if missing else "no clean part"
        raise UserError(
            f"{layout.dataset} is not complete ({what} written): run `corpusmill run` with the "
            f"same config and --out {layout.root} to finish the run first"
        )
    return parts


def documents(batch: pa.RecordBatch) -> Iterator[dict]:
    """The Dolma documents of a record batch of a dataset part, in its order."""
    meta = plain_meta(batch.column("meta")) if "meta" in batch.schema.names else None
    columns = {
        name: meta if name == "meta" else batch.column(name).to_pylist()
        for name in batch.schema.names
    }
    rest = [name for name in batch.schema.names if name not in _TOP]
    for row in range(batch.num_rows):
        doc = {name: columns[name][row] for name in _TOP}
        doc["metadata"] = {name: columns[name][row] for name in rest}
        yield doc


def _write_part(source: Location, path: Path, compression: str) -> int:
    """Write one dataset part's documents to `path`; return how many there were."""
    docs = 0
    with (
        open_input(source) as parquet,
        atomic_path(path) as tmp,
        _compressed(tmp, compression) as stream,
    ):
        for batch in pq.ParquetFile(parquet).iter_batches(batch_size=_BATCH_ROWS):
            lines = [
                json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"
                for doc in documents(batch)
            ]
            stream.write("".join(lines).encode("utf-8"))
            docs += batch.num_rows
    return docs


@contextlib.contextmanager
def _compressed(path: Path, compression: str) -> Iterator[BinaryIO]:
    """A stream compressing what is written to it into `path`, the same bytes every time (gzip's
    header holds no time or file name)."""
    with open(path, "wb") as raw:
        if compression == "gzip":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as stream:
                yield stream
        else:
            compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
            with compressor.stream_writer(raw, closefd=False) as stream:
                yield stream
