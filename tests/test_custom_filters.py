"""Filters of a user's own module, named in [[filters.custom]]: a run's workers import them and
report their reasons like the built-in filters', a change of their parameters is a changed
config, and a mistake in one (its name, its parameters, what it returns) is one line naming it."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_filters import ENGLISH

from corpusmill.pipeline.clean import clean_batch
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import ConfigError, config_to_toml, flat_config, load_config
from corpusmill.pipeline.filters import (
    Custom,
    CustomFilterConfig,
    FiltersConfig,
    apply_filters,
    build_filters,
)
from corpusmill.pipeline.run import run_pipeline
from corpusmill.pipeline.schema import DOCUMENTS

MODULE = "corpusmill_test_user_filters"
# A user's module, written outside the package when the tests run.
USER_MODULE = '''
import numpy as np
import pyarrow.compute as pc


def mentions(docs, *, word, max_count=0):
    """Keep the documents that mention `word` at most `max_count` times."""
    keep = pc.less_equal(pc.count_substring(docs["text"], word, ignore_case=True), max_count)
    return keep, pc.if_else(keep, None, word)


class MinChars:
    def __init__(self, chars=1):
        self.chars = chars

    def __call__(self, docs):
        return pc.greater_equal(pc.utf8_length(docs["text"]), self.chars).to_numpy()


def fragile(docs):
    if pc.any(pc.match_substring(docs["text"], "POISON")).as_py():
        raise ValueError("cannot take that text")
    return [True] * docs.num_rows


def doubled(docs):
    return np.ones(2 * docs.num_rows, bool)


def unsure(docs):
    return pc.equal(docs["url"], "x")


def spoken(docs):
    return [True] * docs.num_rows, [7] * docs.num_rows


def nothing(docs):
    return None


def broken_on_no_rows(docs):
    return docs["text"][0]


class Picky:
    def __init__(self, limit):
        if limit < 0:
            raise ValueError("limit must not be negative")

    def __call__(self, docs):
        return [True] * docs.num_rows


class NotCallable:
    pass


NOT_A_FUNCTION = 3
'''

MENTIONS = f"""
[[filters.custom]]
callable = "{MODULE}:mentions"
params = {{ word = "sponsored", max_count = 0 }}
"""


@pytest.fixture(scope="module")
def user_module(tmp_path_factory) -> Path:
    """The folder of the user's module, on sys.path while this file's tests run."""
    folder = tmp_path_factory.mktemp("user")
    (folder / f"{MODULE}.py").write_text(USER_MODULE)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        yield folder
    sys.modules.pop(MODULE, None)


@pytest.fixture(scope="module")
def client(user_module):
    """A local cluster started once the user's module is importable, as a run starts one."""
    with dask_client("", 1) as client:
        yield client


def articles(path: Path) -> list[str]:
    """Six English articles as JSONL, the second and fifth sponsored; their ids."""
    texts = [f"{ENGLISH}\n\nNote {i}." for i in range(6)]
    texts[1] += " Sponsored by ACME, and sponsored again."
    texts[4] += " Sponsored content."
    lines = [json.dumps({"text": text}) + "\n" for text in texts]
    path.write_text("".join(lines))
    offsets = np.cumsum([0] + [len(line.encode()) for line in lines])
    return [f"{path.name}#{offset}" for offset in offsets[:-1]]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def table(*texts: str) -> pa.Table:
    """Documents of the given texts, in English, with every column of a document."""
    rows = [
        {"id": f"d#{i}", "text": text, "source": "d", "offset": i, "lang": "en", "lang_score": 0.9}
        for i, text in enumerate(texts)
    ]
    return pa.Table.from_pylist(rows, schema=DOCUMENTS)


def custom(callable: str, name: str = "", **params) -> Custom:
    return Custom(CustomFilterConfig(f"{MODULE}:{callable}", name, params))


def test_a_run_rejects_what_a_user_filter_removes_under_its_name(user_module, client, tmp_path):
    ids = articles(tmp_path / "in.jsonl")
    where = {"inputs": (str(tmp_path / "in.jsonl"),), "out": str(tmp_path / "out")}
    config = load_config([write(tmp_path / "run.toml", MENTIONS)], where)
    stats = run_pipeline(config, client=client)
    assert stats["clean"]["rejected"].keys() == {"mentions:sponsored"}
    assert stats["clean"]["rejected"]["mentions:sponsored"]["docs"] == 2
    rejected = pq.read_table(tmp_path / "out" / "rejected").select(["id", "step", "reason"])
    assert rejected.to_pylist() == [
        {"id": ids[i], "step": "mentions", "reason": "sponsored"} for i in (1, 4)
    ]
    kept = pq.read_table(tmp_path / "out" / "clean")["id"].to_pylist()
    assert kept == [ids[i] for i in (0, 2, 3, 5)]
    # Its parameters are part of the run's config: another value is a changed config.
    changed = write(tmp_path / "changed.toml", MENTIONS.replace("max_count = 0", "max_count = 1"))
    with pytest.raises(ConfigError, match=r"\(changed: filters\.custom\)"):
        run_pipeline(load_config([changed], where), client=client)
    rerun = run_pipeline(load_config([tmp_path / "run.toml"], where), client=client)
    assert rerun["clean"]["rejected"] == stats["clean"]["rejected"]


