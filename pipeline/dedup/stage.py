"""The dedup stage: exact and near duplicates across every part the clean stage kept, on Dask.

Steps, each a layer of Dask tasks whose output files under OUT/dedup/ are the next layer's input
(the shuffles of `corpusmill.pipeline.dedup.shuffle`; only integer columns travel, never text):

1. signatures, a task per clean part: text hash (xxh3-128), optional URL hash, MinHash band keys,
   as rows (bucket, band, high, low, key) sorted by bucket -> signatures/part-N.arrow, and each
   document's text bytes -> sizes/part-N.arrow. A rerun skips parts whose files are up to date.
2. candidates, a task per bucket: star pairs of the rows sharing a key (`lsh.candidate_pairs`)
   -> pairs/bucket-N.arrow (sorted by the pair's verification partition) and the keys they touch
   -> keys/bucket-N.arrow (sorted by key).
3. shingles, a task per clean part, when verifying: the shingle sets of its candidate documents
   -> shingles/part-N.arrow.
4. verify, a task per partition of pairs: each pair once, near pairs kept if their true Jaccard
   similarity reaches the threshold -> edges/partition-N.arrow.
5. components of the exact and near edges together, on one worker or distributed
   (`corpusmill.pipeline.dedup.components`) -> components/partition-N.arrow (key, cluster).
6. clusters, a task per clean part: its removed documents with ids, kinds and cluster keys
   -> clusters/part-N.arrow, and the ids of the cluster roots it holds -> roots/part-N.arrow.
7. kept ids, a task per clean part -> removed/part-N.arrow (read by the tokenize stage, part by
   part); then removed.parquet, and _done.json.

A document is known by its key, (clean part number << 32) | row in the part (dedup/keys.py),
which follows input order, so "smallest key" is "first in input order" whatever the partitioning
and worker count.
Exact edges go into the same graph as near ones, so a document is in one cluster only; its `kind`
is "exact" when an earlier document has the same normalized text (or URL), "near" otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client

from corpusmill.core.atomic import atomic_path, write_json
from corpusmill.core.checksums import file_checksum
from corpusmill.core.errors import StageError
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.dedup.components import distributed_components, local_components
from corpusmill.pipeline.dedup.config import DedupConfig
from corpusmill.pipeline.dedup.hashing import shingle_hashes, shingle_sets, text_hashes, url_hashes
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.lsh import Pairs, candidate_pairs, unique_pairs
from corpusmill.pipeline.dedup.minhash import Permutations, band_keys, signatures
from corpusmill.pipeline.dedup.shuffle import (
    partition_of,
    read_metadata,
    read_range,
    read_table,
    write_sorted,
)
from corpusmill.pipeline.dedup.verify import jaccard
from corpusmill.pipeline.schema import REMOVED

log = logging.getLogger(__name__)

# Documents per batch of the signature step: about 40 bytes per word in flight, so 1,024 pages of
# a few thousand words stay around 100 MB.
_BATCH_DOCS = 1024
# Candidate pairs verified at once: their shingle sets take about 16 bytes per shingle.
_VERIFY_PAIRS = 4096
# The shuffle rows of the signature step; band numbers `bands` and `bands + 1` are the text and
# URL hashes.
_BANDS = pa.schema(
    [
        pa.field("bucket", pa.uint32()),
        pa.field("band", pa.uint16()),
        pa.field("high", pa.uint64()),
        pa.field("low", pa.uint64()),
        pa.field("key", pa.int64()),
    ]
)
_SETS = pa.large_list(pa.uint32())
# Steps whose folders every run rewrites; signatures/ and sizes/ are kept and reused per part.
_RERUN_STEPS = (
    "pairs",
    "keys",
    "shingles",
    "edges",
    "components",
    "clusters",
    "roots",
    "removed",
)


@dataclass(frozen=True)
class _Layout:
    """Where each step of one run reads and writes, and the run's partition counts."""

    run: RunLayout
    parts: tuple[int, ...]
    buckets: int

    def clean(self, part: int) -> Path:
        return self.run.clean_part(part)

    def part_files(self, step: str) -> list[Path]:
        return [self.file(step, part) for part in self.parts]

    def bucket_files(self, step: str) -> list[Path]:
        return [self.file(step, j) for j in range(self.buckets)]

    def file(self, step: str, index: int) -> Path:
        return self.run.dedup_file(step, index)


