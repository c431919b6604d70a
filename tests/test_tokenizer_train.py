"""Tokenizer training: the file it writes, determinism, sampling by bytes, what it reads.

The helpers at the top read the sample crawl's documents and write run output folders (clean
parts, dedup's removed ids); test_tokenizer_encode.py, test_tokenize_stage.py and
test_hf_tokenizer.py use them too.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from corpusmill.cli import train_tokenizer as train_command
from corpusmill.core.errors import UserError
from corpusmill.pipeline.corpus import Corpus
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.shuffle import write_sorted
from corpusmill.pipeline.readers import (
    InputError,
    ReadConfig,
    discover_inputs,
    plan_splits,
    read_split,
)
from corpusmill.pipeline.schema import DOCUMENTS
from corpusmill.tokenizer.config import TokenizerConfig
from corpusmill.tokenizer.convert import byte_level_alphabet
from corpusmill.tokenizer.train import SPLIT_PATTERN, save_tokenizer, train_tokenizer

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
JSONL = SAMPLE / "dump-00000.jsonl.zst"
LABELS = json.loads((SAMPLE / "labels.json").read_text())["documents"]
SAMPLE_INPUTS = [str(p) for p in sorted(SAMPLE.glob("*.gz")) + sorted(SAMPLE.glob("*.zst"))]


def sample_documents(inputs: Sequence[str] = (str(JSONL),)) -> pa.Table:
    """Every document the readers find in sample_data inputs, as read (not cleaned)."""
    config = ReadConfig()
    splits = plan_splits(discover_inputs(inputs, config), config)
    return pa.concat_tables(batch.docs for split in splits for batch in read_split(split, config))


def write_run(out: Path, parts: Sequence[pa.Table], removed: Sequence[str] | None = None) -> Path:
    """A run output folder: `parts` (tables with `id` and `text`) as clean parts and, if given,
    dedup's removed ids with its done marker."""
    (out / "clean").mkdir(parents=True)
    for index, part in enumerate(parts):
        ids = part["id"].to_pylist()
        table = pa.table(
            {
                "id": ids,
                "text": part["text"],
                "url": [None] * len(ids),
                "title": [None] * len(ids),
                "source": [i.rsplit("#", 1)[0] for i in ids],
                "offset": [int(i.rsplit("#", 1)[1]) for i in ids],
                "lang": [None] * len(ids),
                "lang_score": [None] * len(ids),
                "meta": [None] * len(ids),
            },
            schema=DOCUMENTS,
        )
        pq.write_table(table, out / "clean" / f"part-{index:05d}.parquet", compression="zstd")
    if removed is not None:
        write_dedup_removals(out, removed)
    return out


def write_dedup_removals(out: Path, removed: Sequence[str]) -> None:
    """Dedup's output for a run folder as the tokenize stage reads it: per clean part, the keys
    (part << 32 | row) of the documents in `removed`, then the done marker."""
    for part in sorted((out / "clean").glob("part-*.parquet")):
        ids = pq.read_table(part, columns=["id"])["id"]
        rows = np.flatnonzero(pc.is_in(ids, pa.array(list(removed), pa.string())).to_numpy())
        number = int(part.stem.removeprefix("part-"))
        keys = (np.int64(number) << ROW_BITS) + rows
        write_sorted(
            out / "dedup" / "removed" / f"{part.stem}.arrow",
            pa.table({"key": pa.array(keys, pa.int64()), "id": ids.take(pa.array(rows))}),
        )
    (out / "dedup" / "_done.json").write_text("{}\n")


@pytest.fixture(scope="module")
def jsonl_tokenizer(tmp_path_factory) -> tuple[Path, dict]:
    config = TokenizerConfig(vocab_size=1500, special_tokens=("<|endoftext|>", "<|pad|>"))
    tokenizer, stats = train_tokenizer(Corpus([str(JSONL)]), config)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save_tokenizer(tokenizer, path)
    return path, stats


def test_trained_file_loads_unchanged_with_nfc_gpt4_split_and_special_tokens_first(jsonl_tokenizer):
    path, stats = jsonl_tokenizer
    tokenizer = Tokenizer.from_file(str(path))
    assert tokenizer.get_vocab_size() == 1500 == stats["vocab_size"]
    assert tokenizer.token_to_id("<|endoftext|>") == 0
    assert tokenizer.token_to_id("<|pad|>") == 1
    spec = json.loads(path.read_text())
    assert spec["normalizer"] == {"type": "NFC"}
    assert spec["pre_tokenizer"]["pretokenizers"][0]["pattern"] == {"Regex": SPLIT_PATTERN}
    assert spec["model"]["type"] == "BPE" and not spec["model"]["byte_fallback"]
    assert [t["content"] for t in spec["added_tokens"] if t["special"]] == [
        "<|endoftext|>",
        "<|pad|>",
    ]
    pieces = [p for p, _ in tokenizer.pre_tokenizer.pre_tokenize_str("x 1234567 they'll\n\n  go")]
    assert pieces == ["x", "Ġ", "123", "456", "7", "Ġthey", "'ll", "ĊĊ", "Ġ", "Ġgo"]
    # NFC: a decomposed é encodes as the composed one; bytes round-trip through the decoder.
    assert tokenizer.encode("caf\u00e9").ids == tokenizer.encode("cafe\u0301").ids
    assert tokenizer.decode(tokenizer.encode("Привет 世界 🙂").ids) == "Привет 世界 🙂"


