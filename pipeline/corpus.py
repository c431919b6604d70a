"""The documents a tokenizer is trained on and the tokenize stage encodes, as `id` + `text` tables.

From a run's output folder: its clean parts minus the documents the dedup stage removed (the rows
its removal file for clean part N names, once its done marker says that stage finished), so a task
reading one part reads only that part's removals; when the lines stage ran, without the lines it
found frequent, and without the documents left with no text (dedup/lines.py). From any other
input (JSONL, Parquet, text, WARC): the readers' documents, as read, without the clean stage's
normalization or filters.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.core.storage import Location, location, open_input
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.dedup.keys import split_keys
from corpusmill.pipeline.dedup.lines import drop_lines, read_frequent
from corpusmill.pipeline.dedup.shuffle import read_table
from corpusmill.pipeline.readers import (
    InputError,
    ReadConfig,
    discover_inputs,
    plan_splits,
    read_split,
)


class Corpus:
    """The documents of run output folders and raw inputs: found once, and read (as tables of
    `id` and `text`) each time the corpus is iterated."""

    def __init__(
        self, inputs: Sequence[str | Location], read_config: ReadConfig | None = None
    ) -> None:
        self.inputs = [str(spec) for spec in inputs]
        self.runs = [RunLayout(location(spec)) for spec in inputs if is_run_output(spec)]
        raw = [str(spec) for spec in inputs if not is_run_output(spec)]
        self.read_config = read_config or ReadConfig()
        self.splits = (
            plan_splits(discover_inputs(raw, self.read_config), self.read_config) if raw else []
        )

    def __iter__(self) -> Iterator[pa.Table]:
        """The run folders' documents in the order the folders were given, then the other
        inputs' in the readers' order (sorted files, byte offsets)."""
        for layout in self.runs:
            for part in layout.clean_parts():
                yield read_kept(layout, part)
        for split in self.splits:
            for batch in read_split(split, self.read_config):
                yield batch.docs.select(["id", "text"])

    def __str__(self) -> str:
        return ", ".join(self.inputs)


def is_run_output(spec: str | os.PathLike[str] | Location) -> bool:
    """True for the output folder of `corpusmill run`, local or on an object store (it has a
    folder of clean parts)."""
    return RunLayout(location(spec)).clean.is_dir()


def read_kept(
    layout: RunLayout, part: int, columns: Sequence[str] | None = ("id", "text")
) -> pa.Table:
    """The `columns` (all with None) of clean part `part`'s documents that dedup kept, in order,
    their frequent lines removed if the lines stage ran."""
    frequent = _frequent_lines(layout)
    wanted = None if columns is None else list(columns)
    read = wanted
    if frequent is not None and wanted is not None and "text" not in wanted:
        read = [*wanted, "text"]
    with open_input(layout.clean_part(part)) as source:
        table = pq.read_table(source, columns=read)
    keep = kept_mask(layout, part, table.num_rows)
    table = table if keep.all() else table.filter(keep)
    if frequent is None:
        return table
    table = drop_lines(table, frequent).table
    return table if read == wanted else table.select(wanted)


def kept_mask(layout: RunLayout, part: int, num_rows: int) -> np.ndarray:
    """Whether the dedup stage kept each of clean part `part`'s `num_rows` documents (all of them
    if it was not run)."""
    keep = np.ones(num_rows, bool)
    keep[_removed_rows(layout, part)] = False
    return keep


def _frequent_lines(layout: RunLayout) -> np.ndarray | None:
    """The sorted hashes of the lines the lines stage found frequent, or None if it was not run."""
    if not layout.lines_marker.exists():
        if layout.frequent_lines.exists():
            raise InputError(
                f"{layout.lines} has no {layout.lines_marker.name}, so the lines stage did not "
                f"finish: rerun `corpusmill run` with the same config to complete it, or remove "
                f"{layout.lines}"
            )
        return None
    return read_frequent(layout.frequent_lines)


def _removed_rows(layout: RunLayout, part: int) -> np.ndarray:
    """Row numbers of clean part `part`'s documents that the dedup stage removed (none if it was
    not run), from its removal file."""
    dedup = layout.dedup
    if not layout.dedup_marker.exists():
        if dedup.exists():
            raise InputError(
                f"{dedup} has no {layout.dedup_marker.name}, so the dedup stage did not finish: "
                f"rerun `corpusmill run` with the same config to complete it, or remove {dedup}"
            )
        return np.array([], np.int64)
    path = layout.removed_part(part)
    if not path.exists():
        raise InputError(f"{path} is missing: rerun `corpusmill run` with the same config")
    parts, rows = split_keys(read_table(path)["key"].to_numpy())
    if np.any(parts != part):
        raise InputError(
            f"{path} lists documents of another part than {layout.clean_part(part)}: rerun dedup"
        )
    return rows
