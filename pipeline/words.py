"""Split text into words, vectorized over a whole string array, for the quality filters and dedup.

A word is a whitespace-separated token with the symbols at its edges trimmed off, so punctuation
and pure symbol tokens ("--", "*", "{", "=>") are not words, numbers are ("3.14", "2024"), and code
identifiers stay one word ("foo_bar", "obj.method()" -> "obj.method"). Scripts written without
spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) have no word boundaries a regex can
find, so each of their characters, with the combining marks that follow it, is a word: a Chinese
article of 2,000 characters is 2,000 words, not 3, which keeps word-count rules meaningful there.
Case is kept; callers lowercase when they compare words (Words.lowered). Words are found by two
regular-expression passes over whole texts, not one per token: Arrow's regex kernels pay a fixed
cost for every string and every match, and a text has thousands of tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# One character of a script written without spaces, with its combining marks; U+30FC, the
# Katakana prolonged sound mark, is script Common but belongs to the character before it.
_SPACELESS_CHAR = (
    r"([\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}][\p{M}\x{30FC}]*)"
)
# The characters Arrow's utf8_split_whitespace splits at that its ascii_split_whitespace does
# not know; those other than "\n"; all of them.
_NON_ASCII_SPACE = (
    r"\x1c-\x1f\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
_INLINE_SPACE = r"\t\x0b-\r\x20" + _NON_ASCII_SPACE
_SPACE = r"\n" + _INLINE_SPACE
# A symbol: anything that is not a letter, number, combining mark or space.
_SYMBOL = rf"[^\p{{L}}\p{{N}}\p{{M}}{_SPACE}]"
# What trimming the symbols off the edges of every token removes, found in whole texts at once
# (line breaks padded with spaces, so that a token's edge symbols always touch another space):
# symbols before a space (with it and the symbols after it) or at the end of the text, symbols
# after a space or at its start, and non-ASCII spaces. Replaced by a space, they leave the words
# separated by ASCII whitespace, and the line breaks in place.
_EDGE_SYMBOLS = (
    rf"{_SYMBOL}+(?:[{_INLINE_SPACE}]{_SYMBOL}*|$)|(?:^|[{_INLINE_SPACE}]){_SYMBOL}+"
    rf"|[{_NON_ASCII_SPACE}]"
)
# A text is written without spaces when more than this share of its words are such characters.
_SPACELESS_SHARE = 0.5


def split_words(texts: pa.Array | pa.ChunkedArray) -> pa.LargeListArray:
    """The words of each text, one list per text (an empty list for a null or symbol-only text)."""
    return _words_between_spaces(_bare(pc.fill_null(_large_strings(texts), "")))


def split_line_words(texts: pa.Array | pa.ChunkedArray) -> pa.LargeListArray:
    """The words of every line of every text, one list per line: split_words of the texts' lines
    (split at "\\n" as pc.split_pattern splits them, so a null text has none), found in the
    whole texts at once, which is faster than line by line."""
    lines = pc.split_pattern(_bare(_large_strings(texts)), "\n")
    return _words_between_spaces(pc.list_flatten(lines))


def written_without_spaces(words: pa.LargeListArray) -> np.ndarray:
    """Whether most words of each text are single characters of a script written without spaces:
    rules about word lengths and word n-grams, made for spaced text, need adjusting there."""
    return Words.of(words).spaceless


class Words:
    """The words of a batch's texts, or of the rows of it still in play: one flat array of all
    the words, split once, the positions of those in play and the row of each. What filters
    derive from words (length, lowercased form...) is computed once per distinct word of the
    batch and shared by every Words narrowed from it, so narrowing never copies a word."""

    def __init__(
        self,
        flat: pa.Array,
        rows: np.ndarray,
        num_rows: int,
        positions: np.ndarray | None = None,
        derived: dict | None = None,
    ):
        self.rows = rows
        self.num_rows = num_rows
        self._flat = flat
        self._positions = positions  # None: all of `flat`, in order
        self._derived = {} if derived is None else derived

    @classmethod
    def of(cls, words: Words | pa.LargeListArray) -> Words:
        """`words` as Words, taking word lists (as from split_words) row for row."""
        if isinstance(words, Words):
            return words
        rows = pc.list_parent_indices(words).to_numpy()
        return cls(pc.list_flatten(words), rows, len(words))

    @cached_property
    def counts(self) -> np.ndarray:
        """The number of words of each row."""
        return np.bincount(self.rows, minlength=self.num_rows)

    @property
    def lengths(self) -> np.ndarray:
        """The length of each word in characters."""
        return self._per_word("lengths", lambda distinct: pc.utf8_length(distinct).to_numpy())

    @property
    def lowered(self) -> tuple[np.ndarray, pa.Array]:
        """Each word's index in the distinct lowercased words of the batch, and those words."""
        lowered = self._derive(
            "lowered", lambda distinct: pc.dictionary_encode(pc.utf8_lower(distinct))
        )
        return lowered.indices.to_numpy()[self._ids], lowered.dictionary

    @property
    def has_letter(self) -> np.ndarray:
        """Whether each word contains a letter."""
        return self._per_word("has_letter", lambda distinct: _matches(distinct, r"\p{L}"))

    @cached_property
    def spaceless(self) -> np.ndarray:
        """Whether most words of each row are single characters of a script written without
        spaces (written_without_spaces)."""
        single = self._per_word(
            "single", lambda distinct: _matches(distinct, f"^{_SPACELESS_CHAR}$")
        )
        singles = np.bincount(self.rows[single], minlength=self.num_rows)
        return singles > _SPACELESS_SHARE * self.counts

    def filter(self, keep: np.ndarray) -> Words:
        """The words of the rows where `keep` is true."""
        word_keep = keep[self.rows]
        positions = self._select(np.arange(len(self._flat)))[word_keep]
        new_rows = (np.cumsum(keep) - 1)[self.rows[word_keep]]
        return Words(self._flat, new_rows, int(np.count_nonzero(keep)), positions, self._derived)

    def _per_word(self, name: str, derive: Callable[[pa.Array], np.ndarray]) -> np.ndarray:
        """The value `derive` gives each distinct word of the batch, for each word in play."""
        return self._derive(name, derive)[self._ids]

    def _derive(self, name: str, derive: Callable[[pa.Array], Any]) -> Any:
        """What `derive` gives for the distinct words of the batch, computed once."""
        if name not in self._derived:
            self._derived[name] = derive(self._distinct().dictionary)
        return self._derived[name]

    @cached_property
    def _ids(self) -> np.ndarray:
        """Each word's index in the distinct words of the batch."""
        return self._select(self._distinct().indices.to_numpy())

    def _distinct(self) -> pa.DictionaryArray:
        """The batch's words, dictionary-encoded once."""
        if "distinct" not in self._derived:
            self._derived["distinct"] = pc.dictionary_encode(self._flat)
        return self._derived["distinct"]

    def _select(self, values: np.ndarray) -> np.ndarray:
        """Of per-word values for all the words of the batch, those of the words in play."""
        return values if self._positions is None else values[self._positions]


