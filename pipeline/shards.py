"""The tokenize stage's shards: boundaries planned per split from the documents' token counts in
corpus order (which the encoded parts' markers record), so the shards hold the same documents
whatever the parts and workers; a task per shard writes `OUT/shard-N.arrow` (`OUT/val-N.arrow` for
the validation split) from slices of the encoded parts, reading only their record batches that
hold the slices, then its marker. Also the finished manifest a rerun finds, and the files the
shards make unneeded."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from distributed import Client

from corpusmill.core.atomic import atomic_path, write_json
from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location
from corpusmill.loader.format import (
    FormatError,
    Manifest,
    ShardInfo,
    batch_bounds,
    read_manifest,
    shard_reader,
    write_shard,
)
from corpusmill.loader.layout import SPLITS, RunLayout, shard_name
from corpusmill.pipeline.cluster import run_tasks
from corpusmill.tokenizer.config import ShardsConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardTask:
    """Writing shard `index` from (part number, first row, stop row) slices of the encoded parts."""

    index: int
    slices: tuple[tuple[int, int, int], ...]


def write_shards(
    layout: RunLayout,
    split: str,
    encoded: Sequence[Location],
    lengths: Sequence[np.ndarray],
    tokens_per_shard: int,
    tokens: pa.DataType,
    digest: str,
    client: Client,
) -> list[ShardInfo]:
    """Plan a split's shards from the token counts of the `encoded` parts' documents, write those
    not already written for this plan; return all their infos."""
    tasks = plan_shards(lengths, tokens_per_shard)
    todo = [task for task in tasks if _shard_done(layout, split, task, digest) is None]
    log.info(
        "tokenize: %d %s shards, %d already written", len(tasks), split, len(tasks) - len(todo)
    )
    if todo:
        run_tasks(
            client,
            write_shard_task,
            todo,
            describe=lambda task: shard_name(task.index, split),
            desc=f"tokenize: {split} shards",
            encoded=list(encoded),
            bounds=[batch_bounds(part) for part in lengths],
            layout=layout,
            split=split,
            tokens=tokens,
            digest=digest,
        )
    infos = [_shard_done(layout, split, task, digest) for task in tasks]
    if None in infos:
        raise StageError(f"tokenize: shards of {layout.root} vanished while being written; rerun")
    return infos


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
    bounds: Sequence[np.ndarray],
    layout: RunLayout,
    split: str,
    tokens: pa.DataType,
    digest: str,
) -> dict[str, Any]:
    """Write one shard of `split` from slices of the encoded parts (whose record batches start
    at `bounds`), then its marker."""

    def tables() -> Iterator[pa.Table]:
        for part, start, stop in task.slices:
            yield from _encoded_rows(encoded[part], bounds[part], start, stop)

    path = layout.shard(task.index, split)
    with atomic_path(path) as tmp:
        info = write_shard(tmp, tables(), tokens, name=path.name)
    record = _shard_record(task, digest, info)
    write_json(layout.shard_marker(task.index, split), record)
    return record


def finished_manifest(layout: RunLayout, digest: str, shards: ShardsConfig) -> Manifest | None:
    """The existing manifest if it was written for this tokenizer, shard size and validation
    fraction."""
    if not layout.manifest.exists():
        return None
    try:
        manifest = read_manifest(layout.root)
    except FormatError as exc:
        log.warning("tokenize: rewriting the manifest: %s", exc)
        return None
    found = (manifest.tokenizer_xxh3, manifest.tokens_per_shard, manifest.validation_fraction)
    if found == (digest, shards.tokens_per_shard, shards.validation_fraction):
        return manifest
    return None


def remove_leftovers(layout: RunLayout, encoded: Iterable[Location], manifest: Manifest) -> None:
    """Delete the encoded parts (the shards hold their tokens) and shards of an earlier plan."""
    for path in encoded:
        path.unlink(missing_ok=True)
    listed = {shard.name for shard in manifest.all_shards()}
    for path in (path for split in SPLITS for path in layout.shards(split)):
        if path.name not in listed:
            path.unlink()


def _encoded_rows(path: Location, bounds: np.ndarray, start: int, stop: int) -> Iterator[pa.Table]:
    """Rows [start, stop) of an encoded part whose record batches start at `bounds`, reading only
    the batches that hold them: on an object store, a part spanning k shards is fetched once in
    all, not k times, and a task holds one batch of it at a time."""
    with shard_reader(path) as reader:
        if reader.num_record_batches != len(bounds) - 1:
            raise StageError(
                f"tokenize: {path} holds {reader.num_record_batches} record batches, its marker's "
                f"token counts make {len(bounds) - 1}; delete it and its marker and rerun"
            )
        first = int(np.searchsorted(bounds, start, side="right")) - 1
        for index in range(max(first, 0), len(bounds) - 1):
            if bounds[index] >= stop:
                break
            batch = reader.get_batch(index)
            low = max(start - int(bounds[index]), 0)
            high = min(stop - int(bounds[index]), batch.num_rows)
            yield pa.Table.from_batches([batch.slice(low, high - low)])


def _shard_done(layout: RunLayout, split: str, task: ShardTask, digest: str) -> ShardInfo | None:
    """The shard's info if it was written for this plan and tokenizer and is still there."""
    marker = layout.shard_marker(task.index, split)
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
