"""C4 rules: drop boilerplate lines, then documents that are placeholders, code, or too short.

Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
Transformer" (T5), section 2.2, with the extra line rules of its reference code (tfds c4_utils:
Wikipedia citation marks, over-long words, policy and cookie notices). Unlike the other families,
C4 edits documents: it removes lines and judges what is left. So this filter returns, with its
verdict, the view of every row's edited text (FilterResult.edited), which apply_filters puts in
place of the kept rows' text. Paragraph breaks between the lines that stay are kept.

Deviations from the paper, by default: the terminal-punctuation line rule is off, as in FineWeb
(Penedo et al. 2024), which found it removes about 30% of all tokens and replaced it by the
document-level line-punctuation ratio of corpusmill.pipeline.filters.fineweb; and the curly
bracket rule is off. With the terminal-punctuation rule off, lines without any sentence end
(menus, headings, buttons) are kept but count as no sentence, where C4 counted every kept line
as at least one. Documents are checked for "lorem ipsum" and "{" over their whole text, as the
paper words it, rather than only in lines the line rules kept, as tfds does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.checks import NON_NEGATIVE, POSITIVE, Checked
from corpusmill.pipeline.filters.base import (
    FilterResult,
    Measures,
    RuleFamily,
    Splits,
    ends_with_ellipsis,
    ends_with_terminal_punctuation,
    first_failures,
    matches,
    sentence_counts,
    to_bool,
)

# Wikipedia-style citation marks: [1], [edit], [citation needed] (tfds c4_utils).
_CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"
# Cookie and policy notices (tfds c4_utils _POLICY_SUBSTRINGS).
_POLICY = "terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies"


@dataclass(frozen=True)
class C4Config(Checked):
    """Line and document rules of C4 (Raffel et al. 2020, section 2.2, and tfds c4_utils)."""

    enabled: bool = field(default=True, metadata={"help": "run the C4 rules"})
    remove_citations: bool = field(
        default=True, metadata={"help": "delete Wikipedia citation marks like [1] and [edit]"}
    )
    # Off as in FineWeb (Penedo et al. 2024): on the web it removes about 30% of all tokens.
    drop_lines_without_terminal_punct: bool = field(
        default=False, metadata={"help": "drop lines that do not end in terminal punctuation"}
    )
    min_words_per_line: int = field(
        default=3, metadata={"help": "drop lines with fewer words", "checks": (NON_NEGATIVE,)}
    )
    max_word_length: int = field(
        default=1000,
        metadata={
            "help": "drop lines with a word longer than this (characters)",
            "checks": (POSITIVE,),
        },
    )
    drop_javascript_lines: bool = field(
        default=True, metadata={"help": 'drop lines mentioning javascript ("enable JavaScript")'}
    )
    drop_policy_lines: bool = field(
        default=True, metadata={"help": "drop lines with cookie, privacy or terms-of-use notices"}
    )
    drop_lorem_ipsum_docs: bool = field(
        default=True, metadata={"help": 'remove documents containing "lorem ipsum"'}
    )
    # Off: C4 used "{" to catch code, but we keep technical pages with code; the filters are meant
    # to remove spam, boilerplate and gibberish, not good technical text.
    drop_curly_bracket_docs: bool = field(
        default=False, metadata={"help": "remove documents containing a curly bracket"}
    )
    min_sentences: int = field(
        default=5,
        metadata={
            "help": "remove documents with fewer sentences left after line rules",
            "checks": (NON_NEGATIVE,),
        },
    )


class C4(RuleFamily[C4Config]):
    """Drops boilerplate lines and returns the edited texts; removes placeholder and short pages."""

    name = "c4"
    signal_fields = (
        pa.field("lorem_ipsum", pa.bool_(), False),
        pa.field("curly_bracket", pa.bool_(), False),
        pa.field("sentences", pa.int64(), False),
    )
    # The line rules decide what is left of a text; the document rules only judge it.
    signal_keys = frozenset(
        {
            "remove_citations",
            "drop_lines_without_terminal_punct",
            "min_words_per_line",
            "max_word_length",
            "drop_javascript_lines",
            "drop_policy_lines",
        }
    )
    edits = True

    def measure(self, docs: pa.Table, splits: Splits) -> Measures:
        cfg = self.config
        texts, num_rows = splits.texts, splits.num_rows
        if cfg.remove_citations:
            texts = pc.replace_substring_regex(
                pc.replace_substring_regex(texts, _CITATION, ""), " {2,}", " "
            )
            splits = splits.rewritten(texts)

        # Every line, empty ones included: they mark paragraph breaks in the edited text.
        lines = pc.utf8_trim_whitespace(splits.lines)
        parents = splits.line_rows
        empty = pc.equal(pc.binary_length(lines), 0).to_numpy(zero_copy_only=False)
        keep_line = ~empty & self._line_passes(lines, splits, texts)
        stays = keep_line | empty
        edited = _join_lines(lines.filter(pa.array(stays)), parents[stays], num_rows)
        # The sentences of the kept lines: none runs across the line breaks joining them.
        n_sentences = sentence_counts(edited)

        signals = {
            "lorem_ipsum": matches(texts, "lorem ipsum", True),
            "curly_bracket": matches(texts, r"\{"),
            "sentences": n_sentences,
        }
        return Measures(signals, _edited_splits(edited, splits.line_word_counts[keep_line]))

    def decide(self, signals: Mapping[str, Any]) -> FilterResult:
        cfg = self.config
        return first_failures(
            self.name,
            len(signals["sentences"]),
            [
                ("lorem_ipsum", cfg.drop_lorem_ipsum_docs & signals["lorem_ipsum"]),
                ("curly_bracket", cfg.drop_curly_bracket_docs & signals["curly_bracket"]),
                ("too_few_sentences", signals["sentences"] < cfg.min_sentences),
            ],
        )

    def _line_passes(self, lines: pa.Array, splits: Splits, texts: pa.Array) -> np.ndarray:
        """Whether each line (of `splits`, trimmed) survives the line rules."""
        cfg = self.config
        passes = splits.line_word_counts >= cfg.min_words_per_line
        passes &= ~_has_long_token(lines, cfg.max_word_length)
        if cfg.drop_lines_without_terminal_punct:
            passes &= ends_with_terminal_punctuation(lines) & ~ends_with_ellipsis(lines)
        if cfg.drop_javascript_lines:
            passes &= ~_line_mentions(lines, splits.line_rows, texts, "javascript")
        if cfg.drop_policy_lines:
            passes &= ~_line_mentions(lines, splits.line_rows, texts, _POLICY)
        return passes


def _has_long_token(lines: pa.Array, max_length: int) -> np.ndarray:
    """Whether each line has a whitespace-separated token of more than `max_length` characters;
    only lines of more bytes than that can."""
    candidates = np.flatnonzero(to_bool(pc.greater(pc.binary_length(lines), max_length)))
    tokens = pc.utf8_split_whitespace(lines.take(pa.array(candidates)))
    lengths = pc.utf8_length(pc.list_flatten(tokens)).to_numpy()
    longest = np.zeros(len(candidates), np.int64)
    np.maximum.at(longest, pc.list_parent_indices(tokens).to_numpy(), lengths)
    has_long = np.zeros(len(lines), bool)
    has_long[candidates] = longest > max_length
    return has_long


def _line_mentions(lines: pa.Array, rows: np.ndarray, texts: pa.Array, pattern: str) -> np.ndarray:
    """Whether each line contains a match of `pattern`, ignoring case; only the lines of texts
    that contain one are searched."""
    candidates = np.flatnonzero(matches(texts, pattern, True)[rows])
    mentions = np.zeros(len(lines), bool)
    mentions[candidates] = matches(lines.take(pa.array(candidates)), pattern, True)
    return mentions


def _join_lines(lines: pa.Array, parents: np.ndarray, num_rows: int) -> pa.Array:
    """Join each row's lines (in row order) with newlines, leaving at most one blank line between
    paragraphs and none at either end: of a run of empty lines, only the first stays, and only
    between two non-empty lines of its row."""
    empty = to_bool(pc.equal(pc.binary_length(lines), 0))
    index = np.arange(len(lines))
    after_text = np.zeros(len(lines), bool)
    after_text[1:] = ~empty[:-1] & (parents[1:] == parents[:-1])
    last_text = np.full(num_rows, -1)
    np.maximum.at(last_text, parents[~empty], index[~empty])
    stays = ~empty | (after_text & (index < last_text[parents]))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(parents[stays], minlength=num_rows))])
    line_lists = pa.LargeListArray.from_arrays(
        pa.array(offsets, pa.int64()), lines.filter(pa.array(stays))
    )
    return pc.binary_join(line_lists, pa.scalar("\n", lines.type))


def _edited_splits(edited: pa.Array, kept_line_word_counts: np.ndarray) -> Splits:
    """The view of the edited texts, whose non-empty lines are the kept lines, in order, so
    their word counts are known."""
    splits = Splits.of(edited)
    counts = np.zeros(len(splits.lines), np.int64)
    counts[to_bool(pc.greater(pc.binary_length(splits.lines), 0))] = kept_line_word_counts
    return splits.knowing_line_word_counts(counts)