def _large_strings(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`texts` as one large_string array."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    return texts.cast(pa.large_string())


def _bare(texts: pa.Array) -> pa.Array:
    """The texts with each character of a script written without spaces set apart by spaces and
    the symbols at the edges of every token turned into spaces: only words are left between
    ASCII whitespace, line breaks stay where they were."""
    spaced = pc.replace_substring_regex(texts, _SPACELESS_CHAR, r" \1 ")
    padded = pc.replace_substring(spaced, "\n", " \n ")
    return pc.replace_substring_regex(padded, _EDGE_SYMBOLS, " ")


def _words_between_spaces(bare: pa.Array) -> pa.LargeListArray:
    """The ASCII-whitespace-separated tokens of each string, one list per string."""
    bare = pc.ascii_trim_whitespace(bare)
    # An empty string splits into one empty token, a null one into none: empty strings are made
    # null before splitting, cheaper than removing their tokens from all the words after.
    empty = pc.equal(pc.binary_length(bare), 0)
    tokens = pc.ascii_split_whitespace(pc.if_else(empty, pa.scalar(None, bare.type), bare))
    offsets = tokens.offsets.to_numpy().astype(np.int64)
    return pa.LargeListArray.from_arrays(pa.array(offsets), pc.list_flatten(tokens))


def _matches(strings: pa.Array, pattern: str) -> np.ndarray:
    """Whether each string contains a match of the RE2 `pattern`."""
    return pc.match_substring_regex(strings, pattern).to_numpy(zero_copy_only=False)
