"""Split text into words, vectorized over a whole string array, for the quality filters and dedup.

A word is a whitespace-separated token with the symbols at its edges trimmed off, so punctuation
and pure symbol tokens ("--", "*", "{", "=>") are not words, numbers are ("3.14", "2024"), and code
identifiers stay one word ("foo_bar", "obj.method()" -> "obj.method"). Scripts written without
spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) have no word boundaries a regex can
find, so each of their characters, with the combining marks that follow it, is a word: a Chinese
article of 2,000 characters is 2,000 words, not 3, which keeps word-count rules meaningful there.
Case is kept; callers lowercase when they compare words.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# One character of a script written without spaces, with its combining marks; U+30FC, the
# Katakana prolonged sound mark, is script Common but belongs to the character before it.
_SPACELESS_CHAR = (
    r"([\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}][\p{M}\x{30FC}]*)"
)
# Symbols at either edge of a token: anything that is not a letter, number or combining mark.
_EDGE_SYMBOLS = r"^[^\p{L}\p{N}\p{M}]+|[^\p{L}\p{N}\p{M}]+$"
# A text is written without spaces when more than this share of its words are such characters.
_SPACELESS_SHARE = 0.5


def split_words(texts: pa.Array | pa.ChunkedArray) -> pa.LargeListArray:
    """The words of each text, one list per text (an empty list for a null or symbol-only text)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    texts = pc.fill_null(texts.cast(pa.large_string()), "")
    spaced = pc.replace_substring_regex(texts, _SPACELESS_CHAR, r" \1 ")
    tokens = pc.utf8_split_whitespace(spaced)
    trimmed = pc.replace_substring_regex(pc.list_flatten(tokens), _EDGE_SYMBOLS, "")
    is_word = pc.greater(pc.binary_length(trimmed), 0)
    parents = pc.list_parent_indices(tokens).to_numpy()
    per_text = np.bincount(parents[is_word.to_numpy(zero_copy_only=False)], minlength=len(texts))
    offsets = np.concatenate([[0], np.cumsum(per_text)]).astype(np.int64)
    return pa.LargeListArray.from_arrays(pa.array(offsets), trimmed.filter(is_word))


def written_without_spaces(words: pa.LargeListArray) -> np.ndarray:
    """Whether most words of each text are single characters of a script written without spaces:
    rules about word lengths and word n-grams, made for spaced text, need adjusting there."""
    single = pc.match_substring_regex(pc.list_flatten(words), f"^{_SPACELESS_CHAR}$")
    parents = pc.list_parent_indices(words).to_numpy()
    weights = single.to_numpy(zero_copy_only=False)
    singles = np.bincount(parents, weights=weights, minlength=len(words))
    counts = pc.list_value_length(words).to_numpy(zero_copy_only=False)
    return singles > _SPACELESS_SHARE * counts
