"""A tokenized run opened for reading: manifest and shard files checked, shards mapped lazily.

Opening reads only `index.json` and stats the shards, so it takes milliseconds for thousands of
shards; a shard is memory-mapped when a sequence first needs it, and its token buffers are numpy
views of the mapping, never copies. At most `max_open_shards` shards, and at most
`max_open_bytes` of them, stay mapped (least recently used ones are dropped), which keeps the
resident memory of an epoch flat however large the run: at most the pages read from the shards
mapped. The default count, 64, holds every shard that a shuffle window of the stream (8 blocks,
each of which can straddle two shards) and the next one touch; with fewer, small shards are mapped
again and again, which halved the shuffled rate in benchmarks/loader.py. The byte bound takes over
for large shards (the tokenize stage's default holds 100M tokens, 200 MB): 64 of them could keep
12 GB of pages resident, while mapping a shard again costs little next to reading 200 MB of it.

A run on an object store (an fsspec URL such as s3://bucket/run) is opened the same way, its
bucket asked for first (an unreachable store is the CLI's one-line UserError), its manifest read
and its shards listed once; a shard is downloaded into a local cache (loader/cache.py,
bounded in bytes, each download checked against the manifest's xxh3) before it is mapped, and
`prefetch` starts downloads of the shards a stream will need next. Its batches are those of a local
copy of the run, bit for bit.
"""

from __future__ import annotations

import hashlib
import mmap
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from corpusmill.core.errors import UserError
from corpusmill.core.storage import ObjectPath, check_location, file_sizes, location
from corpusmill.loader.cache import DEFAULT_CACHE_BYTES, ShardCache
from corpusmill.loader.format import (
    FormatError,
    Manifest,
    open_shard,
    read_manifest,
    verify_shards,
)
from corpusmill.loader.layout import MANIFEST, RunLayout
from corpusmill.loader.plan import distinct
from corpusmill.loader.split import TRAIN, VALIDATION


class MissingSplitError(UserError, FormatError):
    """A split asked of a run that has none: the run was tokenized without holding one out."""


# A mapped shard: the first and past-the-end stream positions and the token view of each of its
# record batches.
_Segments = tuple[np.ndarray, np.ndarray, list[np.ndarray]]


