"""The run config: TOML files, precedence, validation and the round trip through --print-config."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusmill.core.atomic import write_text
from corpusmill.core.storage import storage_options
from corpusmill.pipeline.config import ConfigError, RunConfig, config_to_toml, load_config

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_files_or_flags_write_into_out_in_the_working_folder(
    tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert load_config() == RunConfig(out=str(tmp_path / "out"))


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path):
    (tmp_path / "conf").mkdir()
    conf = write(
        tmp_path / "conf" / "a.toml", 'inputs = ["../data/*.warc.gz", "s3://b/x"]\nout = "o"\n'
    )
    config = load_config([conf])
    assert config.inputs == (str(tmp_path / "data" / "*.warc.gz"), "s3://b/x")
    assert config.out == str(tmp_path / "conf" / "o")


def test_relative_paths_given_as_flags_resolve_against_the_working_folder(
    tmp_path: Path, monkeypatch
):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    conf = write(tmp_path / "a.toml", '[tokenizer]\npath = "tok.json"\n')
    flags = {"inputs": ("in", "../d/*.jsonl", "s3://b/x", "memory://m/../y"), "out": "./o"}
    config = load_config([conf], flags)
    assert config.inputs == (
        str(tmp_path / "work" / "in"),
        str(tmp_path / "d" / "*.jsonl"),
        "s3://b/x",
        "memory://m/../y",
    )
    assert config.out == str(tmp_path / "work" / "o")
    assert config.tokenizer.path == str(tmp_path / "tok.json")


def test_an_empty_path_stays_empty(tmp_path: Path):
    conf = write(tmp_path / "a.toml", '[tokenizer]\npath = ""\n')
    assert load_config([conf]).tokenizer.path == ""


def test_later_files_override_earlier_and_flags_override_files(tmp_path: Path):
    first = write(tmp_path / "a.toml", "workers = 3\nscheduler = 'tcp://h:1'\n")
    second = write(tmp_path / "b.toml", "workers = 5\n")
    config = load_config([first, second], {"scheduler": "tcp://other:2"})
    assert (config.workers, config.scheduler) == (5, "tcp://other:2")


def test_unknown_key_names_file_and_suggests_the_right_one(tmp_path: Path):
    conf = write(tmp_path / "bad.toml", "worker = 2\n")
    with pytest.raises(
        ConfigError, match=r"bad\.toml: unknown key 'worker'; did you mean 'workers'"
    ):
        load_config([conf])


def test_wrong_type_names_file_key_and_value(tmp_path: Path):
    conf = write(tmp_path / "bad.toml", "workers = 'two'\n")
    with pytest.raises(
        ConfigError, match=r"bad\.toml: key 'workers' must be of type int, got 'two'"
    ):
        load_config([conf])


def test_bool_is_not_accepted_as_int(tmp_path: Path):
    conf = write(tmp_path / "bad.toml", "workers = true\n")
    with pytest.raises(ConfigError, match="must be of type int"):
        load_config([conf])


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config([write(tmp_path / "x.toml", "workers = \n")])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config([tmp_path / "missing.toml"])


def test_printed_config_reads_back_to_the_same_config(tmp_path: Path):
    config = load_config(
        overrides={"inputs": ("/d/a.jsonl", "/d/b.warc.gz"), "workers": 2, "out": "/o"}
    )
    printed = write(tmp_path / "printed.toml", config_to_toml(config))
    assert load_config([printed]) == config


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[dedup]\nbands = 0\n", "bad.toml: dedup.bands = 0: must be from 1 to 60000"),
        (
            "[read]\nmax_doc_bytes = -5\n",
            "bad.toml: read.max_doc_bytes = -5: must be greater than 0",
        ),
        (
            "[filters.gopher_repetition]\nspaceless_chars_per_word = -1\n",
            "bad.toml: filters.gopher_repetition.spaceless_chars_per_word = -1: must be greater than 0",
        ),
    ],
)
def test_a_section_rejecting_its_values_is_a_config_error(tmp_path: Path, toml, message):
    conf = write(tmp_path / "bad.toml", toml)
    with pytest.raises(ConfigError, match=message):
        load_config([conf])


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.toml")))
def test_every_example_config_loads(name):
    config = load_config([REPO / "configs" / name])
    assert config.inputs and all(Path(i).is_absolute() for i in config.inputs)


def test_the_storage_table_sets_the_options_and_its_copy_holds_no_credentials(
    tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")
    conf = write(
        tmp_path / "s3.toml",
        'out = "s3://outb/run1"\n[storage]\nendpoint_url = "http://127.0.0.1:9000"\nanon = false\n',
    )
    config = load_config([conf], {"storage.region": "eu-west-1"})
    assert config.out == "s3://outb/run1"
    assert storage_options(config.storage) == {
        "use_listings_cache": False,
        "endpoint_url": "http://127.0.0.1:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
        "key": "AKIDEXAMPLE",
        "secret": "wJalrXUtnFEMI",
    }
    text = config_to_toml(config)
    assert '[storage]\nendpoint_url = "http://127.0.0.1:9000"\nregion = "eu-west-1"\n' in text
    assert "AKIDEXAMPLE" not in text and "wJalrXUtnFEMI" not in text


def test_a_runs_config_copy_on_an_object_store_reads_back_equal(
    tmp_path: Path, s3_server, s3_bucket, monkeypatch
):
    config = load_config([write(tmp_path / "a.toml", 'inputs = ["s3://inb/x"]\n')])
    copy = s3_bucket / "run1" / "config.toml"
    write_text(copy, config_to_toml(config))
    assert load_config([copy]) == config
    # Named by its URL, it is reached with the options of the environment.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert load_config([str(copy)]) == config
