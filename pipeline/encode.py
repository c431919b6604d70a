"""The tokenize stage's encoding: a task per clean part encodes the documents dedup kept, EOS
after each, into `OUT/tokenize/part-N.arrow`, then writes its marker
`OUT/tokenize/_done/part-N.json`; a part encoded with the same tokenizer is not redone."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client, Future

from corpusmill.core.atomic import atomic_path, write_json
from corpusmill.core.storage import Location, open_input
from corpusmill.loader.format import tokens_array, write_shard
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import run_tasks
from corpusmill.pipeline.corpus import read_kept
from corpusmill.tokenizer.encode import Encoder

log = logging.getLogger(__name__)

# Documents encoded at a time inside a task: bounds the Python strings held at once.
_ENCODE_DOCS = 1024


@dataclass(frozen=True)
class EncodeTask:
    """Encoding clean part `part` of the run in `layout`, then writing its marker."""

    layout: RunLayout
    part: int

    @property
    def encoded(self) -> Location:
        return self.layout.encoded_part(self.part)

    @property
    def marker(self) -> Location:
        return self.layout.encoded_marker(self.part)


def encoder_facts(encoder: Encoder, eos: str) -> tuple[str, int, int | None]:
    """What the stage needs to know of an encoder: its backend, vocabulary size and EOS id."""
    return encoder.backend, encoder.vocab_size, encoder.token_id(eos)


def encode_parts(
    layout: RunLayout,
    parts: Sequence[int],
    encoder: Future,
    backend: str,
    eos_id: int,
    tokens: pa.DataType,
    digest: str,
    client: Client,
) -> list[Location]:
    """Encode every part not yet encoded with this tokenizer (the encoder a task left on the
    cluster, of `backend`); return the encoded files in order."""
    tasks = [EncodeTask(layout, part) for part in parts]
    todo = [task for task in tasks if not _encoded(task, digest)]
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
    return [task.encoded for task in tasks]


def encode_part(
    task: EncodeTask,
    encoder: Encoder,
    eos_id: int,
    tokens: pa.DataType,
    digest: str,
) -> dict[str, Any]:
    """Encode the kept documents of one clean part, EOS after each; write its file, then marker."""
    table = read_kept(task.layout, task.part)

    def batches() -> Iterator[pa.Table]:
        for start in range(0, table.num_rows, _ENCODE_DOCS):
            chunk = table.slice(start, _ENCODE_DOCS)
            text = chunk["text"].combine_chunks()
            yield pa.table(
                {
                    "id": chunk["id"],
                    "tokens": tokens_array(encoder.encode(text), eos_id, tokens),
                    "num_bytes": pc.cast(pc.binary_length(text), pa.int64()),
                }
            )

    with atomic_path(task.encoded) as tmp:
        info = write_shard(tmp, batches(), tokens, name=task.encoded.name)
    with open_input(task.layout.clean_part(task.part)) as source:
        clean_docs = pq.read_metadata(source).num_rows
    counts = {
        "tokenizer_xxh3": digest,
        "backend": encoder.backend,
        "docs": info.docs,
        "tokens": info.tokens,
        "num_bytes": info.num_bytes,
        "removed": clean_docs - table.num_rows,
    }
    write_json(task.marker, counts)
    return counts


def _encoded(task: EncodeTask, digest: str) -> bool:
    """True if the part was encoded with this tokenizer and its file is still there."""
    if not (task.marker.exists() and task.encoded.exists()):
        return False
    return json.loads(task.marker.read_text())["tokenizer_xxh3"] == digest
