"""`corpusmill refilter`: new thresholds decided from the stored signals give the run that reading
the crawl again with them gives, byte for byte; other changes are refused; the signals are those
of every document that reached the filters."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from kill_at import KILLED, MOMENTS, run_killed_at

from corpusmill.cli.main import main
from corpusmill.core.errors import ConfigError, StageError
from corpusmill.pipeline.clean import run_clean
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.filters.base import TERMINAL_PUNCTUATION
from corpusmill.pipeline.readers import discover_inputs
from corpusmill.pipeline.refilter import refilter_run, refilterable
from corpusmill.pipeline.run import run_pipeline
from corpusmill.pipeline.schema import unpaired_texts
from corpusmill.pipeline.words import split_words

REPO = Path(__file__).resolve().parents[1]
CORPUSMILL = Path(sys.executable).with_name("corpusmill")
SAMPLE = REPO / "sample_data"
INPUTS = tuple(str(p) for p in sorted(SAMPLE.glob("*.gz")) + sorted(SAMPLE.glob("*.zst")))
BASE = {
    "inputs": INPUTS,
    "read.split_bytes": 256 << 10,
    "tokenizer.train": True,
    "tokenizer.vocab_size": 1024,
    "shards.tokens_per_shard": 250_000,
}
# Thresholds B: looser for some rules, stricter for others, of families before and after C4,
# which edits texts, and a bound on the compression ratio.
THRESHOLDS_B = """\
[filters.language]
min_score = 0.8

[filters.gopher_quality]
min_words = 120
min_stop_words = 1

[filters.compression]
max_ratio = 4.5

[filters.c4]
min_sentences = 2

