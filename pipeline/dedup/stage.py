"""The dedup stage: exact and near duplicates across every part the clean stage kept, on Dask.

Seven steps, each a module of this package whose tasks write files under OUT/dedup/ and return
what they wrote, which the next step's tasks take as their input (the shuffles of `shuffle.py`;
only integer columns travel, never text):

1. `signatures`: hashes and MinHash band keys of each clean part, and its documents' sizes.
2. `candidates`: pairs of documents sharing a key, and the keys they touch, per bucket (in
   chunks of bounded rows when many documents share its keys).
3. `shingles`: the shingle sets of the documents in near pairs, when verifying.
4. `edges`: the pairs verified by their true Jaccard similarity, per partition of pairs; the
   same edges by their member end, exact copies marked (`copies`).
5. `labels`: the document each one of the graph is kept as or removed for, on one worker or
   distributed; the graph leaves out exact copies.
6. `clusters`: each part's removed documents with kinds and clusters, and its kept documents,
   each exact copy given its first's label; the histogram of cluster sizes.
7. `removed`: each removed document's kept id, per part, then removed.parquet; _done.json last.

A document is known by its key, (clean part number << 32) | row in the part (dedup/keys.py),
which follows input order, so "smallest key" is "first in input order" whatever the partitioning
and worker count; the keeper policy orders documents by a score first (the longest text), ties by
key. Exact edges go into the same graph as near ones, so a document is removed for one kept
document only (its cluster); its `kind` is "exact" when an earlier document has the same
normalized text (or URL), "near" otherwise. A page copied G times would be a star of G edges
around its first, all in one task of the labels step; so, unless URLs are compared, each copy
is left out of the graph with its edges and takes its first's label after it (`copies.py`): the
labels step's memory does not grow with G, and the result is the same.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow.parquet as pq
from distributed import Client

from corpusmill.core.atomic import write_json
from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location, file_sizes, open_input, remove
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import gather
from corpusmill.pipeline.dedup.candidates import submit_candidates
from corpusmill.pipeline.dedup.clusters import submit_clusters, submit_histogram
from corpusmill.pipeline.dedup.components import part_scores
from corpusmill.pipeline.dedup.config import DedupConfig
from corpusmill.pipeline.dedup.edges import submit_edges
from corpusmill.pipeline.dedup.files import DedupFiles, compact_parts
from corpusmill.pipeline.dedup.labels import EXCHANGE, submit_labels
from corpusmill.pipeline.dedup.removed import submit_removed
from corpusmill.pipeline.dedup.shingles import submit_shingles
from corpusmill.pipeline.dedup.signatures import submit_signatures

log = logging.getLogger(__name__)

# Steps whose folders every run rewrites; signatures/ and sizes/ are kept and reused per part.
_RERUN_STEPS = (
    "pairs",
    "keys",
    "shingles",
    "edges",
    "members",
    "firsts",
    "components",
    "clusters",
    "roots",
    "counts",
    "removed",
    EXCHANGE,
)


def run_dedup(out: Location, config: DedupConfig, client: Client) -> dict[str, Any]:
    """Find exact and near duplicates among the documents in OUT/clean/ (a local folder or an
    object store's ObjectPath); write OUT/dedup/ and return the stage's stats. Skipped (its stats
    returned) when OUT/dedup/_done.json exists."""
    started = time.perf_counter()
    run = RunLayout(out)
    done = run.dedup_marker
    if done.exists():
        log.info("dedup: %s exists, skipping the stage", done)
        return json.loads(done.read_text())
    parts, docs = _clean_parts(run)
    rows_per_doc = 1 + config.exact_url + (config.bands if config.near else 0)
    buckets = max(1, math.ceil(docs * rows_per_doc / config.bucket_rows))
    files = DedupFiles(run, compact_parts(parts), buckets)
    for step in _RERUN_STEPS:
        remove(run.dedup / step)
    verify = config.near and config.verify_threshold > 0
    log.info("dedup: %d documents in %d parts, %d buckets", docs, len(parts), buckets)

    signed = submit_signatures(client, files, config)
    candidates = submit_candidates(client, files, config, signed)
    shingles = submit_shingles(client, files, config, candidates) if verify else []
    threshold = config.verify_threshold if verify else 0.0
    score = part_scores(files, config.keeper)
    # With URLs compared, a copy can have a URL twin its first lacks: no copy is collapsed.
    collapse = not config.exact_url
    edges = submit_edges(client, files, threshold, candidates, shingles, score, collapse)
    sizes, pairs = _gather(client, "finding candidate pairs", [signed, edges])
    labelled, components = submit_labels(client, files, config, pairs, score)
    (labels,) = _gather(client, "finding connected components", [labelled])
    remove(run.dedup / EXCHANGE)  # the distributed steps' files, read by now
    clustered = submit_clusters(client, files, signed, candidates, pairs, labels)
    written = submit_removed(client, files, clustered)
    histograms = submit_histogram(client, files, clustered)
    removed, _, histograms = _gather(
        client, "writing the removed documents", [clustered, [written], histograms]
    )

    stats = _stats(
        [part.counts for part in sizes],
        [found.counts for found in pairs],
        [part.removed for part in removed],
        _add(histograms),
    )
    stats.update(
        parts=len(parts),
        buckets=buckets,
        components=components,
        seconds=round(time.perf_counter() - started, 3),
    )
    write_json(done, stats)
    return stats


def _clean_parts(run: RunLayout) -> tuple[list[int], int]:
    """The clean stage's part numbers, in order, and their documents; all parts must be done."""
    folder = run.clean
    parts = run.clean_parts()
    if not parts:
        raise StageError(f"dedup: no documents in {folder}; run the clean stage first")
    markers = file_sizes(run.clean_marker(parts[0]).parent)
    unfinished = [p for p in parts if run.clean_marker(p).name not in markers]
    if unfinished:
        raise StageError(
            f"dedup: clean parts {unfinished} in {folder} have no done marker; "
            "rerun the clean stage to finish them"
        )
    if parts[-1] >= 1 << 31:
        raise StageError(f"dedup: part number {parts[-1]} in {folder} is too large for a key")
    return parts, sum(_rows(run.clean_part(p)) for p in parts)


def _rows(path: Location) -> int:
    """The documents of a clean part, from its footer."""
    with open_input(path) as source:
        return pq.ParquetFile(source).metadata.num_rows


def _gather(client: Client, step: str, layers: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The results of each layer of futures, or a StageError naming the step that failed; files
    written by finished tasks stay, so a rerun resumes."""
    try:
        return [gather(client, list(layer), f"dedup: {step}") for layer in layers]
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
        "cluster_sizes": dict(sorted(histogram.items(), key=lambda b: int(b[0].split("-")[0]))),
        "pairs": _add(pairs),
    }


def _add(counts: Sequence[Mapping[str, int]] | Any) -> dict[str, int]:
    """Sum dicts of counts key by key."""
    total: Counter[str] = Counter()
    for item in counts:
        total.update(item)
    return dict(total)
