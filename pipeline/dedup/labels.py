"""Dedup step 5: which document each document of an edge is kept as, or removed for ->
components/partition-N.arrow (key, cluster: the kept document's key). In the order of the keeper
policy (`keeper`: first in input order, longest text, or lowest perplexity), each document is
kept unless an edge joins it to a document kept before it (`kept_twins`), or each connected
component keeps its first document (`kept_twins` off); on one worker when the edges fit
`local_max_edges`, else distributed (`components.py`) over a partition per `partition_edges`
edges, exchanging edges through files under exchange/."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from distributed import Client, Future

from corpusmill.core.storage import Location
from corpusmill.pipeline.dedup.components import (
    PartScores,
    distributed_components,
    distributed_keepers,
    keepers,
)
from corpusmill.pipeline.dedup.config import DedupConfig
from corpusmill.pipeline.dedup.edges import Edges
from corpusmill.pipeline.dedup.files import DedupFiles
from corpusmill.pipeline.dedup.shuffle import read_table, write_sorted
from corpusmill.pipeline.dedup.signatures import score_column

# The folder under OUT/dedup/ of the distributed steps' exchange files, rewritten by every run.
EXCHANGE = "exchange"


class Labelled(NamedTuple):
    """A components file and the histogram of the sizes of its clusters (a kept document and
    those removed for it)."""

    path: Location
    histogram: dict[str, int]


def submit_labels(
    client: Client,
    files: DedupFiles,
    config: DedupConfig,
    edges: Sequence[Edges],
    sizes: Sequence[Location],
) -> tuple[list[Future], dict[str, Any]]:
    """Futures of the Labelled components files of every partition's `edges`, and how they are
    found: locally when the edges are at most `local_max_edges`, else in distributed rounds.
    `sizes` are the parts' size files, holding the scores of the "longest" and "quality"
    policies."""
    total = sum(found.counts["edges"] for found in edges)
    paths = [found.path for found in edges]
    column = score_column(config.keeper)
    score = (
        PartScores(dict(zip(files.parts, sizes, strict=True)), column)
        if column is not None
        else None
    )
    if total <= config.local_max_edges:
        destination = files.file("components", 0)
        written = client.submit(
            _local_keepers_task, paths, destination, score, config.kept_twins, pure=False
        )
        return [written], {"method": "local", "edges": total}
    partitions = max(1, math.ceil(total / config.partition_edges))
    loaded = [client.submit(_read_edges, [path], pure=False) for path in paths]
    folder = files.run.dedup / EXCHANGE
    labelled, rounds = distributed_components(client, loaded, partitions, folder)
    labelled = distributed_keepers(client, loaded, labelled, folder, score, config.kept_twins)
    written = [
        client.submit(_write_components, labels, files.file("components", j), pure=False)
        for j, labels in enumerate(labelled)
    ]
    method = {"method": "distributed", "edges": total, "partitions": partitions}
    return written, {**method, "rounds": rounds}


def _local_keepers_task(
    paths: Sequence[Location],
    destination: Location,
    score: Callable[[np.ndarray], np.ndarray] | None,
    twins: bool,
) -> Labelled:
    edges = _read_edges(paths)
    return _write_components(keepers(edges[:, 0], edges[:, 1], score, twins), destination)


def _read_edges(paths: Sequence[Location]) -> np.ndarray:
    """The (a, b) edges of edge files, as an (n, 2) int64 array."""
    tables = [read_table(path) for path in paths]
    return np.column_stack(
        [
            np.concatenate([t.column(name).to_numpy() for t in tables] or [np.array([], np.int64)])
            for name in ("a", "b")
        ]
    ).astype(np.int64)


def _write_components(labelled: tuple[np.ndarray, np.ndarray], path: Location) -> Labelled:
    """Write (key, cluster) rows sorted by key; return them with the histogram of the clusters'
    sizes (a document kept with none removed for it is no cluster)."""
    nodes, labels = labelled
    write_sorted(path, pa.table({"key": nodes, "cluster": labels}))
    _, sizes = np.unique(labels, return_counts=True)
    return Labelled(path, _size_histogram(sizes[sizes > 1]))


def _size_histogram(sizes: np.ndarray) -> dict[str, int]:
    """Counts of cluster sizes in power-of-two bins: "2", "3-4", "5-8", ..."""
    bins = Counter(np.ceil(np.log2(sizes)).astype(int).tolist())
    return {
        (f"{2 ** (b - 1) + 1}-{2**b}" if b > 1 else "2"): count for b, count in sorted(bins.items())
    }
