"""Readers: input discovery and splitting, and each input format turned into document batches.

    files = discover_inputs(config.inputs, config.read)   # once, on the client
    splits = plan_splits(files, config.read)              # once, on the client
    for batch in read_split(split, config.read): ...      # in a Dask task per (group of) split(s)

Every record read comes out either as a document (`batch.docs`, schema DOCUMENTS) or as a rejected
row (`batch.rejected`, schema REJECTED, step "read" or "extract"), so `kept + rejected == read`.
"""

from __future__ import annotations

from collections.abc import Iterator

from corpusmill.pipeline.readers.discover import (
    InputError,
    InputFile,
    ReadConfig,
    Split,
    discover_inputs,
    plan_splits,
)
from corpusmill.pipeline.readers.jsonl import read_jsonl
from corpusmill.pipeline.readers.parquet import read_parquet
from corpusmill.pipeline.readers.streams import ReadBatch
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
    "read_split",
]

_READERS = {"warc": read_warc, "jsonl": read_jsonl, "parquet": read_parquet, "text": read_text}


def read_split(split: Split, config: ReadConfig) -> Iterator[ReadBatch]:
    """Read one split in batches of at most `config.batch_docs` documents and about
    `config.batch_bytes` of text (a split with nothing to report yields no batch).
    """
    return _READERS[split.file.format](split, config)
