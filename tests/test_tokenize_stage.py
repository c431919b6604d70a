"""The tokenize stage on Dask over the sample crawl's clean output: shards, manifest, determinism,
resuming, and the `inspect` command."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_tokenizer_train import LABELS, SAMPLE_INPUTS, write_dedup_removals, write_run
from tokenizers import Tokenizer

from corpusmill.cli import inspect as inspect_command
from corpusmill.cli.main import main
from corpusmill.core.checksums import file_checksum
from corpusmill.core.errors import StageError
from corpusmill.loader.format import open_shard, read_manifest, verify_shards
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.clean import run_clean
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.corpus import Corpus
from corpusmill.pipeline.readers import discover_inputs
from corpusmill.pipeline.tokenize import run_tokenize, tokenize
from corpusmill.pipeline.tokenizer_setup import set_up_tokenizer
from corpusmill.tokenizer.config import ShardsConfig, TokenizerConfig
from corpusmill.tokenizer.encode import TokenizerFileError
from corpusmill.tokenizer.train import save_tokenizer, train_tokenizer

TRAIN = TokenizerConfig(train=True, vocab_size=2000)
SHARDS = ShardsConfig(tokens_per_shard=400_000)


@pytest.fixture(scope="module")
def client():
    with dask_client("", 2) as client:
        yield client


@pytest.fixture(scope="module")
def run(tmp_path_factory, client) -> tuple[Path, dict, list[str]]:
    """The sample crawl cleaned, its exact duplicates removed as dedup would, then tokenized."""
    out = tmp_path_factory.mktemp("run") / "out"
    config = load_config(
        overrides={"inputs": tuple(SAMPLE_INPUTS), "out": str(out), "read.split_bytes": 256 << 10}
    )
    run_clean(config, client, discover_inputs(config.inputs, config.read))
    clean = pq.read_table(out / "clean", columns=["id", "url"])
    removed = [
        i
        for i, url in zip(*clean.to_pydict().values(), strict=True)
        if LABELS[url]["kind"] == "exact_dup"
    ]
    write_dedup_removals(out, removed)
    stats = run_tokenize(out, TRAIN, SHARDS, client)
    return out, stats, removed


def shard_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("shard-*.arrow"))}


def test_shards_hold_every_kept_document_in_input_order_with_eos_and_source_bytes(run):
    out, stats, removed = run
    clean = pq.read_table(out / "clean", columns=["id", "text"])
    kept = clean.filter(pc.invert(pc.is_in(clean["id"], pa.array(removed))))
    shards = pa.concat_tables(
        open_shard(path).read_all() for path in sorted(out.glob("shard-*.arrow"))
    )
    exact_dups = sum(doc["kind"] == "exact_dup" for doc in LABELS.values())
    assert stats["removed_by_dedup"] == len(removed) == exact_dups > 0
    assert shards["id"].to_pylist() == kept["id"].to_pylist()
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    for tokens, text, num_bytes in zip(
        shards["tokens"].to_pylist(),
        kept["text"].to_pylist(),
        shards["num_bytes"].to_pylist(),
        strict=False,
    ):
        assert tokens[-1] == 0 and 0 not in tokens[:-1]
        assert tokenizer.decode(tokens[:-1]) == text
        assert num_bytes == len(text.encode())
    assert stats["backend"] == "tiktoken"
    assert stats["train"]["docs"] == kept.num_rows


def test_manifest_describes_the_tokenizer_and_every_shard(run):
    out, stats, _ = run
    manifest = read_manifest(out)
    assert manifest.tokenizer == "tokenizer.json"
    assert manifest.tokenizer_xxh3 == file_checksum(out / "tokenizer.json")
    assert (manifest.vocab_size, manifest.token_dtype, manifest.eos_id) == (2000, "uint16", 0)
    assert [s.name for s in manifest.shards] == [
        f"shard-{i:05d}.arrow" for i in range(len(manifest.shards))
    ]
    assert len(manifest.shards) == stats["shards"] > 2
    assert all(s.tokens < 2 * SHARDS.tokens_per_shard for s in manifest.shards)
    assert list(verify_shards(out, manifest)) == []
    totals = manifest.totals()
    assert {k: stats[k] for k in totals} == totals
    assert not list((out / "tokenize").glob("*.arrow"))  # the encoded parts are gone


def test_trained_tokenizer_is_the_one_train_tokenizer_makes_from_the_run(run, tmp_path: Path):
    out, _, _ = run
    tokenizer, _ = train_tokenizer(Corpus([str(out)]), TRAIN)
    save_tokenizer(tokenizer, tmp_path / "tokenizer.json")
    assert (tmp_path / "tokenizer.json").read_bytes() == (out / "tokenizer.json").read_bytes()


def test_shards_and_manifest_are_byte_identical_whatever_the_partitioning_and_workers(
    run, tmp_path: Path
):
    out, _, removed = run
    docs = pq.read_table(out / "clean", columns=["id", "text"])
    parts = [docs.slice(0, 5), docs.slice(5, 200), docs.slice(205)]
    other = write_run(tmp_path / "other", parts, removed=removed)
    config = TokenizerConfig(path=str(out / "tokenizer.json"))
    with dask_client("", 1) as one_worker:
        run_tokenize(other, config, SHARDS, one_worker)
    assert shard_files(other) == shard_files(out)
    assert (other / "index.json").read_bytes() == (out / "index.json").read_bytes()


def test_a_tokenizer_set_up_while_dedup_runs_gives_the_same_shards(run, client, tmp_path):
    out, _, removed = run
    docs = pq.read_table(out / "clean", columns=["id", "text"])
    layout = RunLayout(write_run(tmp_path / "other", [docs]))
    config = TokenizerConfig(path=str(out / "tokenizer.json"))
    tokenizer = set_up_tokenizer(layout, config, SHARDS, client)
    assert tokenizer is not None and tokenizer.encoder is not None
    write_dedup_removals(layout.root, removed)  # dedup ends while the encoder loads
    tokenize(layout, tokenizer, SHARDS, client)
    assert shard_files(layout.root) == shard_files(out)
    assert (layout.root / "index.json").read_bytes() == (out / "index.json").read_bytes()
    # A finished manifest needs no encoder; without a tokenizer there is nothing to set up.
    again = set_up_tokenizer(layout, config, SHARDS, client)
    assert again is not None and again.encoder is None
    assert again.finished == read_manifest(out)
    assert set_up_tokenizer(layout, TokenizerConfig(), SHARDS, client) is None


def test_a_file_that_is_not_a_tokenizer_exits_2_naming_it_before_any_cleaning(
    run, tmp_path: Path, capsys
):
    out, _, _ = run
    other = write_run(tmp_path / "other", [pq.read_table(out / "clean", columns=["id", "text"])])
    (tmp_path / "broken.json").write_text('{"model": ')
    with dask_client("", 1) as one_worker, pytest.raises(TokenizerFileError, match="broken"):
        config = TokenizerConfig(path=str(tmp_path / "broken.json"))
        run_tokenize(other, config, SHARDS, one_worker)
    argv = ["run", *SAMPLE_INPUTS, "--out", str(tmp_path / "cli"), "--workers", "1"]
    assert main([*argv, "--tokenizer", str(tmp_path / "broken.json")]) == 2
    assert "broken.json is not a tokenizer HF tokenizers can load" in capsys.readouterr().err
    assert not (tmp_path / "cli" / "clean").exists()  # found before any cleaning
    assert main([*argv, "--tokenizer", str(tmp_path / "missing.json")]) == 2
    assert "missing.json is not a tokenizer" in capsys.readouterr().err


def test_a_rerun_rewrites_only_a_lost_shard_and_the_same_manifest(run, client, tmp_path: Path):
    out, _, _ = run
    copy = shutil.copytree(out, tmp_path / "copy", symlinks=True)
    before = {p.name: p.stat().st_mtime_ns for p in copy.glob("shard-*.arrow")}
    (copy / "index.json").unlink()
    (copy / "shard-00001.arrow").unlink()
    run_tokenize(copy, TRAIN, SHARDS, client)
    after = {p.name: p.stat().st_mtime_ns for p in copy.glob("shard-*.arrow")}
    assert {name for name in before if after[name] != before[name]} == {"shard-00001.arrow"}
    assert shard_files(copy) == shard_files(out)
    assert (copy / "index.json").read_bytes() == (out / "index.json").read_bytes()


def test_a_finished_stage_is_not_redone(run, client):
    out, stats, _ = run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = run_tokenize(out, TRAIN, SHARDS, client)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert again["tokens"] == stats["tokens"] and again["train"] == stats["train"]


def test_inspect_summarizes_verifies_and_decodes(run, tmp_path: Path, capsys):
    out, stats, _ = run
    copy = shutil.copytree(out, tmp_path / "copy")
    assert inspect([str(copy), "--verify", "--show", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(
        f"{copy}: {stats['shards']} shards, {stats['docs']} documents, {stats['tokens']} tokens "
        "(uint16, vocabulary 2000, EOS 0)"
    )
    assert (
        f"verify: the tokenizer and all {stats['shards']} shards match their checksums" in printed
    )
    first = pq.read_table(out / "clean" / "part-00000.parquet", columns=["id", "text"]).slice(0, 1)
    assert f"--- {first['id'][0]} (" in printed
    assert f"\n{first['text'][0]}<|endoftext|>\n--- " in printed
    shard = copy / "shard-00001.arrow"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert inspect([str(copy), "--verify"]) == 1
    assert f"FAILED {shard}: xxh3 " in capsys.readouterr().out


def test_inspect_exits_2_for_a_folder_without_a_run_and_1_for_a_damaged_manifest(
    run, tmp_path: Path, capsys
):
    assert main(["inspect", str(tmp_path)]) == 2
    assert "holds no tokenized run" in capsys.readouterr().err
    copy = tmp_path / "copy"
    shutil.copytree(run[0], copy)
    (copy / "index.json").write_text('{"format_version": 1}')
    assert main(["inspect", str(copy)]) == 1
    assert "lacks or misnames a field" in capsys.readouterr().err


def test_a_tokenizer_without_the_end_of_text_token_is_a_stage_error(client, tmp_path: Path):
    docs = pa.table({"id": [f"a#{i}" for i in range(20)], "text": ["some words here"] * 20})
    other = write_run(tmp_path / "run", [docs])
    tokenizer, _ = train_tokenizer(
        Corpus([str(other)]), TokenizerConfig(vocab_size=300, special_tokens=("<eos>",))
    )
    save_tokenizer(tokenizer, tmp_path / "eos.json")
    with pytest.raises(
        StageError, match=r"has no token '<\|endoftext\|>'; set tokenizer.special_tokens"
    ):
        run_tokenize(other, TokenizerConfig(path=str(tmp_path / "eos.json")), SHARDS, client)


def test_without_a_tokenizer_path_or_training_the_stage_is_skipped(client, tmp_path: Path):
    assert run_tokenize(tmp_path, TokenizerConfig(), SHARDS, client) == {"skipped": True}
    assert list(tmp_path.iterdir()) == []


def inspect(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    inspect_command.add_parser(parser.add_subparsers(), parents=[])
    args = parser.parse_args(["inspect", *argv])
    return args.handler(args)


def test_stage_stats_are_plain_json(run):
    _, stats, _ = run
    assert json.loads(json.dumps(stats)) == stats
