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
  same runs, seq_len, seed, shuffle settings and global batch continues exactly there, with any
  world_size.
- Object stores: a run named by an fsspec URL (s3://bucket/run) yields the batches of a local copy;
  while a group of batches is assembled, the shards of the next group are downloaded into a local
  cache (loader/cache.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpusmill.core.storage import ObjectPath
from corpusmill.loader.cache import DEFAULT_CACHE_BYTES
from corpusmill.loader.dataset import TokenDataset
from corpusmill.loader.format import runs
from corpusmill.loader.plan import Interleave, SequenceOrder, distinct, mix_key
from corpusmill.loader.prefetch import prefetch as prefetch_thread
from corpusmill.loader.split import TRAIN

log = logging.getLogger(__name__)

STATE_VERSION = 1
# Tokens of this rank's rows planned at once: the index arithmetic of a plan is vectorized over all
# its rows, so a batch costs little more than copying its tokens. 8M tokens are a shuffle window of
# the default settings; plans of a quarter of that took 10 % longer per batch.
_PLAN_TOKENS = 1 << 23


class TokenStream:
    """Iterate to get the rest of the current epoch as arrays of shape (batch_size, seq_len + 1).

    `paths` are run output folders (or their `index.json`), one or a list; the arrays have the
    runs' token dtype (uint16 or uint32). Iterating again continues where the last loop stopped,
    the next epoch once one is finished. With drop_last, an epoch ends before a global batch that
    it cannot fill; without, the last global batch is short and ranks past its end get no row of
    it (and yield one batch fewer). `block_tokens` and `window_blocks` bound the shuffle: blocks of
    about `block_tokens` tokens are permuted, and sequences are shuffled within `window_blocks`
    consecutive permuted blocks. `prefetch` > 0 assembles that many batches ahead in a thread.
    Runs named by URL are reached with `storage_options` and cached in `cache_dir`, bounded by
    `cache_bytes` (TokenDataset). `split` picks the runs' tokens read: "train" (a run without a
    validation split is all train) or "validation", the documents loader/split.py holds out.
    """

    def __init__(
        self,
        paths: str | Path | ObjectPath | Sequence[str | Path | ObjectPath],
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
        storage_options: dict[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        split: str = TRAIN,
    ) -> None:
        if isinstance(paths, str | Path | ObjectPath):
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
        self.datasets = [
            TokenDataset(
                path,
                verify=verify,
                storage_options=storage_options,
                cache_dir=cache_dir,
                cache_bytes=cache_bytes,
                split=split,
            )
            for path in paths
        ]
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
        _check(
            weights is None or len(weights) == len(self.datasets),
            f"{len(weights or ())} weights for {len(self.datasets)} runs: give one per run",
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
            "global_batch": self.global_batch,
            **json.loads(json.dumps(self._layout)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state`; it must come from a stream of the same runs and settings (and
        global batch) and name a position inside an epoch of this stream."""
        if not isinstance(state, dict):
            raise ValueError(
                f"a loader state is a dict as state_dict() returns, not a {type(state).__name__}"
            )
        known = self.state_dict()
        unknown = sorted(set(state) - set(known), key=str)
        if unknown:
            raise ValueError(
                f"the loader state has unknown keys {', '.join(map(repr, unknown))}; a state "
                f"holds {', '.join(known)}"
            )
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"loader state version {state.get('version')!r}, expected {STATE_VERSION}"
            )
        # States saved before the global batch was recorded resume at any global batch, as then.
        state = {"global_batch": self.global_batch} | state
        expected = {"seed": self.seed, "global_batch": self.global_batch, **self._layout}
        different = [key for key, value in expected.items() if not _same(state.get(key), value)]
        if different:
            raise ValueError(
                "the loader state was saved by a stream with another "
                + ", ".join(
                    f"{key} ({_brief(state.get(key))}, this stream has {_brief(expected[key])})"
                    for key in different
                )
                + "; open the same runs with the same seed, seq_len, shuffle settings and "
                "batch_size x world_size"
            )
        epoch = _whole_number(state, "epoch", None)
        position = _whole_number(state, "position", self._epoch_end())
        self.epoch, self.position = epoch, position

    def _batches(self, epoch: int, position: int) -> Iterator[tuple[np.ndarray, int, int]]:
        """This rank's and worker's batches from `position` of `epoch` to its end, each with the
        (epoch, position) that follows it."""
        size, end = self.global_batch, self._epoch_end()
        firsts = np.arange(position, end if not self.drop_last else end - size + 1, size)
        firsts = firsts[self.worker_id :: self.num_workers]
        step = max(1, _PLAN_TOKENS // (self.batch_size * self.seq_len))
        chunks = [firsts[chunk : chunk + step] for chunk in range(0, len(firsts), step)]
        remote = any(dataset.remote for dataset in self.datasets)
        for number, planned in enumerate(chunks):
            if remote:  # this group's shards (the first time) and the next group's
                for ahead in chunks[number if number == 0 else number + 1 : number + 2]:
                    self._download(epoch, ahead, end)
            counts, view, where = self._plan(epoch, planned, end)
            done = 0
            for first, count in zip(planned.tolist(), counts, strict=True):
                after = first + size
                epoch_after, position_after = (epoch + 1, 0) if after >= end else (epoch, after)
                if count:
                    batch = view[where[done : done + count]].view(self.dtype)
                    yield batch.reshape(count, self.seq_len + 1), epoch_after, position_after
                done += count

    def _epoch_end(self) -> int:
        """The position after the last sequence of an epoch that batches can use."""
        total = self.sequences_per_epoch
        return total - total % self.global_batch if self.drop_last else total

    def _plan(
        self, epoch: int, firsts: np.ndarray, end: int
    ) -> tuple[list[int], np.ndarray, np.ndarray]:
        """This rank's row count in each global batch starting at `firsts`, and its rows (a view of
        rows and the element of it that is each: `_row_view`), for all the batches at once."""
        ranks = self._ranks(firsts, end)
        positions = ranks[ranks >= 0]
        arrays: list[np.ndarray] = []
        index = np.empty(len(positions), dtype=np.int64)
        offsets = np.empty(len(positions), dtype=np.int64)
        for dataset, rows, sequences in self._sequences(epoch, positions):
            found, index[rows], offsets[rows] = self.datasets[dataset].windows(
                sequences * self.seq_len, self.seq_len + 1
            )
            index[rows] += len(arrays)
            arrays.extend(found)
        width = (self.seq_len + 1) * self.dtype.itemsize
        view, where = _row_view(arrays, index, offsets * self.dtype.itemsize, width)
        return (ranks >= 0).sum(axis=1).tolist(), view, where

    def _download(self, epoch: int, firsts: np.ndarray, end: int) -> None:
        """Start downloading the shards of remote runs that the global batches starting at
        `firsts` need."""
        ranks = self._ranks(firsts, end)
        for dataset, _, sequences in self._sequences(epoch, ranks[ranks >= 0]):
            run = self.datasets[dataset]
            run.prefetch(run.shards_of(sequences * self.seq_len, self.seq_len + 1))

    def _ranks(self, firsts: np.ndarray, end: int) -> np.ndarray:
        """This rank's positions in each global batch starting at `firsts`, -1 past the end."""
        ranks = firsts[:, None] + self.rank * self.batch_size + np.arange(self.batch_size)
        return np.where(ranks < np.minimum(firsts[:, None] + self.global_batch, end), ranks, -1)

    def _sequences(
        self, epoch: int, positions: np.ndarray
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """For each run that positions of `epoch` draw from: its number, the indices of those
        positions and the run's sequence at each."""
        datasets, items = self.interleave.locate(epoch * self.sequences_per_epoch + positions)
        for dataset in distinct(datasets):
            rows = np.flatnonzero(datasets == dataset)
            order = self.orders[dataset]
            loops, at = np.divmod(items[rows], order.count)
            sequences = np.empty(len(rows), dtype=np.int64)
            for first, stop in runs(loops):
                sequences[first:stop] = order.sequences(int(loops[first]), at[first:stop])
            yield dataset, rows, sequences


def _row_view(
    arrays: list[np.ndarray], index: np.ndarray, starts: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """A read-only array of overlapping rows of `width` bytes, one at each byte of the memory
    that `arrays` span, and the element of it that is each row starting `starts[i]` bytes into
    `arrays[index[i]]`.

    A batch is then one fancy index, a memcpy per row in C: slicing each row in Python and joining
    the slices made the shuffled rate in benchmarks/loader.py a fifth lower. The memory between
    the arrays is not theirs, so every row is checked to lie inside its own array; the view keeps
    the arrays alive. numpy refuses a view of more than 2**63 bytes (its length times `width`), so
    the arrays must lie close together: they are all memory maps (TokenDataset assembles the
    windows it copies in one too).
    """
    if not arrays:  # a rank past the end of a short last batch
        return np.empty(0, dtype=f"V{width}"), index
    addresses = [array.__array_interface__["data"][0] for array in arrays]
    low = min(addresses)
    bases = np.array([address - low for address in addresses], dtype=np.int64)
    sizes = np.array([array.nbytes for array in arrays], dtype=np.int64)
    if not ((starts >= 0) & (starts + width <= sizes[index])).all():
        raise RuntimeError("a planned row lies outside its token array: a bug in corpusmill.loader")
    interface = {
        "version": 3,
        "data": (low, True),
        "shape": (int((bases + sizes).max()) - width + 1,),
        "strides": (1,),
        "typestr": f"|V{width}",
    }
    return np.asarray(_Memory(interface, arrays)), bases[index] + starts


class _Memory:
    """An address range seen by numpy through the array interface, holding what backs it."""

    def __init__(self, interface: dict[str, Any], owners: list[np.ndarray]) -> None:
        self.__array_interface__ = interface
        self.owners = owners


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


def _same(value: Any, expected: Any) -> bool:
    """Whether a state's value is the stream's, of the same type (True is not 1)."""
    return type(value) is type(expected) and value == expected


def _whole_number(state: dict[str, Any], key: str, stop: int | None) -> int:
    """state[key], an integer from 0 to below `stop` (None: unbounded), else a ValueError naming
    the key and the range allowed."""
    value = state.get(key)
    allowed = "an integer of at least 0" if stop is None else f"an integer from 0 to {stop - 1}"
    if not isinstance(value, int | np.integer) or isinstance(value, bool):
        raise ValueError(f"the loader state's {key} is {_brief(value)}, expected {allowed}")
    if value < 0 or (stop is not None and value >= stop):
        raise ValueError(
            f"the loader state's {key} is {value}, outside this stream's range: {allowed}"
        )
    return int(value)


def _brief(value: Any) -> str:
    """A value short enough for an error message (long lists become a digest)."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= 80 else "digest " + hashlib.sha256(text.encode()).hexdigest()[:12]
