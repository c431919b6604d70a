"""The perplexity filter's reference model: a Kneser–Ney model of UTF-8 bytes trained on the text
a user names, saved in the run folder once per run and loaded by every clean task.

Bytes, not the run's BPE tokens (which do not exist when the clean stage runs) nor words: any
script is scored alike, no vocabulary is needed, and a model of bytes gives bits per byte, the
unit of the compression report. The reference is read by the run's own readers and normalized as
the inputs are, so its text looks like what the filter scores. The model file is an Arrow IPC
table of the model's distinct n-grams and their counts, whose metadata records the order and
the reference files it was trained on: same reference, same bytes.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.atomic import atomic_path
from corpusmill.core.checks import ConfigValueError
from corpusmill.core.storage import Location, damaged_file, open_input
from corpusmill.pipeline.ngram import KneserNey
from corpusmill.pipeline.normalize import normalize_text
from corpusmill.pipeline.readers import (
    InputError,
    InputFile,
    ReadConfig,
    discover_inputs,
    plan_splits,
    read_split,
)

if TYPE_CHECKING:
    from corpusmill.pipeline.filters.perplexity import PerplexityConfig

log = logging.getLogger(__name__)

# 256 byte values, then the end of a document.
VOCAB_SIZE = 257
EOS = 256
_KEY = "filters.perplexity.reference"


def prepare_reference_model(
    config: PerplexityConfig, read: ReadConfig, path: Location, options: dict[str, Any]
) -> None:
    """Train the model on the reference `config` names and save it at `path`, unless the model
    there was trained on these very files (a rerun); ConfigError naming the key if the
    reference is missing, holds no text, or changed since the run's model was trained."""
    files = reference_files(config.reference, read, options)
    record = _files_record(files)
    if path.exists():
        trained_on = json.loads(_metadata(path)[b"reference"])
        if trained_on != record:
            raise ConfigValueError(
                _KEY,
                config.reference,
                f"its files changed since the run's model ({path}) was trained on them; pass "
                "--force to start the run again",
            )
        return
    texts, rejected = reference_texts(files, read, config.reference_bytes)
    problems = ", ".join(f"{count} {reason}" for reason, count in sorted(rejected.items()))
    if not texts:
        found = f" (records rejected: {problems})" if problems else ""
        raise ConfigValueError(
            _KEY, config.reference, f"holds no readable text{found}; name files of text"
        )
    if problems:
        log.warning("perplexity: records of the reference rejected: %s", problems)
    model = train_model(texts, config.order)
    save_model(model, path, record)
    log.info(
        "perplexity: a %d-gram model of bytes trained on %d bytes of %d reference files",
        config.order,
        sum(len(text) for text in texts),
        len(files),
    )


def reference_files(
    reference: Sequence[str], read: ReadConfig, options: dict[str, Any]
) -> list[InputFile]:
    """The files the reference names, found as inputs are; ConfigError naming the key if a
    name matches none."""
    try:
        return discover_inputs(reference, read, options=options)
    except InputError as exc:
        raise ConfigValueError(_KEY, reference, str(exc)) from None


def reference_texts(
    files: Sequence[InputFile], read: ReadConfig, limit: int
) -> tuple[list[bytes], Counter[str]]:
    """The UTF-8 texts of the reference's documents in order, normalized as the run's are, up to
    `limit` bytes in all (the last one cut), and how many records were rejected, by reason."""
    texts: list[bytes] = []
    rejected: Counter[str] = Counter()
    total = 0
    for split in plan_splits(files, read):
        for batch in read_split(split, read):
            rejected.update(batch.rejected["reason"].to_pylist())
            for text in normalize_text(batch.docs)["text"].to_pylist():
                if total < limit and text:
                    texts.append(text.encode()[: limit - total])
                    total += len(texts[-1])
            if total >= limit:
                return texts, rejected
    return texts, rejected


def train_model(texts: Sequence[bytes], order: int) -> KneserNey:
    """The Kneser–Ney model of `order` over the bytes of `texts`."""
    docs = [np.frombuffer(text, np.uint8).astype(np.int64) for text in texts]
    return KneserNey(docs, VOCAB_SIZE, EOS, order)


def save_model(model: KneserNey, path: Location, record: list[dict[str, Any]]) -> None:
    """Write the model's n-gram counts and what it was trained on to `path`, atomically."""
    metadata = {
        "order": str(model.order),
        "discount": repr(model.discount),
        "reference": json.dumps(record, sort_keys=True),
    }
    table = pa.table({"ngram": model.keys, "count": model.counts}).replace_schema_metadata(metadata)
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with atomic_path(path) as tmp, pa.ipc.new_file(str(tmp), table.schema, options=options) as out:
        out.write_table(table)


def load_model(path: Location) -> KneserNey:
    """The model save_model wrote to `path`."""
    with _model_file(path) as reader:
        table = reader.read_all()
    metadata = table.schema.metadata
    return KneserNey.from_counts(
        table["ngram"].to_numpy(),
        table["count"].to_numpy(),
        VOCAB_SIZE,
        EOS,
        int(metadata[b"order"]),
        float(metadata[b"discount"]),
    )


def bits_per_byte(model: KneserNey, texts: pa.Array, limit: int) -> np.ndarray:
    """The model's bits per byte of each text's first `limit` UTF-8 bytes (0 for an empty
    text), all texts scored in one pass over their bytes."""
    scored = pc.binary_slice(texts.cast(pa.large_binary()), 0, limit)
    first = scored.offset
    offsets = np.frombuffer(scored.buffers()[1], np.int64)[first : first + len(scored) + 1]
    data = np.frombuffer(scored.buffers()[2] or b"", np.uint8)[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    lengths = np.diff(offsets)
    bits = model.token_bits(data, offsets[:-1])
    totals = np.bincount(np.repeat(np.arange(len(scored)), lengths), bits, len(scored))
    return np.divide(totals, lengths, out=np.zeros(len(scored)), where=lengths > 0)


def _files_record(files: Sequence[InputFile]) -> list[dict[str, Any]]:
    """What tells one reference from another: each file's URL, size and version."""
    return [{"url": file.url, "size": file.size, "modified": file.modified} for file in files]


def _metadata(path: Location) -> dict[bytes, bytes]:
    """The schema metadata of the model file at `path`."""
    with _model_file(path) as reader:
        return reader.schema.metadata


@contextlib.contextmanager
def _model_file(path: Location) -> Iterator[pa.ipc.RecordBatchFileReader]:
    """A reader of the model file at `path`; StageError naming it if it is damaged: damaged
    data, which deleting the file (or --force) has the next run train again."""
    remedy = "delete it, and the next run trains the reference model again"
    with damaged_file(path, remedy), pa.ipc.open_file(open_input(path)) as reader:
        yield reader