def test_corpusmill_run_with_the_module_on_pythonpath_runs_it_on_its_workers(user_module, tmp_path):
    ids = articles(tmp_path / "in.jsonl")
    write(tmp_path / "run.toml", MENTIONS.replace("sponsored", "acme"))
    exe = Path(sys.executable).with_name("corpusmill")
    argv = [exe, "run", "run.toml", "in.jsonl", "--out", "out", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(user_module)}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "removed mentions:acme" in done.stdout
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert [(row["id"], row["step"], row["reason"]) for row in rejected] == [
        (ids[1], "mentions", "acme")
    ]
    assert (
        'callable = "corpusmill_test_user_filters:mentions"'
        in (tmp_path / "out" / "config.toml").read_text()
    )


def test_a_function_or_a_class_reports_its_reasons_or_removed(user_module):
    texts = ("short", "a longer text, sponsored", "a longer text")
    filters = [custom("mentions", word="sponsored"), custom("MinChars", "long_enough", chars=10)]
    kept, removed = apply_filters(table(*texts), filters)
    assert kept["text"].to_pylist() == ["a longer text"]
    assert removed.select(["text", "reason"]).to_pylist() == [
        {"text": "a longer text, sponsored", "reason": "mentions:sponsored"},
        {"text": "short", "reason": "long_enough:removed"},
    ]


def test_custom_filters_run_after_the_built_in_ones_in_the_order_listed(user_module):
    config = FiltersConfig(
        custom=(
            CustomFilterConfig(f"{MODULE}:MinChars"),
            CustomFilterConfig(f"{MODULE}:mentions", params={"word": "x"}),
        )
    )
    names = [filt.name for filt in build_filters(config)]
    assert names == [
        "language", "gopher_repetition", "gopher_quality", "compression", "c4", "fineweb",
        "MinChars", "mentions",
    ]  # fmt: skip


def test_the_printed_config_of_custom_filters_reads_back_equal_and_frozen(user_module, tmp_path):
    toml = MENTIONS + f'\n[[filters.custom]]\ncallable = "{MODULE}:MinChars"\nname = "long"\n'
    config = load_config(
        [write(tmp_path / "a.toml", toml + "[filters.custom.params]\nchars = 9\n")]
    )
    assert [(c.name, dict(c.params)) for c in config.filters.custom] == [
        ("mentions", {"word": "sponsored", "max_count": 0}),
        ("long", {"chars": 9}),
    ]
    assert load_config([write(tmp_path / "b.toml", config_to_toml(config))]) == config
    assert flat_config(config)["filters.custom"][1]["params"] == {"chars": 9}
    assert hash(config) == hash(load_config([tmp_path / "b.toml"]))
    with pytest.raises(TypeError, match="do not change"):
        config.filters.custom[0].params["max_count"] = 3


