"""Connected components of the duplicate graph, each labelled with its smallest document key.

Two ways, with identical results: `local_components` on one machine when the edge list fits in
memory, and `distributed_components`, the large-star/small-star rounds of Kiveris et al. 2014
("Connected Components in MapReduce and Beyond") over edges hash-partitioned across Dask tasks,
when it does not; each step's tasks exchange edges through files sorted by destination partition
(shuffle.py), a task per partition. Labels are minimum keys, so neither depends on edge order or
partitioning.

Then which document each one is kept as, or removed for (`keepers`, `distributed_keepers`): in
the order of a keeper policy, each removed document with a kept twin it has an edge to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from distributed import Client, Future

from corpusmill.core.storage import Location, remove
from corpusmill.pipeline.dedup.files import DedupFiles
from corpusmill.pipeline.dedup.hashing import fmix64
from corpusmill.pipeline.dedup.keys import split_keys
from corpusmill.pipeline.dedup.shuffle import partition_of, read_range, read_table, write_sorted
from corpusmill.pipeline.dedup.signatures import score_column

log = logging.getLogger(__name__)

# Large-star/small-star needs O(log^2 n) rounds; graphs of near duplicates take a handful.
_MAX_ROUNDS = 200


def local_components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, labels): every key in an edge, sorted, and the smallest key of its component.

    Min-label hooking with full path compression (Shiloach-Vishkin style), vectorized with numpy:
    each round hooks every tree to its smallest neighbouring tree, so few rounds are needed.
    Memory: about 120 bytes per edge (measured on sparse graphs, as duplicate graphs are).
    """
    nodes, index = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = index[: len(a)], index[len(a) :]
    parent = np.arange(len(nodes))
    while True:
        # Every tree is a star here, so these are roots.
        root_a, root_b = parent[ia], parent[ib]
        differ = root_a != root_b
        if not differ.any():
            break
        high, low = np.maximum(root_a, root_b)[differ], np.minimum(root_a, root_b)[differ]
        np.minimum.at(parent, high, low)
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return nodes, nodes[parent]


def keepers(
    a: np.ndarray,
    b: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray] | None = None,
    twins: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, keepers): every key in an edge, sorted, and the key of the document kept in its
    stead (itself where it is kept).

    Documents go in order of priority: the highest `score` of their keys first (a policy such as
    the longest text), then the smallest key, the input order (the only order without a score).
    With `twins`, a document is kept unless an edge (a verified pair) joins it to a document kept
    before it, so every removed document has a kept twin of its own, the first in that order,
    even where its component is a chain of documents less and less alike. Without, each
    connected component keeps its first document and removes the rest. Both depend on the edges
    and scores only, never on their order.
    """
    nodes, index = np.unique(np.concatenate([a, b]), return_inverse=True)
    values = np.zeros(len(nodes)) if score is None else np.asarray(score(nodes), np.float64)
    # rank[i]: the place of nodes[i] in the order of priority; nodes are sorted, so lexsort's
    # last key (-values) decides and the position breaks ties by key.
    rank = np.empty(len(nodes), np.int64)
    rank[np.lexsort((np.arange(len(nodes)), -values))] = np.arange(len(nodes))
    if twins:
        keeper_rank = _greedy_keepers(rank[index[: len(a)]], rank[index[len(a) :]], len(nodes))
        keeper_rank = keeper_rank[rank]
    else:
        _, labels = local_components(a, b)
        component = np.searchsorted(nodes, labels)
        first = np.full(len(nodes), len(nodes))
        np.minimum.at(first, component, rank)
        keeper_rank = first[component]
    return nodes, nodes[np.argsort(rank)[keeper_rank]]


@dataclass(frozen=True)
class PartScores:
    """A keeper policy's score of documents, a column of one value per row in a file per clean
    part, read where `keepers` runs: a `score` that pickles to the workers as file names,
    whatever the corpus size (the text bytes of dedup/sizes/ for "longest")."""

    files: Mapping[int, Location]
    column: str

    def __call__(self, keys: np.ndarray) -> np.ndarray:
        """The score of each of `keys`; KeyError naming the first key no file scores."""
        parts, rows = split_keys(keys)
        values = np.empty(len(parts), np.float64)
        for part in np.unique(parts).tolist():
            which = np.flatnonzero(parts == part)
            path = self.files.get(part)
            column = (
                read_table(path).column(self.column).to_numpy() if path is not None else np.empty(0)
            )
            beyond = which[rows[which] >= len(column)]
            if len(beyond):
                raise KeyError(f"no score for document key {int(keys[beyond[0]])} in {path}")
            values[which] = column[rows[which]]
        return values


def part_scores(files: DedupFiles, keeper: str) -> PartScores | None:
    """The score of a keeper policy, read from the parts' sizes files; None for "first"."""
    column = score_column(keeper)
    if column is None:
        return None
    return PartScores(files.per_part("sizes"), column)


