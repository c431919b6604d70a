"""Dedup step 5: which document each document of the graph is kept as, or removed for ->
components/partition-N.arrow (key, cluster: the kept document's key). The graph is the edges
less those of exact copies (copies.py), whose labels the clusters step adds. In the order of the
keeper policy (`keeper`: first in input order, longest text, or lowest perplexity), each document
is kept unless an edge joins it to a document kept before it (`kept_twins`), or each connected
component keeps its first document (`kept_twins` off); on one worker when the edges fit
`local_max_edges`, else distributed (`components.py`) over a partition per `partition_edges`
edges, exchanging edges through files under exchange/, from the graph's edges of each run of
clean parts' members."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from distributed import Client, Future

from corpusmill.core.storage import Location
from corpusmill.pipeline.dedup.components import (
    distributed_components,
    distributed_keepers,
    keepers,
)
from corpusmill.pipeline.dedup.config import DedupConfig
from corpusmill.pipeline.dedup.copies import graph_edges
from corpusmill.pipeline.dedup.edges import Edges
from corpusmill.pipeline.dedup.files import DedupFiles
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.shuffle import read_range, read_table, write_sorted

# The folder under OUT/dedup/ of the distributed steps' exchange files, rewritten by every run.
EXCHANGE = "exchange"


def submit_labels(
    client: Client,
    files: DedupFiles,
    config: DedupConfig,
    edges: Sequence[Edges],
    score: Callable[[np.ndarray], np.ndarray] | None,
) -> tuple[list[Future], dict[str, Any]]:
    """Futures of the components files of the graph of every partition's `edges`, and how they
    are found: locally when the edges are at most `local_max_edges`, else in distributed rounds.
    `score` is the keeper policy's (components.part_scores)."""
    total = sum(found.counts["edges"] for found in edges)
    paths = [found.members for found in edges]
    if total <= config.local_max_edges:
        destination = files.file("components", 0)
        written = client.submit(
            _local_keepers_task, paths, destination, score, config.kept_twins, pure=False
        )
        return [written], {"method": "local", "edges": total}
    partitions = max(1, math.ceil(total / config.partition_edges))
    # As many graph inputs as partitions of pairs, each the members of a run of clean parts.
    runs = np.array_split(np.array(files.parts), min(len(files.parts), files.buckets))
    graph = [
        client.submit(
            _graph_task, paths, int(run[0]) << ROW_BITS, (int(run[-1]) + 1) << ROW_BITS, pure=False
        )
        for run in runs
    ]
    folder = files.run.dedup / EXCHANGE
    labelled, rounds = distributed_components(client, graph, partitions, folder)
    labelled = distributed_keepers(client, graph, labelled, folder, score, config.kept_twins)
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
) -> Location:
    edges = graph_edges(pa.concat_tables(read_table(path) for path in paths))
    return _write_components(keepers(edges[:, 0], edges[:, 1], score, twins), destination)


def _graph_task(paths: Sequence[Location], low: int, high: int) -> np.ndarray:
    """The graph's edges whose member's key is in [low, high), a run of clean parts. Memory:
    their member rows, at most 34 per document (an edge to the centre of each of its keys'
    groups)."""
    return graph_edges(read_range(paths, low, high))


def _write_components(labelled: tuple[np.ndarray, np.ndarray], path: Location) -> Location:
    """Write (key, cluster) rows sorted by key."""
    nodes, labels = labelled
    write_sorted(path, pa.table({"key": nodes, "cluster": labels}))
    return path