def test_same_input_and_options_give_the_same_file_byte_for_byte(jsonl_tokenizer, tmp_path: Path):
    path, _ = jsonl_tokenizer
    config = TokenizerConfig(vocab_size=1500, special_tokens=("<|endoftext|>", "<|pad|>"))
    again, _ = train_tokenizer(Corpus([str(JSONL)]), config)
    save_tokenizer(again, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_sample_is_spread_over_the_corpus_by_id_hash_not_taken_from_its_start(tmp_path: Path):
    docs = sample_documents()
    langs = [LABELS[url]["lang"] for url in docs["url"].to_pylist()]
    english = docs.filter(pa.array([lang == "en" for lang in langs]))
    russian = docs.filter(pa.array([lang == "ru" for lang in langs]))
    run = write_run(tmp_path / "run", [english, russian])
    total = sum(len(t.encode()) for t in english["text"].to_pylist() + russian["text"].to_pylist())
    config = TokenizerConfig(vocab_size=600, sample_bytes=total // 3)
    tokenizer, stats = train_tokenizer(Corpus([str(run)]), config)
    assert stats["corpus_bytes"] == total
    assert stats["sample_fraction"] == pytest.approx(1 / 3, abs=1e-5)
    assert 0.2 * total < stats["bytes"] <= total // 3
    cyrillic = [t for t in tokenizer.get_vocab() if re.search("[\u0400-\u04ff]", _text(t))]
    assert len(cyrillic) > 20  # the Russian second part was sampled as well as the English first
    again, _ = train_tokenizer(Corpus([str(run)]), config)
    assert again.to_str() == tokenizer.to_str()


def test_trainer_sees_at_most_max_doc_chars_of_each_document(tmp_path: Path):
    head = "alpha beta gamma delta " * 20  # 460 characters
    tail = "zyxwv qutsr " * 2000
    docs = pa.table({"id": [f"f#{i}" for i in range(30)], "text": [head + tail] * 30})
    run = write_run(tmp_path / "run", [docs])
    tokenizer, stats = train_tokenizer(
        Corpus([str(run)]), TokenizerConfig(vocab_size=400, max_doc_chars=460)
    )
    assert stats["bytes"] == 30 * 460
    assert tokenizer.token_to_id("Ġalpha") is not None
    assert not [t for t in tokenizer.get_vocab() if "zy" in t or "ut" in t]


def test_a_run_output_is_read_as_its_clean_parts_minus_what_dedup_removed(tmp_path: Path):
    part0 = pa.table({"id": ["a#0", "a#10", "a#20"], "text": ["one", "two", "three"]})
    part1 = pa.table({"id": ["b#0", "b#5"], "text": ["four", "five"]})
    run = write_run(tmp_path / "run", [part0, part1], removed=["a#10", "b#5"])
    tables = list(Corpus([str(run)], ReadConfig()))
    assert [t.to_pydict() for t in tables] == [
        {"id": ["a#0", "a#20"], "text": ["one", "three"]},
        {"id": ["b#0"], "text": ["four"]},
    ]


def test_an_unfinished_dedup_stage_is_an_error_saying_how_to_finish_it(tmp_path: Path):
    run = write_run(tmp_path / "run", [pa.table({"id": ["a#0"], "text": ["x"]})], removed=[])
    (run / "dedup" / "_done.json").unlink()
    with pytest.raises(InputError, match="dedup stage did not finish: rerun `corpusmill run`"):
        list(Corpus([str(run)], ReadConfig()))


def test_dedup_removals_filed_under_the_wrong_part_are_refused(tmp_path: Path):
    parts = [pa.table({"id": ["a#0"], "text": ["x"]}), pa.table({"id": ["b#0"], "text": ["y"]})]
    run = write_run(tmp_path / "run", parts, removed=["b#0"])
    removals = run / "dedup" / "removed"
    (removals / "part-00001.arrow").replace(removals / "part-00000.arrow")
    with pytest.raises(InputError, match=r"part-00000.arrow lists documents of another part"):
        list(Corpus([str(run)], ReadConfig()))


def test_inputs_without_text_are_a_user_error(tmp_path: Path):
    (tmp_path / "empty.jsonl").write_text('{"text": ""}\n')
    empty = str(tmp_path / "empty.jsonl")
    with pytest.raises(UserError, match=f"no text to train a tokenizer on in {re.escape(empty)}$"):
        train_tokenizer(Corpus([empty]), TokenizerConfig(vocab_size=300))


def test_a_corpus_given_as_an_iterator_is_refused_as_it_would_be_read_once():
    tables = iter([pa.table({"id": ["a#0"], "text": ["some text"]})])
    with pytest.raises(TypeError, match="reads its corpus twice"):
        train_tokenizer(tables, TokenizerConfig(vocab_size=300))


def test_train_tokenizer_command_trains_on_raw_inputs_with_its_flags(tmp_path: Path, capsys):
    parser = argparse.ArgumentParser()
    train_command.add_parser(parser.add_subparsers(), parents=[])
    out = tmp_path / "tok.json"
    args = parser.parse_args(
        [
            "train-tokenizer",
            *SAMPLE_INPUTS,
            "--vocab-size",
            "700",
            "--special-tokens",
            "<|endoftext|>",
            "<|sep|>",
            "--sample-bytes",
            "1000000",
            "--out",
            str(out),
        ]
    )
    assert args.handler(args) == 0
    tokenizer = Tokenizer.from_file(str(out))
    assert tokenizer.get_vocab_size() == 700
    assert tokenizer.token_to_id("<|sep|>") == 1
    assert re.fullmatch(
        rf"{re.escape(str(out))}: 700 tokens, trained on 1\.0 MB \(\d+ documents, \d+\.\d% of "
        r"\d+\.\d MB\) in \d+\.\d s\n",
        capsys.readouterr().out,
    )


def _text(token: str) -> str:
    """A byte-level token's text (partial UTF-8 as U+FFFD)."""
    alphabet = byte_level_alphabet()
    return bytes(alphabet[c] for c in token).decode(errors="replace")