def run_dedup(out: Path, config: DedupConfig, client: Client) -> dict[str, Any]:
    """Find exact and near duplicates among the documents in OUT/clean/; write OUT/dedup/ and return
    the stage's stats. Skipped (its stats returned) when OUT/dedup/_done.json exists."""
    started = time.perf_counter()
    run = RunLayout(Path(out))
    done = run.dedup_marker
    if done.exists():
        log.info("dedup: %s exists, skipping the stage", done)
        return json.loads(done.read_text())
    parts, docs = _clean_parts(run)
    rows_per_doc = 1 + config.exact_url + (config.bands if config.near else 0)
    layout = _Layout(run, tuple(parts), max(1, math.ceil(docs * rows_per_doc / config.bucket_rows)))
    for step in _RERUN_STEPS:
        shutil.rmtree(run.dedup / step, ignore_errors=True)
    verify = config.near and config.verify_threshold > 0
    log.info("dedup: %d documents in %d parts, %d buckets", docs, len(parts), layout.buckets)

    signed = _signature_futures(client, layout, config)
    paired = [
        client.submit(_candidates_task, j, layout, config, signed, pure=False)
        for j in range(layout.buckets)
    ]
    shingled = [
        client.submit(_shingles_task, part, layout, config, paired, pure=False)
        for part in (layout.parts if verify else ())
    ]
    verified = [
        client.submit(
            _verify_task,
            j,
            layout,
            config.verify_threshold if verify else 0.0,
            paired + shingled,
            pure=False,
        )
        for j in range(layout.buckets)
    ]
    sizes, pairs = _gather(client, "finding candidate pairs", [signed, verified])
    edges = sum(counts["edges"] for counts in pairs)
    histogram, components = _components(client, layout, config, edges)
    clustered = [client.submit(_clusters_task, part, layout, pure=False) for part in layout.parts]
    kept = [
        client.submit(_kept_ids_task, part, layout, clustered, pure=False) for part in layout.parts
    ]
    written = client.submit(_write_removed, layout, kept, pure=False)
    removed, _ = _gather(client, "writing the removed documents", [clustered, [written]])

    stats = _stats(sizes, pairs, removed, histogram)
    stats.update(
        parts=len(parts),
        buckets=layout.buckets,
        components=components,
        seconds=round(time.perf_counter() - started, 3),
    )
    write_json(done, stats)
    return stats


# --- step 1: signatures ----------------------------------------------------------------------


def _signature_futures(client: Client, layout: _Layout, config: DedupConfig) -> list[Any]:
    """Submit the signature task of every part whose file is missing or stale; return the counts of
    the finished parts and futures of the others."""
    results: list[Any] = []
    for part in layout.parts:
        expected = _signature_metadata(layout, config, part)
        current = read_metadata(layout.file("signatures", part))
        if (
            current is not None
            and current["params"] == expected
            and layout.file("sizes", part).exists()
        ):
            results.append(current["counts"])
        else:
            results.append(
                client.submit(_signatures_task, part, layout, config, expected, pure=False)
            )
    return results


def _signatures_task(
    part: int, layout: _Layout, config: DedupConfig, params: Mapping[str, Any]
) -> dict[str, int]:
    """Hash one clean part's documents into band-key rows sorted by bucket; return its counts."""
    source = layout.clean(part)
    permutations = Permutations.from_seed(config.bands * config.rows, config.seed)
    columns = ["text", "url"] if config.exact_url else ["text"]
    tables, sizes, offset = [], [], 0
    try:
        for batch in pq.ParquetFile(source).iter_batches(batch_size=_BATCH_DOCS, columns=columns):
            keys = (np.int64(part) << ROW_BITS) + offset + np.arange(batch.num_rows)
            tables.append(_band_rows(batch, keys, config, permutations, layout.buckets))
            sizes.append(pc.binary_length(batch.column("text")).cast(pa.int64()))
            offset += batch.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise StageError(f"dedup: cannot read {source} ({exc}); rerun the clean stage") from exc
    size_column = pa.chunked_array(sizes, pa.int64())
    counts = {"docs": offset, "bytes": int(pc.sum(size_column).as_py() or 0)}
    keys = pa.array((np.int64(part) << ROW_BITS) + np.arange(offset))
    write_sorted(layout.file("sizes", part), pa.table({"key": keys, "bytes": size_column}))
    rows = pa.concat_tables(tables) if tables else _BANDS.empty_table()
    order = pc.sort_indices(rows, [(name, "ascending") for name in rows.column_names])
    write_sorted(
        layout.file("signatures", part), rows.take(order), {"params": params, "counts": counts}
    )
    return counts


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


