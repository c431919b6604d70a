"""transformers loads the tokenizer of a run and of `train-tokenizer` from its folder, with its
special tokens, and encodes each document to the ids its shards hold."""

from __future__ import annotations

import argparse
import json
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import transformers
from test_tokenizer_train import JSONL, sample_documents, write_run
from tokenizers import Tokenizer, processors

from corpusmill.cli import train_tokenizer as train_command
from corpusmill.loader.format import open_shard, read_manifest
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.tokenize import run_tokenize
from corpusmill.tokenizer.config import ShardsConfig, TokenizerConfig
from corpusmill.tokenizer.encode import load_encoder
from corpusmill.tokenizer.train import save_tokenizer

SPECIAL = ("<|endoftext|>", "<|pad|>")
TRAIN = TokenizerConfig(train=True, vocab_size=600, special_tokens=SPECIAL)
# Texts where transformers could part from the shards: special tokens' strings inside a page,
# decomposed accents (NFC), spaces before punctuation (clean-up on decoding), scripts without
# spaces, emoji with joiners, whitespace runs.
TRICKY = [
    "A page that quotes <|endoftext|> and <|pad|>, mid-sentence<|endoftext|>too.",
    "cafe\u0301, e\u0301te\u0301 and A\u030a: decomposed accents , spaced punctuation .",
    "中文分词测试，这是一个句子。日本語のテキストです。한국어 문장입니다.",
    "Привет, мир! Ελληνικά κείμενα. مرحبا بالعالم. नमस्ते दुनिया।",
    "👍🏽 👨\u200d👩\u200d👧\u200d👦 🇫🇷  two  spaces\n\n\ttab and trailing   ",
]


@pytest.fixture(scope="module")
def client():
    with dask_client("", 2) as client:
        yield client


@pytest.fixture(scope="module")
def run(tmp_path_factory, client) -> Path:
    """A run folder of the sample JSONL's documents, then TRICKY, in three clean parts, tokenized
    with a tokenizer trained in the run, in shards of about 100k tokens."""
    docs = sample_documents()
    tricky = pa.table({"id": [f"tricky.txt#{n}" for n in range(len(TRICKY))], "text": TRICKY})
    parts = [docs.slice(0, 60), docs.slice(60), tricky]
    out = write_run(tmp_path_factory.mktemp("run") / "out", parts)
    run_tokenize(out, TRAIN, ShardsConfig(tokens_per_shard=100_000), client)
    return out


def shard_documents(out: Path) -> dict[str, list[int]]:
    """Each document's token ids in the run's shards, by id, in manifest order."""
    documents = {}
    for shard in read_manifest(out).shards:
        table = open_shard(out / shard.name).read_all()
        documents.update(zip(table["id"].to_pylist(), table["tokens"].to_pylist(), strict=True))
    return documents


def documents(out: Path) -> dict[str, str]:
    """Each kept document's text, by id."""
    table = pa.concat_tables(
        pq.read_table(part, columns=["id", "text"])
        for part in sorted(out.glob("clean/part-*.parquet"))
    )
    return dict(zip(table["id"].to_pylist(), table["text"].to_pylist(), strict=True))


def auto_tokenizer(folder: Path) -> transformers.PreTrainedTokenizerFast:
    return transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)


def test_a_runs_folder_loads_with_its_end_of_text_and_special_tokens_and_no_bos(run):
    tokenizer = auto_tokenizer(run)
    manifest = read_manifest(run)
    assert isinstance(tokenizer, transformers.PreTrainedTokenizerFast)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|endoftext|>", manifest.eos_id)
    assert sorted(tokenizer.all_special_tokens) == sorted(SPECIAL)
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL)) == [0, 1]
    assert (tokenizer.bos_token, tokenizer.pad_token, tokenizer.unk_token) == (None, None, None)
    assert tokenizer.model_max_length == 2048
    assert len(tokenizer) == manifest.vocab_size == 600
    assert tokenizer("")["input_ids"] == []


def test_transformers_gives_every_document_the_ids_of_its_shards_without_their_eos(run):
    tokenizer = auto_tokenizer(run)
    texts = documents(run)
    shards = shard_documents(run)
    assert list(shards) == list(texts)
    assert len(texts) == 100 + len(TRICKY)
    eos = read_manifest(run).eos_id
    for doc_id, tokens in shards.items():
        assert tokenizer(texts[doc_id])["input_ids"] + [eos] == tokens, doc_id


def test_decoding_a_documents_ids_gives_back_its_nfc_text(run):
    tokenizer = auto_tokenizer(run)
    texts = documents(run)
    for doc_id, tokens in shard_documents(run).items():
        assert tokenizer.decode(tokens[:-1]) == unicodedata.normalize("NFC", texts[doc_id])
        assert tokenizer.decode(tokens, skip_special_tokens=True) == tokenizer.decode(tokens[:-1])
    assert tokenizer.decode([0, 1]) == "<|endoftext|><|pad|>"


