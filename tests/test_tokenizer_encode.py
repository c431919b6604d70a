"""Fast encoding: tiktoken gives exactly the HF tokenizer's ids, or the encoder falls back to HF."""

from __future__ import annotations

import json
import logging
import pickle
import unicodedata
from pathlib import Path

import pytest
from test_tokenizer_train import SAMPLE_INPUTS, sample_documents
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers

from corpusmill.loader.layout import SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG
from corpusmill.pipeline.corpus import Corpus
from corpusmill.tokenizer import nfc
from corpusmill.tokenizer.config import TokenizerConfig
from corpusmill.tokenizer.convert import NotConvertible, to_tiktoken
from corpusmill.tokenizer.encode import (
    EDGE_CASES,
    Encoder,
    TokenizerFileError,
    check_tokenizer_file,
    load_encoder,
)
from corpusmill.tokenizer.hf_files import write_transformers_files
from corpusmill.tokenizer.nfc import normalize_nfc
from corpusmill.tokenizer.train import new_tokenizer, save_tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Every sample_data document as read, before any cleaning: WARC, WET and JSONL."""
    return sample_documents(SAMPLE_INPUTS)["text"].to_pylist()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tokenizer, _ = train_tokenizer(Corpus(SAMPLE_INPUTS), TokenizerConfig(vocab_size=3000))
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save_tokenizer(tokenizer, path)
    return path


def hf_ids(path: Path, texts: list[str]) -> list[list[int]]:
    """The reference: HF tokenizers' ids, special-token strings encoded as text."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.encode_special_tokens = True
    return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def encoded(encoder: Encoder, texts: list[str]) -> list[list[int]]:
    return [ids.tolist() for ids in encoder.encode(texts)]


def test_tiktoken_gives_the_tokenizers_ids_on_every_sample_document(trained, texts):
    encoder = load_encoder(trained)
    assert encoder.backend == "tiktoken"
    assert len(texts) == 452
    assert encoded(encoder, texts) == hf_ids(trained, texts)


def test_tiktoken_gives_the_tokenizers_ids_on_special_tokens_whitespace_digits_emoji_and_cjk(
    trained, texts
):
    encoder = load_encoder(trained)
    cases = list(EDGE_CASES) + [
        edge + text[:300] + edge for edge in EDGE_CASES for text in texts[:5]
    ]
    assert encoded(encoder, cases) == hf_ids(trained, cases)


def test_code_points_of_every_plane_encode_the_same_in_context(trained):
    # All of the BMP and the SMP (scripts, symbols, emoji); every 16th code point above, where
    # the planes hold CJK ideographs, tags, private use and unassigned code points.
    codes = [
        c for c in range(0x110000) if not 0xD800 <= c < 0xE000 and (c < 0x20000 or c % 16 == 0)
    ]
    chunks = [[chr(c) for c in codes[start : start + 64]] for start in range(0, len(codes), 64)]
    # Neighbouring code points (runs of combining marks reorder and compose under NFC), and each
    # code point doubled between a space and a digit (where the split regex decides).
    texts = [
        form for chunk in chunks for form in ("".join(chunk), "".join(f" {c}{c}1" for c in chunk))
    ]
    assert encoded(load_encoder(trained), texts) == hf_ids(trained, texts)


def test_nfc_follows_the_tokenizer_where_python_uses_another_unicode_version():
    # U+07FD (Unicode 11) is a combining mark to Python, unknown to HF tokenizers' tables.
    text = "a\u07fd\u0323\u0301 caf\u0065\u0301"
    hf = normalizers.NFC().normalize_str
    assert hf(text) != unicodedata.normalize("NFC", text)
    assert normalize_nfc(_array([text, "cafe\u0301"]), hf) == [hf(text), "caf\u00e9"]


def test_special_token_strings_inside_a_text_are_encoded_as_text(trained):
    encoder = load_encoder(trained)
    ids = encoder.encode(["a <|endoftext|> b"])[0]
    assert encoder.token_id("<|endoftext|>") == 0
    assert 0 not in ids.tolist()
    assert encoder.decode(ids) == "a <|endoftext|> b"


def test_a_tokenizer_tiktoken_cannot_mimic_falls_back_to_tokenizers_with_the_reason_logged(
    trained, texts, tmp_path, caplog
):
    spec = json.loads(trained.read_text())
    spec["normalizer"] = {
        "type": "Sequence",
        "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}],
    }
    path = tmp_path / "lower.json"
    path.write_text(json.dumps(spec))
    with caplog.at_level(logging.WARNING, logger="corpusmill.tokenizer.encode"):
        encoder = load_encoder(path)
    assert encoder.backend == "tokenizers"
    assert "normalizer ['Lowercase'] has no tiktoken equivalent" in caplog.text
    assert encoded(encoder, texts[:40]) == hf_ids(path, texts[:40])


