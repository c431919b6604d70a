"""The vectorized Gopher n-gram fractions agree with a plain reading of their definitions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusmill.pipeline.filters.gopher_repetition import GopherRepetition, GopherRepetitionConfig
from corpusmill.pipeline.words import split_words

# A small vocabulary of words of different lengths, so that n-grams repeat often.
VOCABULARY = ["a", "bb", "ccc", "dddd", "Bb", "e", "ffffff"]


def reference(words: list[str]) -> tuple[dict[int, float], dict[int, float]]:
    """Top (n = 2..4) and duplicate (n = 5..10) character fractions, straight from the wording."""
    lowered = [w.lower() for w in words]
    total = sum(map(len, words))
    top, dup = {}, {}
    for n in range(2, 11):
        grams = [tuple(lowered[i : i + n]) for i in range(len(words) - n + 1)]
        counts = Counter(grams)
        if n <= 4:
            repeated = [(c, sum(map(len, g))) for g, c in counts.items() if c > 1]
            top[n] = max(c * chars for c, chars in [max(repeated)]) / total if repeated else 0.0
        else:
            covered = set()
            for i, gram in enumerate(grams):
                if counts[gram] > 1:
                    covered.update(range(i, i + n))
            dup[n] = sum(len(words[i]) for i in covered) / total if total else 0.0
    return top, dup


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(VOCABULARY), max_size=40), min_size=1, max_size=6))
def test_fractions_match_the_definitions_on_random_documents(documents):
    words = pa.array(documents, pa.large_list(pa.large_string()))
    top, dup = GopherRepetition(GopherRepetitionConfig())._ngram_fractions(words)
    for row, doc in enumerate(documents):
        expected_top, expected_dup = reference(doc)
        for n, value in expected_top.items():
            assert np.isclose(top[n][row], value), (doc, n)
        for n, value in expected_dup.items():
            assert np.isclose(dup[n][row], value), (doc, n)


def duplicate_fractions(text: str) -> dict[int, float]:
    """Duplicate n-gram character fractions (n = 5..10) of one text, as the filter computes them."""
    words = split_words(pa.array([text], pa.large_string()))
    _, dup = GopherRepetition(GopherRepetitionConfig())._ngram_fractions(words)
    return {n: float(values[0]) for n, values in dup.items()}


def test_every_occurrence_of_a_repeated_ngram_counts_the_first_included():
    # A 5-word phrase of 20 letters twice among 10 filler words of 3 letters: 40 of 70 letters.
    phrase = "dark cold rain fell down"
    text = f"bcd bcf bcg {phrase} bch bcj. {phrase} bck bcl bcm bcn bcp."
    assert duplicate_fractions(text)[5] == 40 / 70
    assert duplicate_fractions(text)[6] == 0


def test_overlapping_repeats_count_each_word_once_and_punctuation_and_case_not_at_all():
    # "a b c d e f" twice: its two 5-grams repeat and overlap; the 6 words (12 letters) of each
    # copy count once, with case and punctuation ignored. 24 of 36 letters.
    text = "Aa bb cc dd ee ff, xx yy zz. aa BB cc dd ee ff! ww vv uu."
    assert duplicate_fractions(text) == {5: 24 / 36, 6: 24 / 36, 7: 0, 8: 0, 9: 0, 10: 0}


# The main text of a real page, Rust 1.95's std/u16/index.html, as the clean stage extracts it: a
# stub whose two entries repeat one template.
U16_PAGE = """Skip to main content

Module u16

Module u16\xa0

1.0.0 · Source
👎Deprecating in a future version: all constants in this module replaced by associated constants on the type
Expand description

Redundant constants module for the u16 primitive type.

New code should use the associated constants directly on the primitive type.

Constants§

MAXDeprecation planned
The largest value that can be represented by this integer type. Use u16::MAX instead.
MINDeprecation planned
The smallest value that can be represented by this integer type. Use u16::MIN instead."""


def test_a_real_stub_page_repeats_its_template_in_ten_words():
    # "value that can be represented by this integer type use" (45 letters) twice; the page has
    # 454 letters in its words. datatrove's counting takes the second copy only, 45 / 454 of the
    # letters (and over its whole text, spaces and punctuation included, less still).
    words = split_words(pa.array([U16_PAGE], pa.large_string())).to_pylist()[0]
    assert sum(map(len, words)) == 454
    assert duplicate_fractions(U16_PAGE)[5] == 90 / 454
