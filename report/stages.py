"""What cleaning and deduplication did to compressibility, over the whole run, as Dask tasks.

Every document of the run is compressed on its own by each general-purpose compressor at three
stages: as read from the input files (extracted, before normalization and filters), after
cleaning, and after deduplication (without the documents dedup removed and, when the lines stage
ran, without the frequent lines it removed). A task per input split reads the raw text; a task
per clean part measures its documents and the deduplicated ones, and writes each clean
document's sizes and compression ratio to `documents/part-N.parquet` beside the report. Totals
are sums of documents, so they add up per language (known from the clean stage on) and per input
file. Duplicates compress well together but not alone: each task's documents are also compressed
as one stream, which shows the duplicates within a split or a part.

A task holds one batch of documents at a time, whatever the size of its split or part (a file
that cannot be split is one split): sizes are summed batch by batch and the stream is fed to
streaming compressors, whose output is the stream figure. gzip's is that of one-shot compression;
zstd's is not quite, as a streaming frame is compressed without knowing its size: on MB of text it
differs by a few bytes at -19 and by up to half a percent at -3.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from itertools import compress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusmill.core.atomic import atomic_path
from corpusmill.core.storage import Location, ObjectPath, location, open_input
from corpusmill.loader.layout import RunLayout, part_name
from corpusmill.pipeline.cluster import gather
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.corpus import kept_mask
from corpusmill.pipeline.dedup.lines import drop_lines, read_frequent
from corpusmill.pipeline.readers import ReadConfig, Split, discover_inputs, plan_splits, read_split
from corpusmill.pipeline.worker_storage import credentials_on_workers
from corpusmill.report.compressors import StreamSizes, document_sizes

if TYPE_CHECKING:
    from dask.distributed import Client

log = logging.getLogger(__name__)

STAGES = ("raw", "clean", "deduplicated")
# The language of a raw document, which only the clean stage identifies, and of one it left blank.
UNKNOWN = "unknown"
# Rows of a clean part read at a time: a few MB of text, whatever the part's size.
BATCH_ROWS = 1024
_CLEAN_COLUMNS = ["id", "text", "source", "lang"]


def stage_compression(out: Location | str, client: Client, documents: Path) -> dict[str, Any]:
    """Documents, bytes and compressed sizes of the run's raw, clean and deduplicated text, in
    total, per language and per input file; each clean document's figures go to the local folder
    `documents`."""
    layout = RunLayout(location(out))
    config = load_config([layout.config])
    files = discover_inputs(config.inputs, config.read, out=config.out)
    splits = plan_splits(files, config.read)
    parts = layout.clean_parts()
    options = layout.root.options if isinstance(layout.root, ObjectPath) else {}
    with credentials_on_workers(client, options):
        futures = client.map(raw_split, splits, read=config.read, pure=False)
        futures += client.map(
            clean_part, parts, out=layout.root, documents=str(documents), pure=False
        )
        log.info("report: compressing %d input splits and %d clean parts", len(splits), len(parts))
        results = gather(client, futures, "report: compression of the whole run")
    stages = {
        stage: _merge(result[stage] for result in results if stage in result) for stage in STAGES
    }
    if not (layout.dedup_marker.exists() or layout.lines_marker.exists()):
        del stages["deduplicated"]
    return {
        "input_files": len(files),
        "documents": str(documents),
        "stages": stages,
    }


def raw_split(split: Split, read: ReadConfig) -> dict[str, Any]:
    """The raw stage's figures of one input split: its documents as read, batch by batch."""
    raw = Breakdown()
    for batch in read_split(split, read):
        docs = batch.docs
        unknown = pa.array([UNKNOWN] * docs.num_rows, pa.string())
        raw.add(docs["source"], unknown, _encoded(docs["text"]))
    return {"raw": raw.result()} if raw.docs else {}


