"""The vectorized Gopher n-gram fractions agree with a plain reading of their definitions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusmill.pipeline.filters.gopher_repetition import GopherRepetition, GopherRepetitionConfig

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
