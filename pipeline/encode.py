"""The tokenize stage's encoding: a task per clean part encodes the documents dedup kept, EOS
after each, into `OUT/tokenize/part-N.arrow`, and those of the validation split (loader/split.py)
into `OUT/tokenize/validation/part-N.arrow`, then writes its marker
`OUT/tokenize/_done/part-N.json` with each document's token count; a part encoded with the same
tokenizer and validation fraction is not redone."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client, Future

from corpusmill.core.atomic import atomic_path, write_json
from corpusmill.core.storage import Location, open_input
from corpusmill.loader.format import tokens_array, write_shard
from corpusmill.loader.layout import RunLayout
from corpusmill.loader.split import TRAIN, VALIDATION, in_validation, splits
from corpusmill.pipeline.cluster import run_tasks
from corpusmill.pipeline.corpus import read_kept
from corpusmill.tokenizer.encode import Encoder

log = logging.getLogger(__name__)

# Documents encoded at a time inside a task: bounds the Python strings held at once.
_ENCODE_DOCS = 1024


@dataclass(frozen=True)
class EncodeTask:
    """Encoding clean part `part` of the run in `layout`, its documents split into training and
    validation ones at `fraction`, then writing its marker."""

    layout: RunLayout
    part: int
    fraction: float

    @property
    def marker(self) -> Location:
        return self.layout.encoded_marker(self.part)


def encoder_facts(encoder: Encoder, eos: str) -> tuple[str, int, int | None]:
    """What the stage needs to know of an encoder: its backend, vocabulary size and EOS id."""
    return encoder.backend, encoder.vocab_size, encoder.token_id(eos)


def encode_parts(
    layout: RunLayout,
    parts: Sequence[int],
    fraction: float,
    encoder: Future,
    backend: str,
    eos_id: int,
    tokens: pa.DataType,
    digest: str,
    client: Client,
) -> dict[str, list[Location]]:
    """Encode every part not yet encoded with this tokenizer and validation `fraction` (the
    encoder a task left on the cluster, of `backend`); return each split's encoded files in
    order."""
    tasks = [EncodeTask(layout, part, fraction) for part in parts]
    todo = [task for task in tasks if not _is_encoded(task, digest)]
    log.info(
        "tokenize: %d parts with %s, %d already encoded",
        len(tasks),
        backend,
        len(tasks) - len(todo),
    )
    if todo:
        run_tasks(
            client,
            encode_part,
            todo,
            describe=lambda task: str(task.layout.clean_part(task.part)),
            desc="tokenize: encode",
            encoder=encoder,
            eos_id=eos_id,
            tokens=tokens,
            digest=digest,
        )
    return {
        split: [layout.encoded_part(part, split) for part in parts] for split in splits(fraction)
    }


def encoded_lengths(layout: RunLayout, parts: Sequence[int], split: str) -> list[np.ndarray]:
    """The token count of each document of every encoded part of `split`, in order, as the
    parts' markers record them: the shards are planned without reading a part."""
    markers = (json.loads(layout.encoded_marker(part).read_text()) for part in parts)
    return [np.asarray(marker["lengths"][split], dtype=np.int64) for marker in markers]


def encode_part(
    task: EncodeTask,
    encoder: Encoder,
    eos_id: int,
    tokens: pa.DataType,
    digest: str,
) -> dict[str, Any]:
    """Encode the kept documents of one clean part, EOS after each, into a file per split; then
    write its marker."""
    table = read_kept(task.layout, task.part)
    chosen = {TRAIN: table}
    if task.fraction:
        held = pa.array(in_validation(table["id"].to_pylist(), task.fraction))
        chosen = {TRAIN: table.filter(pc.invert(held)), VALIDATION: table.filter(held)}
    infos, lengths = [], {}
    for split, documents in chosen.items():
        path, counts = task.layout.encoded_part(task.part, split), []
        with atomic_path(path) as tmp:
            batches = _encoded(documents, encoder, eos_id, tokens, counts)
            infos.append(write_shard(tmp, batches, tokens, name=path.name))
        lengths[split] = np.concatenate(counts or [[]]).astype(np.int64).tolist()
    with open_input(task.layout.clean_part(task.part)) as source:
        clean_docs = pq.read_metadata(source).num_rows
    counts = {
        "tokenizer_xxh3": digest,
        "validation_fraction": task.fraction,
        "backend": encoder.backend,
        "docs": sum(info.docs for info in infos),
        "tokens": sum(info.tokens for info in infos),
        "num_bytes": sum(info.num_bytes for info in infos),
        "removed": clean_docs - table.num_rows,
        "lengths": lengths,
    }
    write_json(task.marker, counts)
    return counts


def _encoded(
    table: pa.Table, encoder: Encoder, eos_id: int, tokens: pa.DataType, lengths: list
) -> Iterator[pa.Table]:
    """Documents with the shard columns, _ENCODE_DOCS at a time; each one's token count (EOS
    included) appended to `lengths`."""
    for start in range(0, table.num_rows, _ENCODE_DOCS):
        chunk = table.slice(start, _ENCODE_DOCS)
        text = chunk["text"].combine_chunks()
        column = tokens_array(encoder.encode(text), eos_id, tokens)
        lengths.append(np.diff(column.offsets.to_numpy()))
        yield pa.table(
            {
                "id": chunk["id"],
                "tokens": column,
                "num_bytes": pc.cast(pc.binary_length(text), pa.int64()),
            }
        )


def _is_encoded(task: EncodeTask, digest: str) -> bool:
    """True if the part was encoded with this tokenizer and fraction and its files are still
    there."""
    if not task.marker.exists():
        return False
    marker = json.loads(task.marker.read_text())
    same = (marker["tokenizer_xxh3"], marker.get("validation_fraction")) == (digest, task.fraction)
    return (
        same
        and "lengths" in marker
        and all(
            task.layout.encoded_part(task.part, split).exists() for split in splits(task.fraction)
        )
    )
