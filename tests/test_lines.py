"""The lines stage removes lines repeated across more than lines.max_docs documents (a footer in 30
of 40) from every document and keeps rarer ones (a line in 2); a document of boilerplate only is
dropped and counted; the dataset and the shards no longer hold the footer; its files are the same
bytes with one worker and two, and its counts equal an independent count."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kill_at import KILLED, MOMENTS, run_killed_at
from test_dedup_s3 import modified, objects, upload
from tokenizers import Tokenizer

from corpusmill.core.storage import remove
from corpusmill.loader.format import open_shard
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.corpus import read_kept
from corpusmill.pipeline.dedup.lines import LinesConfig, drop_lines, line_hashes, split_lines
from corpusmill.pipeline.lines import run_lines
from corpusmill.pipeline.readers import InputError
from corpusmill.pipeline.run import run_pipeline
from corpusmill.pipeline.worker_storage import credentials_on_workers

CORPUSMILL = Path(sys.executable).with_name("corpusmill")
DOCS = 40
# The year differs between documents: digits are one digit to the line's hash.
FOOTER = "Copyright (c) {year} Example Corp. All rights reserved. Read our cookie policy."
NAV = "Home | Products | About us | Contact"
RARE = "This page was also mentioned in the spring newsletter of the garden club."
# The document that is boilerplate only.
BOILERPLATE_DOC = 29
WORDS = (
    "tree street city water heat summer shade park river garden school bridge market house "
    "window road light stone field forest music river paper table morning evening winter"
).split()
# Nothing but the line stage removes a document or a line.
NO_FILTERS = {
    f"filters.{family}.enabled": False
    for family in ("language", "gopher_repetition", "gopher_quality", "c4", "fineweb")
}


def document(index: int) -> str:
    """Four lines of words of its own, the nav bar and footer in the first 30 documents, the rare
    line in the first 2; document BOILERPLATE_DOC is its nav bar and footer only."""
    footer = FOOTER.format(year=2020 + index % 5)
    if index == BOILERPLATE_DOC:
        return f"{NAV}\n{footer}"
    rng = random.Random(index)
    body = [" ".join(rng.choice(WORDS) for _ in range(14)) + "." for _ in range(4)]
    lines = ([NAV] if index < 30 else []) + body[:2] + ([RARE] if index < 2 else []) + body[2:]
    return "\n".join(lines + ([footer] if index < 30 else []))


def lines_run(tmp_path: Path, client, **overrides) -> Path:
    """A run of the 40 documents in several clean parts with lines.max_docs = 10."""
    source = tmp_path / "pages.jsonl"
    records = [json.dumps({"id": f"d{i:02d}", "text": document(i)}) for i in range(DOCS)]
    source.write_text("\n".join(records) + "\n")
    out = tmp_path / "out"
    settings = {
        "inputs": (str(source),),
        "out": str(out),
        "read.split_bytes": 2000,
        "dedup.enabled": False,
        "lines.enabled": True,
        "lines.max_docs": 10,
        "tokenizer.train": True,
        "tokenizer.vocab_size": 300,
        **NO_FILTERS,
        **overrides,
    }
    run_pipeline(load_config(overrides=settings), client=client)
    return out


@pytest.fixture(scope="module")
def client():
    with dask_client("", 2) as client:
        yield client


@pytest.fixture(scope="module")
def run(tmp_path_factory, client) -> Path:
    return lines_run(tmp_path_factory.mktemp("lines"), client)


def expected_texts() -> dict[str, str]:
    """Every document's text once the lines in more than 10 documents are gone, counted in plain
    Python with CCNet's normalization (lower case, digits as 0, whitespace collapsed)."""

    def normal(line: str) -> str:
        return " ".join(re.sub(r"\d", "0", line.lower()).split())

    texts = {f"d{i:02d}": document(i) for i in range(DOCS)}
    counts = Counter(
        line for text in texts.values() for line in {normal(x) for x in text.split("\n")} if line
    )
    frequent = {line for line, docs in counts.items() if docs > 10}
    return {
        doc: "\n".join(x for x in text.split("\n") if normal(x) not in frequent).strip()
        for doc, text in texts.items()
    }