[filters.fineweb]
line_punct_thr = 0.3
"""
B = {
    "filters.language.min_score": 0.8,
    "filters.gopher_quality.min_words": 120,
    "filters.gopher_quality.min_stop_words": 1,
    "filters.compression.max_ratio": 4.5,
    "filters.c4.min_sentences": 2,
    "filters.fineweb.line_punct_thr": 0.3,
}


def run(client, out: Path, **overrides) -> dict:
    config = load_config(overrides={**BASE, "out": str(out), **overrides})
    return run_pipeline(config, client=client)


def files(out: Path, *folders: str) -> dict[str, bytes]:
    """The files of `folders` of a run, by path relative to it."""
    paths = [p for folder in folders for p in (out / folder).iterdir() if p.is_file()]
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(paths)}


def results(out: Path) -> dict[str, bytes]:
    """Every result file of a run: its parts, markers, duplicates, tokenizer and shards."""
    found = files(out, "clean", "clean/_done", "rejected", "signals", "dataset")
    for path in [out / "dedup" / "removed.parquet", out / "tokenizer.json", out / "index.json"]:
        found[path.name] = path.read_bytes()
    found.update({p.name: p.read_bytes() for p in sorted(out.glob("shard-*.arrow"))})
    return found


def without_seconds(stats: dict) -> dict:
    """A run's stats without its timings."""
    return {
        key: without_seconds(value) if isinstance(value, dict) else value
        for key, value in stats.items()
        if key != "seconds"
    }


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def fresh_b(client, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b") / "out"
    run(client, out, **B)
    return out


@pytest.fixture(scope="module")
def run_a(client, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("a") / "out"
    run(client, out)
    return out


def test_refilter_to_new_thresholds_writes_what_a_fresh_run_with_them_writes(
    client, fresh_b, tmp_path_factory
):
    out = tmp_path_factory.mktemp("refiltered") / "out"
    run(client, out)
    before = files(out, "clean", "rejected")
    config_b = out.parent / "b.toml"
    config_b.write_text(THRESHOLDS_B)

    stats = refilter_run(out, [config_b], client=client)

    parts = ("clean", "clean/_done", "rejected", "signals")
    assert files(out, *parts) == files(fresh_b, *parts)
    assert files(out, "clean", "rejected") != before
    assert not (out / "dedup").exists() and not list(out.glob("shard-*.arrow"))
    assert stats["kept"] == json.loads((fresh_b / "stats.json").read_text())["clean"]["kept"]
    # The run of B resumes from the rewritten parts and ends in the shards of a fresh run.
    run(client, out, **B)
    assert results(out) == results(fresh_b)


def test_a_rerun_changing_only_thresholds_decides_from_the_signals_as_a_fresh_run_would(
    run_a, fresh_b, client, tmp_path, caplog
):
    out = tmp_path / "out"
    shutil.copytree(run_a, out)
    with caplog.at_level(logging.INFO, logger="corpusmill.pipeline"):
        stats = run(client, out, **B)
    assert (
        "only filter thresholds changed (filters.c4.min_sentences, filters.compression"
        in caplog.text
    )
    assert "refilter: deciding " in caplog.text
    assert results(out) == results(fresh_b)
    expected = json.loads((fresh_b / "stats.json").read_text())
    assert without_seconds(stats) == without_seconds(expected)
    assert expected["clean"]["rejected"]["compression:repetitive"]["docs"] > 0
    assert not (out / "clean" / "_done" / "refilter.json").exists()


def test_a_refilter_killed_midway_then_a_rerun_of_the_old_config_ends_in_its_parts(
    run_a, client, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    shutil.copytree(run_a, out)
    before = files(out, "clean", "clean/_done", "rejected")
    old = tmp_path / "old.toml"
    shutil.copy(out / "config.toml", old)
    new = tmp_path / "b.toml"
    new.write_text(THRESHOLDS_B)
    monkeypatch.setitem(MOMENTS, "refilter", ("refilter_part", "memory", 1))
    command = [CORPUSMILL, "-q", "refilter", out, "--config", new]
    assert run_killed_at(command, "refilter", tmp_path) == KILLED
    assert (out / "clean" / "_done" / "refilter.json").exists()
    assert files(out, "clean", "clean/_done", "rejected") != before
    run_pipeline(load_config([old], {"out": str(out)}), client=client)
    assert files(out, "clean", "clean/_done", "rejected") == before
    assert (out / "index.json").exists()


def test_a_run_storing_no_signals_writes_the_same_parts_and_refuses_new_thresholds(
    run_a, client, tmp_path, capsys
):
    out = tmp_path / "out"
    run(client, out, **{"filters.store_signals": False})
    assert not (out / "signals").exists()
    parts = ("clean", "clean/_done", "rejected")
    assert files(out, *parts) == files(run_a, *parts)
    thresholds = {"filters.store_signals": False, "filters.c4.min_sentences": 2}
    why = r"changed: filters\.c4\.min_sentences; the run stored no signals to decide new "
    with pytest.raises(ConfigError, match=why + r".*pass --force") as refused:
        run(client, out, **thresholds)
    assert refused.value.exit_code == 2
    config = tmp_path / "b.toml"
    config.write_text(THRESHOLDS_B)
    assert main(["refilter", str(out), "--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert "(filters.store_signals = false); a full run is needed: corpusmill run --force" in error
    assert files(out, *parts) == files(run_a, *parts)


def test_parts_whose_verdicts_do_not_change_are_left_as_they_are(run_a, client):
    before = files(run_a, "clean", "clean/_done", "rejected")
    written = {path: (run_a / path).stat().st_mtime_ns for path in before}
    # min_words 50 -> 49: no document of the sample has 49 words.
    config = run_a.parent / "same.toml"
    config.write_text("[filters.gopher_quality]\nmin_words = 49\n")
    refilter_run(run_a, [config], client=client)
    assert files(run_a, "clean", "clean/_done", "rejected") == before
    assert {path: (run_a / path).stat().st_mtime_ns for path in before} == written
    assert "min_words = 49" in (run_a / "config.toml").read_text()


def test_a_part_keeping_the_same_documents_keeps_its_clean_file_as_a_fresh_run_writes_it(
    run_a, client, tmp_path
):
    out = tmp_path / "out"
    shutil.copytree(run_a, out)
    written = {path.name: path.stat().st_mtime_ns for path in (out / "clean").glob("part-*")}
    # Fewer words allowed: the documents gopher_quality removed for them are removed by a later
    # family instead, in 8 of the sample's 10 parts, and every part keeps what it kept.
    config = tmp_path / "words.toml"
    config.write_text("[filters.gopher_quality]\nmin_words = 20\n")
    refilter_run(out, [config], client=client)
    words = {"filters.gopher_quality.min_words": 20}
    fresh = load_config(overrides={**BASE, "out": str(tmp_path / "fresh"), **words})
    run_clean(fresh, client, discover_inputs(fresh.inputs, fresh.read))

    parts = ("clean", "clean/_done", "rejected", "signals")
    assert files(out, *parts) == files(tmp_path / "fresh", *parts)
    changed = files(out, "rejected").items() - files(run_a, "rejected").items()
    assert len(changed) == 8
    assert {
        path.name: path.stat().st_mtime_ns for path in (out / "clean").glob("part-*")
    } == written


def test_a_change_beyond_thresholds_is_refused_and_leaves_the_run_as_it_was(run_a, client):
    before = files(run_a, "clean", "rejected")
    for toml in (
        "[filters.c4]\nmin_words_per_line = 5\n",
        "[filters.fineweb]\nshort_line_length = 40\n",
        "[filters.gopher_quality]\nenabled = false\n",
        "[pii]\nenabled = true\n",
    ):
        config = run_a.parent / "change.toml"
        config.write_text(toml)
        with pytest.raises(ConfigError, match="a full run is needed") as refused:
            refilter_run(run_a, [config], client=client)
        assert refused.value.exit_code == 2
    assert files(run_a, "clean", "rejected") == before


def test_signals_without_a_family_written_by_an_older_version_are_refused_naming_it(
    run_a, client, tmp_path
):
    out = tmp_path / "out"
    shutil.copytree(run_a, out)
    path = out / "signals" / "part-00000.parquet"
    table = pq.read_table(path)
    signals = table["signals"].combine_chunks()
    groups = [group for group in signals.type if group.name != "compression"]
    older = pa.StructArray.from_arrays([signals.field(g.name) for g in groups], fields=groups)
    pq.write_table(table.set_column(table.num_columns - 1, "signals", older), path)
    config = tmp_path / "b.toml"
    config.write_text(THRESHOLDS_B)
    with pytest.raises(ConfigError, match="the stored signals have none of compression"):
        refilter_run(out, [config], client=client)


def older_layout(path: Path) -> None:
    """Rewrite a signals part as corpusmill wrote them before `texts`: the text as it reached
    the filters in `text`, as they left it in `edited`."""
    table = pq.read_table(path)
    reached, edited = unpaired_texts(table["texts"].combine_chunks())
    signals = table["signals"]
    table = table.drop_columns(["texts", "signals"]).add_column(1, "text", reached)
    pq.write_table(table.append_column("edited", edited).append_column("signals", signals), path)


@pytest.mark.parametrize(
    ("change", "has"),
    [(older_layout, "columns text, edited and no texts"), ("url", "no url")],
    ids=["text-and-edited", "a-column-dropped"],
)
def test_signals_of_an_older_layout_are_refused_in_one_line_by_refilter_and_by_a_rerun(
    run_a, tmp_path, capsys, change, has
):
    out = tmp_path / "out"
    shutil.copytree(run_a, out)
    path = out / "signals" / "part-00000.parquet"
    if callable(change):
        change(path)
    else:
        pq.write_table(pq.read_table(path).drop_columns([change]), path)
    before = files(out, "clean", "clean/_done", "rejected", "signals")
    config = tmp_path / "b.toml"
    config.write_text(THRESHOLDS_B)
    why = (
        "signals/part-00000.parquet was written by an older layout of the stored signals "
        f"(it has {has})"
    )

    assert main(["refilter", str(out), "--config", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith(f"{out}: {why}; a full run is needed: corpusmill run --force")
    assert len(error.splitlines()) == 1
    assert main(["run", str(out / "config.toml"), str(config), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert why in error and error.endswith("or pass --force to delete that output and start again")
    assert len(error.splitlines()) == 1
    assert files(out, "clean", "clean/_done", "rejected", "signals") == before


def test_a_damaged_signals_part_fails_refilter_and_a_rerun_with_exit_1_naming_it(
    run_a, client, tmp_path, capsys
):
    out = tmp_path / "out"
    shutil.copytree(run_a, out)
    config = tmp_path / "b.toml"
    config.write_text(THRESHOLDS_B)
    first, later = (out / "signals" / f"part-0000{index}.parquet" for index in (0, 1))
    with first.open("r+b") as cut:
        cut.truncate(first.stat().st_size // 2)
    damaged = f"{first} is damaged (Parquet magic bytes not found in footer"

    assert main(["refilter", str(out), "--config", str(config)]) == 1
    assert damaged in capsys.readouterr().err
    assert main(["run", str(out / "config.toml"), str(config), "--out", str(out)]) == 1
    assert damaged in capsys.readouterr().err

    # A part past the first, whose footer only its task reads, fails that task the same way.
    shutil.copy(run_a / "signals" / first.name, first)
    with later.open("r+b") as cut:
        cut.truncate(later.stat().st_size // 2)
    with pytest.raises(StageError, match=f"part-00001: StageError: {later} is damaged") as failed:
        refilter_run(out, [config], client=client)
    assert failed.value.exit_code == 1


def test_only_the_thresholds_of_built_in_families_are_refilterable():
    assert refilterable("filters.gopher_quality.min_words")
    assert refilterable("filters.c4.min_sentences")
    assert refilterable("filters.language.languages")
    assert not refilterable("filters.c4.min_words_per_line")
    assert not refilterable("filters.gopher_repetition.spaceless_chars_per_word")
    assert not refilterable("filters.fineweb.enabled")
    assert not refilterable("filters.custom")
    assert not refilterable("langid.model")


def test_signals_are_stored_for_kept_and_rejected_documents_and_are_their_statistics(run_a):
    measured = pq.read_table(run_a / "signals" / "part-00000.parquet")
    clean = pq.read_table(run_a / "clean" / "part-00000.parquet")
    kept = dict(zip(clean["id"].to_pylist(), clean["text"].to_pylist(), strict=True))
    rejected = pq.read_table(run_a / "rejected" / "part-00000.parquet")
    by_filters = {
        doc_id
        for doc_id, step in zip(
            rejected["id"].to_pylist(), rejected["step"].to_pylist(), strict=True
        )
        if step
        in ("language", "gopher_repetition", "gopher_quality", "compression", "c4", "fineweb")
    }
    ids = measured["id"].to_pylist()
    assert kept and by_filters and set(ids) == kept.keys() | by_filters
    rows = measured.to_pylist()
    # Each text as it reached the filters, then as C4 left it where that differs.
    assert {len(row["texts"]) for row in rows} == {1, 2}
    assert all(row["texts"][0] != row["texts"][-1] for row in rows if len(row["texts"]) == 2)
    assert all(row["texts"][-1] == kept[row["id"]] for row in rows if row["id"] in kept)
    for row in [rows[0], rows[len(rows) // 2], rows[-1]]:
        (text, *_), signals = row["texts"], row["signals"]
        data = text.encode()
        lines = [line for line in text.split("\n") if line]
        document = signals["document"]
        assert document["chars"] == len(text)
        assert document["lines"] == len(lines)
        assert document["words"] == sum(map(len, split_words(pa.array(lines)).to_pylist()))
        compressed = len(zstandard.ZstdCompressor(level=3).compress(data))
        assert document["compression_ratio"] == len(data) / compressed
        assert signals["language"] == {"lang": row["lang"], "score": np.float32(row["lang_score"])}
        assert signals["gopher_quality"]["words"] == document["words"]
        edited = row["texts"][-1]
        edited_lines = [line for line in edited.split("\n") if line]
        punctuated = sum(line[-1] in TERMINAL_PUNCTUATION for line in edited_lines)
        assert signals["fineweb"]["line_punct_ratio"] == punctuated / len(edited_lines)


def test_refilter_of_a_run_on_an_object_store_writes_what_a_fresh_run_writes(
    run_a, fresh_b, client, s3_bucket
):
    s3_bucket.fs.put(str(run_a), f"{s3_bucket.path}/run", recursive=True)
    remote = s3_bucket / "run"
    config_b = run_a.parent / "b.toml"
    config_b.write_text(THRESHOLDS_B)
    refilter_run(remote, [config_b], client=client)
    local = run_a.parent / "fetched"
    s3_bucket.fs.get(f"{s3_bucket.path}/run", str(local), recursive=True)
    parts = ("clean", "clean/_done", "rejected")
    assert files(local, *parts) == files(fresh_b, *parts)


def test_the_command_refuses_a_change_beyond_thresholds_with_exit_2(run_a, capsys):
    config = run_a.parent / "lines.toml"
    config.write_text("[filters.c4]\nmin_words_per_line = 5\n")
    assert main(["refilter", str(run_a), "--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert "filters.c4.min_words_per_line" in error and "a full run is needed" in error


def test_the_command_refilters_and_names_the_run_that_finishes_the_job(run_a, capsys):
    config = run_a.parent / "same.toml"
    config.write_text("[filters.gopher_quality]\nmin_words = 49\n")
    assert main(["refilter", str(run_a), "--config", str(config)]) == 0
    kept = json.loads((run_a / "stats.json").read_text())["clean"]["kept"]["docs"]
    printed = capsys.readouterr().out
    assert f"{kept} kept" in printed
    assert f"corpusmill run {run_a / 'config.toml'}" in printed
