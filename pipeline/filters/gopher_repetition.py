"""Gopher repetition rules: duplicate lines and paragraphs, frequent and duplicated word n-grams.

Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
appendix A and table A1; the defaults below are the table's. The fractions follow the paper's
wording, as RedPajama-V2 also reads it:
- lines (non-empty) and paragraphs (split at blank lines): an occurrence is a duplicate when an
  earlier one in the document is equal; the fraction is of units, the character fraction is the
  duplicates' characters over the document's characters (as in datatrove).
- top n-gram (n = 2..4): the characters of the most frequent n-gram times its count, over the
  characters of all words; 0 when no n-gram occurs twice. Ties go to the longest n-gram.
- duplicate n-grams (n = 5..10): the characters of every word inside any occurrence, first one
  included, of an n-gram that occurs more than once, each word counted once however many
  n-grams overlap it, over the characters of all words.
Words are lowercased and exclude punctuation (corpusmill.pipeline.words); characters of n-grams
are those of their words, without the spaces between them. In text written without spaces each
character is a word, and n characters are much less text than n words: there an n-gram is
`spaceless_chars_per_word` times n characters (see the config).

Deviation from datatrove's GopherRepetitionFilter, which counts only repeats after the first
occurrence, skips n words after each repeat, and divides by the length of the whole text: its
duplicate n-gram fractions come out about half of ours for the same text, so ours is stricter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.pipeline.filters.base import (
    FilterResult,
    first_failures,
    later_duplicates,
    per_row,
    ratio,
    split_nonempty,
)
from corpusmill.pipeline.words import split_words, written_without_spaces


@dataclass(frozen=True)
class GopherRepetitionConfig:
    """Maximum repetition fractions (Rae et al. 2021, table A1); a document above any is removed."""

    enabled: bool = field(default=True, metadata={"help": "run the Gopher repetition rules"})
    dup_para_frac: float = field(default=0.30, metadata={"help": "duplicate paragraph fraction"})
    dup_para_char_frac: float = field(
        default=0.20, metadata={"help": "duplicate paragraph character fraction"}
    )
    dup_line_frac: float = field(default=0.30, metadata={"help": "duplicate line fraction"})
    dup_line_char_frac: float = field(
        default=0.20, metadata={"help": "duplicate line character fraction"}
    )
    top_2gram_char_frac: float = field(
        default=0.20, metadata={"help": "top 2-gram character fraction"}
    )
    top_3gram_char_frac: float = field(
        default=0.18, metadata={"help": "top 3-gram character fraction"}
    )
    top_4gram_char_frac: float = field(
        default=0.16, metadata={"help": "top 4-gram character fraction"}
    )
    dup_5gram_char_frac: float = field(
        default=0.15, metadata={"help": "duplicate 5-gram character fraction"}
    )
    dup_6gram_char_frac: float = field(
        default=0.14, metadata={"help": "duplicate 6-gram character fraction"}
    )
    dup_7gram_char_frac: float = field(
        default=0.13, metadata={"help": "duplicate 7-gram character fraction"}
    )
    dup_8gram_char_frac: float = field(
        default=0.12, metadata={"help": "duplicate 8-gram character fraction"}
    )
    dup_9gram_char_frac: float = field(
        default=0.11, metadata={"help": "duplicate 9-gram character fraction"}
    )
    dup_10gram_char_frac: float = field(
        default=0.10, metadata={"help": "duplicate 10-gram character fraction"}
    )
    # Chinese words are mostly one or two characters, so at 2 an n-gram is about as much text as
    # n words. At 1, most Chinese articles of sample_data reach duplicate 5-gram fractions of
    # 0.10-0.25 (a common term plus a particle) and fail; at 2 they stay near 0, its spam above 0.5.
    spaceless_chars_per_word: int = field(
        default=2,
        metadata={"help": "characters per n-gram word in text written without spaces (CJK, Thai)"},
    )


class GopherRepetition:
    """Removes documents that repeat lines, paragraphs or word sequences too much."""

    name = "gopher_repetition"

    def __init__(self, config: GopherRepetitionConfig):
        self.config = config

    def __call__(self, docs: pa.Table) -> FilterResult:
        cfg = self.config
        texts = docs.column("text").combine_chunks()
        num_rows = len(texts)
        text_chars = pc.utf8_length(texts).to_numpy()

        rules = []
        for unit, separator in (("para", r"\n\n+"), ("line", r"\n")):
            values, parents = split_nonempty(texts, separator)
            duplicate = later_duplicates(values, parents)
            dup_chars = duplicate * pc.utf8_length(values).to_numpy()
            count = np.bincount(parents, minlength=num_rows)
            frac = ratio(per_row(duplicate, parents, num_rows), count)
            char_frac = ratio(per_row(dup_chars, parents, num_rows), text_chars)
            rules.append((f"dup_{unit}_frac", frac > getattr(cfg, f"dup_{unit}_frac")))
            char_threshold = getattr(cfg, f"dup_{unit}_char_frac")
            rules.append((f"dup_{unit}_char_frac", char_frac > char_threshold))

        top, dup = self._ngram_fractions(split_words(texts))
        for n in (2, 3, 4):
            rules.append((f"top_{n}_gram", top[n] > getattr(cfg, f"top_{n}gram_char_frac")))
        for n in range(5, 11):
            rules.append((f"dup_{n}_gram", dup[n] > getattr(cfg, f"dup_{n}gram_char_frac")))
        return first_failures(self.name, num_rows, rules)

    def _ngram_fractions(
        self, words: pa.LargeListArray
    ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Top n-gram (n = 2..4) and duplicate n-gram (n = 5..10) character fractions per row,
        with longer n-grams for text written without spaces."""
        top = {n: np.zeros(len(words)) for n in (2, 3, 4)}
        dup = {n: np.zeros(len(words)) for n in range(5, 11)}
        spaceless = written_without_spaces(words)
        for rows, scale in ((~spaceless, 1), (spaceless, self.config.spaceless_chars_per_word)):
            rows = np.flatnonzero(rows)
            if len(rows) == 0:
                continue
            ngrams = _NGrams(words.take(pa.array(rows)), len(rows))
            for n in top:
                top[n][rows] = ratio(ngrams.top_chars(n * scale), ngrams.total_chars)
            for n in dup:
                dup[n][rows] = ratio(ngrams.duplicate_chars(n * scale), ngrams.total_chars)
        return top, dup


