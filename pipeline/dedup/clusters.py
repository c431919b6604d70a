"""Dedup step 6, a task per clean part: its removed documents (key, id, kind, cluster) ->
clusters/part-N.arrow, its clusters' kept documents (key, id) -> roots/part-N.arrow, and how
many of its documents each cluster holds -> counts/part-N.arrow; then, a task per partition of
clusters, the histogram of their sizes. A part's documents are those of the graph (components
files) and its exact copies and their firsts (copies.py), a copy given its first's label."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client, Future

from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location, open_input
from corpusmill.pipeline.cluster import collected
from corpusmill.pipeline.dedup.candidates import Candidates, key_files
from corpusmill.pipeline.dedup.edges import Edges
from corpusmill.pipeline.dedup.files import DedupFiles
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.shuffle import partition_of, read_range, read_table, write_sorted
from corpusmill.pipeline.dedup.signatures import Signed


class Clustered(NamedTuple):
    """A part's removed documents, its cluster roots and its documents per cluster, and the
    documents and bytes it removes per kind (exact, near)."""

    clusters: Location
    roots: Location
    counts: Location
    removed: dict[str, dict[str, int]]


def submit_clusters(
    client: Client,
    files: DedupFiles,
    signed: Sequence[Future],
    candidates: Sequence[Future],
    edges: Sequence[Edges],
    components: Sequence[Location],
) -> list[Future]:
    """A future of each clean part's Clustered, from its Signed, every bucket's Candidates, every
    partition's Edges and the components files."""
    # Each taken once, by one task each, rather than by every part's task.
    touched, graph, labels = (collected(client, every) for every in (candidates, edges, components))
    return [
        client.submit(clusters_task, part, sizes, touched, graph, labels, files, pure=False)
        for part, sizes in zip(files.parts, signed, strict=True)
    ]


def submit_histogram(
    client: Client, files: DedupFiles, clustered: Sequence[Future]
) -> list[Future]:
    """Futures of the histogram of cluster sizes of each partition of clusters, from every
    part's Clustered."""
    every = collected(client, clustered)
    return [client.submit(histogram_task, j, every, pure=False) for j in range(files.buckets)]


def clusters_task(
    part: int,
    signed: Signed,
    candidates: Sequence[Candidates],
    edges: Sequence[Edges],
    components: Sequence[Location],
    files: DedupFiles,
) -> Clustered:
    """Write the part's removed documents (key, id, kind, cluster), its clusters' kept documents
    (key, id) and its documents per cluster; return them and the removed documents and bytes per
    kind. Memory: the part's ids and member rows."""
    low, high = part << ROW_BITS, (part + 1) << ROW_BITS
    key, cluster = _part_labels(part, edges, components)
    touched = read_range(key_files(candidates), low, high)
    earlier_copy = touched.filter(touched.column("exact")).column("key").to_numpy()
    source = files.clean(part)
    try:
        with open_input(source) as handle:
            ids = pq.read_table(handle, columns=["id"]).column("id")
    except (OSError, pa.ArrowException) as exc:
        raise StageError(f"dedup: cannot read {source} ({exc}); rerun the clean stage") from exc
    rows = key - low
    removed = cluster != key
    exact = np.isin(key, earlier_copy)
    kind = np.where(exact, "exact", "near")
    written = Clustered(
        files.file("clusters", part), files.file("roots", part), files.file("counts", part), {}
    )
    write_sorted(
        written.roots,
        pa.table({"key": key[~removed], "id": ids.take(rows[~removed])}),
    )
    write_sorted(
        written.clusters,
        pa.table(
            {
                "key": key[removed],
                "id": ids.take(rows[removed]),
                "kind": pa.array(kind[removed], pa.string()),
                "cluster": cluster[removed],
            }
        ),
    )
    _write_counts(written.counts, cluster, files.buckets)
    sizes = read_table(signed.sizes).column("bytes").to_numpy()[rows]
    counts = {
        name: {"docs": int((removed & which).sum()), "bytes": int(sizes[removed & which].sum())}
        for name, which in (("exact", exact), ("near", ~exact))
    }
    return written._replace(removed=counts)