def test_a_split_regex_that_tiktoken_applies_differently_fails_verification_and_falls_back(
    tmp_path, texts, caplog
):
    # tiktoken drops the text between matches; HF keeps it. Structurally convertible, not equal.
    tokenizer = new_tokenizer()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\p{L}+"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.train_from_iterator(texts[:50], _trainer(500))
    path = tmp_path / "letters.json"
    save_tokenizer(tokenizer, path)
    with caplog.at_level(logging.WARNING, logger="corpusmill.tokenizer.encode"):
        encoder = load_encoder(path)
    assert encoder.backend == "tokenizers"
    assert "tiktoken and tokenizers give different ids for" in caplog.text
    assert encoded(encoder, texts[:20]) == hf_ids(path, texts[:20])


@pytest.mark.parametrize("content", [b"not json", b'{"model": {"type": "BPE"}}', b"\xff\xfe{"])
def test_a_file_that_is_not_a_tokenizer_is_named_in_the_error(tmp_path, content):
    path = tmp_path / "tokenizer.json"
    path.write_bytes(content)
    with pytest.raises(TokenizerFileError, match=f"{path} is not a tokenizer"):
        load_encoder(path)
    with pytest.raises(TokenizerFileError, match=f"{path} is not a tokenizer"):
        check_tokenizer_file(path)


def test_a_gpt2_style_byte_level_tokenizer_converts_too(tmp_path, texts):
    tokenizer = new_tokenizer()
    tokenizer.normalizer = None
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(texts[:100], _trainer(800))
    path = tmp_path / "gpt2.json"
    save_tokenizer(tokenizer, path)
    encoder = load_encoder(path)
    assert encoder.backend == "tiktoken"
    assert encoded(encoder, texts[:100]) == hf_ids(path, texts[:100])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: s["model"].update(byte_fallback=True), "the BPE model sets byte_fallback"),
        (lambda s: s["model"]["merges"].reverse(), "token ids do not grow in merge order"),
        (lambda s: s["model"]["vocab"].pop("Ā"), "the vocabulary lacks the single bytes [0]"),
        (lambda s: s.update(pre_tokenizer=None), "there is no pre-tokenizer"),
        (lambda s: s["added_tokens"][0].update(special=False), "are not special"),
    ],
)
def test_conversion_names_what_tiktoken_cannot_reproduce(trained, change, reason):
    spec = json.loads(trained.read_text())
    change(spec)
    with pytest.raises(NotConvertible, match=reason.replace("[", r"\[").replace("]", r"\]")):
        to_tiktoken(spec, "x")


def test_an_encoder_sent_to_a_worker_keeps_its_backend_and_treats_special_tokens_as_text(trained):
    encoder = load_encoder(trained)
    copy = pickle.loads(pickle.dumps(encoder))
    assert copy.backend == "tiktoken"
    text = ["x<|endoftext|>y \u00e9\u0301"]
    assert encoded(copy, text) == encoded(encoder, text) == hf_ids(trained, text)


def test_an_encoder_brings_its_nfc_class_so_a_worker_does_not_scan_unicode_again(
    trained, monkeypatch
):
    blob = pickle.dumps(load_encoder(trained))
    monkeypatch.setattr(nfc, "_CLASSES", {})
    monkeypatch.setattr(nfc, "_scan_code_points", lambda: pytest.fail("scanned code points"))
    copy = pickle.loads(blob)
    text = ["cafe\u0301 \u00e9t\u00e9"]
    assert encoded(copy, text) == hf_ids(trained, text)


def test_a_class_from_another_unicode_version_is_not_adopted(monkeypatch):
    monkeypatch.setattr(nfc, "_CLASSES", {})
    nfc.adopt_class("0.0.0", "[a]")
    assert nfc._CLASSES == {}


def _trainer(vocab_size: int):
    from tokenizers import trainers

    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )


def _array(texts: list[str]):
    import pyarrow as pa

    return pa.array(texts, pa.large_string())


def test_a_tokenizer_saved_to_an_object_store_loads_from_there_with_the_files_of_a_local_one(
    trained, texts, s3_bucket, caplog
):
    local = Tokenizer.from_file(str(trained))
    remote = s3_bucket / "run" / "tokenizer.json"
    save_tokenizer(local, remote)
    config = TokenizerConfig(vocab_size=3000)
    write_transformers_files(remote, config)
    write_transformers_files(trained, config)
    assert remote.read_bytes() == trained.read_bytes()
    for name in (TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP):
        assert remote.with_name(name).read_bytes() == trained.with_name(name).read_bytes()
    with caplog.at_level(logging.INFO, logger="corpusmill.tokenizer.encode"):
        encoder = load_encoder(remote)
    assert encoder.backend == "tiktoken" and encoder.fast.encoding.name == "tokenizer"
    assert encoded(encoder, texts[:50]) == hf_ids(trained, texts[:50])
    assert caplog.messages[0].startswith(f"{remote}: encoding with tiktoken")
    with pytest.raises(TokenizerFileError, match=f"{remote.with_name('x.json')} is not a tok"):
        check_tokenizer_file(remote.with_name("x.json"))
