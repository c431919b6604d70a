"""Order-0 entropy of token counts, and the one bits-per-byte definition every figure uses."""

from __future__ import annotations

import numpy as np


def entropy_bits(counts: np.ndarray) -> float:
    """Total bits to code the counted tokens with their own empirical distribution: sum c
    log2(N / c), the floor for any coder that ignores context and knows the counts."""
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts > 0]
    return float((counts * np.log2(counts.sum() / counts)).sum())


def bits_per_byte(bits: float, num_bytes: int) -> float:
    """Bits per UTF-8 byte of text: total bits over total bytes of the measured documents."""
    return bits / num_bytes if num_bytes else float("nan")