def clean_part(part: int, out: Location | str, documents: str) -> dict[str, Any]:
    """The clean and deduplicated stages' figures of clean part `part`, read a batch of rows at a
    time; its documents' own figures are written to `documents/part-N.parquet`."""
    layout = RunLayout(location(out))
    frequent = read_frequent(layout.frequent_lines) if layout.lines_marker.exists() else None
    clean, deduplicated = Breakdown(), Breakdown()
    path = Path(documents) / f"{part_name(part)}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_input(layout.clean_part(part)) as source, atomic_path(path) as temporary:
        reader = pq.ParquetFile(source)
        kept = kept_mask(layout, part, reader.metadata.num_rows)
        empty = reader.schema_arrow.empty_table().select(_CLEAN_COLUMNS)
        schema = _document_rows(empty, document_sizes([]), kept[:0]).schema
        first = 0
        with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
            for batch in reader.iter_batches(batch_size=BATCH_ROWS, columns=_CLEAN_COLUMNS):
                table = pa.Table.from_batches([batch])
                lang = table.schema.get_field_index("lang")
                table = table.set_column(lang, "lang", pc.fill_null(table["lang"], UNKNOWN))
                keep = kept[first : first + table.num_rows]
                first += table.num_rows
                texts = _encoded(table["text"])
                sizes = document_sizes(texts)
                clean.add(table["source"], table["lang"], texts, sizes)
                writer.write_table(_document_rows(table, sizes, keep))
                survivors = table.filter(pa.array(keep))
                if frequent is None:
                    kept_sizes = {name: size[keep] for name, size in sizes.items()}
                    kept_texts = list(compress(texts, keep))
                else:
                    survivors = drop_lines(survivors, frequent).table
                    kept_sizes, kept_texts = None, _encoded(survivors["text"])
                deduplicated.add(survivors["source"], survivors["lang"], kept_texts, kept_sizes)
    return {"clean": clean.result(), "deduplicated": deduplicated.result()}


class Breakdown:
    """Documents, bytes and compressed bytes summed per language and per input file, and the
    documents compressed as one stream (where duplicates among them show), added batch by batch
    so that only the sums and the compressors' windows stay in memory."""

    def __init__(self) -> None:
        self.docs = 0
        self.groups: dict[str, dict[str, dict[str, int]]] = {
            "by_language": defaultdict(lambda: defaultdict(int)),
            "by_source": defaultdict(lambda: defaultdict(int)),
        }
        self.stream = StreamSizes()

    def add(
        self,
        sources: pa.ChunkedArray | pa.Array,
        langs: pa.ChunkedArray | pa.Array,
        texts: list[bytes],
        sizes: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Add a batch's documents: their input files, languages and UTF-8 texts, and the texts'
        sizes by document_sizes when already known."""
        sizes = document_sizes(texts) if sizes is None else sizes
        self.docs += len(texts)
        self.stream.add(texts)
        for key, values in (("by_language", langs), ("by_source", sources)):
            names = np.asarray(values.to_pylist(), dtype=object)
            for name in set(names.tolist()):
                rows = names == name
                group = self.groups[key][name]
                group["docs"] += int(rows.sum())
                for measure, size in sizes.items():
                    group[measure] += int(size[rows].sum())

    def result(self) -> dict[str, dict[str, dict[str, int]]]:
        """The sums, as `_merge` adds them up over tasks."""
        result = {"stream": {"all": self.stream.sizes()}}
        for key, groups in self.groups.items():
            result[key] = {name: dict(groups[name]) for name in sorted(groups)}
        return result


def _encoded(texts: pa.ChunkedArray | pa.Array) -> list[bytes]:
    return [text.encode() for text in texts.to_pylist()]


def _document_rows(table: pa.Table, sizes: dict[str, np.ndarray], kept: np.ndarray) -> pa.Table:
    """Each clean document's figures: its input file, language, sizes, zstd -19 ratio and
    whether dedup kept it."""
    columns = {
        "id": table["id"],
        "source": table["source"],
        "lang": table["lang"],
        "bytes": pa.array(sizes["bytes"]),
        "kept": pa.array(kept),
    }
    columns |= {name: pa.array(size) for name, size in sizes.items() if name != "bytes"}
    columns["zstd -19 ratio"] = pa.array(sizes["bytes"] / np.maximum(sizes["zstd -19"], 1))
    return pa.table(columns)


def _merge(results: Any) -> dict[str, Any]:
    """Tasks' breakdowns summed, and the stage's total (the sum over its languages)."""
    merged: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int))
    )
    for result in results:
        for key, groups in result.items():
            for name, counts in groups.items():
                for measure, value in counts.items():
                    merged[key][name][measure] += value
    total: dict[str, int] = defaultdict(int)
    for counts in merged["by_language"].values():
        for measure, value in counts.items():
            total[measure] += value
    return {
        "total": dict(total),
        "stream": dict(merged.pop("stream", {}).get("all", {})),
        **{key: {name: dict(c) for name, c in sorted(g.items())} for key, g in merged.items()},
    }
