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

The paper counts "the fraction of characters contained within all duplicate n-grams", each
character once where duplicate n-grams overlap: every occurrence of a repeated n-gram is a
duplicate n-gram, the first as much as the later ones. datatrove's GopherRepetitionFilter counts
only the repeats after the first occurrence (skipping n words after each) over the length of the
whole text, spaces and punctuation included; Dolma's tagger counts every occurrence, overlaps
again, over the characters of all n-grams. On the same pages ours is the strictest: a phrase said
twice counts twice here, once there (benchmarks/ngram_repetition.py measures the three).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.checks import FRACTION, POSITIVE, Checked
from corpusmill.pipeline.filters.base import (
    FilterResult,
    Measures,
    RuleFamily,
    Splits,
    first_failures,
    later_duplicates,
    per_row,
    ratio,
)
from corpusmill.pipeline.words import Words


@dataclass(frozen=True)
class GopherRepetitionConfig(Checked):
    """Maximum repetition fractions (Rae et al. 2021, table A1); a document above any is removed."""

    enabled: bool = field(default=True, metadata={"help": "run the Gopher repetition rules"})
    dup_para_frac: float = field(
        default=0.30, metadata={"help": "duplicate paragraph fraction", "checks": (FRACTION,)}
    )
    dup_para_char_frac: float = field(
        default=0.20,
        metadata={"help": "duplicate paragraph character fraction", "checks": (FRACTION,)},
    )
    dup_line_frac: float = field(
        default=0.30, metadata={"help": "duplicate line fraction", "checks": (FRACTION,)}
    )
    dup_line_char_frac: float = field(
        default=0.20, metadata={"help": "duplicate line character fraction", "checks": (FRACTION,)}
    )
    top_2gram_char_frac: float = field(
        default=0.20, metadata={"help": "top 2-gram character fraction", "checks": (FRACTION,)}
    )
    top_3gram_char_frac: float = field(
        default=0.18, metadata={"help": "top 3-gram character fraction", "checks": (FRACTION,)}
    )
    top_4gram_char_frac: float = field(
        default=0.16, metadata={"help": "top 4-gram character fraction", "checks": (FRACTION,)}
    )
    dup_5gram_char_frac: float = field(
        default=0.15,
        metadata={"help": "duplicate 5-gram character fraction", "checks": (FRACTION,)},
    )
    dup_6gram_char_frac: float = field(
        default=0.14,
        metadata={"help": "duplicate 6-gram character fraction", "checks": (FRACTION,)},
    )
    dup_7gram_char_frac: float = field(
        default=0.13,
        metadata={"help": "duplicate 7-gram character fraction", "checks": (FRACTION,)},
    )
    dup_8gram_char_frac: float = field(
        default=0.12,
        metadata={"help": "duplicate 8-gram character fraction", "checks": (FRACTION,)},
    )
    dup_9gram_char_frac: float = field(
        default=0.11,
        metadata={"help": "duplicate 9-gram character fraction", "checks": (FRACTION,)},
    )
    dup_10gram_char_frac: float = field(
        default=0.10,
        metadata={"help": "duplicate 10-gram character fraction", "checks": (FRACTION,)},
    )
    # Chinese words are mostly one or two characters, so at 2 an n-gram is about as much text as
    # n words. At 1, most Chinese articles of sample_data reach duplicate 5-gram fractions of
    # 0.10-0.25 (a common term plus a particle) and fail; at 2 they stay near 0, its spam above 0.5.
    spaceless_chars_per_word: int = field(
        default=2,
        metadata={
            "help": "characters per n-gram word in text written without spaces (CJK, Thai)",
            "checks": (POSITIVE,),
        },
    )