def distributed_components(
    client: Client, edges: Sequence[Any], partitions: int, folder: Location
) -> tuple[list[Future], int]:
    """Components of the edges (futures or values of (n, 2) int64 arrays) as `partitions` futures
    of (nodes, labels) sorted by node, each node in exactly one; and the number of rounds run.

    Every step is a task per partition that reads its range of the previous step's files and
    writes one file under `folder`, its output sorted by destination partition (shuffle.py), so a
    round is 2 x `partitions` tasks. Each task holds one partition of the edges, both ways, while
    it sorts them: about 100 bytes per edge of its partition.
    """
    sources = client.gather(
        [
            client.submit(_both_ways_task, part, partitions, _file(folder, "edges", i), pure=False)
            for i, part in enumerate(edges)
        ]
    )
    last = None
    for rounds in range(1, _MAX_ROUNDS + 1):
        large = _exchange(client, _large_star_task, sources, partitions, folder, f"large-{rounds}")
        small = _exchange(client, _small_star_task, large, partitions, folder, f"small-{rounds}")
        # A round reads only the last round's files.
        for step in (sources, large):
            if step:
                remove(step[0].parent)
        fingerprint = sum(found for found, _ in small)
        sources = [path for _, path in small]
        log.debug("components: round %d, edge set fingerprint %x", rounds, fingerprint)
        if fingerprint == last:
            break
        last = fingerprint
    else:
        raise RuntimeError(
            f"components: no convergence after {_MAX_ROUNDS} rounds; please report this graph"
        )
    finished = [
        client.submit(_stars_to_labels_task, sources, j, pure=False) for j in range(partitions)
    ]
    return finished, rounds


def distributed_keepers(
    client: Client,
    edges: Sequence[Any],
    components: Sequence[Future],
    folder: Location,
    score: Callable[[np.ndarray], np.ndarray] | None = None,
    twins: bool = True,
) -> list[Future]:
    """`keepers` of the edges (as distributed_components takes them) given their components (its
    futures), as futures of (nodes, keepers) sorted by node, each node in exactly one.

    Every component's edges are brought to one task, the one holding its labels, so the result
    is that of `keepers` on all edges at once, whatever the partitions; the exchanges go through
    files under `folder`, a task per partition or edge input each. `score` runs on the workers (a
    module-level function or a picklable object). Each task holds its part of the edges twice
    and its nodes' labels: about 60 bytes per edge.
    """
    partitions = len(components)
    by_node = [
        client.submit(
            _labels_by_node_task, labelled, partitions, _file(folder, "labels", j), pure=False
        )
        for j, labelled in enumerate(components)
    ]
    routed = [
        client.submit(
            _edges_by_first_node_task, part, partitions, _file(folder, "routed", i), pure=False
        )
        for i, part in enumerate(edges)
    ]
    by_node, routed = client.gather(by_node), client.gather(routed)
    labelled_edges = client.gather(
        [
            client.submit(
                _label_edges_task,
                routed,
                by_node,
                j,
                partitions,
                _file(folder, "labelled", j),
                pure=False,
            )
            for j in range(partitions)
        ]
    )
    return [
        client.submit(_component_keepers_task, labelled_edges, j, score, twins, pure=False)
        for j in range(partitions)
    ]


