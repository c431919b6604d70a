"""Gopher quality rules: word count and length, symbols, bullets, ellipses, letters, stop words.

Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
appendix A (MassiveWeb quality filter); the defaults below are the paper's. Two rules do not fit
every language: the stop-word rule runs only for languages with a list in STOP_WORDS, and the
mean-word-length rule is skipped for text written without spaces (Chinese, Japanese, Thai...),
whose words are single characters (see corpusmill.pipeline.words).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.pipeline.filters.base import (
    ENDS_WITH_ELLIPSIS,
    FilterResult,
    first_failures,
    is_in,
    matches,
    per_row,
    ratio,
    split_nonempty,
)
from corpusmill.pipeline.words import split_words, written_without_spaces

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
_STOP_KEYS = sorted(f"{lang}\t{word}" for lang, words in STOP_WORDS.items() for word in words)

# Characters that start a bulleted line.
_BULLETS = "•‣◦●○▪▫■□◆◇►▸▹▶➢➤✓✔*·-"
_BULLET_LINE = f"^[{re.escape(_BULLETS)}]"


@dataclass(frozen=True)
class GopherQualityConfig:
    """Thresholds of the Gopher quality rules (Rae et al. 2021, appendix A)."""

    enabled: bool = field(default=True, metadata={"help": "run the Gopher quality rules"})
    min_words: int = field(default=50, metadata={"help": "remove documents with fewer words"})
    max_words: int = field(default=100_000, metadata={"help": "remove documents with more words"})
    min_mean_word_length: float = field(
        default=3.0, metadata={"help": "remove documents with a shorter mean word length"}
    )
    max_mean_word_length: float = field(
        default=10.0, metadata={"help": "remove documents with a longer mean word length"}
    )
    max_symbol_word_ratio: float = field(
        default=0.1,
        metadata={"help": "remove documents with more '#', or more ellipses, per word"},
    )
    max_bullet_lines_ratio: float = field(
        default=0.9,
        metadata={"help": "remove documents with more of their lines starting with a bullet"},
    )
    max_ellipsis_lines_ratio: float = field(
        default=0.3,
        metadata={"help": "remove documents with more of their lines ending with an ellipsis"},
    )
    min_alpha_words_ratio: float = field(
        default=0.8,
        metadata={"help": "remove documents with fewer of their words containing a letter"},
    )
    min_stop_words: int = field(
        default=2,
        metadata={"help": "remove documents with fewer stop words (languages with a list)"},
    )


class GopherQuality:
    """Removes documents that are too short or long, symbol-heavy, list-like, or not prose."""

    name = "gopher_quality"
    needs_words = True

    def __init__(self, config: GopherQualityConfig):
        self.config = config

    def __call__(self, docs: pa.Table, words: pa.LargeListArray | None = None) -> FilterResult:
        cfg = self.config
        texts = docs.column("text").combine_chunks()
        langs = docs.column("lang").combine_chunks()
        num_rows = len(texts)

        words = split_words(texts) if words is None else words
        parents = pc.list_parent_indices(words).to_numpy()
        flat = pc.list_flatten(words)
        n_words = pc.list_value_length(words).to_numpy(zero_copy_only=False)
        letters = per_row(pc.utf8_length(flat).to_numpy(), parents, num_rows)
        mean_length = ratio(letters, n_words)
        spaced = ~written_without_spaces(words)

        hashes = pc.count_substring(texts, "#").to_numpy()
        ellipses = (
            pc.count_substring(texts, "...").to_numpy() + pc.count_substring(texts, "…").to_numpy()
        )

        lines, line_parents = split_nonempty(texts, r"\n")
        n_lines = np.bincount(line_parents, minlength=num_rows)
        bullet_lines = per_row(matches(lines, _BULLET_LINE), line_parents, num_rows)
        ellipsis_lines = per_row(matches(lines, ENDS_WITH_ELLIPSIS), line_parents, num_rows)

        alpha_words = per_row(matches(flat, r"\p{L}"), parents, num_rows)

        word_langs = pc.take(langs, pa.array(parents)).cast(flat.type)
        tab = pa.scalar("\t", flat.type)
        keys = pc.binary_join_element_wise(word_langs, pc.utf8_lower(flat), tab)
        stop_words = per_row(is_in(keys, _STOP_KEYS), parents, num_rows)
        has_stop_list = is_in(langs, tuple(STOP_WORDS))

        return first_failures(
            self.name,
            num_rows,
            [
                ("too_few_words", n_words < cfg.min_words),
                ("too_many_words", n_words > cfg.max_words),
                ("short_mean_word_length", spaced & (mean_length < cfg.min_mean_word_length)),
                ("long_mean_word_length", spaced & (mean_length > cfg.max_mean_word_length)),
                ("too_many_hashes", ratio(hashes, n_words) > cfg.max_symbol_word_ratio),
                ("too_many_ellipses", ratio(ellipses, n_words) > cfg.max_symbol_word_ratio),
                (
                    "too_many_bullet_lines",
                    ratio(bullet_lines, n_lines) > cfg.max_bullet_lines_ratio,
                ),
                (
                    "too_many_ellipsis_lines",
                    ratio(ellipsis_lines, n_lines) > cfg.max_ellipsis_lines_ratio,
                ),
                ("too_few_alpha_words", ratio(alpha_words, n_words) < cfg.min_alpha_words_ratio),
                ("too_few_stop_words", has_stop_list & (stop_words < cfg.min_stop_words)),
            ],
        )
