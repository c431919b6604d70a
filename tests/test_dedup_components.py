"""Candidate pairs, Jaccard verification and connected components, on one machine and distributed."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from distributed import Client

from corpusmill.pipeline.dedup.components import distributed_components, local_components
from corpusmill.pipeline.dedup.lsh import Pairs, candidate_pairs, unique_pairs
from corpusmill.pipeline.dedup.verify import jaccard


@pytest.fixture(scope="module")
def client():
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as c:
        yield c


def labels_of(nodes: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    return dict(zip(nodes.tolist(), labels.tolist(), strict=True))


def distributed(client: Client, a, b, partitions: int) -> dict[int, int]:
    edges = np.column_stack([a, b]).astype(np.int64)
    futures, _ = distributed_components(client, np.array_split(edges, 3), partitions)
    result = {}
    for nodes, labels in client.gather(futures):
        assert not set(nodes.tolist()) & set(result), "a node is in two partitions"
        result.update(labels_of(nodes, labels))
    return result


def test_a_chain_is_one_component_labelled_with_its_smallest_key():
    nodes, labels = local_components(np.array([30, 20, 10, 7]), np.array([20, 10, 40, 8]))
    assert labels_of(nodes, labels) == {10: 10, 20: 10, 30: 10, 40: 10, 7: 7, 8: 7}


def test_a_star_and_its_reverse_are_one_component():
    center, leaves = 50, np.array([3, 90, 60, 1])
    forward = labels_of(*local_components(np.full(4, center), leaves))
    backward = labels_of(*local_components(leaves, np.full(4, center)))
    assert forward == backward == {k: 1 for k in (1, 3, 50, 60, 90)}


@pytest.mark.parametrize("partitions", [1, 4])
def test_distributed_components_equal_local_ones(client, partitions):
    rng = np.random.default_rng(partitions)
    # A long chain in shuffled key order, stars, and a sparse random graph of large keys.
    chain = rng.permutation(300) * 11 + 5
    star = np.full(40, 7_000)
    randoms = rng.integers(1 << 33, (1 << 33) + 2_000, (2, 1_500))
    randoms = randoms[:, randoms[0] != randoms[1]]  # pairs never join a document to itself
    a = np.concatenate([chain[:-1], star, randoms[0]])
    b = np.concatenate([chain[1:], np.arange(8_000, 8_040), randoms[1]])
    assert distributed(client, a, b, partitions) == labels_of(*local_components(a, b))


def test_distributed_components_of_no_edges_are_empty(client):
    assert distributed(client, np.array([], np.int64), np.array([], np.int64), 3) == {}


def test_rows_sharing_a_key_pair_up_with_the_smallest_document_of_their_group():
    band = np.array([0, 0, 0, 1, 1, 2, 2], np.uint16)
    high = np.array([1, 1, 1, 5, 5, 9, 9], np.uint64)
    low = np.array([2, 2, 2, 6, 7, 3, 3], np.uint64)
    key = np.array([40, 10, 30, 10, 30, 30, 40], np.int64)
    pairs = candidate_pairs(band, high, low, key, exact_from=2)
    found = sorted(zip(pairs.a.tolist(), pairs.b.tolist(), pairs.exact.tolist(), strict=True))
    assert found == [(10, 30, False), (10, 40, False), (30, 40, True)]


def test_unique_pairs_keep_each_pair_once_and_exact_wins():
    pairs = Pairs(
        np.array([5, 1, 5, 1]), np.array([9, 2, 9, 3]), np.array([False, False, True, False])
    )
    result = unique_pairs(pairs)
    assert list(zip(result.a.tolist(), result.b.tolist(), result.exact.tolist(), strict=True)) == [
        (1, 2, False),
        (1, 3, False),
        (5, 9, True),
    ]


def test_jaccard_of_sorted_sets():
    sets = pa.array([[1, 2, 3], [], [7], [1, 5], [1, 2, 3, 4]], pa.large_list(pa.uint32()))
    other = pa.array([[2, 3, 4], [], [8], [1, 5], [4, 5, 6, 7]], pa.large_list(pa.uint32()))
    assert jaccard(sets, other).tolist() == [0.5, 0.0, 0.0, 1.0, 1 / 7]
