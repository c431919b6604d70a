"""Gopher quality rules: word count and length, symbols, bullets, ellipses, letters, stop words.

Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
appendix A (MassiveWeb quality filter); the defaults below are the paper's. Two rules do not fit
every language: the stop-word rule runs only for languages with a list in STOP_WORDS, and the
mean-word-length rule is skipped for text written without spaces (Chinese, Japanese, Thai...),
whose words are single characters (see corpusmill.pipeline.words).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.checks import FRACTION, NON_NEGATIVE, Checked, not_above
from corpusmill.pipeline.filters.base import (
    FilterResult,
    Measures,
    RuleFamily,
    Splits,
    ends_with_ellipsis,
    first_failures,
    is_in,
    per_row,
    ratio,
    to_bool,
)
from corpusmill.pipeline.words import Words

# Gopher's eight English words ("the, be, to, of, and, that, have, with"), and for other languages
# a few of their most frequent function words, chosen so that running prose has several of them
# in any paragraph. Counted per occurrence, lowercased.
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the be to of and that have with".split()),
    "de": frozenset("der die das und ist nicht zu mit ein eine den von auf sich".split()),
    "fr": frozenset("le la les de et est un une des du que pour dans pas".split()),
    "es": frozenset("el la los las de y que en es un una por con para".split()),
    "it": frozenset("il la di e che è un una per non del con sono".split()),
    "pt": frozenset("o a os as de e que do da em um uma para com não".split()),
    "nl": frozenset("de het een en van is dat op te met niet voor".split()),
    "ru": frozenset("и в не на что с по это как он к но из то".split()),
}
_STOP_LANGS = pa.array(list(STOP_WORDS), pa.string())

# Characters that start a bulleted line.
_BULLETS = "•‣◦●○▪▫■□◆◇►▸▹▶➢➤✓✔*·-"


@dataclass(frozen=True)
class GopherQualityConfig(Checked):
    """Thresholds of the Gopher quality rules (Rae et al. 2021, appendix A)."""

    enabled: bool = field(default=True, metadata={"help": "run the Gopher quality rules"})
    min_words: int = field(
        default=50,
        metadata={
            "help": "remove documents with fewer words",
            "checks": (NON_NEGATIVE, not_above("max_words")),
        },
    )
    max_words: int = field(
        default=100_000,
        metadata={"help": "remove documents with more words", "checks": (NON_NEGATIVE,)},
    )
    min_mean_word_length: float = field(
        default=3.0,
        metadata={
            "help": "remove documents with a shorter mean word length",
            "checks": (NON_NEGATIVE, not_above("max_mean_word_length")),
        },
    )
    max_mean_word_length: float = field(
        default=10.0,
        metadata={
            "help": "remove documents with a longer mean word length",
            "checks": (NON_NEGATIVE,),
        },
    )
    max_symbol_word_ratio: float = field(
        default=0.1,
        metadata={
            "help": "remove documents with more '#', or more ellipses, per word",
            "checks": (NON_NEGATIVE,),
        },
    )
    max_bullet_lines_ratio: float = field(
        default=0.9,
        metadata={
            "help": "remove documents with more of their lines starting with a bullet",
            "checks": (FRACTION,),
        },
    )
    max_ellipsis_lines_ratio: float = field(
        default=0.3,
        metadata={
            "help": "remove documents with more of their lines ending with an ellipsis",
            "checks": (FRACTION,),
        },
    )
    min_alpha_words_ratio: float = field(
        default=0.8,
        metadata={
            "help": "remove documents with fewer of their words containing a letter",
            "checks": (FRACTION,),
        },
    )
    min_stop_words: int = field(
        default=2,
        metadata={
            "help": "remove documents with fewer stop words (languages with a list)",
            "checks": (NON_NEGATIVE,),
        },
    )


class GopherQuality(RuleFamily[GopherQualityConfig]):
    """Removes documents that are too short or long, symbol-heavy, list-like, or not prose."""

    name = "gopher_quality"
    signal_fields = (
        pa.field("words", pa.int64(), False),
        pa.field("mean_word_length", pa.float64(), False),
        # Whether the text is written with spaces (the mean-word-length rules apply).
        pa.field("spaced", pa.bool_(), False),
        pa.field("hash_word_ratio", pa.float64(), False),
        pa.field("ellipsis_word_ratio", pa.float64(), False),
        pa.field("bullet_lines_ratio", pa.float64(), False),
        pa.field("ellipsis_lines_ratio", pa.float64(), False),
        pa.field("alpha_words_ratio", pa.float64(), False),
        pa.field("stop_words", pa.float64(), False),
        # Whether the document's language has a stop-word list (the stop-word rule applies).
        pa.field("has_stop_list", pa.bool_(), False),
    )

    def measure(self, docs: pa.Table, splits: Splits) -> Measures:
        langs = docs.column("lang").combine_chunks()
        texts, num_rows = splits.texts, splits.num_rows

        text_words = splits.words
        n_words = text_words.counts
        letters = per_row(text_words.lengths, text_words.rows, num_rows)
        mean_length = ratio(letters, n_words)
        spaced = ~text_words.spaceless

        # RE2 finds a literal with memchr, many times faster than Arrow's count_substring.
        hashes = pc.count_substring_regex(texts, "#").to_numpy()
        ellipses = (
            pc.count_substring_regex(texts, r"\.\.\.").to_numpy()
            + pc.count_substring_regex(texts, "…").to_numpy()
        )

        lines, line_rows = splits.nonempty_lines
        n_lines = np.bincount(line_rows, minlength=num_rows)
        first_chars = pc.utf8_slice_codeunits(lines, 0, 1)
        bullet_lines = per_row(is_in(first_chars, _BULLETS), line_rows, num_rows)
        ellipsis_lines = per_row(ends_with_ellipsis(lines), line_rows, num_rows)

        alpha_words = per_row(text_words.has_letter, text_words.rows, num_rows)
        stop_words = per_row(_stop_words(text_words, langs), text_words.rows, num_rows)
        return Measures(
            {
                "words": n_words,
                "mean_word_length": mean_length,
                "spaced": spaced,
                "hash_word_ratio": ratio(hashes, n_words),
                "ellipsis_word_ratio": ratio(ellipses, n_words),
                "bullet_lines_ratio": ratio(bullet_lines, n_lines),
                "ellipsis_lines_ratio": ratio(ellipsis_lines, n_lines),
                "alpha_words_ratio": ratio(alpha_words, n_words),
                "stop_words": stop_words,
                "has_stop_list": is_in(langs, tuple(STOP_WORDS)),
            }
        )

    def decide(self, signals: Mapping[str, Any]) -> FilterResult:
        cfg = self.config
        n_words, spaced = signals["words"], signals["spaced"]
        mean_length = signals["mean_word_length"]
        return first_failures(
            self.name,
            len(n_words),
            [
                ("too_few_words", n_words < cfg.min_words),
                ("too_many_words", n_words > cfg.max_words),
                ("short_mean_word_length", spaced & (mean_length < cfg.min_mean_word_length)),
                ("long_mean_word_length", spaced & (mean_length > cfg.max_mean_word_length)),
                ("too_many_hashes", signals["hash_word_ratio"] > cfg.max_symbol_word_ratio),
                ("too_many_ellipses", signals["ellipsis_word_ratio"] > cfg.max_symbol_word_ratio),
                (
                    "too_many_bullet_lines",
                    signals["bullet_lines_ratio"] > cfg.max_bullet_lines_ratio,
                ),
                (
                    "too_many_ellipsis_lines",
                    signals["ellipsis_lines_ratio"] > cfg.max_ellipsis_lines_ratio,
                ),
                (
                    "too_few_alpha_words",
                    signals["alpha_words_ratio"] < cfg.min_alpha_words_ratio,
                ),
                (
                    "too_few_stop_words",
                    signals["has_stop_list"] & (signals["stop_words"] < cfg.min_stop_words),
                ),
            ],
        )


def _stop_words(words: Words, langs: pa.Array) -> np.ndarray:
    """Whether each word, lowercased, is a stop word of its document's language."""
    ids, distinct = words.lowered
    # Row k: which distinct words are stop words of the k-th language (the last row: none).
    is_stop = np.zeros((len(STOP_WORDS) + 1, len(distinct)), bool)
    for k, stop in enumerate(STOP_WORDS.values()):
        is_stop[k] = to_bool(pc.is_in(distinct, pa.array(sorted(stop), distinct.type)))
    lang_index = pc.fill_null(pc.index_in(langs, _STOP_LANGS), len(STOP_WORDS)).to_numpy()
    return is_stop[lang_index[words.rows], ids]
