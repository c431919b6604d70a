"""The layout of a run's output folder: every file and marker a run writes is named here, for the
stages that write them, the readers, the loader, the report and `--force`.

Numbered files are `<unit>-NNNNN<suffix>` (`clean/part-00003.parquet`, `shard-00000.arrow`). A
stage's done markers live in its folder's `_done/` (the leading underscore keeps Arrow and Parquet
readers of the folder from taking them for data; the dataset's, in `.done/`, are hidden from HF
`datasets` too). The folder is a local Path or, for a run on an object store, a
core/storage.py ObjectPath: both join with `/` and list with `glob`, so every name here means
the same under either. Only the standard library and that path type are imported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corpusmill.core.storage import Location

# The file transformers loads a tokenizer from, and the two it reads beside it.
TOKENIZER = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
# The shards' manifest (loader/format.py).
MANIFEST = "index.json"
# The dedup stage's intermediate folders under OUT/dedup/, each with the unit its files are
# numbered by: a clean part, a shuffle bucket, or a partition of pairs.
DEDUP_STEPS = {
    "signatures": "part",
    "sizes": "part",
    "pairs": "bucket",
    "keys": "bucket",
    "shingles": "part",
    "edges": "partition",
    "members": "partition",
    "firsts": "partition",
    "components": "partition",
    "clusters": "part",
    "roots": "part",
    "counts": "part",
    "removed": "part",
}
_DONE = "_done"
_HIDDEN_DONE = ".done"
_PART = "part"
_SHARD = "shard"
# The splits of a run's tokens (loader/split.py) and the unit their shards are numbered by:
# `shard-00000.arrow` for training, `val-00000.arrow` for the held-out validation documents.
SPLITS = {"train": _SHARD, "validation": "val"}
_CLEAN_PART = re.compile(rf"{_PART}-(\d+)\.parquet")


def part_name(index: int) -> str:
    """The stem every file of clean part `index` is named by: `part-00003`."""
    return _numbered(_PART, index)


def shard_name(index: int, split: str = "train") -> str:
    """The file name of shard `index` of `split`, as the manifest lists it."""
    return f"{_numbered(SPLITS[split], index)}.arrow"


@dataclass(frozen=True)
class RunLayout:
    """Every path of the run folder `root`, a local folder or an object store's URL; each path
    is of the root's type."""

    root: Location

    @property
    def config(self) -> Location:
        """The run's effective config, written before anything else."""
        return self.root / "config.toml"

    @property
    def inputs(self) -> Location:
        """The record of the files the run read."""
        return self.root / "inputs.json"

    @property
    def reference_model(self) -> Location:
        """The perplexity filter's model of the reference text, trained before the clean stage."""
        return self.root / "reference-model.arrow"

    @property
    def lock(self) -> Location:
        """Present while a run writes the folder."""
        return self.root / "run.lock"

    @property
    def stats(self) -> Location:
        return self.root / "stats.json"

    @property
    def clean(self) -> Location:
        return self.root / "clean"

    @property
    def rejected(self) -> Location:
        return self.root / "rejected"

    def clean_part(self, index: int) -> Location:
        """The documents clean task `index` kept."""
        return self.clean / f"{part_name(index)}.parquet"

    def rejected_part(self, index: int) -> Location:
        """The records clean task `index` did not keep."""
        return self.rejected / f"{part_name(index)}.parquet"

    @property
    def signals(self) -> Location:
        return self.root / "signals"

    def signals_part(self, index: int) -> Location:
        """Every document clean task `index` gave the filters, with the filters' statistics."""
        return self.signals / f"{part_name(index)}.parquet"

    def clean_marker(self, index: int) -> Location:
        """Clean task `index`'s counts, written after both of its parts."""
        return self.clean / _DONE / f"{part_name(index)}.json"

    @property
    def refilter_marker(self) -> Location:
        """Present while the clean parts are decided again from their signals with new
        thresholds: until it is gone, some parts may hold the verdicts of the old ones."""
        return self.clean / _DONE / "refilter.json"

    def clean_parts(self) -> list[int]:
        """The numbers of the clean parts in the folder, in input order."""
        return sorted(
            int(match.group(1))
            for path in self.clean.glob(f"{_PART}-*.parquet")
            if (match := _CLEAN_PART.fullmatch(path.name))
        )

    @property
    def dedup(self) -> Location:
        return self.root / "dedup"

    @property
    def dedup_marker(self) -> Location:
        """The dedup stage's stats, written when it finished."""
        return self.dedup / f"{_DONE}.json"

    @property
    def removed(self) -> Location:
        """Every duplicate the dedup stage removed."""
        return self.dedup / "removed.parquet"

    def removed_part(self, index: int) -> Location:
        """The rows of clean part `index` that the dedup stage removed."""
        return self.dedup_file("removed", index)

    def dedup_file(self, step: str, index: int) -> Location:
        """File `index` of a dedup step's folder (DEDUP_STEPS names them and their units)."""
        return self.dedup / step / f"{_numbered(DEDUP_STEPS[step], index)}.arrow"

    def dedup_files(self, step: str) -> list[Location]:
        """The files of a dedup step's folder that exist, in order."""
        return sorted((self.dedup / step).glob(f"{DEDUP_STEPS[step]}-*.arrow"))

    @property
    def lines(self) -> Location:
        """The lines stage's folder: line hashes per clean part and the frequent lines."""
        return self.root / "lines"

    @property
    def lines_marker(self) -> Location:
        """The lines stage's stats, written when it finished."""
        return self.lines / f"{_DONE}.json"

    def line_hashes(self, index: int) -> Location:
        """The (line hash, document) pairs of clean part `index`'s kept documents."""
        return self.lines / "hashes" / f"{part_name(index)}.arrow"

    @property
    def frequent_lines(self) -> Location:
        """The hashes of the lines removed from every document, with their document counts."""
        return self.lines / "frequent.arrow"

    @property
    def dataset(self) -> Location:
        """The deduplicated corpus, a Parquet dataset holding nothing else."""
        return self.root / "dataset"

    def dataset_part(self, index: int) -> Location:
        """Clean part `index`'s documents that dedup kept, with their columns for users."""
        return self.dataset / f"{part_name(index)}.parquet"

    def dataset_marker(self, index: int) -> Location:
        """Dataset part `index`'s counts. Hidden, not `_done/`: `datasets.load_dataset("parquet",
        data_dir=...)` reads every file of the folder but hidden ones."""
        return self.dataset / _HIDDEN_DONE / f"{part_name(index)}.json"

    @property
    def tokenize(self) -> Location:
        return self.root / "tokenize"

    def encoded_part(self, index: int, split: str = "train") -> Location:
        """Clean part `index`'s kept documents of `split` encoded, until the shards hold them."""
        folder = self.tokenize if split == "train" else self.tokenize / split
        return folder / f"{part_name(index)}.arrow"

    def encoded_marker(self, index: int) -> Location:
        return self.tokenize / _DONE / f"{part_name(index)}.json"

    def shard_marker(self, index: int, split: str = "train") -> Location:
        return self.tokenize / _DONE / f"{_numbered(SPLITS[split], index)}.json"

    @property
    def train_marker(self) -> Location:
        """The options and counts of a tokenizer trained in the run."""
        return self.tokenize / _DONE / "train.json"

    @property
    def tokenizer(self) -> Location:
        return self.root / TOKENIZER

    @property
    def tokenizer_config(self) -> Location:
        return self.root / TOKENIZER_CONFIG

    @property
    def special_tokens_map(self) -> Location:
        return self.root / SPECIAL_TOKENS_MAP

    @property
    def manifest(self) -> Location:
        return self.root / MANIFEST

    def shard(self, index: int, split: str = "train") -> Location:
        return self.root / shard_name(index, split)

    def shards(self, split: str = "train") -> list[Location]:
        """The shard files of `split` in the folder, in order, whether the manifest lists them
        or not."""
        return sorted(self.root.glob(f"{SPLITS[split]}-*.arrow"))

    @property
    def report(self) -> Location:
        """The folder `corpusmill report` writes by default."""
        return self.root / "report"

    @property
    def report_documents(self) -> Location:
        """The folder of the report's per-document figures, a Parquet file per clean part."""
        return self.report / "documents"

    def results(self) -> list[Location]:
        """The files and folders in the folder that the run's stages and the commands writing
        into it by default (`corpusmill report`) wrote, in the order they come."""
        named = [
            self.clean,
            self.rejected,
            self.signals,
            self.dedup,
            self.lines,
            self.dataset,
            self.tokenize,
            self.tokenizer,
            self.tokenizer_config,
            self.special_tokens_map,
            self.manifest,
            *self.shards(),
            *self.shards("validation"),
            self.stats,
            self.report,
        ]
        return [path for path in named if path.exists()]

    def outputs(self) -> list[Location]:
        """Everything in the folder a run wrote but its lock: its records, then its results;
        what `--force` removes (the user's own files stay)."""
        records = (self.config, self.inputs, self.reference_model)
        return [path for path in records if path.exists()] + self.results()


def _numbered(unit: str, index: int) -> str:
    return f"{unit}-{index:05d}"
