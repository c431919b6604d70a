"""MinHash signatures of shingle sets, and the LSH band keys cut from them.

Permutation k maps a 32-bit shingle hash x to (a_k * x + c_k) mod 2^32 with a_k odd, a bijection
of the 32-bit values. With x already a well-mixed hash, the share of permutations on which two
sets' minima agree estimates their Jaccard similarity as a true random permutation would
(tests/test_dedup_minhash.py checks its bias and its binomial spread).
32-bit lanes halve the memory traffic of the 64-bit modular arithmetic of datasketch and datatrove,
which is most of the time spent here. Everything is vectorized over (permutations x shingles)
blocks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from corpusmill.pipeline.dedup.hashing import Shingles, fmix64

# Shingles per block of the (permutations x shingles) product: 16,384 x 96 uint32 is 6 MB;
# measured 530 MB/s against 100 MB/s for 512-shingle blocks laid out the other way round (numpy's
# per-call costs and the reduction along the strided axis dominate there), and slower above 32,768.
_BLOCK_SHINGLES = 16_384
_EMPTY = np.iinfo(np.uint32).max


class Permutations(NamedTuple):
    """The multipliers and offsets of `count` hash permutations, drawn from a seed."""

    a: np.ndarray  # uint32, odd
    c: np.ndarray  # uint32

    @classmethod
    def from_seed(cls, count: int, seed: int) -> Permutations:
        rng = np.random.default_rng(seed)
        a = rng.integers(0, 1 << 32, count, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
        c = rng.integers(0, 1 << 32, count, dtype=np.uint64).astype(np.uint32)
        return cls(a, c)


def signatures(shingles: Shingles, permutations: Permutations) -> np.ndarray:
    """The (texts x permutations) uint32 MinHash signatures; a text without shingles gets all-max
    values, so callers skip texts whose shingle count is 0.
    Memory: the signatures (4 bytes per text and permutation) plus one 6 MB block.
    """
    a, c = permutations
    result = np.full((len(shingles.counts), len(a)), _EMPTY, np.uint32)
    doc = shingles.doc_index()
    block = np.empty((len(a), _BLOCK_SHINGLES), np.uint32)
    for start in range(0, len(shingles.hashes), _BLOCK_SHINGLES):
        x = shingles.hashes[start : start + _BLOCK_SHINGLES]
        owners = doc[start : start + _BLOCK_SHINGLES]
        values = block[:, : len(x)]
        np.multiply(a[:, None], x, out=values)
        np.add(values, c[:, None], out=values)
        # Shingles are grouped by text, so each text's columns in the block are one run; the
        # runs are reduced along the contiguous axis, which numpy does several times faster.
        runs = np.flatnonzero(np.concatenate([[True], owners[1:] != owners[:-1]]))
        texts = owners[runs]
        result[texts] = np.minimum(result[texts], np.minimum.reduceat(values, runs, axis=1).T)
    return result


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """128-bit keys of each text's `bands` bands of `rows` signature values, as (high, low) uint64
    arrays of shape (texts, bands): two texts share a band key when that band of theirs is equal."""
    if signatures.shape[1] != bands * rows:
        raise ValueError(
            f"signatures have {signatures.shape[1]} values per text, "
            f"not bands x rows = {bands * rows}"
        )
    cut = signatures.reshape(len(signatures), bands, rows).astype(np.uint64)
    high = np.full(cut.shape[:2], 0x243F6A8885A308D3, np.uint64)  # digits of pi: any two seeds
    low = np.full(cut.shape[:2], 0x13198A2E03707344, np.uint64)
    for row in range(rows):
        high = fmix64(high ^ cut[:, :, row])
        low = fmix64(low + cut[:, :, row])
    return high, low