def _greedy_keepers(u: np.ndarray, v: np.ndarray, count: int) -> np.ndarray:
    """For nodes 0..count-1 in order of priority (0 first) joined by the edges (u, v): the node
    each is kept as, or removed for (its first kept neighbour), deciding node by node in order.

    Vectorized in rounds: a node whose neighbours before it are all decided is kept if none of
    them is kept; a node next to a kept one before it is removed. Each round decides at least
    the first undecided node and removes its later neighbours; chains of alternately kept and
    removed documents take a round per kept one, and duplicate clusters are shallow.
    """
    before, after = np.minimum(u, v), np.maximum(u, v)
    kept = np.zeros(count, bool)
    undecided = np.ones(count, bool)
    open_before, open_after = before, after
    while undecided.any():
        waiting = np.zeros(count, bool)
        waiting[open_after[undecided[open_before]]] = True
        kept |= undecided & ~waiting
        undecided &= waiting
        undecided[open_after[kept[open_before]]] = False
        still_open = undecided[open_after]
        open_before, open_after = open_before[still_open], open_after[still_open]
    # Each removed node's first kept neighbour before it; nodes are ranks, so the smallest.
    keeper = np.where(kept, np.arange(count), count)
    by_kept = kept[before]
    np.minimum.at(keeper, after[by_kept], before[by_kept])
    return keeper


def _stacked(pieces: Sequence[Any]) -> np.ndarray:
    """Pieces of (n, 2) rows (arrays or lists of pairs) as one (n, 2) int64 array."""
    rows = [np.asarray(piece, np.int64).reshape(-1, 2) for piece in pieces]
    return np.concatenate(rows or [np.empty((0, 2), np.int64)])


def _exchange(
    client: Client, task: Any, sources: Any, partitions: int, folder: Location, step: str
) -> list[Any]:
    """One exchange step: `task` run for every partition on the files of the step before, each
    writing its file of `step`; their results in partition order."""
    return client.gather(
        [
            client.submit(task, sources, j, partitions, _file(folder, step, j), pure=False)
            for j in range(partitions)
        ]
    )


def _file(folder: Location, step: str, index: int) -> Location:
    """File `index` of one exchange step under `folder`."""
    return folder / step / f"task-{index:05d}.arrow"


def _write_by_partition(
    path: Location, rows: np.ndarray, keys: np.ndarray, partitions: int
) -> Location:
    """Write (a, b) rows sorted by the partition of their key, for `_received`; return `path`."""
    target = partition_of(keys, partitions)
    order = np.argsort(target, kind="stable")
    rows = rows[order]
    write_sorted(path, pa.table({"partition": target[order], "a": rows[:, 0], "b": rows[:, 1]}))
    return path


def _received(paths: Sequence[Location], j: int) -> np.ndarray:
    """The (a, b) rows of partition j in the files of an exchange step, as (n, 2) int64."""
    table = read_range(paths, j, j + 1)
    return np.column_stack(
        [table.column(name).to_numpy().astype(np.int64) for name in ("a", "b")]
    ).reshape(-1, 2)


def _both_ways_task(edges: Any, partitions: int, path: Location) -> Location:
    """Both directions of each edge, by the partition of their first node."""
    edges = _stacked([edges])
    both = np.concatenate([edges, edges[:, ::-1]])
    return _write_by_partition(path, both, both[:, 0], partitions)


def _large_star_task(
    sources: Sequence[Location], j: int, partitions: int, path: Location
) -> Location:
    """Link each node's larger neighbours to the smallest of its neighbourhood, itself included;
    send the new edges on by their larger end, for the small-star step."""
    edges = _unique_rows(_received(sources, j))
    u, v = edges[:, 0], edges[:, 1]
    smallest = np.minimum(u, _group_min(u, v))
    larger = v > u
    out = np.column_stack([v[larger], smallest[larger]])
    return _write_by_partition(path, out, out[:, 0], partitions)


