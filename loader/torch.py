"""PyTorch's data loading over a TokenStream: the same batches with any number of worker processes,
as tensors of a type an embedding takes, and a state in the main process that resumes exactly.

Imported only where used (`from corpusmill.loader.torch import TokenLoader`): corpusmill.loader
itself imports no torch. A DataLoader's workers each hold their own copy of a dataset, so a state
kept by the dataset stays in the workers; `TokenLoader` keeps it where the batches arrive instead.
Worker w of k yields the global batches w, w + k, w + 2k, ... of a pass, and the DataLoader takes
them from its workers in turn, which is the stream's own order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from corpusmill.loader.stream import TokenStream

# Token types an embedding accepts (the shards' uint16 and uint32 are not among them), each with
# the numpy type that a batch is converted to first.
_NUMPY_TYPES = {torch.int64: np.int64, torch.int32: np.int32}


class TokenBatches(IterableDataset):
    """This rank's batches of `TokenStream(paths, seq_len, batch_size, **options)` as tensors of
    `dtype`: a pass is the rest of the stream's current epoch, and the next pass the next epoch.

    In worker w of a DataLoader's k, a pass yields every k-th batch from the w-th. Its iterator has
    `state_dict`/`load_state_dict` (the position of that worker's next batch), which torchdata's
    StatefulDataLoader saves per worker and restores; the dataset's own state is where the next
    pass starts, in `TokenStream.state_dict()`'s format. A worker's copy moves on to the next epoch
    when its pass ends, so a StatefulDataLoader with workers needs `persistent_workers=True` for
    more than one epoch (without, each pass starts again from the dataset it was given).
    """

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        seq_len: int,
        batch_size: int,
        *,
        dtype: torch.dtype = torch.int64,
        **options: Any,
    ) -> None:
        if dtype not in _NUMPY_TYPES:
            raise ValueError(f"dtype {dtype}: give torch.int64 or torch.int32")
        given = sorted({"worker_id", "num_workers"} & set(options))
        if given:
            raise ValueError(
                f"{' and '.join(given)} are the DataLoader's: give num_workers to the DataLoader"
            )
        self.dtype = dtype
        self._arguments = (paths, seq_len, batch_size, options)
        self._main: TokenStream | None = self.stream()
        self.state = self._main.state_dict()
        total, self._global_batch = self._main.sequences_per_epoch, self._main.global_batch
        # The position after an epoch's last batch, as the stream ends its epochs.
        self._end = total - total % self._global_batch if self._main.drop_last else total

    def stream(self, num_workers: int = 1) -> TokenStream:
        """A new TokenStream of these runs and options, taking every `num_workers`-th batch."""
        paths, seq_len, batch_size, options = self._arguments
        return TokenStream(paths, seq_len, batch_size, num_workers=num_workers, **options)

    def __iter__(self) -> _Pass:
        info = get_worker_info()
        return _Pass(self, *((0, 1) if info is None else (info.id, info.num_workers)))

    def state_dict(self) -> dict[str, Any]:
        """Where the next pass starts, as `TokenStream.state_dict()` says it."""
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Start the next pass at `state`, from `state_dict()` of this class, of a TokenLoader or
        of a TokenStream of the same runs and settings; it is checked as TokenStream checks it."""
        stream = self._main or self.stream()
        stream.load_state_dict(state)
        self.state = stream.state_dict()

    def after(
        self, state: dict[str, Any], batches: int, within_epoch: bool = False
    ) -> dict[str, Any] | None:
        """`state` moved on by `batches` global batches; past its epoch's last batch, the next
        epoch's start, or None when `within_epoch`."""
        position = state["position"] + batches * self._global_batch
        if position < self._end:
            return {**state, "position": position}
        return None if within_epoch else self.next_epoch(state)

    def next_epoch(self, state: dict[str, Any]) -> dict[str, Any]:
        """The start of the epoch after `state`'s."""
        return {**state, "epoch": state["epoch"] + 1, "position": 0}

    def __getstate__(self) -> dict[str, Any]:
        # A worker opens the runs itself: the memory maps of the main process's stream stay there.
        return {**self.__dict__, "_main": None}


class TokenLoader(DataLoader):
    """A DataLoader of `TokenBatches(*arguments, **options)`'s tensors, with `num_workers` worker
    processes (0: in this one), in the single-process stream's order, whose `state_dict()` after a
    batch names the next one.

    `state_dict`/`load_state_dict` are those of `TokenStream` (the same dict), so a state saved
    here resumes a TokenStream and the other way round, at any number of workers. Each `for` over
    the loader is the rest of the current epoch, as over a TokenStream.
    """

    def __init__(
        self,
        *arguments: Any,
        num_workers: int = 0,
        pin_memory: bool = False,
        multiprocessing_context: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            TokenBatches(*arguments, **options),
            batch_size=None,
            num_workers=num_workers,
            pin_memory=pin_memory,
            multiprocessing_context=multiprocessing_context,
        )

    def __iter__(self) -> Iterator[torch.Tensor]:
        batches: TokenBatches = self.dataset
        if not self.num_workers:  # the pass runs here and keeps the dataset's state itself
            yield from super().__iter__()
            return
        # Workers start from the state pickled with the dataset; batches arrive here in the
        # stream's order, so the state after one is the position that follows it.
        start = state = batches.state
        for batch in super().__iter__():
            state = batches.state = batches.after(state, 1)
            yield batch
        if state["epoch"] == start["epoch"]:  # a rank with no row of a short last batch
            batches.state = batches.next_epoch(state)

    def state_dict(self) -> dict[str, Any]:
        """Where the next batch is, as `TokenStream.state_dict()` says it: small JSON data."""
        return self.dataset.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state` (checked as TokenStream checks it) at the next `for`."""
        self.dataset.load_state_dict(state)


class _Pass:
    """One pass of TokenBatches in one process: its batches as tensors, and the position of its
    next one, which it can save and be set to (StatefulDataLoader's protocol)."""

    def __init__(self, batches: TokenBatches, worker_id: int, num_workers: int) -> None:
        self.batches, self.num_workers = batches, num_workers
        self.stream = batches.stream(num_workers)
        self.epoch = batches.state["epoch"]
        self.next = batches.after(batches.state, worker_id, within_epoch=True)
        self._batches: Iterator[np.ndarray] | None = None

    def __iter__(self) -> _Pass:
        return self

    def __next__(self) -> torch.Tensor:
        if self.next is None:
            self._end()
            raise StopIteration
        if self._batches is None:
            self.stream.load_state_dict(self.next)
            self._batches = iter(self.stream)
        batch = next(self._batches, None)
        if batch is None:
            self._end()
            raise StopIteration
        self.next = self.batches.after(self.next, self.num_workers, within_epoch=True)
        if self.next is None:
            self._end()
        elif self.num_workers == 1:
            self.batches.state = self.next
        return torch.from_numpy(batch.astype(_NUMPY_TYPES[self.batches.dtype]))

    def state_dict(self) -> dict[str, Any]:
        """This pass's epoch and next batch (None when it has none left)."""
        return {"epoch": self.epoch, "next": self.next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue this pass from a `state_dict()` of a pass of the same worker."""
        self.epoch, self.next = state["epoch"], state["next"]
        if self.next is not None:
            self.stream.load_state_dict(self.next)
            self.next = self.stream.state_dict()
        self._batches = None

    def _end(self) -> None:
        """Finish the pass (again, harmlessly): the dataset's next one starts the next epoch."""
        self.next = None
        self.batches.state = self.batches.next_epoch({**self.batches.state, "epoch": self.epoch})
