"""The dedup stage on Dask over the sample crawl: planted duplicates found, nothing else merged,
the same result whatever the workers, buckets, components path or clean partitioning, resuming."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from corpusmill.core.errors import StageError
from corpusmill.pipeline.clean import run_clean
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.dedup.candidates import chunk_rows
from corpusmill.pipeline.dedup.hashing import shingle_hashes, shingle_sets
from corpusmill.pipeline.dedup.shuffle import read_table
from corpusmill.pipeline.dedup.stage import DedupConfig, run_dedup
from corpusmill.pipeline.dedup.verify import jaccard
from corpusmill.pipeline.readers import discover_inputs
from corpusmill.pipeline.schema import DOCUMENTS

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
LABELS = json.loads((SAMPLE / "labels.json").read_text())["documents"]
INPUTS = tuple(str(p) for p in sorted(SAMPLE.glob("*.gz")) + sorted(SAMPLE.glob("*.zst")))


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def clean(out: Path, client: Client, split_bytes: int) -> Path:
    config = load_config(
        overrides={"inputs": INPUTS, "out": str(out), "read.split_bytes": split_bytes}
    )
    run_clean(config, client, discover_inputs(config.inputs, config.read))
    return out


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory, client) -> Path:
    """The sample crawl cleaned into 8 parts."""
    return clean(tmp_path_factory.mktemp("clean") / "out", client, 256 << 10)


def dedup_copy(cleaned: Path, out: Path, client: Client, **settings) -> tuple[dict, Path]:
    """Dedup a copy of a clean output, so that each run has its own OUT/dedup."""
    shutil.copytree(cleaned / "clean", out / "clean")
    return run_dedup(out, DedupConfig(**settings), client), out


@pytest.fixture(scope="module")
def deduped(cleaned, client, tmp_path_factory) -> tuple[dict, Path]:
    return dedup_copy(cleaned, tmp_path_factory.mktemp("dedup"), client)


def removed_rows(out: Path) -> list[dict]:
    return pq.read_table(out / "dedup" / "removed.parquet").to_pylist()


def kept_documents(out: Path) -> dict[str, dict]:
    """The clean stage's documents by id, in input order."""
    parts = sorted((out / "clean").glob("part-*.parquet"))
    table = pa.concat_tables(pq.read_table(p, columns=["id", "url", "text"]) for p in parts)
    return {row["id"]: row for row in table.to_pylist()}


def test_planted_duplicates_share_their_originals_cluster_and_nothing_else_is_merged(deduped):
    _, out = deduped
    documents = kept_documents(out)
    clusters: dict[str, set[str]] = {}
    for row in removed_rows(out):
        clusters.setdefault(row["kept_id"], {row["kept_id"]}).add(row["id"])
    families = [
        {LABELS[documents[i]["url"]]["duplicate_of"] or documents[i]["url"] for i in members}
        for members in clusters.values()
    ]
    assert all(len(family) == 1 for family in families), "unrelated pages merged"
    planted = {url for url, label in LABELS.items() if label["kind"] in ("exact_dup", "near_dup")}
    clustered = {documents[i]["url"] for members in clusters.values() for i in members}
    # Each planted copy is in a cluster with its original (which may come first or last).
    assert planted <= clustered
    originals = {LABELS[url]["duplicate_of"] for url in planted}
    assert originals <= clustered
    assert len(clusters) == len(originals)


def test_kind_is_exact_only_for_a_normalized_text_seen_earlier(deduped):
    _, out = deduped
    documents = kept_documents(out)
    order = {doc_id: n for n, doc_id in enumerate(documents)}  # input order
    normalized = {i: " ".join(doc["text"].lower().split()) for i, doc in documents.items()}
    for row in removed_rows(out):
        earlier = [
            j
            for j in documents
            if order[j] < order[row["id"]] and normalized[j] == normalized[row["id"]]
        ]
        assert (row["kind"] == "exact") == bool(earlier), row
        assert order[row["kept_id"]] < order[row["id"]]


