"""An integer arithmetic coder (32-bit state) driven by a model's next-token probabilities.

It turns a model's cross-entropy into an actual file: probabilities are quantized to integer
frequencies (every symbol at least 1, so a token the model thought nearly impossible is still
codable), and the coder spends about log2(total / frequency) bits per symbol. It is the
bit-oriented coder of Witten, Neal and Cleary (1987), "Arithmetic coding for data compression",
with the E3 (underflow) rule; decoding repeats the encoder's interval updates exactly.
"""

from __future__ import annotations

import numpy as np

STATE_BITS = 32
_FULL = (1 << STATE_BITS) - 1
_HALF = 1 << (STATE_BITS - 1)
_QUARTER = 1 << (STATE_BITS - 2)
# Frequencies of one step sum to at most 2**28: below the 2**30 quarter range the coder needs so
# that every symbol of frequency 1 keeps a non-empty interval, and fine enough that quantizing
# costs ~1e-4 bits per token for a 32k vocabulary.
TOTAL = 1 << 28


def quantize(probs: np.ndarray) -> np.ndarray:
    """Integer frequencies (int64) of probability rows: floor(p * (TOTAL - V)) + 1, so every
    symbol gets at least 1 and each row sums to at most TOTAL. Rows are renormalized in float64
    first: a float32 softmax row may sum to a little over 1, which a sure model's top symbol
    would turn into a total over TOTAL."""
    vocab = probs.shape[-1]
    if vocab >= TOTAL // 2:
        raise ValueError(f"a vocabulary of {vocab} symbols is too large for {TOTAL} frequencies")
    clipped = np.clip(probs.astype(np.float64), 0.0, 1.0)
    sums = clipped.sum(axis=-1, keepdims=True)
    scaled = np.floor(clipped / np.where(sums > 1.0, sums, 1.0) * (TOTAL - vocab))
    return scaled.astype(np.int64) + 1


def intervals(freqs: np.ndarray, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of frequencies, the coded symbol's (cumulative low, frequency) and the row total."""
    rows = np.arange(len(symbols))
    cum = np.cumsum(freqs, axis=1)
    high = cum[rows, symbols]
    freq = freqs[rows, symbols]
    return high - freq, freq, cum[:, -1]


def encode(lows: np.ndarray, freqs: np.ndarray, totals: np.ndarray) -> bytes:
    """Code symbols given as (cumulative low, frequency, total) triples; return the bytes."""
    low, high, pending = 0, _FULL, 0
    bits: list[int] = []
    for cum, freq, total in zip(lows.tolist(), freqs.tolist(), totals.tolist(), strict=True):
        if not (0 < freq and cum + freq <= total <= TOTAL):
            raise ValueError(f"invalid interval: low {cum}, frequency {freq}, total {total}")
        span = high - low + 1
        high = low + span * (cum + freq) // total - 1
        low = low + span * cum // total
        while True:
            if high < _HALF:
                bits.append(0)
                bits.extend([1] * pending)
                pending = 0
            elif low >= _HALF:
                bits.append(1)
                bits.extend([0] * pending)
                pending = 0
                low -= _HALF
                high -= _HALF
            elif low >= _QUARTER and high < _HALF + _QUARTER:
                pending += 1
                low -= _QUARTER
                high -= _QUARTER
            else:
                break
            low = 2 * low
            high = 2 * high + 1
    # Two more bits (and the pending ones) name a point inside the final interval.
    pending += 1
    bits.append(0 if low < _QUARTER else 1)
    bits.extend([1 - bits[-1]] * pending)
    return np.packbits(np.array(bits, dtype=np.uint8)).tobytes()


class Decoder:
    """Reads symbols back from `encode`'s bytes, one step at a time, given the same frequencies."""

    def __init__(self, data: bytes) -> None:
        self.bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist()
        self.position = 0
        self.low, self.high = 0, _FULL
        self.value = 0
        for _ in range(STATE_BITS):
            self.value = 2 * self.value + self._next_bit()

    def decode(self, cumulative: np.ndarray) -> int:
        """The next symbol, given the step's cumulative frequencies (cumsum of `quantize`)."""
        total = int(cumulative[-1])
        span = self.high - self.low + 1
        target = ((self.value - self.low + 1) * total - 1) // span
        symbol = int(np.searchsorted(cumulative, target, side="right"))
        high = int(cumulative[symbol])
        cum = int(cumulative[symbol - 1]) if symbol else 0
        self.high = self.low + span * high // total - 1
        self.low = self.low + span * cum // total
        while True:
            if self.high < _HALF:
                pass
            elif self.low >= _HALF:
                self.low -= _HALF
                self.high -= _HALF
                self.value -= _HALF
            elif self.low >= _QUARTER and self.high < _HALF + _QUARTER:
                self.low -= _QUARTER
                self.high -= _QUARTER
                self.value -= _QUARTER
            else:
                break
            self.low = 2 * self.low
            self.high = 2 * self.high + 1
            self.value = 2 * self.value + self._next_bit()
        return symbol

    def _next_bit(self) -> int:
        """The next coded bit; zeros past the end, as the encoder's final bits assume."""
        bit = self.bits[self.position] if self.position < len(self.bits) else 0
        self.position += 1
        return bit
