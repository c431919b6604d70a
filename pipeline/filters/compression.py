"""Compression ratio: documents that compress far more, or far less, than prose does.

A document's UTF-8 bytes over its zstd-compressed bytes (level 3), one of RedPajama-V2's quality
signals and of every run's document signals (base DOCUMENT_SIGNALS). Prose compresses about 3x
(the median of the sample crawl and of the generated benchmark crawl; 95 % of their documents
below 7.5x). Text that repeats itself compresses far more: a navigation line repeated 200 times
139x, the sample's keyword-spam and boilerplate pages over 100x. Text with little redundancy
compresses hardly at all: base64 of random bytes 1.3x, random letters 1.6x, binary or encrypted
data read as text about 1x. Short texts compress badly whatever they say (zstd's frame costs
about a dozen bytes: a line of 60 characters comes out near 0.9x), so a minimum removes short
documents too; the Gopher quality rules before this family remove most of them first.

Both bounds are off by default, so the family only measures; since its ratio is stored for every
document, bounds set later are decided from the stored signals (pipeline/refilter.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from corpusmill.core.checks import NON_NEGATIVE, Checked, not_above
from corpusmill.pipeline.filters.base import (
    FilterResult,
    Measures,
    RuleFamily,
    Splits,
    first_failures,
)


@dataclass(frozen=True)
class CompressionConfig(Checked):
    """Bounds on a document's compression ratio, its UTF-8 bytes over its zstd bytes."""

    enabled: bool = field(default=True, metadata={"help": "measure the compression ratio"})
    min_ratio: float = field(
        default=0.0,
        metadata={
            "help": "remove documents that compress less than this (encoded or binary data, "
            "random characters; also short texts); 0 removes none",
            "checks": (NON_NEGATIVE, not_above("max_ratio")),
        },
    )
    max_ratio: float = field(
        default=math.inf,
        metadata={
            "help": "remove documents that compress more than this (repeated lines, "
            "boilerplate, keyword lists); inf removes none",
            "checks": (NON_NEGATIVE,),
        },
    )


class Compression(RuleFamily[CompressionConfig]):
    """Removes documents whose compression ratio is outside the configured bounds."""

    name = "compression"
    signal_fields = (pa.field("ratio", pa.float64(), False),)

    def measure(self, docs: pa.Table, splits: Splits) -> Measures:
        return Measures({"ratio": splits.compression_ratios})

    def decide(self, signals: Mapping[str, Any]) -> FilterResult:
        cfg, ratios = self.config, signals["ratio"]
        return first_failures(
            self.name,
            len(ratios),
            [("incompressible", ratios < cfg.min_ratio), ("repetitive", ratios > cfg.max_ratio)],
        )
