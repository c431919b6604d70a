"""Candidate pairs, Jaccard verification and connected components, on one machine and distributed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from dask.utils import key_split
from distributed import Client, get_task_stream
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusmill.pipeline.dedup.components import (
    PartScores,
    distributed_components,
    distributed_keepers,
    keepers,
    local_components,
)
from corpusmill.pipeline.dedup.copies import graph_edges, member_rows
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.lsh import Pairs, candidate_pairs, unique_pairs
from corpusmill.pipeline.dedup.shuffle import write_sorted
from corpusmill.pipeline.dedup.verify import jaccard


@pytest.fixture(scope="module")
def client():
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as c:
        yield c


def labels_of(nodes: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    return dict(zip(nodes.tolist(), labels.tolist(), strict=True))


def distributed(client: Client, a, b, partitions: int, folder) -> dict[int, int]:
    edges = np.column_stack([a, b]).astype(np.int64)
    futures, _ = distributed_components(client, np.array_split(edges, 3), partitions, folder)
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


def mixed_graph(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A long chain in shuffled key order, a star, and a sparse random graph of large keys."""
    rng = np.random.default_rng(seed)
    chain = rng.permutation(300) * 11 + 5
    star = np.full(40, 7_000)
    randoms = rng.integers(1 << 33, (1 << 33) + 2_000, (2, 1_500))
    randoms = randoms[:, randoms[0] != randoms[1]]  # pairs never join a document to itself
    a = np.concatenate([chain[:-1], star, randoms[0]])
    b = np.concatenate([chain[1:], np.arange(8_000, 8_040), randoms[1]])
    return a, b


@pytest.mark.parametrize("partitions", [1, 4, 16])
def test_distributed_components_equal_local_ones(client, partitions, tmp_path):
    a, b = mixed_graph(partitions)
    assert distributed(client, a, b, partitions, tmp_path) == labels_of(*local_components(a, b))


def test_a_round_of_distributed_components_runs_two_tasks_per_partition(client, tmp_path):
    a, b = mixed_graph(0)
    edges = np.array_split(np.column_stack([a, b]).astype(np.int64), 3)
    with get_task_stream(client) as stream:
        futures, rounds = distributed_components(client, edges, 16, tmp_path)
        client.gather(futures)
    tasks = Counter(key_split(task["key"]) for task in stream.data)
    # 3 inputs split both ways, 2 star steps per partition and round, then the labels.
    assert rounds > 1
    assert sum(tasks.values()) == 3 + 2 * 16 * rounds + 16
    # Only the last round's files are left.
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"small-{rounds}"]


def test_distributed_components_of_no_edges_are_empty(client, tmp_path):
    empty = np.array([], np.int64)
    assert distributed(client, empty, empty, 3, tmp_path) == {}


def test_rows_sharing_a_key_pair_up_with_the_smallest_document_of_their_group():
    band = np.array([0, 0, 0, 1, 1, 2, 2], np.uint16)
    high = np.array([1, 1, 1, 5, 5, 9, 9], np.uint64)
    low = np.array([2, 2, 2, 6, 7, 3, 3], np.uint64)
    key = np.array([40, 10, 30, 10, 30, 30, 40], np.int64)
    pairs = candidate_pairs(band, high, low, key, exact_from=2)
    found = sorted(zip(pairs.a.tolist(), pairs.b.tolist(), pairs.exact.tolist(), strict=True))
    assert found == [(10, 30, False), (10, 40, False), (30, 40, True)]


def test_a_score_centres_each_groups_pairs_on_its_highest_scoring_document():
    band = np.array([0, 0, 0, 0, 1, 1], np.uint16)
    high = np.array([1, 1, 1, 1, 5, 5], np.uint64)
    low = np.array([2, 2, 2, 2, 6, 6], np.uint64)
    key = np.array([40, 10, 30, 20, 10, 20], np.int64)
    size = np.array([300, 100, 900, 900, 100, 100])
    pairs = candidate_pairs(band, high, low, key, exact_from=1, score=size)
    found = sorted(zip(pairs.a.tolist(), pairs.b.tolist(), pairs.exact.tolist(), strict=True))
    # 20 and 30 are the longest; the tie goes to the first, 20; each pair is (earlier, later).
    assert found == [(10, 20, False), (10, 20, True), (20, 30, False), (20, 40, False)]


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


def kept_as(a, b, score=None, twins=True) -> dict[int, int]:
    return labels_of(*keepers(np.array(a), np.array(b), score, twins))


def scores(by_key: dict[int, float]):
    return lambda keys: np.array([by_key[k] for k in keys.tolist()])


