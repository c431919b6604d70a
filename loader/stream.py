"""Batches of packed token sequences from one or more tokenized runs, for any training loop.

Semantics (loader/plan.py has the details):

- Sequences: a run's tokens (documents back to back, each with its EOS) form one stream; sequence
  i is its tokens [i * seq_len, i * seq_len + seq_len + 1), so `batch[:, :-1]` are the inputs,
  `batch[:, 1:]` the targets, and no token is spent on padding.
- Epoch: as many sequences as the runs hold together (the sum of their sequence counts). With one
  run, an epoch is one pass over it, in a new order each epoch when shuffled.
- Mixing: position p of the stream draws from the run that the weights' interleaving assigns it
  (loader/plan.py `Interleave`); each run goes through its own sequences epoch after epoch, so a
  run weighted above its size is repeated and one weighted below it is not finished in one epoch.
  Without weights, runs are weighted by their sequence counts: every sequence once per epoch.
- Ranks: global batch k of an epoch is positions [k * G, (k + 1) * G) with G = batch_size *
  world_size; rank r yields rows [r * batch_size, (r + 1) * batch_size) of it. Keep G fixed when
  world_size changes (batch_size = G / world_size) and the global order stays the same. Worker w
  of `num_workers` (data-loader processes of one rank) yields every num_workers-th of its batches.
- Resume: `state_dict()` after a batch names the next one; `load_state_dict` on a new stream of the
  same runs, seq_len, seed and shuffle settings continues exactly there, with any world_size.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpusmill.loader.dataset import TokenDataset
from corpusmill.loader.plan import Interleave, SequenceOrder, mix_key
from corpusmill.loader.prefetch import prefetch as prefetch_thread

log = logging.getLogger(__name__)

STATE_VERSION = 1
# Batches planned at once: the index arithmetic of a plan is vectorized over all its rows, so a
# batch costs little more than copying its tokens.
_PLAN_BATCHES = 64


class TokenStream:
    """Iterate to get the rest of the current epoch as arrays of shape (batch_size, seq_len + 1).

    `paths` are run output folders (or their `index.json`), one or a list; the arrays have the
    runs' token dtype (uint16 or uint32). Iterating again continues where the last loop stopped,
    the next epoch once one is finished. With drop_last, an epoch ends before a global batch that
    it cannot fill; without, the last global batch is short and ranks past its end get no row of
    it (and yield one batch fewer). `block_tokens` and `window_blocks` bound the shuffle: blocks of
    about `block_tokens` tokens are permuted, and sequences are shuffled within `window_blocks`
    consecutive permuted blocks. `prefetch` > 0 assembles that many batches ahead in a thread.
    """

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        seq_len: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        weights: Sequence[float] | None = None,
        drop_last: bool = True,
        worker_id: int = 0,
        num_workers: int = 1,
        verify: bool = False,
        prefetch: int = 0,
        block_tokens: int = 1 << 20,
        window_blocks: int = 8,
    ) -> None:
        if isinstance(paths, str | Path):
            paths = [paths]
        _check(
            seq_len >= 1 and batch_size >= 1,
            f"seq_len ({seq_len}) and batch_size ({batch_size}) must be at least 1",
        )
        _check(0 <= rank < world_size, f"rank {rank} is not in [0, world_size {world_size})")
        _check(
            0 <= worker_id < num_workers,
            f"worker_id {worker_id} is not in [0, num_workers {num_workers})",
        )
        _check(
            block_tokens >= 1 and window_blocks >= 1,
            f"block_tokens ({block_tokens}) and window_blocks ({window_blocks}) must be at least 1",
        )
        self.datasets = [TokenDataset(path, verify=verify) for path in paths]
        _same_tokenizer(self.datasets)
        self.dtype = self.datasets[0].dtype
        self.seq_len, self.batch_size = seq_len, batch_size
        self.rank, self.world_size = rank, world_size
        self.worker_id, self.num_workers = worker_id, num_workers
        self.seed, self.drop_last, self.prefetch = seed, drop_last, prefetch
        counts = [(dataset.tokens - 1) // seq_len for dataset in self.datasets]
        for dataset, count in zip(self.datasets, counts, strict=True):
            _check(
                count > 0, f"{dataset.folder} holds {dataset.tokens} tokens, fewer than seq_len + 1"
            )
        self.interleave = Interleave(counts if weights is None else weights)
        block = max(1, block_tokens // seq_len)
        self.orders = [
            SequenceOrder(count, block, window_blocks, mix_key(seed, index), shuffle)
            for index, count in enumerate(counts)
        ]
        self.sequences_per_epoch = sum(counts)
        self.global_batch = batch_size * world_size
        _check(
            self.sequences_per_epoch >= self.global_batch or not drop_last,
            f"an epoch holds {self.sequences_per_epoch} sequences, fewer than one global batch "
            f"of {self.global_batch}; lower batch_size or pass drop_last=False",
        )
        self._layout = {
            "seq_len": seq_len,
            "shuffle": shuffle,
            "block_tokens": block_tokens,
            "window_blocks": window_blocks,
            "shares": self.interleave.shares,
            "datasets": [dataset.fingerprint() for dataset in self.datasets],
        }
        self.epoch = 0
        self.position = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        batches = self._batches(self.epoch, self.position)
        if self.prefetch > 0:
            batches = prefetch_thread(batches, self.prefetch)
        epoch = self.epoch
        for batch, after_epoch, after_position in batches:
            self.epoch, self.position = after_epoch, after_position
            yield batch
        if self.epoch == epoch:
            self.epoch, self.position = epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        """Where the stream is (epoch, sequences of it consumed) and what it reads, as JSON data."""
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
            **json.loads(json.dumps(self._layout)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state`; it must come from a stream of the same runs and settings."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"loader state version {state.get('version')!r}, expected {STATE_VERSION}"
            )
        expected = {"seed": self.seed, **self._layout}
        different = [key for key, value in expected.items() if state.get(key) != value]
        if different:
            raise ValueError(
                "the loader state was saved by a stream with another "
                + ", ".join(
                    f"{key} ({_brief(state.get(key))}, this stream has {_brief(expected[key])})"
                    for key in different
                )
                + "; open the same runs with the same seed, seq_len and shuffle settings"
            )
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def _batches(self, epoch: int, position: int) -> Iterator[tuple[np.ndarray, int, int]]:
        """This rank's and worker's batches from `position` of `epoch` to its end, each with the
        (epoch, position) that follows it."""
        size, end = self.global_batch, self._epoch_end()
        firsts = np.arange(position, end if not self.drop_last else end - size + 1, size)
        firsts = firsts[self.worker_id :: self.num_workers]
        for chunk in range(0, len(firsts), _PLAN_BATCHES):
            planned = firsts[chunk : chunk + _PLAN_BATCHES]
            counts, views, index, starts = self._plan(epoch, planned, end)
            done = 0
            for first, count in zip(planned.tolist(), counts, strict=True):
                after = first + size
                epoch_after, position_after = (epoch + 1, 0) if after >= end else (epoch, after)
                if count:
                    rows = slice(done, done + count)
                    batch = self._gather(views, index[rows], starts[rows])
                    yield batch, epoch_after, position_after
                done += count

    def _epoch_end(self) -> int:
        """The position after the last sequence of an epoch that batches can use."""
        total = self.sequences_per_epoch
        return total - total % self.global_batch if self.drop_last else total

    def _plan(
        self, epoch: int, firsts: np.ndarray, end: int
    ) -> tuple[list[int], list[memoryview], list[int], list[int]]:
        """This rank's row count in each global batch starting at `firsts`, and where each row's
        bytes start (`views[index[row]][starts[row]:]`), computed for all the batches at once."""
        ranks = firsts[:, None] + self.rank * self.batch_size + np.arange(self.batch_size)
        ranks = np.where(ranks < np.minimum(firsts[:, None] + self.global_batch, end), ranks, -1)
        positions = ranks[ranks >= 0]
        datasets, items = self.interleave.locate(epoch * self.sequences_per_epoch + positions)
        arrays: list[np.ndarray] = []
        index = np.empty(len(positions), dtype=np.int64)
        offsets = np.empty(len(positions), dtype=np.int64)
        for dataset in np.unique(datasets).tolist():
            rows = np.flatnonzero(datasets == dataset)
            order = self.orders[dataset]
            loops, at = np.divmod(items[rows], order.count)
            sequences = np.empty(len(rows), dtype=np.int64)
            for loop in np.unique(loops).tolist():
                same = loops == loop
                sequences[same] = order.sequences(loop, at[same])
            found, index[rows], offsets[rows] = self.datasets[dataset].windows(
                sequences * self.seq_len, self.seq_len + 1
            )
            index[rows] += len(arrays)
            arrays.extend(found)
        views = [memoryview(array).cast("B") for array in arrays]
        starts = (offsets * self.dtype.itemsize).tolist()
        return (ranks >= 0).sum(axis=1).tolist(), views, index.tolist(), starts

    def _gather(self, views: list[memoryview], index: list[int], starts: list[int]) -> np.ndarray:
        """One batch: each row's bytes sliced from its view and joined in one copy (twice as fast
        as numpy's concatenate of 32 rows, whose per-array overhead outweighs the copy)."""
        width = (self.seq_len + 1) * self.dtype.itemsize
        data = bytearray().join(
            [views[k][start : start + width] for k, start in zip(index, starts, strict=True)]
        )
        return np.frombuffer(data, dtype=self.dtype).reshape(len(index), self.seq_len + 1)


def _same_tokenizer(datasets: list[TokenDataset]) -> None:
    """Refuse to mix runs whose token ids mean different things."""
    first = datasets[0]
    for other in datasets[1:]:
        if (other.manifest.tokenizer_xxh3, other.manifest.eos_id, other.dtype) != (
            first.manifest.tokenizer_xxh3,
            first.manifest.eos_id,
            first.dtype,
        ):
            raise ValueError(
                f"{other.folder} was tokenized with another tokenizer than {first.folder} "
                f"(xxh3 {other.manifest.tokenizer_xxh3} vs {first.manifest.tokenizer_xxh3}); "
                "mix only runs of one tokenizer"
            )


def _check(condition: bool, message: str) -> None:
    """Raise ValueError(message) unless `condition`."""
    if not condition:
        raise ValueError(message)


def _brief(value: Any) -> str:
    """A value short enough for an error message (long lists become a digest)."""
    text = json.dumps(value)
    return text if len(text) <= 80 else "digest " + hashlib.sha256(text.encode()).hexdigest()[:12]
