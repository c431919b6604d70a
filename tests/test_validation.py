"""The validation split: the documents loader/split.py holds out, written by the tokenize stage to
their own shards, listed in the manifest apart, and read by the loader on request."""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from test_tokenizer_train import write_run

from corpusmill.cli import export as export_command
from corpusmill.cli.main import main
from corpusmill.cli.run import summary_table
from corpusmill.loader.dataset import MissingSplitError, TokenDataset
from corpusmill.loader.format import open_shard, read_manifest, verify_shards
from corpusmill.loader.llmc import read_token_file
from corpusmill.loader.split import hash_threshold, id_hashes, in_validation
from corpusmill.loader.stream import TokenStream
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.tokenize import run_tokenize
from corpusmill.report.sample import held_out_split
from corpusmill.tokenizer.config import ShardsConfig, TokenizerConfig

FRACTION = 0.1
SHARDS = ShardsConfig(tokens_per_shard=5_000, validation_fraction=FRACTION)
WORDS = "river stone light paper window garden market silver morning letter engine cloud".split()


def documents(count: int = 400) -> pa.Table:
    """Generated documents of 20 to 300 words, with ids as the readers give them."""
    rng = random.Random(7)
    ids = [f"crawl/{rng.randrange(5)}.warc.gz#{offset * 4096}" for offset in range(count)]
    texts = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randrange(20, 300))) + "."
        for _ in range(count)
    ]
    return pa.table({"id": ids, "text": texts})


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict, pa.Table, list[str]]:
    """Three clean parts of generated documents, some removed as duplicates, tokenized with a
    validation split by two workers."""
    docs = documents()
    removed = docs["id"].to_pylist()[::37]
    out = write_run(
        tmp_path_factory.mktemp("run") / "out",
        [docs.slice(0, 150), docs.slice(150, 100), docs.slice(250)],
        removed=removed,
    )
    with dask_client("", 2) as client:
        stats = run_tokenize(out, TokenizerConfig(train=True, vocab_size=400), SHARDS, client)
    return out, stats, docs, removed


def read_shards(paths: list[Path]) -> pa.Table:
    return pa.concat_tables(open_shard(path).read_all() for path in paths)


def test_validation_shards_hold_the_documents_the_rule_picks_and_train_shards_the_rest(run):
    out, _, docs, removed = run
    kept = [doc_id for doc_id in docs["id"].to_pylist() if doc_id not in set(removed)]
    held = in_validation(kept, FRACTION)
    validation = read_shards(sorted(out.glob("val-*.arrow")))
    train = read_shards(sorted(out.glob("shard-*.arrow")))
    assert validation["id"].to_pylist() == [i for i, h in zip(kept, held, strict=True) if h]
    assert train["id"].to_pylist() == [i for i, h in zip(kept, held, strict=True) if not h]
    assert 0.05 * len(kept) < validation.num_rows < 0.2 * len(kept)
    texts = dict(zip(*docs.to_pydict().values(), strict=True))
    assert validation["num_bytes"].to_pylist() == [
        len(texts[i].encode()) for i in validation["id"].to_pylist()
    ]


def test_the_rule_is_a_hash_threshold_on_the_id_alone():
    ids = documents(2000)["id"].to_pylist()
    hashes = id_hashes(ids)
    assert in_validation(ids, 0.25).tolist() == (hashes < np.uint64(2**62)).tolist()
    assert hash_threshold(0.25) == 2**62 and hash_threshold(0) == 0
    # Held out at a smaller fraction means held out at every larger one.
    assert not (in_validation(ids, 0.05) & ~in_validation(ids, 0.1)).any()
    assert in_validation(ids[::-1], 0.1).tolist() == in_validation(ids, 0.1).tolist()[::-1]


def test_the_manifest_lists_the_validation_split_apart_with_its_totals(run):
    out, stats, _, _ = run
    manifest = read_manifest(out)
    assert manifest.validation_fraction == FRACTION
    assert [s.name for s in manifest.validation] == [
        f"val-{i:05d}.arrow" for i in range(len(manifest.validation))
    ]
    assert len(manifest.shards) > 2 and len(manifest.validation) > 1
    validation = read_shards([out / s.name for s in manifest.validation])
    totals = manifest.totals("validation")
    assert totals["docs"] == validation.num_rows == stats["validation"]["docs"]
    assert totals["num_bytes"] == sum(validation["num_bytes"].to_pylist())
    assert stats["docs"] == manifest.totals()["docs"] == sum(s.docs for s in manifest.shards)
    data = json.loads((out / "index.json").read_text())
    assert data["validation"]["totals"] == stats["validation"]
    assert list(verify_shards(out, manifest)) == []
    assert not list((out / "tokenize").rglob("*.arrow"))  # the encoded parts are gone


def test_both_splits_are_byte_identical_with_one_worker_and_other_parts(run, tmp_path):
    out, _, docs, removed = run
    other = write_run(tmp_path / "other", [docs.slice(0, 3), docs.slice(3)], removed=removed)
    with dask_client("", 1) as client:
        run_tokenize(other, TokenizerConfig(path=str(out / "tokenizer.json")), SHARDS, client)
    names = sorted(p.name for p in out.glob("*.arrow"))
    assert names == sorted(p.name for p in other.glob("*.arrow"))
    for name in [*names, "index.json"]:
        assert (other / name).read_bytes() == (out / name).read_bytes(), name


