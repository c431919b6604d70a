"""The tokenize stage's shards: boundaries planned from the documents' token counts in corpus
order, so the shards hold the same documents whatever the parts and workers; a task per shard
writes `OUT/shard-N.arrow` from slices of the encoded parts, then its marker. Also the finished
manifest a rerun finds, and the files the shards make unneeded."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from distributed import Client

from corpusmill.core.atomic import atomic_path, write_json
from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location, ObjectPath, open_input
from corpusmill.loader.format import (
    FormatError,
    Manifest,
    ShardInfo,
    open_shard,
    read_manifest,
    write_shard,
)
from corpusmill.loader.layout import RunLayout, shard_name
from corpusmill.pipeline.cluster import gather, run_tasks
from corpusmill.tokenizer.config import ShardsConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardTask:
    """Writing shard `index` from (part number, first row, stop row) slices of the encoded parts."""

    index: int
    slices: tuple[tuple[int, int, int], ...]


def write_shards(
    layout: RunLayout,
    encoded: Sequence[Location],
    tokens_per_shard: int,
    tokens: pa.DataType,
    digest: str,
    client: Client,
) -> list[ShardInfo]:
    """Plan the shards, write those not already written for this plan; return all their infos.
    The workers count the encoded parts' tokens, so that no part travels to this process."""
    counted = client.map(token_counts, list(encoded), pure=False)
    lengths = gather(client, counted, "tokenize: plan shards", unit="part")
    tasks = plan_shards(lengths, tokens_per_shard)
    todo = [task for task in tasks if _shard_done(layout, task, digest) is None]
    log.info("tokenize: %d shards, %d already written", len(tasks), len(tasks) - len(todo))
    if todo:
        run_tasks(
            client,
            write_shard_task,
            todo,
            describe=lambda task: shard_name(task.index),
            desc="tokenize: shards",
            encoded=list(encoded),
            layout=layout,
            tokens=tokens,
            digest=digest,
        )
    infos = [_shard_done(layout, task, digest) for task in tasks]
    if None in infos:
        raise StageError(f"tokenize: shards of {layout.root} vanished while being written; rerun")
    return infos


def token_counts(encoded: Location) -> np.ndarray:
    """The token count of each document of an encoded part, in order."""
    return pc.list_value_length(_encoded_table(encoded)["tokens"]).to_numpy()


def plan_shards(lengths: Sequence[np.ndarray], tokens_per_shard: int) -> list[ShardTask]:
    """Shards from each part's per-document token counts: shard k holds the documents that start
    in the k-th non-empty window of `tokens_per_shard` tokens of the whole corpus."""
    sizes = np.concatenate([np.asarray(part, dtype=np.int64) for part in lengths] or [[]])
    part_of = np.repeat(np.arange(len(lengths)), [len(part) for part in lengths])
    row = np.concatenate([np.arange(len(part)) for part in lengths] or [[]]).astype(np.int64)
    starts = np.cumsum(sizes) - sizes
    _, firsts = np.unique(starts // tokens_per_shard, return_index=True)
    bounds = [*firsts.tolist(), len(sizes)]
    tasks = []
    for index, (first, stop) in enumerate(itertools.pairwise(bounds)):
        parts, offsets, counts = np.unique(
            part_of[first:stop], return_index=True, return_counts=True
        )
        slices = tuple(
            (int(part), int(row[first + offset]), int(row[first + offset] + count))
            for part, offset, count in zip(parts, offsets, counts, strict=True)
        )
        tasks.append(ShardTask(index, slices))
    return tasks


def write_shard_task(
    task: ShardTask,
    encoded: Sequence[Location],
    layout: RunLayout,
    tokens: pa.DataType,
    digest: str,
) -> dict[str, Any]:
    """Write one shard from slices of the encoded parts, then its marker."""

    def tables() -> Iterator[pa.Table]:
        for part, start, stop in task.slices:
            yield _encoded_table(encoded[part]).slice(start, stop - start)

    path = layout.shard(task.index)
    with atomic_path(path) as tmp:
        info = write_shard(tmp, tables(), tokens, name=path.name)
    record = _shard_record(task, digest, info)
    write_json(layout.shard_marker(task.index), record)
    return record


def finished_manifest(layout: RunLayout, digest: str, shards: ShardsConfig) -> Manifest | None:
    """The existing manifest if it was written for this tokenizer and shard size."""
    if not layout.manifest.exists():
        return None
    try:
        manifest = read_manifest(layout.root)
    except FormatError as exc:
        log.warning("tokenize: rewriting the manifest: %s", exc)
        return None
    if (manifest.tokenizer_xxh3, manifest.tokens_per_shard) == (digest, shards.tokens_per_shard):
        return manifest
    return None


def remove_leftovers(layout: RunLayout, encoded: Sequence[Location], manifest: Manifest) -> None:
    """Delete the encoded parts (the shards hold their tokens) and shards of an earlier plan."""
    for path in encoded:
        path.unlink(missing_ok=True)
    listed = {shard.name for shard in manifest.shards}
    for path in layout.shards():
        if path.name not in listed:
            path.unlink()


def open_shard_at(path: Location) -> pa.ipc.RecordBatchFileReader:
    """A shard, or an encoded part, opened wherever it is: a local file memory-mapped
    (loader/format.py open_shard), an object through its store's range reads (an object cannot
    be mapped)."""
    if isinstance(path, ObjectPath):
        return pa.ipc.open_file(open_input(path))
    return open_shard(path)


def _encoded_table(path: Location) -> pa.Table:
    """An encoded part's documents."""
    return open_shard_at(path).read_all()


def _shard_done(layout: RunLayout, task: ShardTask, digest: str) -> ShardInfo | None:
    """The shard's info if it was written for this plan and tokenizer and is still there."""
    marker = layout.shard_marker(task.index)
    if not marker.exists():
        return None
    record = json.loads(marker.read_text())
    info = ShardInfo(**record["shard"])
    path = layout.root / info.name
    if record != _shard_record(task, digest, info) or not path.exists():
        return None
    return info if path.stat().st_size == info.size else None


def _shard_record(task: ShardTask, digest: str, info: ShardInfo) -> dict[str, Any]:
    """A shard's marker: what it was written from, and what the manifest lists for it."""
    return {
        "tokenizer_xxh3": digest,
        "slices": [list(piece) for piece in task.slices],
        "shard": dataclasses.asdict(info),
    }
