"""Where the dedup steps of one run read and write: the clean parts, the bucket count, and each
step's numbered files under OUT/dedup/ (the run layout names them)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location
from corpusmill.loader.layout import RunLayout


@dataclass(frozen=True)
class DedupFiles:
    """The clean parts one dedup run reads, its number of shuffle buckets (also the number of
    partitions of pairs), and the file each step writes per part, bucket or partition."""

    run: RunLayout
    parts: Sequence[int]  # a range when they are numbered without gaps (`compact_parts`)
    buckets: int

    def clean(self, part: int) -> Location:
        return self.run.clean_part(part)

    def file(self, step: str, index: int) -> Location:
        return self.run.dedup_file(step, index)

    def chunk(self, step: str, index: int, chunk: int) -> Location:
        """File `index` of a step for its first chunk, and beside it one per further chunk (a
        bucket too large to pair at once: candidates.py)."""
        path = self.file(step, index)
        return path if chunk == 0 else path.with_name(f"{path.stem}-{chunk}{path.suffix}")

    def per_part(self, step: str) -> Mapping[int, Location]:
        """The file of `step` of each part, as a mapping that pickles as these files do."""
        return _PartFiles(self, step)


def compact_parts(parts: Sequence[int]) -> Sequence[int]:
    """`parts` as a range when they run without gaps, as the clean stage numbers them: every
    dedup task receives the parts, and a range pickles in a few bytes however many there are."""
    if parts and list(parts) == list(range(parts[0], parts[-1] + 1)):
        return range(parts[0], parts[-1] + 1)
    return tuple(parts)


@dataclass(frozen=True)
class _PartFiles(Mapping):
    """Each part's file of one step, named when asked for."""

    files: DedupFiles
    step: str

    def __getitem__(self, part: int) -> Location:
        if part not in self.files.parts:
            raise KeyError(part)
        return self.files.file(self.step, part)

    def __iter__(self) -> Iterator[int]:
        return iter(self.files.parts)

    def __len__(self) -> int:
        return len(self.files.parts)


def rows_of(known: np.ndarray, wanted: np.ndarray, path: Location) -> np.ndarray:
    """The rows of sorted `wanted` keys among the sorted keys of file `path`, all of which it
    must hold (a file left by another run would not)."""
    rows = np.searchsorted(known, wanted)
    if len(wanted) and (
        not len(known) or not np.array_equal(known[np.minimum(rows, len(known) - 1)], wanted)
    ):
        raise StageError(f"dedup: {path} lacks documents it should hold; delete it and rerun")
    return rows
