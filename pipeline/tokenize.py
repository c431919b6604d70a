"""The tokenize stage: the documents dedup kept, encoded into Arrow shards and their manifest.

1. The tokenizer: `tokenizer.path` copied to `OUT/tokenizer.json`, or one trained on the run's
   deduplicated documents (tokenizer/train.py), its options kept in `OUT/tokenize/_done/train.json`.
2. Encoding: a Dask task builds the encoder (tiktoken when it gives the tokenizer's ids exactly,
   see tokenizer/encode.py) and keeps it on the cluster; `corpusmill run` submits it while dedup
   runs (`encoder_ahead`). A task per clean part then encodes the documents dedup kept, EOS after
   each, into `OUT/tokenize/part-N.arrow`, and writes its marker `OUT/tokenize/_done/part-N.json`.
3. Sharding: shard boundaries are planned from the documents' token counts in corpus order, so the
   shards hold the same documents whatever the parts and workers; a task per shard writes
   `OUT/shard-N.arrow` atomically, then its marker.
4. `OUT/tokenizer_config.json` and `OUT/special_tokens_map.json` (tokenizer/hf_files.py), for
   transformers, then `OUT/index.json` (loader/format.py) last; then the encoded parts are deleted.

A rerun redoes only the steps whose markers are missing or name another tokenizer; when index.json
names the same tokenizer and shard size, it only writes the files for transformers again.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client, Future

from corpusmill.core.atomic import atomic_path, write_json, write_text
from corpusmill.core.checksums import file_checksum
from corpusmill.core.errors import StageError
from corpusmill.loader.format import (
    FormatError,
    Manifest,
    ShardInfo,
    open_shard,
    read_manifest,
    token_type,
    tokens_array,
    write_shard,
)
from corpusmill.loader.layout import RunLayout, shard_name
from corpusmill.pipeline.cluster import run_tasks
from corpusmill.pipeline.corpus import Corpus, read_kept
from corpusmill.tokenizer.config import ShardsConfig, TokenizerConfig
from corpusmill.tokenizer.encode import Encoder, check_tokenizer_file, load_encoder
from corpusmill.tokenizer.hf_files import write_transformers_files
from corpusmill.tokenizer.train import save_tokenizer, train_tokenizer

log = logging.getLogger(__name__)

# Documents of the corpus the tiktoken conversion is checked on, besides its built-in cases, and
# the characters of each: enough text to meet the corpus's scripts, little enough to take no time.
_VERIFY_DOCS = 64
_VERIFY_CHARS = 4000
# Documents encoded at a time inside a task: bounds the Python strings held at once.
_ENCODE_DOCS = 1024
# The training options a trained tokenizer is reused for on a rerun.
_TRAIN_KEYS = ("vocab_size", "min_frequency", "special_tokens", "max_doc_chars", "sample_bytes")


@dataclass(frozen=True)
class EncodeTask:
    """Encoding clean part `part` of the run in `layout`, then writing its marker."""

    layout: RunLayout
    part: int

    @property
    def encoded(self) -> Path:
        return self.layout.encoded_part(self.part)

    @property
    def marker(self) -> Path:
        return self.layout.encoded_marker(self.part)


@dataclass(frozen=True)
class ShardTask:
    """Writing shard `index` from (part number, first row, stop row) slices of the encoded parts."""

    index: int
    slices: tuple[tuple[int, int, int], ...]


def run_tokenize(
    out: Path,
    config: TokenizerConfig,
    shards: ShardsConfig,
    client: Client,
    early: Future | None = None,
) -> dict[str, Any]:
    """Tokenize a run's deduplicated documents into `OUT/shard-*.arrow` and `OUT/index.json`,
    with the encoder `encoder_ahead` began loading, if given."""
    started = time.perf_counter()
    layout = RunLayout(Path(out))
    if not config.path and not config.train:
        log.info("tokenize: skipped; set tokenizer.path, or tokenizer.train = true")
        return {"skipped": True}
    parts = layout.clean_parts()
    if not parts:
        raise StageError(f"tokenize: {layout.clean} holds no part; run the clean stage first")
    tokenizer, trained = _tokenizer_file(layout, config)
    digest = file_checksum(tokenizer)
    done = _finished_manifest(layout, digest, shards)
    if done:
        log.info("tokenize: %s is complete for this tokenizer; nothing to do", layout.manifest)
        write_transformers_files(tokenizer, config)
        return _stats(layout, parts, done, trained, started)
    encoder = early or _submit_encoder(client, tokenizer, layout.clean_part(parts[0]))
    backend, vocab_size, eos_id = client.submit(_facts, encoder, config.eos, pure=False).result()
    if eos_id is None:
        raise StageError(
            f"tokenize: {config.path or tokenizer} has no token {config.eos!r}; set "
            "tokenizer.special_tokens so that its first entry is the tokenizer's end-of-text token"
        )
    tokens = token_type(vocab_size)
    encoded = _encode_parts(layout, parts, encoder, backend, eos_id, tokens, digest, client)
    infos = _write_shards(layout, encoded, shards.tokens_per_shard, tokens, digest, client)
    manifest = Manifest(
        tokenizer=layout.tokenizer.name,
        tokenizer_xxh3=digest,
        vocab_size=vocab_size,
        token_dtype=str(tokens),
        eos_id=eos_id,
        tokens_per_shard=shards.tokens_per_shard,
        shards=tuple(infos),
    )
    write_transformers_files(tokenizer, config)
    write_text(layout.manifest, manifest.to_json())
    _remove_leftovers(layout, encoded, manifest)
    return _stats(layout, parts, manifest, trained, started)


def encoder_ahead(
    out: Path, config: TokenizerConfig, shards: ShardsConfig, client: Client
) -> Future | None:
    """Start loading and checking the encoder of `tokenizer.path` on the cluster, for
    `run_tokenize`: it takes half a second, which a worker spends in the gaps dedup leaves
    rather than with every worker waiting for it at the start of the tokenize stage. None when
    there is nothing to load ahead: no tokenizer.path (a tokenizer trained on dedup's output),
    no clean part, or a finished manifest for this tokenizer."""
    layout = RunLayout(Path(out))
    parts = layout.clean_parts()
    if not (config.path and Path(config.path).is_file() and parts):
        return None
    tokenizer, _ = _tokenizer_file(layout, config)
    if _finished_manifest(layout, file_checksum(tokenizer), shards):
        return None
    return _submit_encoder(client, tokenizer, layout.clean_part(parts[0]))


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
    counts = {
        "tokenizer_xxh3": digest,
        "backend": encoder.backend,
        "docs": info.docs,
        "tokens": info.tokens,
        "num_bytes": info.num_bytes,
        "removed": pq.read_metadata(task.layout.clean_part(task.part)).num_rows - table.num_rows,
    }
    write_json(task.marker, counts)
    return counts


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
    task: ShardTask, encoded: Sequence[Path], layout: RunLayout, tokens: pa.DataType, digest: str
) -> dict[str, Any]:
    """Write one shard from slices of the encoded parts (memory-mapped), then its marker."""

    def tables() -> Iterator[pa.Table]:
        for part, start, stop in task.slices:
            yield open_shard(encoded[part]).read_all().slice(start, stop - start)

    path = layout.shard(task.index)
    with atomic_path(path) as tmp:
        info = write_shard(tmp, tables(), tokens, name=path.name)
    record = _shard_record(task, digest, info)
    write_json(layout.shard_marker(task.index), record)
    return record


def _stats(
    layout: RunLayout,
    parts: Sequence[int],
    manifest: Manifest,
    trained: dict[str, Any] | None,
    started: float,
) -> dict[str, Any]:
    """The stage's counts: the manifest's totals, and what the part markers and training say."""
    markers = [json.loads(layout.encoded_marker(part).read_text()) for part in parts]
    return {
        **manifest.totals(),
        "removed_by_dedup": sum(marker["removed"] for marker in markers),
        "backend": ", ".join(sorted({marker["backend"] for marker in markers})),
        "vocab_size": manifest.vocab_size,
        "token_dtype": manifest.token_dtype,
        "train": trained,
        "seconds": _since(started),
    }


def _tokenizer_file(
    layout: RunLayout, config: TokenizerConfig
) -> tuple[Path, dict[str, Any] | None]:
    """`OUT/tokenizer.json`, copied from tokenizer.path or trained (unless a rerun can reuse it),
    and the training counts when it was trained."""
    path = layout.tokenizer
    if config.path:
        source = Path(config.path)
        if not source.is_file():
            raise StageError(f"tokenize: tokenizer.path {source} does not exist")
        if not path.exists() or file_checksum(path) != file_checksum(source):
            check_tokenizer_file(source)
            with atomic_path(path) as tmp:
                shutil.copyfile(source, tmp)
        return path, None
    options = {key: _json_value(getattr(config, key)) for key in _TRAIN_KEYS}
    marker = layout.train_marker
    if marker.exists() and path.exists():
        record = json.loads(marker.read_text())
        if record["options"] == options and record["xxh3"] == file_checksum(path):
            log.info("tokenize: reusing the tokenizer trained by an earlier run, %s", path)
            return path, record["stats"]
    tokenizer, stats = train_tokenizer(Corpus([str(layout.root)]), config)
    save_tokenizer(tokenizer, path)
    write_json(marker, {"options": options, "xxh3": file_checksum(path), "stats": stats})
    return path, stats


def _finished_manifest(layout: RunLayout, digest: str, shards: ShardsConfig) -> Manifest | None:
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


def _submit_encoder(client: Client, tokenizer: Path, first_part: Path) -> Future:
    """The encoder, built and checked by a task (after any other ready task), left on the
    cluster: the encode tasks take it from the worker that holds it."""
    return client.submit(_verified_encoder, tokenizer, first_part, pure=False, priority=-1)


def _facts(encoder: Encoder, eos: str) -> tuple[str, int, int | None]:
    """What the stage needs to know of an encoder: its backend, vocabulary size and EOS id."""
    return encoder.backend, encoder.vocab_size, encoder.token_id(eos)


def _verified_encoder(tokenizer: Path, first_part: Path) -> Encoder:
    """The encoder of `tokenizer`, checked on the first documents of the corpus too: those of its
    first clean part, dedup's removals included, so the check is the same before dedup ends."""
    batch = next(
        pq.ParquetFile(first_part).iter_batches(batch_size=_VERIFY_DOCS, columns=["text"]), None
    )
    texts = pa.array([], pa.string()) if batch is None else batch.column("text")
    return load_encoder(
        tokenizer, verify=pc.utf8_slice_codeunits(texts, 0, _VERIFY_CHARS).to_pylist()
    )


def _encode_parts(
    layout: RunLayout,
    parts: Sequence[int],
    encoder: Future,
    backend: str,
    eos_id: int,
    tokens: pa.DataType,
    digest: str,
    client: Client,
) -> list[Path]:
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


def _write_shards(
    layout: RunLayout,
    encoded: Sequence[Path],
    tokens_per_shard: int,
    tokens: pa.DataType,
    digest: str,
    client: Client,
) -> list[ShardInfo]:
    """Plan the shards, write those not already written for this plan; return all their infos."""
    lengths = [
        pc.list_value_length(open_shard(path).read_all()["tokens"]).to_numpy() for path in encoded
    ]
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


def _encoded(task: EncodeTask, digest: str) -> bool:
    """True if the part was encoded with this tokenizer and its file is still there."""
    if not (task.marker.exists() and task.encoded.exists()):
        return False
    return json.loads(task.marker.read_text())["tokenizer_xxh3"] == digest


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


def _remove_leftovers(layout: RunLayout, encoded: Sequence[Path], manifest: Manifest) -> None:
    """Delete the encoded parts (the shards hold their tokens) and shards of an earlier plan."""
    for path in encoded:
        path.unlink(missing_ok=True)
    listed = {shard.name for shard in manifest.shards}
    for path in layout.shards():
        if path.name not in listed:
            path.unlink()


def _json_value(value: Any) -> Any:
    """A config value as it reads back from JSON (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