class TokenDataset:
    """The token stream of one split of a run (its shards in manifest order), read by windows.

    `split` is "train" (the run's training shards, all its shards when it has no validation
    split) or "validation" (the documents loader/split.py holds out, in their own shards).

    `path` is a run's folder or its `index.json`, local or an fsspec URL reached with
    `storage_options` (default: those of the environment, core/storage.py). A remote run's shards
    are cached in `cache_dir` (default: loader/cache.py `default_cache_dir()`), which holds about
    `cache_bytes` at most; `verify` checks a local run's checksums on opening, while a remote
    shard's is checked whenever it is downloaded.
    """

    def __init__(
        self,
        path: str | Path | ObjectPath,
        verify: bool = False,
        max_open_shards: int = 64,
        max_open_bytes: int = 2 << 30,
        storage_options: dict[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        split: str = TRAIN,
    ) -> None:
        path = location(path, storage_options)
        check_location(path)
        self.folder = path.parent if path.name == MANIFEST else path
        self.manifest: Manifest = read_manifest(self.folder)
        self.split = split
        self.shards = self.manifest.split(split)
        if split == VALIDATION and not self.manifest.validation_fraction:
            raise MissingSplitError(
                f"{RunLayout(self.folder).manifest} lists no validation split: tokenize the run "
                "with shards.validation_fraction above 0 to hold documents out"
            )
        remote = isinstance(self.folder, ObjectPath)
        self._cache = (
            ShardCache(self.folder, self.shards, cache_dir, cache_bytes) if remote else None
        )
        checksums = verify and not remote
        problems = list(verify_shards(self.folder, self.manifest) if checksums else self._sizes())
        if problems:
            raise FormatError(
                f"{RunLayout(self.folder).manifest} lists shards that cannot be read: "
                + "; ".join(problems)
                + ". Rerun the tokenize stage for this output"
            )
        self.dtype = np.dtype(self.manifest.token_dtype)
        counts = [shard.tokens for shard in self.shards]
        self.shard_starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self.tokens = int(self.shard_starts[-1])
        self._tokens_type = pa.list_(pa.from_numpy_dtype(self.dtype))
        self._max_open = max_open_shards
        self._max_open_bytes = max_open_bytes
        self._open: OrderedDict[int, _Segments] = OrderedDict()
        self._open_bytes = 0

    def fingerprint(self) -> str:
        """A digest of the tokenizer and every shard's name, token count and checksum."""
        digest = hashlib.sha256(self.manifest.tokenizer_xxh3.encode())
        for shard in self.shards:
            digest.update(f"\n{shard.name}\t{shard.tokens}\t{shard.xxh3}".encode())
        return digest.hexdigest()[:32]

    @property
    def remote(self) -> bool:
        """Whether the run is on an object store, its shards read through a local cache."""
        return self._cache is not None

    def shards_of(self, starts: np.ndarray, length: int) -> list[int]:
        """The shards that the windows [start, start + length) touch, ascending."""
        count = len(self.shards)
        firsts = np.searchsorted(self.shard_starts, starts, side="right") - 1
        lasts = np.searchsorted(self.shard_starts, starts + length - 1, side="right") - 1
        # +1 where a window's span of shards begins, -1 past its end: the running sum is the
        # number of windows on each shard.
        ends = np.zeros(count + 1, dtype=np.int64)
        np.add.at(ends, np.clip(firsts, 0, count - 1), 1)
        np.add.at(ends, np.clip(lasts, 0, count - 1) + 1, -1)
        return np.flatnonzero(np.cumsum(ends[:-1]) > 0).tolist()

    def prefetch(self, shards: list[int]) -> None:
        """Start downloading those of `shards` (of a remote run) that are not mapped yet."""
        if self._cache is not None:
            self._cache.prefetch(shard for shard in shards if shard not in self._open)

    def ids_out_of_range(self) -> Iterator[str]:
        """Yield a problem for each shard holding a token id outside the manifest's vocabulary (a
        flipped bit that an embedding lookup would crash on). It reads every token, so a consumer
        checks its batches' maximum and calls this to name the shard when one is out of range."""
        vocab_size = self.manifest.vocab_size
        for shard, info in enumerate(self.shards):
            first = 0
            for values in self._map(shard)[2]:
                if values.max() >= vocab_size:
                    at = int(np.argmax(values >= vocab_size))
                    yield (
                        f"{self.folder / info.name}: token {first + at} is id {int(values[at])}, "
                        f"outside the manifest's vocabulary of {vocab_size}"
                    )
                    break
                first += len(values)

    def windows(
        self, starts: np.ndarray, length: int
    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Where each window [start, start + length) lies: `arrays[index[i]][offsets[i]:]`.

        The arrays are views of the mapped shards, and one more if some windows cross a record
        batch or shard boundary (rare): those windows copied back to back.
        """
        # Searched in ascending order: binary searches of shuffled keys, whose branches the
        # processor cannot predict, take longer than sorting the keys first.
        order = np.argsort(starts)
        ascending = starts[order]
        shards = np.searchsorted(self.shard_starts, ascending, side="right") - 1
        opened = {shard: self._segments(shard) for shard in distinct(shards)}
        firsts = np.concatenate([segments[0] for segments in opened.values()])
        ends = np.concatenate([segments[1] for segments in opened.values()])
        arrays = [array for segments in opened.values() for array in segments[2]]
        index = np.empty(len(starts), dtype=np.int64)
        index[order] = np.searchsorted(firsts, ascending, side="right") - 1
        offsets = starts - firsts[index]
        crossing = np.flatnonzero(starts + length > ends[index])
        if len(crossing):
            arrays.append(self._assemble(starts[crossing], length, opened))
            index[crossing] = len(arrays) - 1
            offsets[crossing] = np.arange(len(crossing)) * length
        return arrays, index, offsets

    def _assemble(
        self,
        starts: np.ndarray,
        length: int,
        opened: dict[int, _Segments],
    ) -> np.ndarray:
        """The windows [start, start + length) copied back to back from the segments they span,
        looked up in `opened` first (shards that the LRU may have dropped meanwhile).

        The copy lives in an anonymous memory map, among the shards' mappings in the address space
        rather than on the heap far below them: the stream reads rows through one view of the
        memory that all its arrays span (loader/stream.py `_row_view`), which must stay small.
        """
        out = np.frombuffer(mmap.mmap(-1, len(starts) * length * self.dtype.itemsize), self.dtype)
        for row, start in enumerate(starts.tolist()):
            if start + length > self.tokens:
                raise IndexError(
                    f"tokens [{start}, {start + length}) past the end of {self.folder}"
                )
            position, end = start, start + length
            while position < end:
                shard = int(np.searchsorted(self.shard_starts, position, side="right")) - 1
                if shard not in opened:
                    opened[shard] = self._segments(shard)
                firsts, _, arrays = opened[shard]
                segment = int(np.searchsorted(firsts, position, side="right")) - 1
                offset = position - int(firsts[segment])
                piece = arrays[segment][offset : offset + end - position]
                at = row * length + position - start
                out[at : at + len(piece)] = piece
                position += len(piece)
        return out

    def _segments(self, shard: int) -> _Segments:
        """A shard's segments, mapping it unless it is mapped already."""
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._open[shard]
        segments = self._map(shard)
        self._open[shard] = segments
        self._open_bytes += self.shards[shard].size
        while len(self._open) > 1 and (
            len(self._open) > self._max_open or self._open_bytes > self._max_open_bytes
        ):
            dropped, _ = self._open.popitem(last=False)
            self._open_bytes -= self.shards[dropped].size
        return segments

    def _map(self, shard: int) -> _Segments:
        """Map a shard (a remote run's from its cached copy) and check its token type and count
        against the manifest; a problem names the shard as the manifest lists it."""
        info = self.shards[shard]
        path = self.folder / info.name
        reader = self._cache.open(shard, open_shard) if self._cache else open_shard(path)
        expected = self._tokens_type
        arrays = []
        try:
            for index in range(reader.num_record_batches):
                column = reader.get_batch(index).column("tokens")
                if column.type != expected:
                    raise FormatError(
                        f"{path}: tokens are {column.type}, the manifest says {expected}; "
                        "rerun the tokenize stage"
                    )
                # Offsets that a flipped bit put outside the tokens would abort the process in
                # flatten(); this check of the first and last ones costs 0.1 us.
                column.validate()
                values = column.flatten().to_numpy(zero_copy_only=True)
                if len(values):
                    arrays.append(values)
        except (OSError, KeyError, pa.ArrowException) as exc:
            raise FormatError(
                f"{path} is damaged ({exc}); rerun the tokenize stage or check with verify=True"
            ) from None
        lengths = [len(array) for array in arrays]
        if sum(lengths) != info.tokens:
            raise FormatError(
                f"{path} holds {sum(lengths)} tokens, the manifest says {info.tokens}; "
                "rerun the tokenize stage"
            )
        bounds = np.cumsum([self.shard_starts[shard], *lengths])
        return bounds[:-1], bounds[1:], arrays

    def _sizes(self) -> list[str]:
        """A problem for each shard that is missing or not of its recorded size, from one listing
        of the folder."""
        sizes = file_sizes(self.folder)
        problems = []
        for shard in self.shards:
            path = self.folder / shard.name
            if shard.name not in sizes:
                problems.append(f"{path}: missing")
            elif sizes[shard.name] != shard.size:
                problems.append(
                    f"{path}: {sizes[shard.name]} bytes, the manifest says {shard.size}"
                )
        return problems