def test_stats_count_documents_bytes_and_clusters(deduped):
    stats, out = deduped
    documents = kept_documents(out)
    rows = removed_rows(out)
    assert stats["docs"] == len(documents)
    assert stats["bytes"] == sum(len(doc["text"].encode()) for doc in documents.values())
    for kind in ("exact", "near"):
        ids = [row["id"] for row in rows if row["kind"] == kind]
        assert stats["removed"][kind] == {
            "docs": len(ids),
            "bytes": sum(len(documents[i]["text"].encode()) for i in ids),
        }
    assert stats["kept"]["docs"] == len(documents) - len(rows)
    assert stats["clusters"] == len({row["kept_id"] for row in rows})
    assert stats["cluster_sizes"] == {"2": stats["clusters"]}
    assert json.loads((out / "dedup" / "_done.json").read_text()) == stats


def test_same_bytes_with_one_worker_many_buckets_and_distributed_components(
    deduped, cleaned, tmp_path
):
    _, out = deduped
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as one_worker,
    ):
        stats, other = dedup_copy(
            cleaned, tmp_path, one_worker, bucket_rows=500, local_max_edges=0, partition_edges=5
        )
    assert stats["buckets"] > 10
    assert stats["components"]["method"] == "distributed"
    assert stats["components"]["partitions"] > 3
    assert (other / "dedup" / "removed.parquet").read_bytes() == (
        out / "dedup" / "removed.parquet"
    ).read_bytes()


def test_another_clean_partitioning_removes_the_same_documents(deduped, client, tmp_path):
    _, out = deduped
    other = clean(tmp_path / "out", client, 1 << 20)
    stats = run_dedup(other, DedupConfig(), client)
    assert stats["parts"] != deduped[0]["parts"]
    as_set = lambda rows: {(r["id"], r["kind"], r["kept_id"]) for r in rows}  # noqa: E731
    assert as_set(removed_rows(other)) == as_set(removed_rows(out))


def test_rerun_skips_a_finished_stage_and_reuses_finished_signature_files_but_damaged_ones(
    deduped, client, tmp_path
):
    stats, out = deduped
    assert run_dedup(out, DedupConfig(), client) == stats
    folder = out / "dedup"
    shutil.copytree(out / "clean", tmp_path / "clean")
    shutil.copytree(folder / "signatures", tmp_path / "dedup" / "signatures")
    shutil.copytree(folder / "sizes", tmp_path / "dedup" / "sizes")
    redone = tmp_path / "dedup" / "signatures" / "part-00003.arrow"
    redone.unlink()
    damaged = tmp_path / "dedup" / "signatures" / "part-00001.arrow"
    damaged.write_bytes(damaged.read_bytes()[:100])
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "dedup" / "signatures").iterdir()}
    run_dedup(tmp_path, DedupConfig(), client)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "dedup" / "signatures").iterdir()}
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {redone.name, damaged.name}
    assert (tmp_path / "dedup" / "removed.parquet").read_bytes() == (
        folder / "removed.parquet"
    ).read_bytes()


def write_parts(out: Path, parts: list[list[tuple[str, str]]], stride: int = 100) -> None:
    """Clean-stage parts of (url, text) documents, with done markers; part p's row i has id and
    offset p * stride + i."""
    (out / "clean" / "_done").mkdir(parents=True)
    for number, docs in enumerate(parts):
        n = len(docs)
        table = pa.table(
            {
                "id": [f"f.jsonl#{number * stride + i}" for i in range(n)],
                "text": [text for _, text in docs],
                "url": [url for url, _ in docs],
                "title": [None] * n,
                "source": ["f.jsonl"] * n,
                "offset": [number * stride + i for i in range(n)],
                "lang": ["en"] * n,
                "lang_score": [1.0] * n,
                "meta": [None] * n,
            },
            schema=DOCUMENTS,
        )
        pq.write_table(table, out / "clean" / f"part-{number:05d}.parquet")
        (out / "clean" / "_done" / f"part-{number:05d}.json").write_text("{}")


def test_same_url_is_an_exact_duplicate_only_when_asked(client, tmp_path):
    story = " ".join(f"word{i}" for i in range(200))
    write_parts(
        tmp_path / "a",
        [
            [("https://x.example/1", story), ("https://x.example/2", "Something else entirely.")],
            [("https://x.example/2", "A later fetch of page two."), ("", "")],
        ],
    )
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    run_dedup(tmp_path / "a", DedupConfig(), client)
    run_dedup(tmp_path / "b", DedupConfig(exact_url=True), client)
    assert removed_rows(tmp_path / "a") == []
    assert removed_rows(tmp_path / "b") == [
        {"id": "f.jsonl#100", "kind": "exact", "cluster": 1, "kept_id": "f.jsonl#1"}
    ]


