"""Readers: input discovery and splitting, and each input format turned into document batches.

    files = discover_inputs(config.inputs, config.read)   # once, on the client
    splits = plan_splits(files, config.read)              # once, on the client
    size = split_size(files, config.read)                 # what a task of splits groups up to
    for batch in read_split(split, config.read): ...      # in a Dask task per (group of) split(s)

Each format's reader yields typed records (records.py): a document or a rejection per input record,
or columnar blocks of them; one `Batcher` gathers them into batches. Every record read comes out
either as a document (`batch.docs`, schema DOCUMENTS) or as a rejected row (`batch.rejected`,
schema REJECTED, step "read" or "extract"), so `kept + rejected == read`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pyarrow.compute as pc

from corpusmill.pipeline.readers.discover import (
    InputError,
    InputFile,
    ReadConfig,
    Split,
    discover_inputs,
    plan_splits,
    printable,
    split_size,
)
from corpusmill.pipeline.readers.jsonl import read_jsonl
from corpusmill.pipeline.readers.parquet import read_parquet
from corpusmill.pipeline.readers.records import Batcher, ReadBatch, Record, Rejection
from corpusmill.pipeline.readers.text import read_text
from corpusmill.pipeline.readers.warc import read_warc

__all__ = [
    "InputError",
    "InputFile",
    "ReadBatch",
    "ReadConfig",
    "Split",
    "discover_inputs",
    "plan_splits",
    "printable",
    "read_split",
    "split_size",
]

log = logging.getLogger(__name__)


def read_split(split: Split, config: ReadConfig) -> Iterator[ReadBatch]:
    """Read one split in batches of at most `config.batch_docs` documents and about
    `config.batch_bytes` of text (a split with nothing to report yields no batch).

    A reader that fails costs only the rest of its split: the batches it yielded stand, and what
    it had not yet yielded is one rejected `read:error` row at the offset it had reached.
    """
    reached = None
    try:
        for batch in _READERS[split.file.format](split, config):
            reached = _past_last_offset(batch, reached)
            yield batch
    except Exception as exc:  # an unreadable file must not fail its task
        yield _read_error(split, config, reached, exc)


def _past_last_offset(batch: ReadBatch, reached: int | None) -> int | None:
    """One past the largest offset yielded so far, `batch` included (None while there is none)."""
    offsets = [pc.max(table["offset"]).as_py() for table in (batch.docs, batch.rejected)]
    past = [offset + 1 for offset in offsets if offset is not None]
    return max([*past, reached] if reached is not None else past, default=None)


def _read_error(split: Split, config: ReadConfig, reached: int | None, exc: Exception) -> ReadBatch:
    """The rest of a split, from the offset `reached` (its start if none), as one logged
    `read:error` record. Its bytes are the whole split if nothing was read, else the rest of the
    split where offsets are stored positions, else unknown (0): stream and Parquet row offsets
    are not positions in the stored file.
    """
    file = split.file
    if reached is None:
        offset, size = split.start, split.end - split.start
    elif file.compression == "none" and file.format != "parquet":
        offset, size = reached, max(split.end - reached, 0)
    else:
        offset, size = reached, 0
    detail = f"{type(exc).__name__}: {exc}; the rest of the split"
    log.debug("%s: traceback of the read error", file.url, exc_info=exc)
    return next(_batcher(split, config).batches([Rejection(offset, "error", size, detail)]))


def _batcher(split: Split, config: ReadConfig) -> Batcher:
    file = split.file
    return Batcher(file.url, file.source, config.batch_docs, config.batch_bytes)


def _batched(
    read: Callable[[Split, ReadConfig], Iterator[Record]],
) -> Callable[[Split, ReadConfig], Iterator[ReadBatch]]:
    """A format's reader of records made a reader of batches."""

    def batches(split: Split, config: ReadConfig) -> Iterator[ReadBatch]:
        return _batcher(split, config).batches(read(split, config))

    return batches


_READERS = {
    "warc": _batched(read_warc),
    "jsonl": _batched(read_jsonl),
    "parquet": _batched(read_parquet),
    "text": _batched(read_text),
}
