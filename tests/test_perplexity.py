"""The perplexity filter: a byte model of a reference ranks held-out prose above boilerplate and
spam; buckets follow the thresholds; refilter decides new ones as a fresh run does; the quality
keeper keeps the twin of lowest perplexity; a bad reference or config exits 2 at once."""

from __future__ import annotations

import io
import json
import pydoc_data.topics
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from corpusmill.cli.main import main
from corpusmill.core.errors import ConfigError, StageError
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline import run as run_module
from corpusmill.pipeline.clean import run_clean
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.dedup.stage import run_dedup
from corpusmill.pipeline.filters.perplexity import Perplexity, PerplexityConfig
from corpusmill.pipeline.readers import ReadConfig
from corpusmill.pipeline.reference import (
    bits_per_byte,
    load_model,
    prepare_reference_model,
    save_model,
    train_model,
)
from corpusmill.pipeline.refilter import refilter_run, refilterable
from corpusmill.pipeline.run import prepared_run

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
INPUTS = tuple(str(p) for p in sorted(SAMPLE.glob("*.gz")) + sorted(SAMPLE.glob("*.zst")))
# A third of the sample crawl, in two formats, for the runs of the clean stage.
CRAWL = (str(SAMPLE / "crawl-00000.warc.gz"), str(SAMPLE / "dump-00000.jsonl.zst"))
# Python's documentation, every other topic the reference and the rest held out.
TOPICS = [pydoc_data.topics.topics[name] for name in sorted(pydoc_data.topics.topics)]
REFERENCE, HELD_OUT = TOPICS[0::2], TOPICS[1::2]
# Lines every page of a site repeats: menus, a consent banner, a footer.
BOILERPLATE = [
    "Home | About us | Contact | Privacy Policy | Terms of Service\nSign in | Register | Cart (0)",
    "We use cookies to improve your experience on this site. By continuing you agree to our use "
    "of cookies.\nAccept all | Decline | Manage preferences",
    "© 2024 Example Media Group. All rights reserved.\nFollow us on Facebook, Twitter, Instagram "
    "and YouTube\nSubscribe to our newsletter",
]


def sample_pages(kinds: set[str]) -> list[str]:
    """The English pages of these kinds (labels.json) in the sample JSONL dump."""
    labels = json.loads((SAMPLE / "labels.json").read_text())["documents"]
    with zstandard.ZstdDecompressor().stream_reader(
        (SAMPLE / "dump-00000.jsonl.zst").open("rb")
    ) as raw:
        records = [json.loads(line) for line in io.TextIOWrapper(raw, encoding="utf-8")]
    return [
        record["text"]
        for record in records
        if (label := labels.get(record["url"])) and label["kind"] in kinds and label["lang"] == "en"
    ]


def keyword_stuffing(rng: random.Random) -> str:
    """A page of sales keywords in random order."""
    keywords = "buy cheap best price online casino free bonus click here now discount".split()
    return " ".join(rng.choice(keywords) for _ in range(200))


def word_salad(rng: random.Random, words: list[str]) -> str:
    """A page of real words drawn at random: every word English, no sentence."""
    return " ".join(rng.choice(words) for _ in range(200))


def scores(model, texts: list[str], limit: int = 8192) -> np.ndarray:
    return bits_per_byte(model, pa.array(texts, pa.large_string()), limit)


@pytest.fixture(scope="module")
def model():
    return train_model([text.encode() for text in REFERENCE], 5)


def test_held_out_prose_scores_better_than_boilerplate_and_spam(model):
    rng = random.Random(18)
    held_out = scores(model, HELD_OUT)
    nav_and_spam = scores(model, BOILERPLATE + sample_pages({"nav", "spam"}))
    stuffing = scores(model, [keyword_stuffing(rng) for _ in range(10)])
    salad = scores(model, [word_salad(rng, " ".join(HELD_OUT).split()) for _ in range(10)])

    assert len(held_out) == 39 and len(nav_and_spam) == 6
    # Boilerplate and keyword stuffing score worse than every held-out page, by half a bit per
    # byte (the cookie banner, the most prose-like, by 0.9).
    assert nav_and_spam.min() > held_out.max() + 0.5 and stuffing.min() > held_out.max() + 0.5
    # Word salad, made of the held-out pages' own words, is harder to tell from prose by bytes:
    # its best page scores worse than 37 of the 39, and a held-out page picked at random scores
    # better than a salad page picked at random 98.7 % of the time.
    assert np.mean(held_out < salad.min()) >= 0.9
    assert np.mean(held_out[:, None] < salad[None, :]) >= 0.98


