"""FineWeb's own rules: lines without punctuation, short lines, duplicated lines, list-like pages.

Penedo et al. 2024, "The FineWeb Datasets: Decanting the Web for the Finest Text Data at Scale",
its custom heuristic filters, with the names and defaults of datatrove's FineWebQualityFilter,
which produced FineWeb, except one: datatrove's default duplicated-line character ratio is 0.01,
the paper reports 0.1, which we use: at 0.01 one repeated 30-character line removes a
3,000-character page.

Lines are the non-empty lines: our texts separate paragraphs by a blank line, FineWeb's
(trafilatura output) did not, so counting blank lines would make every page look list-like.
Line ends count as punctuated with the sentence-ending marks of any script (base
TERMINAL_PUNCTUATION), not only datatrove's . ' " ! ?, so CJK prose is not taken for a list.
Words for the line-break ratio exclude punctuation (corpusmill.pipeline.words), where datatrove's
tokenizer counts punctuation marks as words, so that ratio comes out somewhat higher than there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.checks import FRACTION, NON_NEGATIVE, Checked
from corpusmill.pipeline.filters.base import (
    FilterResult,
    Measures,
    RuleFamily,
    Splits,
    ends_with_terminal_punctuation,
    first_failures,
    later_duplicates,
    per_row,
    ratio,
)


@dataclass(frozen=True)
class FineWebConfig(Checked):
    """Thresholds of FineWeb's custom filters (Penedo et al. 2024), named as in datatrove."""

    enabled: bool = field(default=True, metadata={"help": "run FineWeb's rules"})
    line_punct_thr: float = field(
        default=0.12,
        metadata={
            "help": "remove documents with at most this fraction of lines punctuated",
            "checks": (FRACTION,),
        },
    )
    short_line_length: int = field(
        default=30,
        metadata={
            "help": "a line of at most this many characters is short",
            "checks": (NON_NEGATIVE,),
        },
    )
    short_line_thr: float = field(
        default=0.67,
        metadata={
            "help": "remove documents with at least this fraction of short lines",
            "checks": (FRACTION,),
        },
    )
    char_duplicates_ratio: float = field(
        default=0.1,
        metadata={
            "help": "remove documents with at least this fraction in repeated lines",
            "checks": (FRACTION,),
        },
    )
    new_line_ratio: float = field(
        default=0.3,
        metadata={
            "help": "remove documents with more line breaks per word than this",
            "checks": (NON_NEGATIVE,),
        },
    )


class FineWeb(RuleFamily[FineWebConfig]):
    """Removes pages made of unpunctuated, short or repeated lines, and list-like pages."""

    name = "fineweb"
    signal_fields = tuple(
        pa.field(name, pa.float64(), False)
        for name in ("line_punct_ratio", "short_line_ratio", "char_dup_ratio", "new_line_ratio")
    )
    signal_keys = frozenset({"short_line_length"})

    def measure(self, docs: pa.Table, splits: Splits) -> Measures:
        cfg = self.config
        num_rows = splits.num_rows

        lines, parents = splits.nonempty_lines
        n_lines = np.bincount(parents, minlength=num_rows)
        line_chars = pc.utf8_length(lines).to_numpy()
        punctuated_lines = per_row(ends_with_terminal_punctuation(lines), parents, num_rows)
        punctuated = ratio(punctuated_lines, n_lines)
        short = ratio(per_row(line_chars <= cfg.short_line_length, parents, num_rows), n_lines)
        dup_chars = per_row(later_duplicates(lines, parents) * line_chars, parents, num_rows)
        dup_ratio = ratio(dup_chars, per_row(line_chars, parents, num_rows))
        n_words = splits.word_counts
        # Line breaks between the non-empty lines, as FineWeb's texts had no blank lines.
        line_breaks = np.maximum(n_lines - 1, 0)

        return Measures(
            {
                "line_punct_ratio": punctuated,
                "short_line_ratio": short,
                "char_dup_ratio": dup_ratio,
                "new_line_ratio": ratio(line_breaks, n_words),
            }
        )

    def decide(self, signals: Mapping[str, Any]) -> FilterResult:
        cfg = self.config
        return first_failures(
            self.name,
            len(signals["line_punct_ratio"]),
            [
                ("line_punct_ratio", signals["line_punct_ratio"] <= cfg.line_punct_thr),
                ("short_line_ratio", signals["short_line_ratio"] >= cfg.short_line_thr),
                ("char_dup_ratio", signals["char_dup_ratio"] >= cfg.char_duplicates_ratio),
                ("list_ratio", signals["new_line_ratio"] > cfg.new_line_ratio),
            ],
        )
