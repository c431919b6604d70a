"""`corpusmill run` on Dask over the sample crawl: what it keeps, determinism of every output file
(clean parts, duplicates removed, tokenizer, shards, manifest), resuming, and existing clusters."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cluster_apart import cluster_started_apart
from distributed import get_task_stream

from corpusmill.cli.main import main
from corpusmill.loader.format import read_manifest, verify_shards
from corpusmill.pipeline.clean import plan_tasks, task_batches
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.corpus import Corpus
from corpusmill.pipeline.readers import InputFile, Split, discover_inputs, plan_splits
from corpusmill.pipeline.run import run_pipeline
from corpusmill.tokenizer.train import save_tokenizer, train_tokenizer

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
LABELS = json.loads((SAMPLE / "labels.json").read_text())["documents"]
INPUTS = tuple(str(p) for p in sorted(SAMPLE.glob("*.gz")) + sorted(SAMPLE.glob("*.zst")))
# Small splits so the sample crawl becomes several tasks and the workers share it.
SPLIT_BYTES = 256 << 10


# A small tokenizer and small shards, so that the sample makes several shards quickly.
TOKENIZE = {
    "tokenizer.train": True,
    "tokenizer.vocab_size": 1024,
    "shards.tokens_per_shard": 250_000,
}


def sample_run(out: Path, **overrides) -> dict:
    config = load_config(
        overrides={
            "inputs": INPUTS,
            "out": str(out),
            "read.split_bytes": SPLIT_BYTES,
            **TOKENIZE,
            **overrides,
        }
    )
    return run_pipeline(config)


def outputs(out: Path) -> dict[str, bytes]:
    """Every result file of a run and the clean stage's markers, by path relative to the output."""
    folders = ("clean", "clean/_done", "rejected", "dataset")
    paths = [p for folder in folders for p in (out / folder).iterdir()]
    paths += [out / "dedup" / "removed.parquet", out / "tokenizer.json", out / "index.json"]
    paths += list(out.glob("shard-*.arrow"))
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(paths) if p.is_file()}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("two") / "out"
    return out, sample_run(out, workers=2)


def test_every_article_is_kept_and_every_junk_page_rejected_with_a_reason(two_workers):
    out, stats = two_workers
    kept = pq.read_table(out / "clean").to_pydict()
    rejected = pq.read_table(out / "rejected").to_pydict()
    kept_kinds = Counter(LABELS[url]["kind"] for url in kept["url"])
    rejected_kinds = Counter(LABELS[url]["kind"] for url in rejected["url"])
    labelled = Counter(doc["kind"] for doc in LABELS.values())
    assert kept_kinds == {k: labelled[k] for k in ("article", "exact_dup", "near_dup")}
    assert rejected_kinds == {
        k: labelled[k]
        for k in ("nav", "spam", "repeated", "short", "binary", "redirect", "not_found")
    }
    reasons = dict(
        zip(rejected["url"], zip(rejected["step"], rejected["reason"], strict=True), strict=True)
    )
    for url, (step, reason) in reasons.items():
        kind = LABELS[url]["kind"]
        if kind == "binary":
            assert (step, reason) == ("read", "binary_content")
        elif kind in ("redirect", "not_found"):
            assert (step, reason) == ("read", "http_status")
        else:
            assert step in ("language", "gopher_quality", "gopher_repetition", "c4", "fineweb")


def test_counts_add_up_and_match_the_labels(two_workers):
    _, stats = two_workers
    clean = stats["clean"]
    rejected_docs = sum(c["docs"] for c in clean["rejected"].values())
    assert clean["read"]["docs"] == clean["kept"]["docs"] + rejected_docs == len(LABELS)
    assert clean["files"] == 5
    assert clean["tasks"] > 2


def test_documents_are_normalized_and_carry_language_and_ids(two_workers):
    out, _ = two_workers
    docs = pq.read_table(out / "clean").to_pylist()
    for doc in docs:
        label = LABELS[doc["url"]]
        assert doc["lang"] == label["lang"]
        assert doc["id"] == f"{doc['source']}#{doc['offset']}"
        assert doc["source"] == label["file"]
        assert "\r" not in doc["text"] and "\n\n\n" not in doc["text"]
        assert doc["text"] == doc["text"].strip()
    assert len({doc["id"] for doc in docs}) == len(docs)