def test_the_files_for_transformers_say_exactly_what_it_needs(run):
    config = json.loads((run / "tokenizer_config.json").read_text())
    token = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    assert config == {
        "added_tokens_decoder": {
            "0": {"content": "<|endoftext|>", **token, "special": True},
            "1": {"content": "<|pad|>", **token, "special": True},
        },
        "additional_special_tokens": ["<|pad|>"],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "model_max_length": 2048,
        "pad_token": None,
        "split_special_tokens": True,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }
    assert json.loads((run / "special_tokens_map.json").read_text()) == {
        "additional_special_tokens": ["<|pad|>"],
        "eos_token": "<|endoftext|>",
    }
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        text = (run / name).read_text()
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_a_run_with_a_given_tokenizer_writes_the_same_files_and_a_rerun_restores_them(
    run, client, tmp_path: Path
):
    other = write_run(tmp_path / "other", [pa.table({"id": ["a#0"], "text": ["Some words."]})])
    given = TokenizerConfig(path=str(run / "tokenizer.json"))
    run_tokenize(other, given, ShardsConfig(), client)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        assert (other / name).read_bytes() == (run / name).read_bytes()
    (other / "tokenizer_config.json").unlink()
    before = (other / "special_tokens_map.json").stat().st_mtime_ns
    run_tokenize(other, given, ShardsConfig(), client)
    assert (other / "tokenizer_config.json").read_bytes() == (
        run / "tokenizer_config.json"
    ).read_bytes()
    assert (other / "special_tokens_map.json").stat().st_mtime_ns == before


def test_a_given_tokenizer_that_adds_a_bos_keeps_it_and_gives_the_shards_ids_without_it(
    run, client, tmp_path: Path
):
    """transformers applies the post-processor of a tokenizer.json whatever tokenizer_config.json
    says, so only add_special_tokens=False leaves out the BOS a given tokenizer adds."""
    tokenizer = Tokenizer.from_file(str(run / "tokenizer.json"))
    tokenizer.add_special_tokens(["<|begin_of_text|>"])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 600)]
    )
    save_tokenizer(tokenizer, tmp_path / "given.json")
    assert tokenizer.encode("Hi").ids[0] == 600
    other = write_run(tmp_path / "other", [pa.table({"id": ["a#0", "a#1"], "text": TRICKY[:2]})])
    run_tokenize(other, TokenizerConfig(path=str(tmp_path / "given.json")), ShardsConfig(), client)
    loaded = auto_tokenizer(other)
    assert sorted(loaded.all_special_tokens) == sorted([*SPECIAL, "<|begin_of_text|>"])
    shards = shard_documents(other)
    for doc_id, text in documents(other).items():
        assert loaded(text, add_special_tokens=False)["input_ids"] + [0] == shards[doc_id]
        assert loaded(text)["input_ids"] == [600, *shards[doc_id][:-1]]


def train_tokenizer_command(out: Path, *flags: str) -> None:
    parser = argparse.ArgumentParser()
    train_command.add_parser(parser.add_subparsers(), parents=[])
    args = parser.parse_args(["train-tokenizer", str(JSONL), "--out", str(out), *flags])
    assert args.handler(args) == 0


def test_train_tokenizer_writes_a_folder_auto_tokenizer_loads_to_encode_as_the_stage_does(
    tmp_path: Path,
):
    out = tmp_path / "tok" / "tokenizer.json"
    flags = ["--vocab-size", "500", "--special-tokens", "<|endoftext|>", "<|sep|>", "<|pad|>"]
    train_tokenizer_command(out, *flags, "--model-max-length", "512")
    tokenizer = auto_tokenizer(out.parent)
    assert tokenizer.eos_token == "<|endoftext|>"
    assert sorted(tokenizer.all_special_tokens) == ["<|endoftext|>", "<|pad|>", "<|sep|>"]
    assert json.loads((out.parent / "special_tokens_map.json").read_text()) == {
        "additional_special_tokens": ["<|sep|>", "<|pad|>"],
        "eos_token": "<|endoftext|>",
    }
    assert tokenizer.model_max_length == 512
    assert tokenizer.pad_token is None
    encoder = load_encoder(out)
    for text, ids in zip(TRICKY, encoder.encode(TRICKY), strict=True):
        assert tokenizer(text)["input_ids"] == ids.tolist()
        assert tokenizer.decode(ids) == unicodedata.normalize("NFC", text)


def test_train_tokenizer_under_another_name_writes_only_that_file(tmp_path: Path):
    out = tmp_path / "mytok.json"
    train_tokenizer_command(out, "--vocab-size", "400")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mytok.json"]
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(out))
    text = "The 2024 report, in 中文 and English."
    assert fast(text)["input_ids"] == Tokenizer.from_file(str(out)).encode(text).ids