def test_a_footer_in_30_documents_goes_from_all_and_a_line_in_2_stays(run):
    dataset = pq.read_table(run / "dataset")
    texts = dict(zip(dataset["source_id"].to_pylist(), dataset["text"].to_pylist(), strict=True))
    assert not any("Example Corp" in text or NAV in text for text in texts.values())
    assert [doc for doc, text in texts.items() if RARE in text] == ["d00", "d01"]
    expected = expected_texts()
    assert texts == {doc: text for doc, text in expected.items() if text}


def test_a_document_of_boilerplate_only_is_dropped_and_counted(run):
    stats = json.loads((run / "stats.json").read_text())["lines"]
    ids = pq.read_table(run / "dataset", columns=["source_id"])["source_id"].to_pylist()
    assert f"d{BOILERPLATE_DOC}" not in ids and len(ids) == DOCS - 1
    boilerplate = len(document(BOILERPLATE_DOC).encode())
    assert stats["emptied"] == {"docs": 1, "bytes": boilerplate}


def test_the_stats_count_what_an_independent_count_removes(run):
    stats = json.loads((run / "stats.json").read_text())["lines"]
    originals = {f"d{i:02d}": document(i) for i in range(DOCS)}
    expected = expected_texts()
    removed_bytes = sum(len(originals[d].encode()) - len(expected[d].encode()) for d in originals)
    assert stats["removed"] == {"lines": 30 * 2, "bytes": removed_bytes}
    assert (stats["docs"], stats["bytes"]) == (
        DOCS,
        sum(len(t.encode()) for t in originals.values()),
    )
    kept = [text.encode() for text in expected.values() if text]
    assert stats["kept"] == {"docs": DOCS - 1, "bytes": sum(map(len, kept))}
    assert stats["frequent"] == 2
    footers = [FOOTER.format(year=2020 + i % 5) for i in range(DOCS)]
    assert [top["docs"] for top in stats["top"]] == [30, 30]
    assert {top["line"] for top in stats["top"]} == {NAV, footers[0]}


def test_the_shards_hold_the_documents_without_the_footer(run):
    tokenizer = Tokenizer.from_file(str(run / "tokenizer.json"))
    shards = pa.concat_tables(open_shard(p).read_all() for p in sorted(run.glob("shard-*.arrow")))
    decoded = [tokenizer.decode(tokens[:-1]) for tokens in shards["tokens"].to_pylist()]
    dataset = pq.read_table(run / "dataset", columns=["id", "source_id"])
    source = dict(zip(dataset["id"].to_pylist(), dataset["source_id"].to_pylist(), strict=True))
    expected = expected_texts()
    assert decoded == [expected[source[doc]] for doc in shards["id"].to_pylist()]
    assert not any("Example Corp" in text for text in decoded)


def test_the_lines_files_and_outputs_are_the_same_bytes_with_one_worker_and_two(run, tmp_path):
    with dask_client("", 1) as one:
        alone = lines_run(tmp_path, one)
    for folder in ("lines", "dataset"):
        names = files_under(run, folder)
        assert names == files_under(alone, folder) and names
        for name in names:
            assert (run / name).read_bytes() == (alone / name).read_bytes(), name
    assert (
        json.loads((run / "stats.json").read_text())["lines"]
        == json.loads((alone / "stats.json").read_text())["lines"]
    )


def files_under(out: Path, folder: str) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in (out / folder).rglob("*") if p.is_file())


def test_read_kept_takes_other_columns_without_the_emptied_document(run):
    layout = RunLayout(run)
    parts = layout.clean_parts()
    ids = [doc for part in parts for doc in read_kept(layout, part, ["id"])["id"].to_pylist()]
    dataset = pq.read_table(run / "dataset", columns=["id"])["id"].to_pylist()
    assert len(parts) > 1 and ids == dataset and len(ids) == DOCS - 1