class GopherRepetition(RuleFamily[GopherRepetitionConfig]):
    """Removes documents that repeat lines, paragraphs or word sequences too much."""

    name = "gopher_repetition"
    # Each signal is named as its threshold, which it must not exceed; rules are named as in
    # the reasons, in the order they are checked.
    _RULES = (
        ("dup_para_frac", "dup_para_frac"),
        ("dup_para_char_frac", "dup_para_char_frac"),
        ("dup_line_frac", "dup_line_frac"),
        ("dup_line_char_frac", "dup_line_char_frac"),
        *((f"top_{n}_gram", f"top_{n}gram_char_frac") for n in (2, 3, 4)),
        *((f"dup_{n}_gram", f"dup_{n}gram_char_frac") for n in range(5, 11)),
    )
    signal_fields = tuple(pa.field(signal, pa.float64(), False) for _, signal in _RULES)
    signal_keys = frozenset({"spaceless_chars_per_word"})

    def measure(self, docs: pa.Table, splits: Splits) -> Measures:
        num_rows = splits.num_rows
        signals = {}
        units = (("para", splits.paragraphs), ("line", splits.nonempty_lines))
        for unit, (values, parents) in units:
            duplicate = later_duplicates(values, parents)
            dup_chars = duplicate * pc.utf8_length(values).to_numpy()
            count = np.bincount(parents, minlength=num_rows)
            signals[f"dup_{unit}_frac"] = ratio(per_row(duplicate, parents, num_rows), count)
            char_frac = ratio(per_row(dup_chars, parents, num_rows), splits.chars)
            signals[f"dup_{unit}_char_frac"] = char_frac

        top, dup = self._ngram_fractions(splits.words)
        signals.update({f"top_{n}gram_char_frac": top[n] for n in top})
        signals.update({f"dup_{n}gram_char_frac": dup[n] for n in dup})
        return Measures(signals)

    def decide(self, signals: Mapping[str, Any]) -> FilterResult:
        rules = [
            (rule, signals[signal] > getattr(self.config, signal)) for rule, signal in self._RULES
        ]
        return first_failures(self.name, len(signals["dup_para_frac"]), rules)

    def _ngram_fractions(
        self, words: Words | pa.LargeListArray
    ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Top n-gram (n = 2..4) and duplicate n-gram (n = 5..10) character fractions per row,
        with longer n-grams for text written without spaces."""
        words = Words.of(words)
        top = {n: np.zeros(words.num_rows) for n in (2, 3, 4)}
        dup = {n: np.zeros(words.num_rows) for n in range(5, 11)}
        ids = words.lowered[0]
        for spaceless, scale in ((False, 1), (True, self.config.spaceless_chars_per_word)):
            in_group = words.spaceless == spaceless
            rows = np.flatnonzero(in_group)
            if len(rows) == 0:
                continue
            if len(rows) == words.num_rows:
                ngrams = _NGrams(ids, words.lengths, words.rows, len(rows))
            else:
                group_words = in_group[words.rows]
                group_rows = (np.cumsum(in_group) - 1)[words.rows[group_words]]
                lengths = words.lengths[group_words]
                ngrams = _NGrams(ids[group_words], lengths, group_rows, len(rows))
            for n in top:
                top[n][rows] = ratio(ngrams.top_chars(n * scale), ngrams.total_chars)
            for n in dup:
                dup[n][rows] = ratio(ngrams.duplicate_chars(n * scale), ngrams.total_chars)
        return top, dup


class _NGrams:
    """Counts of the repeated word n-grams of every document of a batch, for n = 2, 3, 4...

    An n-gram occurs twice only where both of its (n-1)-grams do, so past the word pairs only
    the positions whose two (n-1)-grams repeat are counted and hashed: in prose, a few percent.
    (Most words of a text occur in it again, so counting the words first would spare little of
    counting the pairs.) N-grams are 64-bit polynomial hashes of their document and the ids of
    their lowercased words, counted by sorting; two different n-grams share a hash with
    probability about 2^-64. Memory: about 40 bytes per word of the batch.
    """

    def __init__(self, word_ids: np.ndarray, lengths: np.ndarray, rows: np.ndarray, num_rows: int):
        self.num_rows = num_rows
        self.rows = rows
        self.total_chars = per_row(lengths, rows, num_rows)
        self._cum_lengths = np.concatenate([[0], np.cumsum(lengths)])
        self._word_hashes = _mix(word_ids.astype(np.uint64) + np.uint64(1))
        # Each n-gram's hash starts from its document's, so equal n-grams of two documents differ.
        row_hashes = _mix(np.arange(num_rows, dtype=np.uint64) + np.uint64(1 << 40))
        self._row_hashes = row_hashes[rows]
        self._n = 0  # the n of the n-grams counted so far; none yet

    def top_chars(self, n: int) -> np.ndarray:
        """Per document: characters of its most frequent n-gram (the longest among equally
        frequent ones) times its count, 0 if no n-gram repeats."""
        top = np.zeros(self.num_rows)
        starts, counts = self._repeated(n)
        if len(starts) == 0:
            return top
        chars = np.minimum(self._gram_chars(starts, n), _MAX_GRAM_CHARS)
        # One number per occurrence ordering by count, then length: its maximum per document is
        # the top n-gram. Occurrences are in document order, so documents are contiguous runs.
        score = counts.astype(np.int64) * (_MAX_GRAM_CHARS + 1) + chars
        docs = self.rows[starts]
        first = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
        best = np.maximum.reduceat(score, first)
        top[docs[first]] = (best // (_MAX_GRAM_CHARS + 1)) * (best % (_MAX_GRAM_CHARS + 1))
        return top

    def duplicate_chars(self, n: int) -> np.ndarray:
        """Per document: characters of the words covered by any n-gram occurring more than once."""
        starts, _ = self._repeated(n)
        # Each covered word once: an occurrence covers its words up to where the next one starts.
        next_starts = np.append(starts[1:], len(self._word_hashes))
        covered = self._cum_lengths[np.minimum(starts + n, next_starts)] - self._cum_lengths[starts]
        return per_row(covered, self.rows[starts], self.num_rows)

    def _repeated(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Start positions of the n-grams that occur more than once in their document, in
        position order, and how often each occurs (cheapest for increasing n)."""
        if n < self._n or self._n == 0:
            self._start(1 if n <= 1 else 2)
        while self._n < n:
            # An (n+1)-gram at p can repeat only if the n-grams at p and p + 1 both repeat (and
            # it lies within one document: for n = 1 those two may be in different ones).
            follows = np.flatnonzero(self._starts[1:] == self._starts[:-1] + 1)
            candidates, hashes = self._starts[follows], self._hashes[follows]
            inside = self.rows[candidates] == self.rows[candidates + self._n]
            candidates, hashes = candidates[inside], hashes[inside]
            hashes = _extend(hashes, self._word_hashes[candidates + self._n])
            self._n += 1
            self._keep_repeated(candidates, hashes)
        return self._starts, self._counts

    def _start(self, n: int) -> None:
        """Count every word (n = 1) or every pair of adjacent words (n = 2) of each document."""
        hashes = _extend(self._row_hashes, self._word_hashes)
        if n == 1:
            positions = np.arange(len(hashes))
        else:
            inside = self.rows[1:] == self.rows[:-1]
            positions = np.flatnonzero(inside)
            hashes = _extend(hashes[:-1], self._word_hashes[1:])[inside]
        self._n = n
        self._keep_repeated(positions, hashes)

    def _keep_repeated(self, positions: np.ndarray, hashes: np.ndarray) -> None:
        """Of the n-grams starting at `positions` (all that may repeat) with these `hashes`, keep
        those that occur more than once, with their counts and hashes."""
        # Equal hashes are runs once sorted: cheaper than hashing when most are distinct.
        order = np.argsort(hashes)
        sorted_hashes = hashes[order]
        run_starts = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]])
        run_lengths = np.diff(np.r_[run_starts, len(hashes)])
        counts = np.empty(len(hashes), np.int64)
        counts[order] = np.repeat(run_lengths, run_lengths)
        repeated = counts > 1
        self._starts, self._counts = positions[repeated], counts[repeated]
        self._hashes = hashes[repeated]

    def _gram_chars(self, starts: np.ndarray, n: int) -> np.ndarray:
        """Characters of the words of the n-grams starting at `starts`."""
        return self._cum_lengths[starts + n] - self._cum_lengths[starts]


# An odd 64-bit multiplier (the golden ratio's) for the polynomial n-gram hash.
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
# Longer n-grams count as this long when ranking the top n-gram; no real n-gram comes near.
_MAX_GRAM_CHARS = (1 << 22) - 1


def _extend(hashes: np.ndarray, word_hashes: np.ndarray) -> np.ndarray:
    """The hashes of n-grams extended by one word: h(w1..wn+1) = h(w1..wn) * M + h(wn+1),
    modulo 2^64."""
    return hashes * _MULTIPLIER + word_hashes


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads consecutive integers over all 64 bits."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))