def _signature_metadata(layout: _Layout, config: DedupConfig, part: int) -> dict[str, Any]:
    """What a part's signature file depends on: settings, bucket count and its clean part."""
    source = layout.clean(part)
    settings = ("near", "exact_url", "shingle_size", "bands", "rows", "seed")
    return {
        **{name: getattr(config, name) for name in settings},
        "buckets": layout.buckets,
        # The part's content, not its mtime: a rewritten but identical part keeps its signatures,
        # and the signature file's bytes never depend on when the part was written.
        "source": {"bytes": source.stat().st_size, "xxh3": file_checksum(source)},
    }


# --- step 2: candidates ----------------------------------------------------------------------


def _candidates_task(j: int, layout: _Layout, config: DedupConfig, after: Sequence) -> None:
    """Pair up bucket j's rows that share a key; write the pairs by verification partition and
    the keys they touch by key. Memory: the bucket's rows (~100 bytes each)."""
    rows = read_range(layout.part_files("signatures"), j, j + 1)
    column = {name: rows.column(name).to_numpy() for name in rows.column_names}
    pairs = unique_pairs(
        candidate_pairs(column["band"], column["high"], column["low"], column["key"], config.bands)
    )
    destination = partition_of(
        pairs.a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + pairs.b.astype(np.uint64),
        layout.buckets,
    )
    order = np.argsort(destination, kind="stable")
    write_sorted(
        layout.file("pairs", j),
        pa.table(
            {
                "partition": destination[order],
                "a": pairs.a[order],
                "b": pairs.b[order],
                "exact": pairs.exact[order],
            }
        ),
    )
    write_sorted(layout.file("keys", j), _touched_keys(pairs))