def similarity(texts_a: list[str], texts_b: list[str]) -> list[float]:
    """The true Jaccard similarity of each pair of texts' default shingle sets."""
    sets_a, sets_b = (
        shingle_sets(shingle_hashes(pa.array(texts), DedupConfig().shingle_size))
        for texts in (texts_a, texts_b)
    )
    return jaccard(sets_a, sets_b).tolist()


def test_every_removed_document_is_verified_alike_the_document_kept_for_it(deduped):
    _, out = deduped
    documents = kept_documents(out)
    rows = [row for row in removed_rows(out) if row["kind"] == "near"]
    assert rows
    alike = similarity(
        [documents[row["id"]]["text"] for row in rows],
        [documents[row["kept_id"]]["text"] for row in rows],
    )
    assert min(alike) >= DedupConfig().verify_threshold


def chain_parts(out: Path) -> dict[str, str]:
    """Clean parts of a chain of three pages, each a shift of the last by 30 of its 120 words
    (Jaccard 0.59 with a neighbour, 0.33 between the ends), and an unrelated page; the middle
    one, in the second part, has the longest words. Returns the ids of the chain by name."""
    segment = lambda name: [f"{name}{i}" for i in range(30)]  # noqa: E731
    words = [segment(name) for name in ("al", "be", "ga", "de")]
    words += [segment("epsilonlong"), segment("ze")]
    page = lambda first: " ".join(w for seg in words[first : first + 4] for w in seg)  # noqa: E731
    write_parts(
        out,
        [
            [("https://a.example/", page(0)), ("https://other.example/", "A page on its own.")],
            [("https://b.example/", page(1)), ("https://c.example/", page(2))],
        ],
    )
    return {"a": "f.jsonl#0", "b": "f.jsonl#100", "c": "f.jsonl#101"}


def test_a_chain_of_near_duplicates_removes_a_document_only_for_a_verified_twin(client, tmp_path):
    ids = chain_parts(tmp_path / "first")
    texts = kept_documents(tmp_path / "first")
    a, b, c = (texts[ids[name]]["text"] for name in "abc")
    assert similarity([a, b, a], [b, c, c]) == pytest.approx([88 / 148, 88 / 148, 58 / 178])
    for name in ("components", "longest", "longest-components", "longest-distributed"):
        shutil.copytree(tmp_path / "first", tmp_path / name)
    removed = {}
    for name, settings in {
        "first": {},
        "components": {"kept_twins": False},
        "longest": {"keeper": "longest"},
        "longest-components": {"keeper": "longest", "kept_twins": False},
        "longest-distributed": {"keeper": "longest", "local_max_edges": 0},
    }.items():
        stats = run_dedup(tmp_path / name, DedupConfig(**settings), client)
        removed[name] = {row["id"]: row["kept_id"] for row in removed_rows(tmp_path / name)}
        assert stats["kept"]["docs"] == 4 - len(removed[name])
        assert stats["clusters"] == len(set(removed[name].values()))
    # In input order a is kept and b removed for it; c is unlike a, so it stays.
    assert removed["first"] == {ids["b"]: ids["a"]}
    assert removed["components"] == {ids["b"]: ids["a"], ids["c"]: ids["a"]}
    # b, the longest, is kept, and a and c are each its twin.
    assert removed["longest"] == {ids["a"]: ids["b"], ids["c"]: ids["b"]}
    assert removed["longest-components"] == removed["longest"]
    assert (tmp_path / "longest-distributed" / "dedup" / "removed.parquet").read_bytes() == (
        tmp_path / "longest" / "dedup" / "removed.parquet"
    ).read_bytes()


def test_a_missing_or_unfinished_clean_stage_is_an_error_naming_the_folder(client, tmp_path):
    with pytest.raises(StageError, match="run the clean stage first"):
        run_dedup(tmp_path, DedupConfig(), client)
    write_parts(tmp_path, [[("u", "text")]])
    (tmp_path / "clean" / "_done" / "part-00000.json").unlink()
    with pytest.raises(StageError, match=r"clean parts \[0\] .* no done marker"):
        run_dedup(tmp_path, DedupConfig(), client)