def test_a_chain_keeps_both_ends_when_each_removed_document_needs_a_kept_twin():
    # a~b and b~c verified, a and c unlike: removing c for a would remove it for a stranger.
    assert kept_as([1, 2], [2, 3]) == {1: 1, 2: 1, 3: 3}
    assert kept_as([1, 2], [2, 3], twins=False) == {1: 1, 2: 1, 3: 1}


def test_a_longer_chain_alternates_kept_and_removed_documents():
    a, b = np.arange(1, 9), np.arange(2, 10)
    assert kept_as(a, b) == {k: k if k % 2 else k - 1 for k in range(1, 10)}


def test_the_longest_document_is_kept_and_takes_the_place_of_its_twins():
    length = scores({10: 300, 20: 900, 30: 500, 40: 100})
    # A star around 10 (candidate pairs join each group to its smallest key): 20 is the longest.
    assert kept_as([10, 10, 10], [20, 30, 40], length, twins=False) == dict.fromkeys(
        [10, 20, 30, 40], 20
    )
    # With twins, 20 keeps only what it is verified alike: 10; 30 and 40 were alike 10 alone.
    assert kept_as([10, 10, 10], [20, 30, 40], length) == {10: 20, 20: 20, 30: 30, 40: 40}
    # A clique: every pair verified, the longest kept for all.
    a, b = zip(*[(x, y) for x in (10, 20, 30, 40) for y in (10, 20, 30, 40) if x < y], strict=True)
    assert kept_as(a, b, length) == dict.fromkeys([10, 20, 30, 40], 20)


def test_equal_scores_keep_the_first_document_in_input_order():
    quality = scores({5: 0.9, 7: 0.9, 9: 0.2})
    assert kept_as([9, 7], [7, 5], quality) == {5: 5, 7: 5, 9: 9}
    assert kept_as([9, 7], [7, 5], quality, twins=False) == {5: 5, 7: 5, 9: 5}


def test_without_twins_input_order_labels_components_as_before():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 400, (2, 600))
    a, b = a[a != b], b[a != b]
    assert kept_as(a, b, twins=False) == labels_of(*local_components(a, b))


def greedy_reference(edges: list[tuple[int, int]], score: dict[int, float]) -> dict[int, int]:
    """Document by document in order of priority: kept, or removed for its first kept twin."""
    order = sorted(score, key=lambda k: (-score[k], k))
    place = {k: i for i, k in enumerate(order)}
    neighbours = {k: set() for k in score}
    for x, y in edges:
        neighbours[x].add(y)
        neighbours[y].add(x)
    keeper: dict[int, int] = {}
    for k in order:
        twins = [n for n in neighbours[k] if keeper.get(n) == n]
        keeper[k] = min(twins, key=place.get) if twins else k
    return keeper


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=80),
    st.lists(st.integers(0, 3), min_size=31, max_size=31),
    st.randoms(use_true_random=False),
)
def test_keepers_match_deciding_document_by_document_in_any_edge_order(edges, points, rng):
    edges = [(x, y) for x, y in edges if x != y] or [(0, 1)]
    score = {k: float(points[k]) for pair in edges for k in pair}
    expected = greedy_reference(edges, score)
    shuffled = [(y, x) if rng.random() < 0.5 else (x, y) for x, y in edges + edges[:3]]
    rng.shuffle(shuffled)
    for order in (edges, shuffled):
        a, b = (np.array(side) for side in zip(*order, strict=True))
        assert kept_as(a, b, scores(score)) == expected


def length_score(keys: np.ndarray) -> np.ndarray:
    """A made-up length per document, with ties: the key's last decimal digit."""
    return (keys % 10).astype(np.float64)


@pytest.mark.parametrize("twins", [True, False])
@pytest.mark.parametrize("partitions", [1, 4, 16])
def test_distributed_keepers_equal_local_ones(client, partitions, twins, tmp_path):
    rng = np.random.default_rng(partitions)
    chain = rng.permutation(300) * 11 + 5
    randoms = rng.integers(1 << 33, (1 << 33) + 2_000, (2, 1_500))
    randoms = randoms[:, randoms[0] != randoms[1]]
    a, b = np.concatenate([chain[:-1], randoms[0]]), np.concatenate([chain[1:], randoms[1]])
    edges = np.column_stack([a, b]).astype(np.int64)
    split = np.array_split(edges, 3)
    components, _ = distributed_components(client, split, partitions, tmp_path / "components")
    futures = distributed_keepers(
        client, split, components, tmp_path / "keepers", length_score, twins
    )
    result = {}
    for nodes, kept in client.gather(futures):
        assert nodes.tolist() == sorted(nodes.tolist())
        assert not set(nodes.tolist()) & set(result), "a node is in two partitions"
        result.update(labels_of(nodes, kept))
    assert result == kept_as(a, b, length_score, twins)


