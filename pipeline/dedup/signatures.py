"""Dedup step 1, a task per clean part: each document's text hash (xxh3-128), optional URL hash
and MinHash band keys, as shuffle rows (bucket, band, high, low, key, and the keeper policy's
score of the document: `score_column`) sorted by bucket -> signatures/part-N.arrow, and its text
bytes (and, for the "quality" keeper, its perplexity from the clean stage's signals) ->
sizes/part-N.arrow. A part whose files were written for its content and these settings is not
redone."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client, Future

from corpusmill.core.checksums import file_checksum
from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location, open_input
from corpusmill.pipeline.dedup import tokens
from corpusmill.pipeline.dedup.config import DedupConfig
from corpusmill.pipeline.dedup.files import DedupFiles
from corpusmill.pipeline.dedup.hashing import shingle_hashes, text_hashes, url_hashes
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.minhash import Permutations, band_keys, signatures
from corpusmill.pipeline.dedup.shuffle import partition_of, read_metadata, write_sorted

# Documents per batch: about 40 bytes per word in flight, so 1,024 pages of a few thousand words
# stay around 100 MB.
_BATCH_DOCS = 1024
# The shuffle rows; band numbers `bands` and `bands + 1` are the text and URL hashes.
_BANDS = pa.schema(
    [
        pa.field("bucket", pa.uint32()),
        pa.field("band", pa.uint16()),
        pa.field("high", pa.uint64()),
        pa.field("low", pa.uint64()),
        pa.field("key", pa.int64()),
    ]
)
# The column the sizes file gains under the "quality" keeper policy: minus the document's bits
# per byte under the perplexity filter's reference model, so that the highest is the best.
QUALITY = "quality"
# Each scoring keeper policy's column of the sizes file, which its signature rows carry too, by
# the same name: candidates centre stars on the best-scored row, labels keep by its score.
_SCORES = {"longest": "bytes", "quality": QUALITY}


class Signed(NamedTuple):
    """A clean part's signature and size files, and its documents and text bytes."""

    signatures: Location
    sizes: Location
    counts: dict[str, int]


def submit_signatures(client: Client, files: DedupFiles, config: DedupConfig) -> list[Future]:
    """A future of each clean part's Signed, in part order."""
    return [client.submit(signatures_task, part, files, config, pure=False) for part in files.parts]


def signatures_task(part: int, files: DedupFiles, config: DedupConfig) -> Signed:
    """Hash one clean part's documents into band-key rows sorted by bucket, unless its files are
    up to date; return them and its counts."""
    signed = Signed(files.file("signatures", part), files.file("sizes", part), {})
    params = signature_metadata(files, config, part)
    current = read_metadata(signed.signatures)
    if current is not None and current["params"] == params and signed.sizes.exists():
        return signed._replace(counts=current["counts"])
    source = files.clean(part)
    permutations = Permutations.from_seed(config.bands * config.rows, config.seed)
    quality = config.keeper == "quality"
    columns = ["text", *(["url"] if config.exact_url else []), *(["id"] if quality else [])]
    tables, sizes, ids, offset = [], [], [], 0
    try:
        with open_input(source) as handle:
            parquet = pq.ParquetFile(handle)
            for batch in parquet.iter_batches(batch_size=_BATCH_DOCS, columns=columns):
                keys = (np.int64(part) << ROW_BITS) + offset + np.arange(batch.num_rows)
                size = pc.binary_length(batch.column("text")).cast(pa.int64())
                tables.append(_band_rows(batch, keys, config, permutations, files.buckets))
                sizes.append(size)
                ids.append(batch.column("id") if quality else pa.array([], pa.string()))
                offset += batch.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise StageError(f"dedup: cannot read {source} ({exc}); rerun the clean stage") from exc
    size_column = pa.chunked_array(sizes, pa.int64())
    counts = {"docs": offset, "bytes": int(pc.sum(size_column).as_py() or 0)}
    keys = pa.array((np.int64(part) << ROW_BITS) + np.arange(offset))
    sizes_table = pa.table({"key": keys, "bytes": size_column})
    if quality:
        scores = _quality(files, part, pa.chunked_array(ids, pa.string()))
        sizes_table = sizes_table.append_column(QUALITY, scores)
    write_sorted(signed.sizes, sizes_table)
    rows = pa.concat_tables(tables) if tables else _BANDS.empty_table()
    score = score_column(config.keeper)
    if score is not None:
        owner = pc.subtract(rows.column("key"), np.int64(part) << ROW_BITS)
        rows = rows.append_column(score, sizes_table.column(score).take(owner))
    order = pc.sort_indices(rows, _row_order(config.keeper))
    write_sorted(signed.signatures, rows.take(order), {"params": params, "counts": counts})
    return signed._replace(counts=counts)