def copied_page_parts(out: Path, copies: int) -> tuple[list[str], str]:
    """Two clean parts of 200 unrelated texts and, after the first 10, `copies` copies of one page
    (in capitals every third time: the same text to dedup); copy 490 has its spaces doubled, the
    longest. Returns the copies' ids in input order."""
    page = " ".join(f"boiler{i}" for i in range(20))
    words = np.random.default_rng(5).integers(0, 10**6, (200, 20))
    docs = [
        (f"https://u.example/{i}", " ".join(f"w{w}" for w in row)) for i, row in enumerate(words)
    ]
    for i in range(copies):
        text = page.upper() if i % 3 == 1 else page
        text = text.replace(" ", "  ") if i == 490 else text
        docs.insert(10 + i, (f"https://c.example/{i}", text))
    half = len(docs) // 2
    write_parts(out, [docs[:half], docs[half:]], stride=half)
    return [f"f.jsonl#{10 + i}" for i in range(copies)]


def test_a_page_copied_many_times_is_paired_in_bounded_chunks_with_the_same_result(
    client, tmp_path
):
    copies, small = 700, 400
    runs = {
        "one-chunk": {},
        "chunked": {"bucket_rows": small},
        "longest-one-chunk": {"keeper": "longest"},
        "longest-chunked": {"keeper": "longest", "bucket_rows": small},
    }
    stats = {}
    for name, settings in runs.items():
        ids = copied_page_parts(tmp_path / name, copies)
        stats[name] = run_dedup(tmp_path / name, DedupConfig(**settings), client)
    # Each of the page's 33 keys has 700 rows in its bucket: every such bucket is paired in
    # several chunks, none holding more rows than the limit; no other bucket is.
    folder = tmp_path / "chunked" / "dedup"
    rows = read_table(folder / "signatures" / "part-00000.arrow")
    swollen = set(rows.filter(pc.equal(rows.column("key"), 10)).column("bucket").to_pylist())
    pairs = sorted((folder / "pairs").glob("*.arrow"))
    assert {int(path.stem.split("-")[1]) for path in pairs if path.stem.count("-") == 2} == swollen
    assert max(read_table(path).num_rows for path in pairs) <= chunk_rows(
        DedupConfig(bucket_rows=small)
    )
    assert stats["one-chunk"]["buckets"] == 1
    for one, chunked in (("one-chunk", "chunked"), ("longest-one-chunk", "longest-chunked")):
        assert (tmp_path / one / "dedup" / "removed.parquet").read_bytes() == (
            tmp_path / chunked / "dedup" / "removed.parquet"
        ).read_bytes()
        assert stats[one]["pairs"] == stats[chunked]["pairs"]
    # All copies but one are removed, each for the kept copy: the first, or the longest.
    for name, kept in (("chunked", ids[0]), ("longest-chunked", ids[490])):
        rows = removed_rows(tmp_path / name)
        assert sum(kind["docs"] for kind in stats[name]["removed"].values()) == copies - 1
        assert sorted(row["id"] for row in rows) == sorted(set(ids) - {kept})
        assert {row["kept_id"] for row in rows} == {kept}
    assert {row["kind"] for row in removed_rows(tmp_path / "chunked")} == {"exact"}


def write_perplexities(out: Path, bits_per_byte: dict[str, float]) -> None:
    """Signals parts giving each clean document the bits per byte of `bits_per_byte` (1.0 for
    others), as the perplexity filter stores them for the "quality" keeper."""
    (out / "signals").mkdir()
    for path in sorted((out / "clean").glob("part-*.parquet")):
        ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
        scores = [{"perplexity": {"bits_per_byte": bits_per_byte.get(i, 1.0)}} for i in ids]
        pq.write_table(pa.table({"id": ids, "signals": scores}), out / "signals" / path.name)