def histogram_task(j: int, clustered: Sequence[Clustered]) -> dict[str, int]:
    """The histogram of the sizes of partition j's clusters, a kept document and those removed
    for it (one kept with none removed is no cluster), summed over every part's counts."""
    rows = read_range([found.counts for found in clustered], j, j + 1)
    _, index = np.unique(rows.column("cluster").to_numpy(), return_inverse=True)
    sizes = np.bincount(index, weights=rows.column("docs").to_numpy()).astype(np.int64)
    return size_histogram(sizes[sizes > 1])


def size_histogram(sizes: np.ndarray) -> dict[str, int]:
    """Counts of cluster sizes in power-of-two bins: "2", "3-4", "5-8", ..., smallest first."""
    bins = Counter(np.ceil(np.log2(sizes)).astype(int).tolist())
    return {
        (f"{2 ** (b - 1) + 1}-{2**b}" if b > 1 else "2"): count for b, count in sorted(bins.items())
    }


def _part_labels(
    part: int, edges: Sequence[Edges], components: Sequence[Location]
) -> tuple[np.ndarray, np.ndarray]:
    """(keys, clusters) of the part's documents in the graph or collapsed before it, sorted by
    key: the graph's labels, each first of copies not in the graph kept as itself, each copy
    given its first's label."""
    low, high = part << ROW_BITS, (part + 1) << ROW_BITS
    nodes, labels = _graph_labels(components, low, high)
    firsts = read_range([found.firsts for found in edges], low, high).column("key")
    firsts = np.unique(firsts.to_numpy())
    alone = firsts[~np.isin(firsts, nodes)]
    members = read_range([found.members for found in edges], low, high)
    copies = members.filter(members.column("copy"))
    copy_keys = copies.column("key").to_numpy()
    key = np.concatenate([nodes, alone, copy_keys])
    centres = copies.column("centre").to_numpy()
    cluster = np.concatenate(
        [labels, alone, _first_labels(components, centres, {part: (nodes, labels)})]
    )
    order = np.argsort(key, kind="stable")
    return key[order], cluster[order]


def _graph_labels(
    components: Sequence[Location], low: int, high: int
) -> tuple[np.ndarray, np.ndarray]:
    """(keys, clusters) of the graph's documents with keys in [low, high), sorted by key."""
    labelled = read_range(components, low, high)
    order = pc.sort_indices(labelled, [("key", "ascending")]).to_numpy()
    return (
        labelled.column("key").to_numpy()[order],
        labelled.column("cluster").to_numpy()[order],
    )


def _first_labels(
    components: Sequence[Location],
    firsts: np.ndarray,
    known: Mapping[int, tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """The label of each of `firsts`: its graph label, or itself when not in the graph; read
    part by part of the firsts, one part's graph labels at a time, but those `known` already
    (a part's own)."""
    labels = firsts.copy()
    for part in np.unique(firsts >> ROW_BITS).tolist():
        which = np.flatnonzero((firsts >> ROW_BITS) == part)
        nodes, clusters = known.get(part) or _graph_labels(
            components, part << ROW_BITS, (part + 1) << ROW_BITS
        )
        at = np.searchsorted(nodes, firsts[which])
        found = at < len(nodes)
        found[found] = nodes[at[found]] == firsts[which[found]]
        labels[which[found]] = clusters[at[found]]
    return labels


def _write_counts(path: Location, cluster: np.ndarray, partitions: int) -> None:
    """Write how many of the part's documents each cluster label holds, sorted by the partition
    of clusters that sums them."""
    labels, docs = np.unique(cluster, return_counts=True)
    target = partition_of(labels, partitions)
    order = np.argsort(target, kind="stable")
    write_sorted(
        path,
        pa.table({"partition": target[order], "cluster": labels[order], "docs": docs[order]}),
    )