def signature_metadata(files: DedupFiles, config: DedupConfig, part: int) -> dict[str, Any]:
    """What a part's signature file depends on, as its metadata records it: settings, bucket
    count and its clean part's content; a file recording other values is rewritten."""
    source = files.clean(part)
    settings = ("near", "exact_url", "shingle_size", "bands", "rows", "seed", "keeper")
    return {
        **{name: getattr(config, name) for name in settings},
        "buckets": files.buckets,
        "words": tokens.VERSION,
        # What the rows are sorted by: a file sorted otherwise, or without the score, is redone.
        "sorted_by": ", ".join(" ".join(column) for column in _row_order(config.keeper)),
        # The part's content, not its mtime: a rewritten but identical part keeps its signatures,
        # and the signature file's bytes never depend on when the part was written.
        "source": {"bytes": source.stat().st_size, "xxh3": file_checksum(source)},
    }


def score_column(keeper: str) -> str | None:
    """The column of a keeper policy's score, highest best, in the sizes files and signature
    rows; None for "first", which orders by key alone."""
    return _SCORES.get(keeper)


def _row_order(keeper: str) -> list[tuple[str, str]]:
    """Bucket and key, then the keeper policy's order within a key: its score largest first,
    then the document key; so the candidates step can merge a bucket's rows from every part in
    chunks and meet each key's first document first (candidates.py)."""
    key = [(name, "ascending") for name in ("bucket", "band", "high", "low")]
    score = score_column(keeper)
    return [*key, *([(score, "descending")] if score else []), ("key", "ascending")]


def _quality(files: DedupFiles, part: int, ids: pa.ChunkedArray) -> pa.Array:
    """Minus the bits per byte of each document of clean part `part` (of `ids`, in order), as
    the perplexity filter measured it in the part's signals."""
    path = files.run.signals_part(part)
    try:
        with open_input(path) as handle:
            measured = pq.read_table(handle, columns=["id", "signals"])
        scores = measured["signals"].combine_chunks().field("perplexity").field("bits_per_byte")
    except (OSError, KeyError, pa.ArrowException) as exc:
        raise StageError(
            f"dedup: no perplexity of clean part {part} in {path} ({exc}); rerun the clean stage"
        ) from exc
    rows = pc.index_in(ids, measured["id"])
    if rows.null_count:
        raise StageError(f"dedup: {path} misses documents of clean part {part}; rerun clean")
    return pc.negate(scores.take(rows))


def _band_rows(
    batch: pa.RecordBatch,
    keys: np.ndarray,
    config: DedupConfig,
    permutations: Permutations,
    buckets: int,
) -> pa.Table:
    """The shuffle rows of a batch: one per band key, text hash and (optionally) URL hash."""
    texts = batch.column("text")
    high, low = text_hashes(texts)
    band = [np.full(len(keys), config.bands, np.uint16)]
    highs, lows, owners = [high], [low], [keys]
    if config.exact_url:
        high, low, valid = url_hashes(batch.column("url"))
        band.append(np.full(int(valid.sum()), config.bands + 1, np.uint16))
        highs.append(high[valid])
        lows.append(low[valid])
        owners.append(keys[valid])
    if config.near:
        shingles = shingle_hashes(texts, config.shingle_size)
        signed = shingles.counts > 0
        high, low = band_keys(signatures(shingles, permutations)[signed], config.bands, config.rows)
        band.append(np.tile(np.arange(config.bands, dtype=np.uint16), int(signed.sum())))
        highs.append(high.ravel())
        lows.append(low.ravel())
        owners.append(np.repeat(keys[signed], config.bands))
    low = np.concatenate(lows)
    columns = (partition_of(low, buckets), np.concatenate(band), np.concatenate(highs), low)
    return pa.table([*columns, np.concatenate(owners)], schema=_BANDS)
