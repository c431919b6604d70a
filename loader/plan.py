"""Which sequence comes where: the epoch order of one dataset and the interleaving of several.

A dataset's tokens (all shards in manifest order, each document followed by its EOS) form one
stream; sequence i is the window [i * seq_len, i * seq_len + seq_len + 1) of it, so neighbouring
sequences share one token and every token but the first is a target exactly once. Everything here
is a pure function of the sequence counts, the seed and the epoch, drawn from a hash rather than a
numpy Generator (whose streams may change between numpy versions), so an order never changes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from corpusmill.loader.format import runs

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class SequenceOrder:
    """The order of one dataset's sequences in each epoch.

    Shuffled, the sequences are cut into blocks of `block` consecutive sequences, the blocks are
    permuted, and the sequences of each window of `window` consecutive permuted blocks are
    permuted among themselves: a shuffled epoch reads a few blocks at a time, each one whole, never
    one random token range of the whole dataset per sequence. Unshuffled, the order is 0, 1, 2, ...
    """

    def __init__(self, count: int, block: int, window: int, key: int, shuffle: bool) -> None:
        self.count = count
        self._block = block
        self._window = window
        self._key = key
        self._shuffle = shuffle
        self._layout = functools.lru_cache(maxsize=2)(self._epoch_layout)
        self._sequences = functools.lru_cache(maxsize=4)(self._window_sequences)

    def sequences(self, epoch: int, positions: np.ndarray) -> np.ndarray:
        """The sequence ids at `positions` (each in [0, count)) of `epoch`; ascending positions
        are fastest, each window's then taken with one slice."""
        if not self._shuffle:
            return positions.astype(np.int64)
        _, starts = self._layout(epoch)
        windows = np.searchsorted(starts, positions, side="right") - 1
        out = np.empty(len(positions), dtype=np.int64)
        for first, stop in runs(windows):
            window = int(windows[first])
            ids = self._sequences(epoch, window)
            out[first:stop] = ids[positions[first:stop] - starts[window]]
        return out

    def _epoch_layout(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The permuted blocks of `epoch` and the first position of each window of them."""
        blocks = -(-self.count // self._block)
        order = permutation(blocks, mix_key(self._key, epoch))
        sizes = self._block_sizes(order)
        totals = np.add.reduceat(sizes, np.arange(0, blocks, self._window))
        return order, np.concatenate([[0], np.cumsum(totals)])

    def _window_sequences(self, epoch: int, window: int) -> np.ndarray:
        """The sequence ids of one window of `epoch`, in their shuffled order."""
        order, _ = self._layout(epoch)
        blocks = order[window * self._window : (window + 1) * self._window]
        sizes = self._block_sizes(blocks)
        firsts = np.repeat(blocks * self._block - (np.cumsum(sizes) - sizes), sizes)
        ids = firsts + np.arange(len(firsts))
        return ids[permutation(len(ids), mix_key(self._key, epoch, window))]

    def _block_sizes(self, blocks: np.ndarray) -> np.ndarray:
        """How many sequences each block holds: `block`, except the dataset's last one."""
        return np.minimum(self._block, self.count - blocks * self._block)


class Interleave:
    """Which dataset each position of a mixed stream draws from, and its item number in that one.

    The weights are quantized to shares of a period of PERIOD positions (largest remainders); in a
    period, dataset d's j-th item sits at key (j + 1/2) / share_d and items are merged by key (ties
    to the first dataset), so every prefix of the stream holds each dataset in proportion to
    within about one item.
    """

    PERIOD = 1 << 16

    def __init__(self, weights: Sequence[float]) -> None:
        self.shares = _apportion(weights, self.PERIOD)
        keys = np.concatenate([(np.arange(n) + 0.5) / n for n in self.shares])
        owners = np.repeat(np.arange(len(self.shares)), self.shares)
        items = np.concatenate([np.arange(n) for n in self.shares])
        order = np.argsort(keys, kind="stable")
        self._owners = owners[order]
        self._items = items[order]

    def locate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each position of the mixed stream, its dataset and that dataset's item number."""
        periods, offsets = np.divmod(positions, self.PERIOD)
        datasets = self._owners[offsets]
        return datasets, periods * np.asarray(self.shares)[datasets] + self._items[offsets]


def permutation(n: int, key: int) -> np.ndarray:
    """A permutation of range(n) drawn from `key`: the indices sorted by a bijective 64-bit hash."""
    with np.errstate(over="ignore"):
        return np.argsort(_splitmix(np.arange(n, dtype=np.uint64) + np.uint64(key)))


def distinct(values: np.ndarray) -> list[int]:
    """The distinct values of an integer array, ascending: a sort and a comparison, several times
    faster than np.unique (which hashes) on the few thousand values of a plan."""
    ordered = np.sort(values)
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return ordered[first].tolist()


def mix_key(*values: int) -> int:
    """One 64-bit key from several integers (a seed, a dataset, an epoch, ...)."""
    key = _GOLDEN
    for value in values:
        key = int(_splitmix(np.uint64((key ^ value) & _MASK)))
    return key


def _splitmix(x: np.ndarray | np.uint64) -> np.ndarray | np.uint64:
    """The splitmix64 finalizer, a bijection of uint64, wrapping as C does."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(_GOLDEN)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _apportion(weights: Sequence[float], total: int) -> list[int]:
    """`total` split in proportion to `weights` by largest remainders, ties to the first weight."""
    weights = [float(weight) for weight in weights]
    if not weights or not all(0 < weight < math.inf for weight in weights):
        raise ValueError(f"weights {weights} must be finite and positive, one per dataset")
    ideal = [total * weight / sum(weights) for weight in weights]
    shares = [int(share) for share in ideal]
    by_remainder = sorted(range(len(ideal)), key=lambda d: (shares[d] - ideal[d], d))
    for d in by_remainder[: total - sum(shares)]:
        shares[d] += 1
    if min(shares) == 0:
        raise ValueError(
            f"weights {weights}: a weight below 1/{total} of their sum would never be drawn; "
            "raise it or leave that dataset out"
        )
    return shares
