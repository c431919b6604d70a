"""What cleaning and deduplication did to compressibility, over the whole run, as Dask tasks.

Every document of the run is compressed on its own by each general-purpose compressor at three
stages: as read from the input files (extracted, before normalization and filters), after
cleaning, and after deduplication. A task per input split reads the raw text; a task per clean
part measures its documents and, with the dedup stage's removals, the deduplicated ones, and
writes each document's sizes and compression ratio to `documents/part-N.parquet` beside the
report. Totals are sums of documents, so they add up per language (known from the clean stage
on) and per input file. Duplicates compress well together but not alone: each task's documents
are also compressed as one stream, which shows the duplicates within a split or a part.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusmill.core.atomic import atomic_path
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import gather
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.corpus import kept_mask
from corpusmill.pipeline.readers import ReadConfig, Split, discover_inputs, plan_splits, read_split
from corpusmill.report.compressors import document_sizes, stream_sizes

if TYPE_CHECKING:
    from dask.distributed import Client

log = logging.getLogger(__name__)

STAGES = ("raw", "clean", "deduplicated")
# The language of a raw document, which only the clean stage identifies, and of one it left blank.
UNKNOWN = "unknown"


def stage_compression(out: Path, client: Client, documents: Path) -> dict[str, Any]:
    """Documents, bytes and compressed sizes of the run's raw, clean and deduplicated text, in
    total, per language and per input file; each clean document's figures go to `documents`."""
    layout = RunLayout(Path(out))
    config = load_config([layout.config])
    files = discover_inputs(config.inputs, config.read, out=config.out)
    splits = plan_splits(files, config.read)
    parts = layout.clean_parts()
    futures = client.map(raw_split, splits, read=config.read, pure=False)
    futures += client.map(clean_part, parts, out=str(out), documents=str(documents), pure=False)
    log.info("report: compressing %d input splits and %d clean parts", len(splits), len(parts))
    results = gather(client, futures, "report: compression of the whole run")
    stages = {
        stage: _merge(result[stage] for result in results if stage in result) for stage in STAGES
    }
    if not layout.dedup_marker.exists():
        del stages["deduplicated"]
    return {
        "input_files": len(files),
        "documents": str(documents),
        "stages": stages,
    }


def raw_split(split: Split, read: ReadConfig) -> dict[str, Any]:
    """The raw stage's figures of one input split: its documents as read."""
    tables = [batch.docs for batch in read_split(split, read)]
    if not tables:
        return {}
    table = pa.concat_tables(tables)
    texts = [text.encode() for text in table["text"].to_pylist()]
    unknown = pa.array([UNKNOWN] * table.num_rows, pa.string())
    return {"raw": _breakdown(table["source"], unknown, document_sizes(texts), texts)}


def clean_part(part: int, out: str, documents: str) -> dict[str, Any]:
    """The clean and deduplicated stages' figures of clean part `part`, its documents' own
    figures written to `documents/part-N.parquet`."""
    layout = RunLayout(Path(out))
    table = pq.read_table(layout.clean_part(part), columns=["id", "text", "source", "lang"])
    texts = [text.encode() for text in table["text"].to_pylist()]
    sizes = document_sizes(texts)
    kept = kept_mask(layout, part, table.num_rows)
    langs = pc.fill_null(table["lang"], UNKNOWN)
    columns = {
        "id": table["id"],
        "source": table["source"],
        "lang": langs,
        "bytes": pa.array(sizes["bytes"]),
        "kept": pa.array(kept),
    }
    columns |= {name: pa.array(size) for name, size in sizes.items() if name != "bytes"}
    columns["zstd -19 ratio"] = pa.array(sizes["bytes"] / np.maximum(sizes["zstd -19"], 1))
    path = Path(documents) / f"part-{part:05d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        pq.write_table(pa.table(columns), temporary, compression="zstd")
    kept_sizes = {name: size[kept] for name, size in sizes.items()}
    kept_texts = [text for text, keep in zip(texts, kept.tolist(), strict=True) if keep]
    return {
        "clean": _breakdown(table["source"], langs, sizes, texts),
        "deduplicated": _breakdown(
            table["source"].filter(kept), langs.filter(kept), kept_sizes, kept_texts
        ),
    }


def _breakdown(
    sources: pa.ChunkedArray | pa.Array,
    langs: pa.ChunkedArray | pa.Array,
    sizes: dict[str, np.ndarray],
    texts: list[bytes],
) -> dict[str, dict[str, dict[str, int]]]:
    """Documents, bytes and compressed bytes summed per language and per input file, and the
    task's documents compressed as one stream (where duplicates among them show)."""
    result = {"stream": {"all": stream_sizes(b"".join(texts))}}
    for key, values in (("by_language", langs), ("by_source", sources)):
        names = np.asarray(values.to_pylist(), dtype=object)
        groups: dict[str, dict[str, int]] = {}
        for name in sorted(set(names.tolist())):
            rows = names == name
            groups[name] = {"docs": int(rows.sum())} | {
                measure: int(size[rows].sum()) for measure, size in sizes.items()
            }
        result[key] = groups
    return result


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
