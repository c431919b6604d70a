"""Perplexity under a reference model: documents unlike the text a user names score high.

Wenzek et al. 2020, "CCNet: Extracting High Quality Monolingual Datasets from Web Crawl Data":
a Kneser–Ney model trained on a reference corpus (Wikipedia there) scores every page, and the
pages are split into head, middle and tail buckets by their perplexity. CCNet's model is a 5-gram
of SentencePiece tokens and its cut-offs are the terciles of each language's perplexities; ours
is a 5-gram of UTF-8 bytes (pipeline/reference.py says why) and the cut-offs are config values
in bits per byte, so that a document's bucket is a function of its own score and the verdicts
can be decided again from the stored signals. By default every bucket is kept: the filter only
measures, and the scores in OUT/signals/ show where to cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from corpusmill.core.checks import POSITIVE, Checked, between, not_above
from corpusmill.core.storage import Location
from corpusmill.pipeline.filters.base import FilterResult, Measures, RuleFamily, Splits
from corpusmill.pipeline.ngram import KneserNey
from corpusmill.pipeline.reference import bits_per_byte, load_model

BUCKETS = ("head", "middle", "tail")


def _buckets(values: tuple[str, ...], _: object) -> str | None:
    """Allow names of buckets only."""
    unknown = [value for value in values if value not in BUCKETS]
    return f"unknown bucket {unknown[0]!r}; use head, middle and tail" if unknown else None


@dataclass(frozen=True)
class PerplexityConfig(Checked):
    """The reference the model learns from, the model, and the buckets' cut-offs."""

    reference: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "files, folders, globs or URLs of text the kept pages should resemble, in "
            "any format the run reads (WARC, WET, JSONL, Parquet, .txt); empty: no "
            "perplexity filter",
            "path": True,
        },
    )
    reference_bytes: int = field(
        default=8 << 20,
        metadata={
            "help": "train the model on at most this many bytes of the reference, from its "
            "first document on",
            "checks": (POSITIVE,),
        },
    )
    # CCNet's order; 7 is the highest whose 257**7 n-gram keys fit 64 bits.
    order: int = field(
        default=5,
        metadata={"help": "n-gram order of the model of bytes", "checks": (between(2, 7),)},
    )
    score_bytes: int = field(
        default=8192,
        metadata={
            "help": "score each document's first this many bytes (bounds the cost of long pages)",
            "checks": (POSITIVE,),
        },
    )
    head_max: float = field(
        default=2.0,
        metadata={
            "help": "documents of at most this many bits per byte are the head bucket",
            "checks": (POSITIVE, not_above("middle_max")),
        },
    )
    middle_max: float = field(
        default=3.0,
        metadata={
            "help": "documents above head_max and at most this many bits per byte are the "
            "middle bucket; those above it the tail",
            "checks": (POSITIVE,),
        },
    )
    keep: tuple[str, ...] = field(
        default=BUCKETS,
        metadata={
            "help": "the buckets kept; a document of another is removed as perplexity:<bucket>",
            "checks": (_buckets,),
        },
    )

    @property
    def enabled(self) -> bool:
        """On once a reference is named."""
        return bool(self.reference)


class Perplexity(RuleFamily[PerplexityConfig]):
    """Removes documents whose perplexity bucket under the reference model is not kept."""

    name = "perplexity"
    signal_fields = (pa.field("bits_per_byte", pa.float64(), False),)
    signal_keys = frozenset({"reference", "reference_bytes", "order", "score_bytes"})

    def __init__(self, config: PerplexityConfig, model: Location | None = None):
        """`model` is where the run saved the reference model, which measuring needs and
        deciding does not."""
        super().__init__(config)
        self.model_path = model

    @cached_property
    def model(self) -> KneserNey:
        """The reference model, loaded on first use."""
        if self.model_path is None:
            raise ValueError("the perplexity filter measures with a reference model; none given")
        return load_model(self.model_path)

    def measure(self, docs: pa.Table, splits: Splits) -> Measures:
        scores = bits_per_byte(self.model, splits.texts, self.config.score_bytes)
        return Measures({"bits_per_byte": scores})

    def decide(self, signals: Mapping[str, Any]) -> FilterResult:
        cfg = self.config
        scores = np.asarray(signals["bits_per_byte"])
        bucket = (scores > cfg.head_max).astype(np.int32) + (scores > cfg.middle_max)
        removed = ~np.isin(bucket, [BUCKETS.index(name) for name in cfg.keep])
        names = pa.array([f"{self.name}:{name}" for name in BUCKETS], pa.string())
        reason = names.take(pa.array(bucket, pa.int32(), mask=~removed))
        return FilterResult(~removed, reason)