def test_a_config_without_custom_filters_prints_none():
    assert "custom" not in config_to_toml(load_config())


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            f'callable = "{MODULE}"',
            f'filters.custom[0].callable = "{MODULE}": must be "module:attribute", like',
        ),
        (
            'callable = "no_such_module_here:f"',
            "cannot import no_such_module_here (No module named 'no_such_module_here'); install "
            "it, or add its folder to PYTHONPATH",
        ),
        (f'callable = "{MODULE}:missing"', f"module {MODULE} has no attribute missing"),
        (
            f'callable = "{MODULE}:NOT_A_FUNCTION"',
            f"NOT_A_FUNCTION in {MODULE} is not a function or a class",
        ),
        (
            f'callable = "{MODULE}:mentions"\nparams = {{ word = "a", typo = 1 }}',
            f'filters.custom[0].params = {{word = "a", typo = 1}}: {MODULE}:mentions does not '
            "take these (got an unexpected keyword argument 'typo'); its parameters: word, "
            "max_count",
        ),
        (
            f'callable = "{MODULE}:mentions"',
            "does not take these (missing a required argument: 'word')",
        ),
        (
            f'callable = "{MODULE}:Picky"\nparams = {{ limit = -1 }}',
            f"{MODULE}:Picky(...) raised ValueError: limit must not be negative",
        ),
        (f'callable = "{MODULE}:NotCallable"', "NotCallable has no __call__(self, docs)"),
        (
            f'callable = "{MODULE}:nothing"',
            "filter nothing returned None for 0 documents; return a keep mask, one bool per row",
        ),
        (
            f'callable = "{MODULE}:broken_on_no_rows"',
            "on a table of no documents; a filter must answer a table of any number of rows",
        ),
        (
            f'callable = "{MODULE}:MinChars"\nname = "c4"',
            'filters.custom[0].name = "c4": is the name of a built-in filter; set another name',
        ),
        (
            f'callable = "{MODULE}:MinChars"\nname = "read"',
            'filters.custom[0].name = "read": is the name of a step of the clean stage',
        ),
        (
            f'callable = "{MODULE}:MinChars"\nname = "min-chars"',
            'filters.custom[0].name = "min-chars": must be a Python identifier',
        ),
        (
            f'callable = "{MODULE}:MinChars"\n[[filters.custom]]\ncallable = "{MODULE}:MinChars"',
            'filters.custom[1].name = "MinChars": is the name of filters.custom[0]',
        ),
        (
            f'callable = "{MODULE}:MinChars"\nchars = 3',
            "unknown key 'filters.custom[0].chars'; its keys are callable, name, params",
        ),
        ('name = "x"', "filters.custom[0] has no 'callable'"),
        (
            f'callable = "{MODULE}:MinChars"\nparams = 3',
            "key 'filters.custom[0].params' must be of type table, got 3",
        ),
    ],
)
def test_a_mistake_in_a_custom_filter_is_one_line_naming_its_key(
    user_module, tmp_path, entry, message
):
    conf = write(tmp_path / "bad.toml", f"[[filters.custom]]\n{entry}\n")
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_config([conf])
    assert str(raised.value).startswith(f"config file {conf}: ")
    assert "\n" not in str(raised.value)


def test_a_single_table_instead_of_a_list_says_to_write_double_brackets(tmp_path):
    conf = write(tmp_path / "bad.toml", '[filters.custom]\ncallable = "m:f"\n')
    with pytest.raises(ConfigError, match=r"write \[\[filters.custom\]\], in double brackets"):
        load_config([conf])


@pytest.mark.parametrize(
    ("callable", "message"),
    [
        ("doubled", "filter doubled returned 2 values of type bool for 1 documents"),
        ("unsure", "filter unsure returned a keep mask with 1 nulls"),
        ("spoken", "filter spoken returned reasons that are not strings"),
    ],
)
def test_a_filter_returning_the_wrong_shape_costs_each_document_naming_the_filter(
    user_module, caplog, callable, message
):
    config = load_config()
    filters = [*build_filters(config.filters), custom(callable)]
    with caplog.at_level(logging.WARNING):
        kept, rejected, _ = clean_batch(table(f"{ENGLISH}\n\nNote 1."), config, filters)
    assert kept.num_rows == 0
    assert rejected.select(["id", "step", "reason"]).to_pylist() == [
        {"id": "d#0", "step": callable, "reason": "error"}
    ]
    assert message in caplog.text


def test_a_filter_that_raises_on_one_document_costs_only_that_document(user_module, caplog):
    config = load_config()
    filters = [*build_filters(config.filters), custom("fragile")]
    texts = [f"{ENGLISH}\n\nNote {i}." for i in range(4)]
    texts[2] += " POISON."
    with caplog.at_level(logging.WARNING):
        kept, rejected, _ = clean_batch(table(*texts), config, filters)
    assert kept["id"].to_pylist() == ["d#0", "d#1", "d#3"]
    assert rejected.select(["id", "step", "reason"]).to_pylist() == [
        {"id": "d#2", "step": "fragile", "reason": "error"}
    ]
    assert "d#2: fragile:error (ValueError: cannot take that text)" in caplog.text


def test_a_worker_that_cannot_import_the_filter_names_it(tmp_path, monkeypatch):
    write(tmp_path / "only_here_filters.py", "def keep_all(docs):\n    return [True] * len(docs)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = CustomFilterConfig("only_here_filters:keep_all")
    # A worker of a cluster on which the module is not installed.
    monkeypatch.setattr(sys, "path", [path for path in sys.path if path != str(tmp_path)])
    monkeypatch.delitem(sys.modules, "only_here_filters")
    with pytest.raises(
        ConfigError, match=r"filter keep_all \(only_here_filters:keep_all\): cannot"
    ):
        Custom(config)