def test_a_documents_bits_are_its_bytes_probabilities_under_the_model(model, tmp_path):
    texts = ["Assignment binds names.", "é and ü are two bytes each", ""]
    got = scores(model, texts)
    for text, value in zip(texts[:2], got, strict=False):
        tokens = np.frombuffer(text.encode(), np.uint8).astype(np.int64)
        probs = np.concatenate(model.document_probs(tokens))
        expected = -np.log2(probs[np.arange(len(tokens)), tokens]).mean()
        assert value == pytest.approx(expected, rel=1e-12)
    assert got[2] == 0
    # The first bytes only, whatever follows them; the saved model scores alike.
    assert scores(model, ["Assignment binds"])[0] == scores(model, texts[:1], limit=16)[0]
    save_model(model, tmp_path / "model.arrow", [])
    assert np.array_equal(scores(load_model(tmp_path / "model.arrow"), texts), got)


def test_a_damaged_model_file_is_named_as_damaged_data(model, tmp_path):
    path = tmp_path / "model.arrow"
    save_model(model, path, [])
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(StageError, match=rf"{path} is damaged .*delete it"):
        load_model(path)


@pytest.mark.parametrize(
    ("keep", "reasons"),
    [
        (("head", "middle", "tail"), [None] * 6),
        (("head",), [None, None, "middle", "middle", "tail", "tail"]),
        (("middle", "tail"), ["head", "head", None, None, None, None]),
    ],
)
def test_buckets_and_rejections_follow_the_thresholds(keep, reasons):
    family = Perplexity(PerplexityConfig(reference=("r",), head_max=2, middle_max=3, keep=keep))
    verdict = family.decide({"bits_per_byte": np.array([1.0, 2.0, 2.5, 3.0, 3.01, 9.0])})
    expected = [None if reason is None else f"perplexity:{reason}" for reason in reasons]
    assert verdict.reason.to_pylist() == expected
    assert verdict.keep.tolist() == [reason is None for reason in reasons]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[dedup]\nkeeper = "quality"\n',
            'dedup.keeper = "quality": ranks duplicates by their perplexity, which '
            "filters.perplexity.reference is needed for",
        ),
        (
            '[dedup]\nkeeper = "quality"\n[filters]\nstore_signals = false\n'
            '[filters.perplexity]\nreference = ["docs.txt"]\n',
            'dedup.keeper = "quality": reads each document\'s perplexity from OUT/signals/',
        ),
        (
            "[filters.perplexity]\nhead_max = 4.0\n",
            "filters.perplexity.head_max = 4.0: must not exceed middle_max, which is 3.0",
        ),
        (
            '[filters.perplexity]\nkeep = ["head", "body"]\n',
            'filters.perplexity.keep = ["head", "body"]: unknown bucket \'body\'',
        ),
        ("[filters.perplexity]\norder = 8\n", "filters.perplexity.order = 8: must be from 2 to 7"),
    ],
)
def test_a_perplexity_config_mistake_exits_2_naming_the_key(tmp_path, capsys, toml, message):
    conf = tmp_path / "bad.toml"
    conf.write_text(toml)
    assert main(["run", str(conf), "--print-config"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("problem", ["missing", "empty", "binary"])
def test_a_bad_reference_exits_2_before_the_cluster_starts(tmp_path, monkeypatch, capsys, problem):
    reference = tmp_path / "reference.txt"
    if problem == "empty":
        reference.write_text("")
    if problem == "binary":
        reference.write_bytes(bytes(range(256)) * 4)

    def no_cluster(*args, **kwargs):
        raise AssertionError("the cluster was started")

    monkeypatch.setattr(run_module, "dask_client", no_cluster)
    argv = ["run", *INPUTS[:1], "--out", str(tmp_path / "out")]
    assert main([*argv, "--filters-perplexity-reference", str(reference)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f'filters.perplexity.reference = ["{reference}"]' in err
    assert "does not exist" in err if problem == "missing" else "holds no readable text" in err


def clean_only(client, out: Path, **overrides) -> RunLayout:
    """The clean stage of a run of the sample crawl with the pydoc reference, as `corpusmill run`
    prepares it."""
    values = {"inputs": CRAWL, "out": str(out), "read.split_bytes": 256 << 10, **overrides}
    with prepared_run(load_config(overrides=values)) as run:
        run_clean(run.config, client, run.files, run.layout)
    return run.layout


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("reference") / "python-docs.txt"
    path.write_text("\n\n".join(REFERENCE), encoding="utf-8")
    return str(path)


# Thresholds B: a head and middle of the sample crawl's scores, the tail removed.
B = {
    "filters.perplexity.head_max": 4.0,
    "filters.perplexity.middle_max": 5.5,
    "filters.perplexity.keep": ("head", "middle"),
}


def files(out: Path, *folders: str) -> dict[str, bytes]:
    paths = [p for folder in folders for p in (out / folder).iterdir() if p.is_file()]
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(paths)}


def test_refilter_to_new_perplexity_thresholds_writes_what_a_fresh_run_writes(
    client, reference, tmp_path
):
    ref = {"filters.perplexity.reference": (reference,)}
    fresh = clean_only(client, tmp_path / "b", **ref, **B)
    layout = clean_only(client, tmp_path / "a", **ref)
    measured = pq.read_table(layout.signals, columns=["id", "signals"])
    signals = measured["signals"].combine_chunks()
    bits = dict(
        zip(
            measured["id"].to_pylist(),
            signals.field("perplexity").field("bits_per_byte").to_pylist(),
            strict=True,
        )
    )
    kept = pq.read_table(layout.clean, columns=["id"])["id"].to_pylist()
    rejected = pq.read_table(fresh.rejected, columns=["reason"])["reason"].to_pylist()
    # B removes, as the tail, the documents A kept that score above its middle_max.
    assert rejected.count("tail") == sum(bits[doc] > 5.5 for doc in kept) > 0
    assert layout.reference_model.read_bytes() == fresh.reference_model.read_bytes()

    thresholds = tmp_path / "b.toml"
    thresholds.write_text(
        '[filters.perplexity]\nhead_max = 4.0\nmiddle_max = 5.5\nkeep = ["head", "middle"]\n'
    )
    refilter_run(layout.root, [thresholds], client=client)

    parts = ("clean", "clean/_done", "rejected", "signals")
    assert files(layout.root, *parts) == files(fresh.root, *parts)


def test_a_changed_reference_is_refused_and_an_unchanged_one_reused(reference, tmp_path):
    config = PerplexityConfig(reference=(reference,))
    path = tmp_path / "reference-model.arrow"
    prepare_reference_model(config, ReadConfig(), path, {})
    written = path.stat().st_mtime_ns
    prepare_reference_model(config, ReadConfig(), path, {})
    assert path.stat().st_mtime_ns == written
    copy = tmp_path / "reference.txt"
    shutil.copy(reference, copy)
    with pytest.raises(ConfigError, match="its files changed since the run's model"):
        prepare_reference_model(PerplexityConfig(reference=(str(copy),)), ReadConfig(), path, {})


def test_the_reference_model_is_written_to_and_read_from_an_object_store(
    reference, s3_server, s3_bucket
):
    local = Path(reference).with_name("model.arrow")
    remote = s3_bucket / "run" / "reference-model.arrow"
    for path, options in ((local, {}), (remote, s3_server.options)):
        prepare_reference_model(
            PerplexityConfig(reference=(reference,)), ReadConfig(), path, options
        )
    assert remote.read_bytes() == local.read_bytes()
    assert np.array_equal(scores(load_model(remote), HELD_OUT), scores(load_model(local), HELD_OUT))


def test_the_quality_keeper_keeps_the_twin_of_lowest_perplexity(client, reference, tmp_path):
    # Pairs of near-duplicate pages: first a copy of a held-out topic spoiled by spam, then the
    # topic as it is.
    rng = random.Random(7)
    pages = []
    for index, topic in enumerate(HELD_OUT[:6]):
        prose = topic[:3000]
        spoiled = prose + "\n\n" + keyword_stuffing(rng)[:400]
        pages += [
            {"id": f"spoiled-{index}", "text": spoiled},
            {"id": f"clean-{index}", "text": prose},
        ]
    lines = [json.dumps(page) + "\n" for page in pages]
    dump = tmp_path / "pages.jsonl"
    dump.write_text("".join(lines))
    # A JSONL record's offset is its line's first byte.
    names = dict(
        zip(
            np.cumsum([0] + [len(line) for line in lines[:-1]]).tolist(),
            (page["id"] for page in pages),
            strict=True,
        )
    )
    families = ("language", "gopher_repetition", "gopher_quality", "c4", "fineweb")
    off = {f"filters.{name}.enabled": False for name in families}

    def kept(keeper: str, **dedup) -> list[str]:
        """The pages a run with `keeper` (and other `dedup` settings) keeps, by their ids."""
        values = {"filters.perplexity.reference": (reference,), "dedup.keeper": keeper, **off}
        settings = {f"dedup.{key}": value for key, value in dedup.items()}
        out = tmp_path / f"{keeper}-{len(list(tmp_path.iterdir()))}"
        layout = clean_only(client, out, **values, **settings, inputs=(str(dump),))
        run_dedup(layout.root, load_config([layout.config]).dedup, client)
        removed = set(pq.read_table(layout.removed, columns=["id"])["id"].to_pylist())
        docs = pq.read_table(layout.clean, columns=["id", "offset"]).to_pylist()
        return sorted(names[doc["offset"]] for doc in docs if doc["id"] not in removed)

    clean = sorted(f"clean-{index}" for index in range(6))
    assert kept("quality") == clean
    # The same without twins, and with the keepers found in distributed rounds.
    assert kept("quality", kept_twins=False) == clean
    assert kept("quality", local_max_edges=0, partition_edges=2) == clean
    assert kept("first") == sorted(f"spoiled-{index}" for index in range(6))


def test_the_thresholds_are_refilterable_and_what_the_model_is_made_of_is_not():
    thresholds = ("head_max", "middle_max", "keep")
    model = ("reference", "reference_bytes", "order", "score_bytes")
    assert all(refilterable(f"filters.perplexity.{key}") for key in thresholds)
    assert not any(refilterable(f"filters.perplexity.{key}") for key in model)