def test_a_validation_stream_yields_only_validation_tokens(run):
    out, _, _, _ = run
    manifest = read_manifest(out)
    tokens = np.concatenate(
        read_shards([out / s.name for s in manifest.validation])["tokens"].to_numpy(
            zero_copy_only=False
        )
    )
    seq_len = 32
    stream = TokenStream(out, seq_len, 4, shuffle=False, drop_last=False, split="validation")
    rows = np.concatenate(list(stream))
    assert len(rows) == (len(tokens) - 1) // seq_len
    expected = np.stack([tokens[i * seq_len : i * seq_len + seq_len + 1] for i in range(len(rows))])
    assert (rows == expected).all()
    assert TokenDataset(out, split="validation").tokens == manifest.totals("validation")["tokens"]
    assert TokenDataset(out).tokens == manifest.totals()["tokens"]


def test_a_manifest_without_a_validation_split_reads_as_all_training(run, tmp_path):
    out, _, _, _ = run
    old = tmp_path / "old"
    old.mkdir()
    data = json.loads((out / "index.json").read_text())
    del data["validation"]
    (old / "index.json").write_text(json.dumps(data))
    for name in [s["name"] for s in data["shards"]] + ["tokenizer.json"]:
        shutil.copy(out / name, old / name)
    manifest = read_manifest(old)
    assert (manifest.validation, manifest.validation_fraction) == ((), 0.0)
    assert TokenDataset(old).tokens == data["totals"]["tokens"]
    with pytest.raises(MissingSplitError, match="validation_fraction"):
        TokenDataset(old, split="validation")


def test_a_run_config_takes_the_fraction_and_refuses_one_above_a_half():
    config = load_config(overrides={"shards.validation_fraction": 0.02})
    assert config.shards.validation_fraction == 0.02
    assert load_config().shards.validation_fraction == 0
    with pytest.raises(Exception, match="validation_fraction"):
        load_config(overrides={"shards.validation_fraction": 0.6})


def test_llmc_export_writes_the_runs_validation_documents_as_its_validation_files(run, tmp_path):
    out, _, _, _ = run
    parser = argparse.ArgumentParser(prog="corpusmill")
    export_command.add_parser(parser.add_subparsers(), parents=[])
    args = parser.parse_args(["export", str(out), str(tmp_path), "--format", "llmc"])
    assert args.handler(args) == 0
    manifest = read_manifest(out)
    val = read_shards([out / s.name for s in manifest.validation])
    train = read_shards([out / s.name for s in manifest.shards])

    def moved_eos(table: pa.Table) -> list[int]:  # llm.c's files put each EOS first
        return [t for doc in table["tokens"].to_pylist() for t in [doc[-1], *doc[:-1]]]

    files = sorted(tmp_path.glob("*.bin"))
    assert [f.name for f in files] == ["out_train_000001.bin", "out_val_000000.bin"]
    assert read_token_file(files[1]).tolist() == moved_eos(val)
    assert read_token_file(files[0]).tolist() == moved_eos(train)


def test_inspect_names_the_validation_shards_and_their_totals_and_verifies_them(run, capsys):
    out, _, _, _ = run
    manifest = read_manifest(out)
    held = manifest.totals("validation")
    assert main(["inspect", str(out), "--verify"]) == 0
    printed = capsys.readouterr().out
    assert (
        f"\nvalidation: {held['shards']} shards, {held['docs']} documents, {held['tokens']} "
        f"tokens, {held['bytes_per_token']:.3f} bytes/token, held out at fraction {FRACTION}\n"
    ) in printed
    rows = [line.split()[0] for line in printed.splitlines() if line.startswith("val-")]
    assert rows == [shard.name for shard in manifest.validation]
    total = next(line for line in printed.splitlines() if line.startswith("validation total"))
    assert total.split()[2:4] == [str(held["docs"]), str(held["tokens"])]
    shards = len(manifest.shards) + len(manifest.validation)
    assert f"verify: the tokenizer and all {shards} shards match their checksums" in printed


def test_the_runs_summary_gives_the_validation_documents_on_a_line_of_their_own(run):
    _, stats, _, _ = run
    counts = {"docs": 1, "bytes": 10}
    clean = {"read": counts, "rejected": {}, "kept": counts, "files": 1, "tasks": 1, "seconds": 0}
    lines = summary_table({"clean": clean, "tokenize": stats}).splitlines()
    held = stats["validation"]
    assert lines[lines.index("tokenize") + 1 :][:2] == [
        f"  documents  {stats['docs']:>9} {stats['num_bytes'] / 1e6:>9.2f}",
        f"  validation {held['docs']:>9} {held['num_bytes'] / 1e6:>9.2f}",
    ]
    assert f"tokenize: validation split {held['tokens']} tokens in {held['shards']} shards" in lines


def test_the_report_holds_out_the_validation_split(run):
    out, _, _, _ = run
    held, train = held_out_split(out, held_out_bytes=1000, train_bytes=10**9)
    validation = read_shards(sorted(out.glob("val-*.arrow")))
    assert held["id"].to_pylist() == validation["id"].to_pylist()
    assert (
        train["id"].to_pylist() == read_shards(sorted(out.glob("shard-*.arrow")))["id"].to_pylist()
    )


def test_a_rerun_after_losing_a_validation_shard_writes_the_same_bytes(run, tmp_path):
    out, _, _, _ = run
    copy = shutil.copytree(out, tmp_path / "copy")
    before = {path.name: path.read_bytes() for path in copy.glob("*.arrow")}
    (copy / "val-00001.arrow").unlink()
    (copy / "index.json").unlink()
    with dask_client("", 1) as client:
        run_tokenize(copy, TokenizerConfig(path=str(copy / "tokenizer.json")), SHARDS, client)
    assert {path.name: path.read_bytes() for path in copy.glob("*.arrow")} == before
    assert (copy / "index.json").read_bytes() == (out / "index.json").read_bytes()