def test_one_worker_writes_the_same_bytes_as_two(two_workers, tmp_path):
    out, _ = two_workers
    sample_run(tmp_path / "one", workers=1)
    assert outputs(tmp_path / "one") == outputs(out)


def test_clean_tasks_are_as_many_as_the_target_size_fits_and_of_even_size():
    files = [InputFile(f"f{i}", f"f{i}", "warc", "gzip", 230, modified="") for i in range(21)]
    splits = [Split(file, 0, file.size) for file in files]
    tasks = plan_tasks(splits, target_bytes=610)
    # 4830 bytes in 8 tasks of 2 or 3 files (closing at 610 bytes would give 7 of 3)
    assert [len(task.splits) for task in tasks] == [3, 3, 2, 3, 3, 2, 3, 2]
    assert [split for task in tasks for split in task.splits] == splits
    assert [task.index for task in tasks] == list(range(8))


def test_a_task_reads_its_small_files_in_batches_as_large_as_the_read_config_allows(tmp_path):
    for i in range(5):
        lines = [json.dumps({"text": f"doc {i}.{j}"}) + "\n" for j in range(3)] + ["{broken\n"]
        (tmp_path / f"f{i}.jsonl").write_text("".join(lines))
    config = load_config(overrides={"inputs": (str(tmp_path),), "out": str(tmp_path / "out")})
    files = discover_inputs(config.inputs, config.read)
    task = plan_tasks(plan_splits(files, config.read), config.read.split_bytes)[0]
    one = list(task_batches(task, config.read))
    assert len(task.splits) == 5 and len(one) == 1
    assert one[0].docs["text"].to_pylist() == [f"doc {i}.{j}" for i in range(5) for j in range(3)]
    assert one[0].rejected.num_rows == 5
    # At most 7 documents a batch: whole files' batches are merged while they fit.
    small = dataclasses.replace(config.read, batch_docs=7)
    batches = list(task_batches(task, small))
    assert [batch.docs.num_rows for batch in batches] == [6, 6, 3]
    assert pa.concat_tables([batch.docs for batch in batches]).equals(one[0].docs)
    assert sum(batch.rejected.num_rows for batch in batches) == 5


def test_rerun_skips_finished_tasks_and_redoes_only_missing_ones(two_workers, tmp_path):
    out = tmp_path / "out"
    first = sample_run(out, workers=1)
    before = {p: (out / p).stat().st_mtime_ns for p in outputs(out)}
    (out / "clean" / "_done" / "part-00001.json").unlink()
    (out / "clean" / "part-00001.parquet").unlink()
    second = sample_run(out, workers=1)
    after = {p: (out / p).stat().st_mtime_ns for p in outputs(out)}
    redone = {p for p in after if after[p] != before.get(p)}
    assert redone == {
        "clean/_done/part-00001.json",
        "clean/part-00001.parquet",
        "rejected/part-00001.parquet",
    }
    assert outputs(out) == outputs(two_workers[0])
    assert {k: v for k, v in second["clean"].items() if k != "seconds"} == {
        k: v for k, v in first["clean"].items() if k != "seconds"
    }


def test_an_existing_dask_cluster_gives_the_same_output(two_workers, tmp_path):
    with cluster_started_apart(tmp_path, workers=2) as (address, _):
        sample_run(tmp_path / "out", scheduler=address)
    assert outputs(tmp_path / "out") == outputs(two_workers[0])


