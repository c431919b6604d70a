"""The edges step verifies a partition's near pairs by their true Jaccard similarity, reading the
shingle sets of a batch of pairs at a time and comparing runs of a bounded number of shingles:
the edges are the same whatever those bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from corpusmill.pipeline.dedup import edges
from corpusmill.pipeline.dedup.candidates import Candidates
from corpusmill.pipeline.dedup.edges import edges_task
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.shuffle import read_table, write_sorted

PARTS, DOCS = 3, 40


class Files:
    """The two things edges_task asks of the run's files: its parts and where its output goes."""

    parts = list(range(PARTS))

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def file(self, step: str, j: int) -> Path:
        return self.folder / f"{step}-{j}.arrow"


def shingles_and_pairs(folder: Path) -> tuple[list[Path], Path, dict[int, set[int]]]:
    """Shingles files of 3 parts of 40 documents (sets of 0 to 400 hashes from a small range,
        so pairs range from unlike to alike) and a pairs file of 300 distinct near pairs and 20 exact
    ones."""
    rng = np.random.default_rng(3)
    sets, paths = {}, []
    for part in range(PARTS):
        keys = (np.int64(part) << ROW_BITS) + np.arange(DOCS)
        values = [np.unique(rng.integers(0, 500, rng.integers(0, 400))) for _ in keys]
        sets.update({int(k): set(v.tolist()) for k, v in zip(keys, values, strict=True)})
        column = pa.array([v.astype(np.uint32) for v in values], pa.large_list(pa.uint32()))
        paths.append(folder / f"shingles-{part}.arrow")
        write_sorted(paths[-1], pa.table({"key": keys, "shingles": column}))
    docs = np.array(sorted(sets))
    drawn = np.unique(np.sort(rng.choice(docs, (400, 2)), axis=1), axis=0)
    a, b = drawn[drawn[:, 0] != drawn[:, 1]][:320].T
    exact = rng.permutation(len(a)) < 20
    pairs = pa.table({"partition": np.zeros(len(a), np.int64), "a": a, "b": b, "exact": exact})
    write_sorted(folder / "pairs.arrow", pairs)
    return paths, folder / "pairs.arrow", sets


@pytest.mark.parametrize("batch_pairs, run_shingles", [(7, 300), (1024, 1), (1024, 1 << 21)])
def test_near_pairs_verified_in_bounded_batches_give_the_same_edges(
    tmp_path, monkeypatch, batch_pairs, run_shingles
):
    paths, pairs, sets = shingles_and_pairs(tmp_path)
    monkeypatch.setattr(edges, "_VERIFY_PAIRS", batch_pairs)
    monkeypatch.setattr(edges, "_VERIFY_SHINGLES", run_shingles)
    found = edges_task(0, [Candidates((pairs,), ())], paths, Files(tmp_path), 0.2)
    rows = read_table(found.path).to_pylist()
    near = [row for row in rows if not row["exact"]]
    for row in near:
        a, b = sets[row["a"]], sets[row["b"]]
        assert row["jaccard"] == pytest.approx(len(a & b) / len(a | b), rel=1e-6)
        assert row["jaccard"] >= 0.2
    assert sum(row["exact"] for row in rows) == found.counts["exact"] == 20
    assert found.counts["verified"] == len(near) > 0
    expected = [
        (row["a"], row["b"])
        for row in read_table(pairs).to_pylist()
        if not row["exact"]
        and len(sets[row["a"]] & sets[row["b"]]) >= 0.2 * len(sets[row["a"]] | sets[row["b"]]) > 0
    ]
    assert [(row["a"], row["b"]) for row in near] == expected


@pytest.mark.parametrize("collapse", [True, False])
def test_edges_go_by_their_member_end_with_exact_pairs_marked_as_copies(tmp_path, collapse):
    paths, pairs, _ = shingles_and_pairs(tmp_path)
    score = lambda keys: (keys % 7).astype(np.float64)  # noqa: E731, ties broken by key
    found = edges_task(0, [Candidates((pairs,), ())], paths, Files(tmp_path), 0.2, score, collapse)
    edges = read_table(found.path).to_pylist()
    members = read_table(found.members).to_pylist()
    expected = []
    for row in edges:
        a_first = row["a"] % 7 >= row["b"] % 7
        centre, member = (row["a"], row["b"]) if a_first else (row["b"], row["a"])
        expected.append({"key": member, "centre": centre, "copy": row["exact"] and collapse})
    assert members == sorted(expected, key=lambda row: (row["key"], row["centre"]))
    firsts = read_table(found.firsts).column("key").to_pylist()
    assert firsts == sorted({row["centre"] for row in expected if row["copy"]})
    assert bool(firsts) == collapse
