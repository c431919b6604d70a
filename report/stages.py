"""What cleaning and deduplication did to compressibility: the same input files' text as read
(extracted, before normalization and filters), after cleaning, and after deduplication, each
compressed as one stream in corpus order (duplicates compress well, so removing them should raise
the bits per byte)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.corpus import kept_mask
from corpusmill.pipeline.readers import discover_inputs, plan_splits, read_split
from corpusmill.report.compressors import stream_sizes

log = logging.getLogger(__name__)


def stage_compression(out: Path, compare_bytes: int) -> dict[str, Any]:
    """Documents, bytes and compressed sizes of the raw, clean and deduplicated text of the run's
    first input files (sorted, up to `compare_bytes` stored bytes, at least one file)."""
    layout = RunLayout(Path(out))
    config = load_config([layout.config])
    files = discover_inputs(config.inputs, config.read, out=config.out)
    chosen, stored = [], 0
    for file in files:
        if chosen and stored + file.size > compare_bytes:
            break
        chosen.append(file)
        stored += file.size
    sources = pa.array([file.source for file in chosen], pa.string())
    raw = [
        batch.docs["text"]
        for split in plan_splits(chosen, config.read)
        for batch in read_split(split, config.read)
    ]
    clean, dedup = [], []
    for part in layout.clean_parts():
        table = pq.read_table(layout.clean_part(part), columns=["id", "text"])
        compared = pc.is_in(_sources(table["id"]), value_set=sources).to_numpy(zero_copy_only=False)
        clean.append(table["text"].filter(compared))
        dedup.append(table["text"].filter(compared & kept_mask(layout, part, table.num_rows)))
    stages = {"raw": raw, "clean": clean}
    if layout.dedup_marker.exists():
        stages["deduplicated"] = dedup
    log.info("report: comparing stages on %d of %d input files", len(chosen), len(files))
    return {
        "files": [file.source for file in chosen],
        "input_files": len(files),
        "stages": {name: _measure(texts) for name, texts in stages.items()},
    }


def _sources(ids: pa.ChunkedArray) -> pa.ChunkedArray:
    """The input file of each document id (`<source>#<offset>`)."""
    return pc.replace_substring_regex(ids, pattern=r"#[0-9]+$", replacement="")


def _measure(texts: list[pa.ChunkedArray | pa.Array]) -> dict[str, Any]:
    """Documents, UTF-8 bytes and compressed stream sizes of texts in order."""
    stream = b"".join(text.encode() for chunk in texts for text in chunk.to_pylist())
    return {
        "docs": sum(len(chunk) for chunk in texts),
        "bytes": len(stream),
        "compressed": stream_sizes(stream),
    }
