"""The documents a tokenizer is trained on and the tokenize stage encodes, as `id` + `text` tables.

From a run's output folder: its clean parts minus the documents the dedup stage removed (read
from `OUT/dedup/removed.parquet` once `OUT/dedup/_done.json` says that stage finished). From any
other input (JSONL, Parquet, text, WARC): the readers' documents, as read, without the clean
stage's normalization or filters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
            removed = removed_ids(out)
            for part in clean_parts(out):
                yield read_kept(part, removed)
        for split in self.splits:
            for batch in read_split(split, self.read_config):
                yield batch.docs.select(["id", "text"])


def is_run_output(spec: str) -> bool:
    """True for the output folder of `corpusmill run` (it has a `clean/` folder of parts)."""
    return (Path(spec) / "clean").is_dir()


def clean_parts(out: Path) -> list[Path]:
    """A run's clean parts in input order."""
    return sorted(Path(out).glob("clean/part-*.parquet"))


def removed_ids(out: Path) -> pa.Array:
    """Ids of the documents the dedup stage removed (none if it was not run)."""
    dedup = Path(out) / "dedup"
    if (dedup / "_done.json").exists():
        return pq.read_table(dedup / "removed.parquet", columns=["id"])["id"].combine_chunks()
    if dedup.exists():
        raise InputError(
            f"{dedup} has no _done.json, so the dedup stage did not finish: rerun "
            f"`corpusmill run` with the same config to complete it, or remove {dedup}"
        )
    return pa.array([], pa.string())


def read_kept(part: Path, removed: pa.Array) -> pa.Table:
    """The `id` and `text` of a clean part's documents that dedup kept, in order."""
    table = pq.read_table(part, columns=["id", "text"])
    if len(removed):
        table = table.filter(pc.invert(pc.is_in(table["id"], value_set=removed)))
    return table
