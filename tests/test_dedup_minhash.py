"""MinHash signatures estimate Jaccard similarity without bias; band keys match exactly equal bands."""

from __future__ import annotations

import numpy as np

from corpusmill.pipeline.dedup.hashing import Shingles
from corpusmill.pipeline.dedup.minhash import Permutations, band_keys, signatures

PERMUTATIONS = 96


def set_pair(rng: np.random.Generator, size: int, jaccard: float) -> tuple[np.ndarray, np.ndarray]:
    """Two sets of `size` random 32-bit hashes whose Jaccard similarity is `jaccard`."""
    shared = round(2 * size * jaccard / (1 + jaccard))
    values = rng.choice(1 << 32, 2 * size - shared, replace=False).astype(np.uint32)
    return values[:size], np.concatenate([values[:shared], values[size:]])


def as_shingles(*sets: np.ndarray) -> Shingles:
    return Shingles(np.concatenate(sets), np.array([len(s) for s in sets]))


def test_signature_agreement_estimates_jaccard_without_bias_and_with_binomial_spread():
    rng = np.random.default_rng(7)
    for jaccard in (0.2, 0.5, 0.8):
        estimates = []
        for trial in range(200):
            a, b = set_pair(rng, 500, jaccard)
            sig = signatures(as_shingles(a, b), Permutations.from_seed(PERMUTATIONS, trial))
            estimates.append(np.mean(sig[0] == sig[1]))
        spread = np.sqrt(jaccard * (1 - jaccard) / PERMUTATIONS)
        assert abs(np.mean(estimates) - jaccard) < 0.01
        assert 0.8 * spread < np.std(estimates) < 1.2 * spread


def test_signature_is_the_minimum_of_each_permutation_even_across_blocks():
    rng = np.random.default_rng(1)
    long = rng.integers(0, 1 << 32, 40_000, dtype=np.uint64).astype(np.uint32)
    short = rng.integers(0, 1 << 32, 3, dtype=np.uint64).astype(np.uint32)
    permutations = Permutations.from_seed(PERMUTATIONS, 0)
    a, c = permutations
    sig = signatures(as_shingles(short, long, short), permutations)
    for row, values in zip(sig, (short, long, short), strict=True):
        expected = (values[:, None].astype(np.uint64) * a + c) % (1 << 32)
        assert np.array_equal(row, expected.min(axis=0))


def test_a_text_without_shingles_gets_the_empty_signature():
    sig = signatures(as_shingles(np.array([], np.uint32)), Permutations.from_seed(8, 0))
    assert sig.tolist() == [[np.iinfo(np.uint32).max] * 8]


def test_band_keys_agree_exactly_on_equal_bands():
    rng = np.random.default_rng(3)
    first = rng.integers(0, 1 << 32, 12, dtype=np.uint64).astype(np.uint32)
    second = first.copy()
    second[5] ^= 1  # band 1 of 4 bands x 3 rows
    high, low = band_keys(np.stack([first, second]), bands=4, rows=3)
    same = (high[0] == high[1]) & (low[0] == low[1])
    assert same.tolist() == [True, False, True, True]
    assert len(set(zip(high[0].tolist(), low[0].tolist(), strict=True))) == 4