def _small_star_task(
    sources: Sequence[Location], j: int, partitions: int, path: Location
) -> tuple[int, Location]:
    """Link each node and its smaller neighbours to the smallest of them; return the fingerprint
    of the edge set received (unchanged from the last round means converged) and the file of the
    new edges, both ways, for the next large-star step."""
    edges = _unique_rows(_received(sources, j))
    u, v = edges[:, 0], edges[:, 1]
    smallest = _group_min(u, v)
    # Every neighbour here is smaller than u (edges arrive keyed by their larger end).
    nodes = np.concatenate([u[_group_starts(u)], v])
    targets = np.concatenate([smallest[_group_starts(u)], smallest])
    keep = nodes != targets
    return _fingerprint(u, v), _both_ways_task(
        np.column_stack([nodes[keep], targets[keep]]), partitions, path
    )


def _stars_to_labels_task(sources: Sequence[Location], j: int) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, labels) of partition j of the converged star forest: rows keyed by a root hold its
    leaves."""
    edges = _unique_rows(_received(sources, j))
    roots = edges[:, 0] < edges[:, 1]
    root, leaf = edges[roots, 0], edges[roots, 1]
    centers = np.unique(root)
    nodes = np.concatenate([centers, leaf])
    labels = np.concatenate([centers, root])
    order = np.argsort(nodes, kind="stable")
    return nodes[order], labels[order]


def _labels_by_node_task(
    labelled: tuple[np.ndarray, np.ndarray], partitions: int, path: Location
) -> Location:
    """(node, label) rows by the partition of their node (distributed_components puts a
    component's nodes in the partition of its label)."""
    nodes, labels = labelled
    return _write_by_partition(path, np.column_stack([nodes, labels]), nodes, partitions)


def _edges_by_first_node_task(edges: Any, partitions: int, path: Location) -> Location:
    """The edges by the partition of their first node."""
    edges = _stacked([edges])
    return _write_by_partition(path, edges, edges[:, 0], partitions)


def _label_edges_task(
    edges: Sequence[Location],
    labels: Sequence[Location],
    j: int,
    partitions: int,
    path: Location,
) -> Location:
    """Edges whose first node is in partition j, by the partition of their component's label."""
    edges, rows = _received(edges, j), _received(labels, j)
    order = np.argsort(rows[:, 0])
    nodes, node_labels = rows[order, 0], rows[order, 1]
    label = node_labels[np.searchsorted(nodes, edges[:, 0])]
    return _write_by_partition(path, edges, label, partitions)


def _component_keepers_task(
    sources: Sequence[Location],
    j: int,
    score: Callable[[np.ndarray], np.ndarray] | None,
    twins: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """`keepers` of the edges of the whole components of partition j."""
    edges = _received(sources, j)
    return keepers(edges[:, 0], edges[:, 1], score, twins)


def _fingerprint(u: np.ndarray, v: np.ndarray) -> int:
    """An order-free 64-bit digest of a set of distinct edges: a sum of mixed hashes."""
    mixed = fmix64(u.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + v.astype(np.uint64))
    return int(np.sum(mixed, dtype=np.uint64))


def _unique_rows(edges: np.ndarray) -> np.ndarray:
    """The distinct (u, v) rows of `edges`, sorted by u then v."""
    if not len(edges):
        return edges
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges = edges[order]
    keep = np.ones(len(edges), bool)
    keep[1:] = (edges[1:] != edges[:-1]).any(axis=1)
    return edges[keep]


def _group_starts(u: np.ndarray) -> np.ndarray:
    """Where each run of equal values of sorted `u` starts."""
    starts = np.ones(len(u), bool)
    starts[1:] = u[1:] != u[:-1]
    return starts


def _group_min(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """For each row, the smallest v among the rows with its u (rows sorted by u)."""
    starts = np.flatnonzero(_group_starts(u))
    if not len(starts):
        return v.copy()
    mins = np.minimum.reduceat(v, starts)
    return np.repeat(mins, np.diff(np.append(starts, len(u))))
