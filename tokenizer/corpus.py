"""The documents a tokenizer is trained on and the tokenize stage encodes, as `id` + `text` tables.

From a run's output folder: its clean parts minus the documents the dedup stage removed (the rows
its `OUT/dedup/removed/part-N.arrow` names for clean part N, once `OUT/dedup/_done.json` says that
stage finished), so a task reading one part reads only that part's removals. From any
other input (JSONL, Parquet, text, WARC): the readers' documents, as read, without the clean
stage's normalization or filters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.pipeline.dedup.keys import split_keys
from corpusmill.pipeline.dedup.shuffle import read_table
from corpusmill.pipeline.readers import (
    InputError,
    ReadConfig,
    discover_inputs,
    plan_splits,
    read_split,
)


class Corpus:
    """The documents of run output folders and raw inputs: found once, read as often as needed."""

    def __init__(self, inputs: Sequence[str], read_config: ReadConfig) -> None:
        self.runs = [Path(spec) for spec in inputs if is_run_output(spec)]
        raw = [spec for spec in inputs if not is_run_output(spec)]
        self.read_config = read_config
        self.splits = plan_splits(discover_inputs(raw, read_config), read_config) if raw else []

    def tables(self) -> Iterator[pa.Table]:
        """Tables of `id` and `text`: the run folders' documents in the order the folders were
        given, then the other inputs' in the readers' order (sorted files, byte offsets)."""
        for out in self.runs:
            for part in clean_parts(out):
                yield read_kept(part)
        for split in self.splits:
            for batch in read_split(split, self.read_config):
                yield batch.docs.select(["id", "text"])


def is_run_output(spec: str) -> bool:
    """True for the output folder of `corpusmill run` (it has a `clean/` folder of parts)."""
    return (Path(spec) / "clean").is_dir()


def clean_parts(out: Path) -> list[Path]:
    """A run's clean parts in input order."""
    return sorted(Path(out).glob("clean/part-*.parquet"))


def kept_mask(part: Path, num_rows: int) -> np.ndarray:
    """Whether the dedup stage kept each of a clean part's `num_rows` documents (all of them if
    it was not run)."""
    keep = np.ones(num_rows, bool)
    keep[_removed_rows(Path(part))] = False
    return keep


def read_kept(part: Path) -> pa.Table:
    """The `id` and `text` of a clean part's documents that dedup kept, in order."""
    table = pq.read_table(part, columns=["id", "text"])
    keep = kept_mask(part, table.num_rows)
    return table if keep.all() else table.filter(keep)


def _removed_rows(part: Path) -> np.ndarray:
    """Row numbers of a clean part's documents that the dedup stage removed (none if it was not
    run), from its removed/part-N.arrow."""
    dedup = part.parent.parent / "dedup"
    if not (dedup / "_done.json").exists():
        if dedup.exists():
            raise InputError(
                f"{dedup} has no _done.json, so the dedup stage did not finish: rerun "
                f"`corpusmill run` with the same config to complete it, or remove {dedup}"
            )
        return np.array([], np.int64)
    path = dedup / "removed" / f"{part.stem}.arrow"
    if not path.exists():
        raise InputError(f"{path} is missing: rerun `corpusmill run` with the same config")
    parts, rows = split_keys(read_table(path)["key"].to_numpy())
    if np.any(parts != int(part.stem.removeprefix("part-"))):
        raise InputError(f"{path} lists documents of another part than {part}: rerun dedup")
    return rows