def test_a_run_with_no_readable_input_exits_1_and_says_why(tmp_path, capsys):
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"broken": \n[1, 2]\n{"no_text": true}\n')
    code = main(["run", str(junk), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert code == 1
    assert "no document could be read from 1 input files" in capsys.readouterr().err


def test_a_missing_input_exits_2_naming_it(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "*.warc.gz"
    assert main(["run", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert str(missing) in capsys.readouterr().err


def test_a_rerun_with_a_different_config_is_refused_unless_forced(tmp_path, capsys):
    out = tmp_path / "out"
    base = ["run", *INPUTS[:1], "--out", str(out), "--workers", "1"]
    assert main(base) == 0
    assert main([*base, "--workers", "2"]) == 0  # where a run executes is not its config
    capsys.readouterr()
    changed = [*base, "--filters-fineweb-short-line-length", "40"]
    assert main(changed) == 2
    assert "changed: filters.fineweb.short_line_length" in capsys.readouterr().err
    assert main([*changed, "--force"]) == 0
    assert "short_line_length = 40" in (out / "config.toml").read_text()


def test_the_run_ends_in_verified_shards_of_the_deduplicated_documents(two_workers):
    out, stats = two_workers
    manifest = read_manifest(out)
    assert list(verify_shards(out, manifest)) == []
    assert len(manifest.shards) == stats["tokenize"]["shards"] > 1
    assert sum(s.docs for s in manifest.shards) == stats["dedup"]["kept"]["docs"]
    removed = set(pq.read_table(out / "dedup" / "removed.parquet")["id"].to_pylist())
    ids = [
        i
        for s in manifest.shards
        for i in pa.ipc.open_file(out / s.name).read_all()["id"].to_pylist()
    ]
    assert not removed & set(ids)
    assert len(ids) == len(set(ids)) == stats["dedup"]["kept"]["docs"]


def test_a_tokenizer_trained_in_the_run_learns_from_the_deduplicated_documents(
    two_workers, tmp_path
):
    out, stats = two_workers
    config = load_config(overrides=TOKENIZE).tokenizer
    tokenizer, counts = train_tokenizer(Corpus([str(out)]), config)
    save_tokenizer(tokenizer, tmp_path / "tokenizer.json")
    assert (tmp_path / "tokenizer.json").read_bytes() == (out / "tokenizer.json").read_bytes()
    assert stats["tokenize"]["train"]["docs"] == stats["dedup"]["kept"]["docs"] == counts["docs"]


def test_a_given_tokenizer_loads_while_dedup_runs_and_gives_the_shards_of_training_it(
    two_workers, tmp_path
):
    out, _ = two_workers
    config = load_config(
        overrides={
            "inputs": INPUTS,
            "out": str(tmp_path / "out"),
            "read.split_bytes": SPLIT_BYTES,
            "tokenizer.path": str(out / "tokenizer.json"),
            "shards.tokens_per_shard": TOKENIZE["shards.tokens_per_shard"],
        }
    )
    with dask_client("", 2) as client, get_task_stream(client) as tasks:
        stats = run_pipeline(config, client=client)
    started: dict[str, float] = {}
    for task in tasks.data:
        name = task["key"].partition("-")[0]
        start = min(span["start"] for span in task["startstops"] if span["action"] == "compute")
        started[name] = min(started.get(name, start), start)
    assert started["_verified_encoder"] < started["write_removed"]  # before dedup's last task
    assert stats["tokenize"]["train"] is None
    shards = lambda run: {p.name: p.read_bytes() for p in run.glob("shard-*.arrow")}  # noqa: E731
    assert shards(tmp_path / "out") == shards(out)
    assert (tmp_path / "out" / "index.json").read_bytes() == (out / "index.json").read_bytes()


def test_a_jsonl_corpus_with_nested_fields_and_an_existing_tokenizer(two_workers, tmp_path, capsys):
    """The use of configs/jsonl-existing-tokenizer.toml, on the sample's articles as JSONL."""
    read = load_config([REPO / "configs" / "jsonl-existing-tokenizer.toml"]).read
    texts = {r["url"]: r["text"] for r in pq.read_table(two_workers[0] / "clean").to_pylist()}
    articles = [url for url, doc in LABELS.items() if doc["kind"] == "article" and url in texts]
    corpus = tmp_path / "corpus.jsonl"
    lines = [
        json.dumps({"content": texts[url], "meta": {"url": url, "id": i}}) + "\n"
        for i, url in enumerate(articles[:40])
    ]
    corpus.write_text("".join(lines))
    tokenizer = tmp_path / "tokenizer.json"
    train = ["train-tokenizer", str(corpus), "--out", str(tokenizer), "--vocab-size", "512"]
    assert main([*train, "--read-text-key", read.text_key]) == 0
    out = tmp_path / "out"
    flags = ["--read-text-key", read.text_key, "--read-url-key", read.url_key]
    flags += ["--read-id-key", read.id_key, "--tokenizer", str(tokenizer), "--workers", "1"]
    assert main(["run", str(corpus), "--out", str(out), *flags]) == 0, capsys.readouterr().err
    docs = pq.read_table(out / "clean").to_pylist()
    assert [d["url"] for d in docs] == articles[:40]
    assert [json.loads(d["meta"])["id"] for d in docs] == list(range(40))
    manifest = read_manifest(out)
    assert manifest.vocab_size == 512
    removed = pq.read_table(out / "dedup" / "removed.parquet").num_rows
    assert sum(s.docs for s in manifest.shards) == 40 - removed