def test_lines_differing_only_in_digits_case_and_spacing_hash_alike():
    lines = pa.array(["Call 0800 123", "call  9999 999 ", "Call 0800 124 now", "   "])
    hashes, blank = line_hashes(lines)
    assert hashes[0] == hashes[1] != hashes[2]
    assert blank.tolist() == [False, False, False, True]


def test_dropping_lines_trims_the_blank_lines_left_at_the_ends_but_no_indentation():
    texts = ["Menu\n\nBody text.\n \nFooter", "Body only.", "Menu\n    code()\n\nFooter", "Menu"]
    table = pa.table({"text": texts})
    hashes, _ = line_hashes(split_lines(table["text"]).flatten())
    frequent = np.sort(hashes[[0, 4]])  # "Menu" and "Footer"
    dropped = drop_lines(table, frequent)
    assert dropped.table["text"].to_pylist() == ["Body text.", "Body only.", "    code()"]
    removed = sum(map(len, texts)) - len("Body text.Body only.    code()")
    assert (dropped.lines, dropped.bytes) == (5, removed)
    assert (dropped.emptied, dropped.emptied_bytes) == (1, len("Menu"))


def test_on_an_object_store_the_stage_writes_a_local_runs_bytes_and_resumes(run, client, s3_bucket):
    with credentials_on_workers(client, s3_bucket.options):
        remote = s3_bucket / "run"
        upload(run / "clean", remote / "clean")
        layout = RunLayout(remote)
        config = LinesConfig(enabled=True, max_docs=10)
        stats = run_lines(layout, config, client)
        assert stats == json.loads((run / "stats.json").read_text())["lines"]
        local = {name: run / name for name in files_under(run, "lines")}
        written = objects(remote)
        assert {name for name in written if name.startswith("lines/")} == set(local)
        for name, path in local.items():
            assert written[name].read_bytes() == path.read_bytes(), name
        texts = [read_kept(layout, part)["text"].to_pylist() for part in layout.clean_parts()]
        assert texts == [
            read_kept(RunLayout(run), p)["text"].to_pylist() for p in layout.clean_parts()
        ]

        remove(layout.lines_marker)
        remove(layout.line_hashes(3))
        before = modified(remote / "lines" / "hashes")
        time.sleep(1.1)  # the store's times are in whole seconds: a rewrite must show
        assert run_lines(layout, config, client) == stats
        after = modified(remote / "lines" / "hashes")
        assert {name for name in after if after[name] != before.get(name)} == {"part-00003.arrow"}
        assert (
            layout.line_hashes(3).read_bytes()
            == local["lines/hashes/part-00003.arrow"].read_bytes()
        )


def test_a_lines_stage_that_did_not_finish_is_named_where_documents_are_read(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "lines" / "_done.json").unlink()
    with pytest.raises(InputError, match="lines stage did not finish"):
        read_kept(RunLayout(copy), 0)


def test_kill_9_in_the_lines_stage_then_rerun_gives_the_uninterrupted_output(
    run, tmp_path, monkeypatch
):
    """Killed once the frequent lines are written and their removal is being counted."""
    source = tmp_path / "pages.jsonl"
    records = [json.dumps({"id": f"d{i:02d}", "text": document(i)}) for i in range(DOCS)]
    source.write_text("\n".join(records) + "\n")
    config = tmp_path / "lines.toml"
    settings = {
        "workers": 1,
        "read.split_bytes": 2000,
        "dedup.enabled": False,
        "lines.enabled": True,
        "lines.max_docs": 10,
        **NO_FILTERS,
    }
    config.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items()))
    out = tmp_path / "out"
    command = [CORPUSMILL, "-q", "run", config, source, "--out", out]
    monkeypatch.setitem(MOMENTS, "lines", ("count_dropped", "memory", 1))
    assert run_killed_at(command, "lines", tmp_path) == KILLED
    assert not (out / "lines" / "_done.json").exists()
    subprocess.run([str(part) for part in command], check=True, timeout=300)
    for folder in ("lines", "dataset"):
        assert files_under(out, folder) == files_under(run, folder)
        for name in files_under(run, folder):
            assert (out / name).read_bytes() == (run / name).read_bytes(), name