class _NGrams:
    """Word n-grams of every document of a batch as integer ids: equal n-grams, equal ids."""

    def __init__(self, words: pa.LargeListArray, num_rows: int):
        flat = pc.list_flatten(words)
        self.num_rows = num_rows
        self.parents = pc.list_parent_indices(words).to_numpy()
        self.lengths = pc.utf8_length(flat).to_numpy()
        self.total_chars = per_row(self.lengths, self.parents, num_rows)
        self._cum_lengths = np.concatenate([[0], np.cumsum(self.lengths)])
        lowered = pc.utf8_lower(flat)
        self._word_ids = pc.dictionary_encode(lowered).indices.to_numpy().astype(np.int64)
        self._n = 1
        self._ids = self._word_ids  # id of the n-gram starting at each word position

    def top_chars(self, n: int) -> np.ndarray:
        """Per document: characters of its most frequent n-gram times its count (0 if none
        repeats)."""
        top = np.zeros(self.num_rows)
        starts, ids = self._grams(n)
        if len(starts) == 0:
            return top
        _, first, counts = np.unique(
            self._doc_keys(starts, ids), return_index=True, return_counts=True
        )
        docs = self.parents[starts[first]]
        chars = self._gram_chars(starts[first], n)
        # Per document, the (count, chars) maximum comes last in this order.
        order = np.lexsort((chars, counts, docs))
        last = order[np.r_[docs[order][1:] != docs[order][:-1], True]]
        repeated = counts[last] > 1
        top[docs[last][repeated]] = (counts[last] * chars[last])[repeated]
        return top

    def duplicate_chars(self, n: int) -> np.ndarray:
        """Per document: characters of the words covered by any n-gram occurring more than once."""
        starts, ids = self._grams(n)
        _, inverse, counts = np.unique(
            self._doc_keys(starts, ids), return_inverse=True, return_counts=True
        )
        repeated = starts[counts[inverse] > 1]
        # Mark [start, start + n) for every repeated n-gram; overlaps count once.
        size = len(self.lengths) + 1
        cover = np.bincount(repeated, minlength=size) - np.bincount(repeated + n, minlength=size)
        covered = np.cumsum(cover[:-1]) > 0
        return per_row(covered * self.lengths, self.parents, self.num_rows)

    def _grams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Start positions and ids of the n-grams that lie within one document (cheapest in
        increasing n: the ids of n-grams are built from those of (n-1)-grams)."""
        if n < self._n:
            self._n, self._ids = 1, self._word_ids
        while self._n < n:
            # Extend each (n-1)-gram by the next word, then renumber the pairs densely.
            pairs = self._ids[:-1] * (len(self._word_ids) + 1) + self._word_ids[self._n :]
            self._ids = np.unique(pairs, return_inverse=True)[1].astype(np.int64)
            self._n += 1
        count = len(self._word_ids) - n + 1
        if count <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        starts = np.flatnonzero(self.parents[:count] == self.parents[n - 1 :])
        return starts, self._ids[starts]

    def _doc_keys(self, starts: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """One integer per (document, n-gram id), so equal n-grams of different documents differ."""
        return self.parents[starts].astype(np.int64) * (len(self._word_ids) + 1) + ids

    def _gram_chars(self, starts: np.ndarray, n: int) -> np.ndarray:
        """Characters of the words of the n-grams starting at `starts`."""
        return self._cum_lengths[starts + n] - self._cum_lengths[starts]