def test_the_quality_keeper_centres_pairs_on_the_best_copy_in_bounded_chunks(client, tmp_path):
    copies, best = 700, 300
    runs = {"quality-one-chunk": {}, "quality-chunked": {"bucket_rows": 400}}
    stats = {}
    for name, settings in runs.items():
        ids = copied_page_parts(tmp_path / name, copies)
        write_perplexities(tmp_path / name, {ids[best]: 0.5, ids[490]: 0.9})
        stats[name] = run_dedup(tmp_path / name, DedupConfig(keeper="quality", **settings), client)
    assert (tmp_path / "quality-one-chunk" / "dedup" / "removed.parquet").read_bytes() == (
        tmp_path / "quality-chunked" / "dedup" / "removed.parquet"
    ).read_bytes()
    assert stats["quality-one-chunk"]["pairs"] == stats["quality-chunked"]["pairs"]
    # Copy 300, of the lowest perplexity, is every copy's star centre, so every other copy is
    # its twin and removed for it (centred on the first copy, only that one would be).
    keys = {f"f.jsonl#{10 + i}": i for i in range(copies)}
    half = (200 + copies) // 2
    centre = (best + 10) if best + 10 < half else ((1 << 32) | (best + 10 - half))
    for name in runs:
        pairs = pa.concat_tables(
            read_table(path) for path in (tmp_path / name / "dedup" / "pairs").glob("*.arrow")
        )
        assert pc.all(
            pc.or_(pc.equal(pairs.column("a"), centre), pc.equal(pairs.column("b"), centre))
        ).as_py()
        rows = removed_rows(tmp_path / name)
        assert sorted(keys[row["id"]] for row in rows) == sorted(set(range(copies)) - {best})
        assert {row["kept_id"] for row in rows} == {ids[best]}


def varied_page_parts(out: Path, copies: int) -> dict[str, list[str]]:
    """Two clean parts of 200 unrelated texts, a page's `copies` copies after the first 10 (in
    capitals every third time) and 3 near variants of it, one word replaced: before the copies,
    among them and after them. Returns the ids of the variants and of the copies."""
    page = [f"boiler{i}" for i in range(20)]
    words = np.random.default_rng(5).integers(0, 10**6, (200, 20))
    docs = [" ".join(f"w{w}" for w in row) for row in words]
    variants = {5: 3, 40: 9, 200 + copies: 15}
    copy_at = [10 + i + (i >= 30) for i in range(copies)]
    for i in sorted([*copy_at, *variants]):
        text = [f"variant{i}" if n == variants.get(i) else w for n, w in enumerate(page)]
        docs.insert(i, " ".join(text).upper() if i % 3 == 1 else " ".join(text))
    half = len(docs) // 2
    write_parts(
        out,
        [
            [(f"https://v.example/{i}", t) for i, t in enumerate(docs[:half])],
            [(f"https://v.example/{half + i}", t) for i, t in enumerate(docs[half:])],
        ],
        stride=half,
    )
    return {
        "variants": [f"f.jsonl#{i}" for i in variants],
        "copies": [f"f.jsonl#{i}" for i in copy_at],
    }


def test_exact_copies_stay_out_of_the_graph_whatever_their_number(client, tmp_path):
    graph, removed = {}, {}
    for copies in (40, 400):
        for name, settings in (("local", {}), ("distributed", {"local_max_edges": 0})):
            out = tmp_path / f"{name}-{copies}"
            ids = varied_page_parts(out, copies)
            stats = run_dedup(out, DedupConfig(partition_edges=20, **settings), client)
            assert stats["components"]["method"] == name
            components = (out / "dedup" / "components").glob("*.arrow")
            graph[name, copies] = sum(read_table(path).num_rows for path in components)
            removed[name, copies] = (out / "dedup" / "removed.parquet").read_bytes()
            # The first variant is kept; the page's first copy, every other copy and the other
            # variants are removed for it, the later copies as exact ones.
            kept, *others = ids["variants"]
            first, *later = ids["copies"]
            rows = {row["id"]: row for row in removed_rows(out)}
            assert sorted(rows) == sorted([first, *later, *others])
            assert {row["kept_id"] for row in rows.values()} == {kept}
            assert [i for i, row in rows.items() if row["kind"] == "exact"] == later
            # One cluster: the kept variant and all it removes.
            size = len(rows) + 1
            top = 1 << (size - 1).bit_length()
            assert stats["cluster_sizes"] == {f"{top // 2 + 1}-{top}": 1}
    # The graph holds the page's first copy and its variants only, whatever the copies.
    assert set(graph.values()) == {4}
    for copies in (40, 400):
        assert removed["local", copies] == removed["distributed", copies]