def test_part_scores_read_each_keys_row_from_its_parts_file_and_name_a_missing_key(tmp_path):
    files = {}
    for part, lengths in ((0, [30.0, 10.0]), (2, [5.0, 7.0, 9.0])):
        files[part] = tmp_path / f"sizes-{part}.arrow"
        keys = (part << ROW_BITS) + np.arange(len(lengths))
        write_sorted(files[part], pa.table({"key": keys, "bytes": lengths}))
    lengths = PartScores(files, "bytes")
    keys = np.array([(2 << ROW_BITS) | 2, 1, 0, (2 << ROW_BITS) | 0])
    assert lengths(keys).tolist() == [9.0, 10.0, 30.0, 5.0]
    assert kept_as([0, 1], [1, (2 << ROW_BITS) | 2], lengths) == {
        0: 0,
        1: 0,
        (2 << ROW_BITS) | 2: (2 << ROW_BITS) | 2,
    }
    with pytest.raises(KeyError, match=f"key {(2 << ROW_BITS) | 3} in .*sizes-2.arrow"):
        lengths(np.array([1, (2 << ROW_BITS) | 3]))
    with pytest.raises(KeyError, match=f"key {1 << ROW_BITS}"):
        lengths(np.array([1 << ROW_BITS]))


def copied_texts_edges(scores: np.ndarray | None) -> tuple[Pairs, np.ndarray]:
    """The edges of 3,000 documents of 300 texts (one text in 3 of them, so families of 1 to
    ~1,000 exact copies), paired as the candidates step pairs them: a star per key, 8 bands whose
    keys a text shares with the texts of its group of 5 one time in 2, and the text hash; near
    pairs verified by a made-up similarity of their texts, as copies' shingles are their
    first's. Returns the edges and each document's text."""
    rng = np.random.default_rng(11)
    docs, texts, bands = 3000, 300, 8
    text = np.where(rng.random(docs) < 1 / 3, 0, rng.integers(0, texts, docs))
    shared = rng.random((texts, bands)) < 0.5
    band_keys = np.where(shared, np.arange(texts)[:, None] // 5, texts + np.arange(texts)[:, None])
    keys = np.repeat(np.arange(docs), bands + 1)
    band = np.tile(np.arange(bands + 1), docs)
    value = np.column_stack([band_keys[text], text]).ravel()
    found = unique_pairs(
        candidate_pairs(
            band, value, np.zeros(len(keys)), keys, bands, None if scores is None else scores[keys]
        )
    )
    alike = (text[found.a] * 7 + text[found.b] * 13) % 3 != 0
    keep = found.exact | alike
    return Pairs(found.a[keep], found.b[keep], found.exact[keep]), text


@pytest.mark.parametrize("twins", [True, False])
@pytest.mark.parametrize("scored", [False, True])
def test_exact_copies_left_out_of_the_graph_are_kept_as_their_first_is(twins, scored):
    scores = np.random.default_rng(2).integers(0, 4, 3000).astype(np.float64) if scored else None
    score = None if scores is None else (lambda keys: scores[keys])
    edges, text = copied_texts_edges(scores)
    whole = kept_as(edges.a, edges.b, score, twins)
    members, firsts = member_rows(edges, score, collapse=True)
    copies = members.filter(members.column("copy"))
    copy, first = (copies.column(name).to_numpy() for name in ("key", "centre"))
    graph = graph_edges(members)
    collapsed = kept_as(graph[:, 0], graph[:, 1], score, twins)
    # A copy is a later document of its first's text, and the graph holds no copy.
    assert np.array_equal(text[copy], text[first]) and len(copy) > 1500
    assert not set(copy.tolist()) & set(graph.ravel().tolist())
    assert len(graph) < len(edges.a) / 4
    # The graph's documents are kept as in the whole graph; a copy as its first is.
    assert {k: whole[k] for k in collapsed} == collapsed
    assert [whole[c] for c in copy.tolist()] == [whole[f] for f in first.tolist()]
    assert set(whole) == set(collapsed) | set(copy.tolist()) | set(firsts.column("key").to_pylist())
    assert set(firsts.column("key").to_pylist()) == set(first.tolist())


def test_without_collapse_every_edge_stays_in_the_graph_by_its_member_end():
    edges, _ = copied_texts_edges(None)
    members, firsts = member_rows(edges, None, collapse=False)
    graph = graph_edges(members)
    assert firsts.num_rows == 0
    pairs = zip(edges.a.tolist(), edges.b.tolist(), strict=True)
    assert sorted(map(tuple, graph.tolist())) == sorted(pairs)
