"""The compression-ratio family: prose is kept, repeated and random text are removed under the
bounds that name them, each ratio is the document's UTF-8 bytes over its zstd bytes, and its
bounds are thresholds that refilter decides from the stored signals."""

from __future__ import annotations

import base64
import random

import numpy as np
import pyarrow as pa
import pytest
import zstandard

from corpusmill.core.errors import ConfigError
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.filters import build_families, decide_filters, judge_families
from corpusmill.pipeline.refilter import refilterable
from corpusmill.pipeline.schema import DOCUMENTS

# The opening of Darwin's "On the Origin of Species" (1859), public domain.
PROSE = (
    "When on board H.M.S. 'Beagle,' as naturalist, I was much struck with certain facts in the "
    "distribution of the inhabitants of South America, and in the geological relations of the "
    "present to the past inhabitants of that continent. These facts seemed to me to throw some "
    "light on the origin of species--that mystery of mysteries, as it has been called by one of "
    "our greatest philosophers. On my return home, it occurred to me, in 1837, that something "
    "might perhaps be made out on this question by patiently accumulating and reflecting on all "
    "sorts of facts which could possibly have any bearing on it. After five years' work I allowed "
    "myself to speculate on the subject, and drew up some short notes; these I enlarged in 1844 "
    "into a sketch of the conclusions, which then seemed to me probable: from that period to the "
    "present day I have steadily pursued the same object."
)
REPEATED = "Home | About us | Contact | Privacy policy\n" * 200
RANDOM = base64.b64encode(random.Random(0).randbytes(3000)).decode()


def docs(*texts: str) -> pa.Table:
    n = len(texts)
    return pa.table(
        {
            "id": [f"d{i}" for i in range(n)],
            "text": list(texts),
            "url": [None] * n,
            "title": [None] * n,
            "source": ["s"] * n,
            "offset": list(range(n)),
            "lang": ["en"] * n,
            "lang_score": [1.0] * n,
            "meta": [None] * n,
        },
        schema=DOCUMENTS,
    )


def zstd_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zstandard.ZstdCompressor(level=3).compress(data))


def only_compression(**bounds: float) -> list:
    """The compression family alone, with `bounds`."""
    off = {f"filters.{name}.enabled": False for name in ("language", "c4", "fineweb")}
    off |= {"filters.gopher_repetition.enabled": False, "filters.gopher_quality.enabled": False}
    keys = {f"filters.compression.{key}": value for key, value in bounds.items()}
    return build_families(load_config(overrides={**off, **keys}).filters)


def test_prose_is_kept_and_repeated_and_random_text_removed_by_the_bound_naming_them():
    table = docs(PROSE, REPEATED, RANDOM)
    decision, signals, _ = judge_families(table, only_compression(min_ratio=1.5, max_ratio=8))
    ratios = signals.field("compression").field("ratio").to_numpy()
    expected = [zstd_ratio(text) for text in (PROSE, REPEATED, RANDOM)]
    assert ratios.tolist() == expected
    assert 1.5 < expected[0] < 8 < expected[1] and expected[2] < 1.5
    assert decision.keep.tolist() == [True, False, False]
    assert decision.reason.to_pylist() == [
        None,
        "compression:repetitive",
        "compression:incompressible",
    ]
    document = signals.field("document").field("compression_ratio").to_numpy()
    assert np.array_equal(document, ratios)


def test_by_default_the_family_measures_and_removes_nothing():
    decision, signals, _ = judge_families(docs(PROSE, REPEATED, RANDOM), only_compression())
    assert decision.keep.all()
    assert len(signals.field("compression")) == 3


def test_a_ratio_equal_to_a_bound_is_kept():
    ratio = zstd_ratio(PROSE)
    decision, _, _ = judge_families(docs(PROSE), only_compression(min_ratio=ratio, max_ratio=ratio))
    assert decision.keep.tolist() == [True]


def test_new_bounds_decided_from_the_signals_are_the_verdicts_of_measuring_again():
    table = docs(PROSE, REPEATED, RANDOM, PROSE[:60])
    _, signals, _ = judge_families(table, only_compression())
    for bounds in ({"max_ratio": 10.0}, {"min_ratio": 1.4}, {"min_ratio": 2.0, "max_ratio": 3.0}):
        families = only_compression(**bounds)
        measured, _, _ = judge_families(table, families)
        decided = decide_filters(signals, families)
        assert decided.keep.tolist() == measured.keep.tolist()
        assert decided.reason.equals(measured.reason)
    assert refilterable("filters.compression.max_ratio")
    assert refilterable("filters.compression.min_ratio")
    assert not refilterable("filters.compression.enabled")


def test_a_minimum_above_the_maximum_is_refused_naming_both():
    with pytest.raises(ConfigError, match="filters.compression.min_ratio = 9.0: must not exceed"):
        load_config(
            overrides={"filters.compression.min_ratio": 9, "filters.compression.max_ratio": 8}
        )
