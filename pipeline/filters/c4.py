"""C4 rules: drop boilerplate lines, then documents that are placeholders, code, or too short.

Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
Transformer" (T5), section 2.2, with the extra line rules of its reference code (tfds c4_utils:
Wikipedia citation marks, over-long words, policy and cookie notices). Unlike the other families,
C4 edits documents: it removes lines and judges what is left. So this filter returns, with its
verdict, the edited text of every row (FilterResult.text), which apply_filters puts in place of
the kept rows' text. Paragraph breaks between the lines that stay are kept.

Deviations from the paper, by default: the terminal-punctuation line rule is off, as in FineWeb
(Penedo et al. 2024), which found it removes about 30% of all tokens and replaced it by the
document-level line-punctuation ratio of corpusmill.pipeline.filters.fineweb; and the curly
bracket rule is off. With the terminal-punctuation rule off, lines without any sentence end
(menus, headings, buttons) are kept but count as no sentence, where C4 counted every kept line
as at least one. Documents are checked for "lorem ipsum" and "{" over their whole text, as the
paper words it, rather than only in lines the line rules kept, as tfds does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.pipeline.filters.base import (
    ENDS_WITH_ELLIPSIS,
    FilterResult,
    ends_with_terminal_punctuation,
    first_failures,
    matches,
    per_row,
)
from corpusmill.pipeline.words import split_words

# Wikipedia-style citation marks: [1], [edit], [citation needed] (tfds c4_utils).
_CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"
# Cookie and policy notices (tfds c4_utils _POLICY_SUBSTRINGS).
_POLICY = "terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies"
# A sentence ends at . ! ? followed by space or the end of the line (closing quotes allowed),
# or at a CJK full stop, question or exclamation mark, which need no space after them.
_SENTENCE_END = r"[.!?]+[\"'”’»)\]]*(\s|$)|[。！？｡]+"


@dataclass(frozen=True)
class C4Config:
    """Line and document rules of C4 (Raffel et al. 2020, section 2.2, and tfds c4_utils)."""

    enabled: bool = field(default=True, metadata={"help": "run the C4 rules"})
    remove_citations: bool = field(
        default=True, metadata={"help": "delete Wikipedia citation marks like [1] and [edit]"}
    )
    # Off as in FineWeb (Penedo et al. 2024): on the web it removes about 30% of all tokens.
    drop_lines_without_terminal_punct: bool = field(
        default=False, metadata={"help": "drop lines that do not end in terminal punctuation"}
    )
    min_words_per_line: int = field(default=3, metadata={"help": "drop lines with fewer words"})
    max_word_length: int = field(
        default=1000, metadata={"help": "drop lines with a word longer than this (characters)"}
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
        default=5, metadata={"help": "remove documents with fewer sentences left after line rules"}
    )


class C4:
    """Drops boilerplate lines and returns the edited texts; removes placeholder and short pages."""

    name = "c4"
    needs_words = False

    def __init__(self, config: C4Config):
        self.config = config

    def __call__(self, docs: pa.Table, words: pa.LargeListArray | None = None) -> FilterResult:
        cfg = self.config
        texts = docs.column("text").combine_chunks()
        num_rows = len(texts)
        if cfg.remove_citations:
            texts = pc.replace_substring_regex(
                pc.replace_substring_regex(texts, _CITATION, ""), " {2,}", " "
            )

        # Every line, empty ones included: they mark paragraph breaks in the edited text.
        line_lists = pc.split_pattern(texts, "\n")
        lines = pc.utf8_trim_whitespace(pc.list_flatten(line_lists))
        parents = pc.list_parent_indices(line_lists).to_numpy()
        empty = pc.equal(pc.binary_length(lines), 0).to_numpy(zero_copy_only=False)
        keep_line = ~empty & self._line_passes(lines)

        sentences = pc.count_substring_regex(lines, _SENTENCE_END).to_numpy()
        n_sentences = per_row(keep_line * sentences, parents, num_rows)
        stays = keep_line | empty
        edited = _join_lines(lines.filter(pa.array(stays)), parents[stays], num_rows)

        verdict = first_failures(
            self.name,
            num_rows,
            [
                ("lorem_ipsum", cfg.drop_lorem_ipsum_docs & matches(texts, "lorem ipsum", True)),
                ("curly_bracket", cfg.drop_curly_bracket_docs & matches(texts, r"\{")),
                ("too_few_sentences", n_sentences < cfg.min_sentences),
            ],
        )
        return dataclasses.replace(verdict, text=edited)

    def _line_passes(self, lines: pa.Array) -> np.ndarray:
        """Whether each line survives the line rules."""
        cfg = self.config
        words = split_words(lines)
        n_words = pc.list_value_length(words).to_numpy(zero_copy_only=False)
        passes = n_words >= cfg.min_words_per_line
        passes &= _longest_token(lines) <= cfg.max_word_length
        if cfg.drop_lines_without_terminal_punct:
            passes &= ends_with_terminal_punctuation(lines) & ~matches(lines, ENDS_WITH_ELLIPSIS)
        if cfg.drop_javascript_lines:
            passes &= ~matches(lines, "javascript", True)
        if cfg.drop_policy_lines:
            passes &= ~matches(lines, _POLICY, True)
        return passes


def _longest_token(lines: pa.Array) -> np.ndarray:
    """Length of the longest whitespace-separated token of each line (0 for an empty line)."""
    tokens = pc.utf8_split_whitespace(lines)
    lengths = pc.utf8_length(pc.list_flatten(tokens)).to_numpy()
    longest = np.zeros(len(lines), np.int64)
    np.maximum.at(longest, pc.list_parent_indices(tokens).to_numpy(), lengths)
    return longest


def _join_lines(lines: pa.Array, parents: np.ndarray, num_rows: int) -> pa.Array:
    """Join each row's lines with newlines, leaving at most one blank line between paragraphs."""
    offsets = np.concatenate([[0], np.cumsum(np.bincount(parents, minlength=num_rows))])
    line_lists = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), lines)
    joined = pc.binary_join(line_lists, pa.scalar("\n", lines.type))
    collapsed = pc.replace_substring_regex(joined, r"\n\n\n+", "\n\n")
    return pc.utf8_trim(collapsed, "\n")