def _touched_keys(pairs: Pairs) -> pa.Table:
    """Each key of a pair once, sorted, with whether it has an earlier exact duplicate (`exact`)
    and whether it is in a near pair (`near`, so its shingles are needed to verify)."""
    keys = np.concatenate([pairs.a, pairs.b])
    exact = np.concatenate([np.zeros(len(pairs.a), bool), pairs.exact])
    near = np.concatenate([~pairs.exact, ~pairs.exact])
    if not len(keys):
        return pa.table({"key": keys, "exact": exact, "near": near})
    order = np.argsort(keys, kind="stable")
    keys, exact, near = keys[order], exact[order], near[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return pa.table(
        {
            "key": keys[starts],
            "exact": np.logical_or.reduceat(exact, starts),
            "near": np.logical_or.reduceat(near, starts),
        }
    )


# --- step 3: shingles of the candidates --------------------------------------------------------


def _shingles_task(part: int, layout: _Layout, config: DedupConfig, after: Sequence) -> None:
    """Write the shingle sets of the part's documents that are in a near candidate pair.
    Memory: one row group's texts, and the sets (4 bytes per shingle)."""
    touched = read_range(layout.bucket_files("keys"), part << ROW_BITS, (part + 1) << ROW_BITS)
    near = touched.filter(touched.column("near")).column("key").to_numpy()
    rows = np.unique(near - (np.int64(part) << ROW_BITS))
    source = layout.clean(part)
    keys, sets = [], []
    try:
        parquet = pq.ParquetFile(source)
        first = 0
        for group in range(parquet.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            wanted = rows[(rows >= first) & (rows < first + size)]
            if len(wanted):
                texts = parquet.read_row_group(group, columns=["text"]).column("text")
                shingles = shingle_hashes(texts.take(wanted - first), config.shingle_size)
                sets.append(shingle_sets(shingles))
                keys.append(wanted + (np.int64(part) << ROW_BITS))
            first += size
    except (OSError, pa.ArrowException) as exc:
        raise StageError(f"dedup: cannot read {source} ({exc}); rerun the clean stage") from exc
    write_sorted(
        layout.file("shingles", part),
        pa.table(
            {
                "key": pa.array(np.concatenate(keys) if keys else [], pa.int64()),
                "shingles": pa.concat_arrays(sets) if sets else pa.array([], _SETS),
            }
        ),
    )


# --- step 4: verify ------------------------------------------------------------------------


def _verify_task(j: int, layout: _Layout, threshold: float, after: Sequence) -> dict[str, int]:
    """Keep partition j's exact pairs and its near pairs whose true Jaccard similarity reaches
    `threshold` (all near pairs when it is 0); write them as edges and return the counts.
    Memory: the partition's pairs (25 bytes each) and the sets of 4,096 pairs at a time."""
    rows = read_range(layout.bucket_files("pairs"), j, j + 1)
    pairs = unique_pairs(
        Pairs(*(rows.column(name).to_numpy(zero_copy_only=False) for name in ("a", "b", "exact")))
    )
    similarity = np.full(len(pairs.a), np.nan, np.float32)
    near = np.flatnonzero(~pairs.exact)
    if threshold > 0:
        sets = _SetLookup(layout)
        for start in range(0, len(near), _VERIFY_PAIRS):
            chunk = near[start : start + _VERIFY_PAIRS]
            similarity[chunk] = jaccard(sets.get(pairs.a[chunk]), sets.get(pairs.b[chunk]))
        keep = pairs.exact | (similarity >= threshold)
    else:
        keep = np.ones(len(pairs.a), bool)
    write_sorted(
        layout.file("edges", j),
        pa.table(
            {
                "a": pairs.a[keep],
                "b": pairs.b[keep],
                "exact": pairs.exact[keep],
                "jaccard": similarity[keep],
            }
        ),
    )
    return {
        "exact": int(pairs.exact.sum()),
        "candidates": len(near),
        "verified": int(keep.sum() - pairs.exact.sum()),
        "edges": int(keep.sum()),
    }


class _SetLookup:
    """Shingle sets by document key, from the memory-mapped shingles/ file of each key's part."""

    def __init__(self, layout: _Layout) -> None:
        self._layout = layout
        self._files: dict[int, tuple[np.ndarray, pa.Array]] = {}

    def get(self, keys: np.ndarray) -> pa.LargeListArray:
        """The sets of `keys`, in their order."""
        distinct, index = np.unique(keys, return_inverse=True)
        found = []
        for part in np.unique(distinct >> ROW_BITS).tolist():
            known, sets = self._file(part)
            wanted = distinct[(distinct >> ROW_BITS) == part]
            found.append(sets.take(_rows_of(known, wanted, self._layout.file("shingles", part))))
        return pa.concat_arrays(found).take(index)

    def _file(self, part: int) -> tuple[np.ndarray, pa.Array]:
        if part not in self._files:
            table = read_table(self._layout.file("shingles", part))
            sets = table.column("shingles")
            self._files[part] = (
                table.column("key").to_numpy(),
                sets.combine_chunks() if sets.num_chunks != 1 else sets.chunk(0),
            )
        return self._files[part]


# --- step 5: connected components --------------------------------------------------------------


def _components(
    client: Client, layout: _Layout, config: DedupConfig, edges: int
) -> tuple[dict[str, int], dict[str, Any]]:
    """Label every document of an edge with its component's smallest key, on one worker when the
    edges fit `local_max_edges`, else distributed; return the cluster-size histogram and how."""
    paths = layout.bucket_files("edges")
    if edges <= config.local_max_edges:
        written = client.submit(_local_components_task, layout, paths, pure=False)
        (histogram,) = _gather(client, "finding connected components", [[written]])[0]
        return histogram, {"method": "local", "edges": edges}
    loaded = [client.submit(_read_edges, path, pure=False) for path in paths]
    labelled, rounds = distributed_components(client, loaded, layout.buckets)
    written = [
        client.submit(_write_components, labels, layout.file("components", j), pure=False)
        for j, labels in enumerate(labelled)
    ]
    (histograms,) = _gather(client, "finding connected components", [written])
    return _add(histograms), {"method": "distributed", "edges": edges, "rounds": rounds}


def _local_components_task(layout: _Layout, paths: Sequence[Path]) -> dict[str, int]:
    edges = _read_edges_of(paths)
    labelled = local_components(edges[:, 0], edges[:, 1])
    return _write_components(labelled, layout.file("components", 0))


def _read_edges(path: Path) -> np.ndarray:
    return _read_edges_of([path])


def _read_edges_of(paths: Sequence[Path]) -> np.ndarray:
    """The (a, b) edges of edge files, as an (n, 2) int64 array."""
    tables = [read_table(path) for path in paths]
    return np.column_stack(
        [
            np.concatenate([t.column(name).to_numpy() for t in tables] or [np.array([], np.int64)])
            for name in ("a", "b")
        ]
    ).astype(np.int64)


def _write_components(labelled: tuple[np.ndarray, np.ndarray], path: Path) -> dict[str, int]:
    """Write (key, cluster) rows sorted by key; return the histogram of the clusters' sizes."""
    nodes, labels = labelled
    write_sorted(path, pa.table({"key": nodes, "cluster": labels}))
    _, sizes = np.unique(labels, return_counts=True)
    return _size_histogram(sizes)


def _size_histogram(sizes: np.ndarray) -> dict[str, int]:
    """Counts of cluster sizes in power-of-two bins: "2", "3-4", "5-8", ..."""
    bins = Counter(np.ceil(np.log2(sizes)).astype(int).tolist())
    return {
        (f"{2 ** (b - 1) + 1}-{2**b}" if b > 1 else "2"): count for b, count in sorted(bins.items())
    }


# --- steps 6 and 7: the removed documents --------------------------------------------------------


def _clusters_task(part: int, layout: _Layout) -> dict[str, dict[str, int]]:
    """Write the part's removed documents (key, id, kind, cluster) and its clusters' kept documents
    (key, id); return the removed documents and bytes per kind. Memory: the part's ids."""
    low, high = part << ROW_BITS, (part + 1) << ROW_BITS
    labelled = read_range(layout.run.dedup_files("components"), low, high)
    order = pc.sort_indices(labelled, [("key", "ascending")])
    key = labelled.column("key").to_numpy()[order.to_numpy()]
    cluster = labelled.column("cluster").to_numpy()[order.to_numpy()]
    touched = read_range(layout.bucket_files("keys"), low, high)
    earlier_copy = touched.filter(touched.column("exact")).column("key").to_numpy()
    source = layout.clean(part)
    try:
        ids = pq.read_table(source, columns=["id"]).column("id")
    except (OSError, pa.ArrowException) as exc:
        raise StageError(f"dedup: cannot read {source} ({exc}); rerun the clean stage") from exc
    rows = key - low
    removed = cluster != key
    exact = np.isin(key, earlier_copy)
    kind = np.where(exact, "exact", "near")
    write_sorted(
        layout.file("roots", part),
        pa.table({"key": key[~removed], "id": ids.take(rows[~removed])}),
    )
    write_sorted(
        layout.file("clusters", part),
        pa.table(
            {
                "key": key[removed],
                "id": ids.take(rows[removed]),
                "kind": pa.array(kind[removed], pa.string()),
                "cluster": cluster[removed],
            }
        ),
    )
    sizes = read_table(layout.file("sizes", part)).column("bytes").to_numpy()[rows]
    return {
        name: {"docs": int((removed & which).sum()), "bytes": int(sizes[removed & which].sum())}
        for name, which in (("exact", exact), ("near", ~exact))
    }


def _kept_ids_task(part: int, layout: _Layout, after: Sequence) -> None:
    """Add the kept document's id to each removed document of the part, from the roots/ files of
    the parts holding its clusters' kept documents. Memory: the part's removed rows."""
    removed = read_table(layout.file("clusters", part))
    cluster = removed.column("cluster").to_numpy()
    distinct, index = np.unique(cluster, return_inverse=True)
    found = [pa.array([], pa.string())]
    for root_part in np.unique(distinct >> ROW_BITS).tolist():
        path = layout.file("roots", root_part)
        roots = read_table(path)
        wanted = distinct[(distinct >> ROW_BITS) == root_part]
        rows = _rows_of(roots.column("key").to_numpy(), wanted, path)
        found.append(roots.column("id").take(rows).combine_chunks())
    kept_ids = pa.concat_arrays(found).take(index)
    write_sorted(layout.file("removed", part), removed.append_column("kept_id", kept_ids))


def _write_removed(layout: _Layout, after: Sequence) -> None:
    """Concatenate the parts' removed rows, in input order, into OUT/dedup/removed.parquet."""
    path = layout.run.removed
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, REMOVED, compression="zstd") as writer:
        for part in layout.parts:
            rows = read_table(layout.file("removed", part))
            if rows.num_rows:
                writer.write_table(rows.select(REMOVED.names).cast(REMOVED))


def _rows_of(known: np.ndarray, wanted: np.ndarray, path: Path) -> np.ndarray:
    """The rows of sorted `wanted` keys among the sorted keys of file `path`, all of which it
    must hold (a file left by another run would not)."""
    rows = np.searchsorted(known, wanted)
    if len(wanted) and (
        not len(known) or not np.array_equal(known[np.minimum(rows, len(known) - 1)], wanted)
    ):
        raise StageError(f"dedup: {path} lacks documents it should hold; delete it and rerun")
    return rows


# --- the run's bookkeeping ---------------------------------------------------------------------


def _clean_parts(run: RunLayout) -> tuple[list[int], int]:
    """The clean stage's part numbers, in order, and their documents; all parts must be done."""
    folder = run.clean
    parts = run.clean_parts()
    if not parts:
        raise StageError(f"dedup: no documents in {folder}; run the clean stage first")
    unfinished = [p for p in parts if not run.clean_marker(p).exists()]
    if unfinished:
        raise StageError(
            f"dedup: clean parts {unfinished} in {folder} have no done marker; "
            "rerun the clean stage to finish them"
        )
    if parts[-1] >= 1 << 31:
        raise StageError(f"dedup: part number {parts[-1]} in {folder} is too large for a key")
    docs = sum(pq.ParquetFile(run.clean_part(p)).metadata.num_rows for p in parts)
    return parts, docs


def _gather(client: Client, step: str, layers: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The results of each layer of futures (plain values pass through), or a StageError naming
    the step that failed; files written by finished tasks stay, so a rerun resumes."""
    try:
        return [client.gather(list(layer)) for layer in layers]
    except StageError:
        raise
    except Exception as exc:
        raise StageError(
            f"dedup: {step} failed: {exc!r}; rerun the same command to retry "
            "(finished signature files are kept)"
        ) from exc


def _stats(
    sizes: Sequence[Mapping[str, int]],
    pairs: Sequence[Mapping[str, int]],
    removed: Sequence[Mapping[str, Mapping[str, int]]],
    histogram: Mapping[str, int],
) -> dict[str, Any]:
    """The stage's counts: documents in, removed per kind, kept, clusters and pairs."""
    docs_in = _add(sizes)
    by_kind = {kind: _add([r[kind] for r in removed]) for kind in ("exact", "near")}
    gone = _add(by_kind.values())
    return {
        "docs": docs_in.get("docs", 0),
        "bytes": docs_in.get("bytes", 0),
        "removed": {
            kind: {"docs": c.get("docs", 0), "bytes": c.get("bytes", 0)}
            for kind, c in by_kind.items()
        },
        "kept": {f: docs_in.get(f, 0) - gone.get(f, 0) for f in ("docs", "bytes")},
        "clusters": sum(histogram.values()),
        "cluster_sizes": dict(histogram),
        "pairs": _add(pairs),
    }


def _add(counts: Sequence[Mapping[str, int]] | Any) -> dict[str, int]:
    """Sum dicts of counts key by key."""
    total: Counter[str] = Counter()
    for item in counts:
        total.update(item)
    return dict(total)
