"""The lines stage: lines repeated across the documents dedup kept (navigation, cookie notices,
footers), found on Dask with integer columns only, listed in OUT/lines/frequent.arrow; where the
kept documents are read (corpus.py `read_kept`), those lines are dropped (dedup/lines.py).

Three steps: a task per clean part writes the (line hash, document key) pairs of its kept
documents, one per distinct line of a document, sorted -> lines/hashes/part-N.arrow (the
dedup shuffle's files, dedup/shuffle.py); a task per range of hashes counts each hash's
documents and returns those above `lines.max_docs`, which are written as one sorted file; a task
per part then counts what their removal takes away, and the most repeated lines are read back
from the first document holding them. Counting only documents dedup kept keeps a page copied a
hundred times from making its own lines frequent. `_done.json` is written last.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client

from corpusmill.core.atomic import write_json
from corpusmill.core.storage import open_input
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import gather
from corpusmill.pipeline.corpus import kept_mask
from corpusmill.pipeline.dedup.keys import ROW_BITS, split_keys
from corpusmill.pipeline.dedup.lines import LinesConfig, drop_lines, line_hashes, split_lines
from corpusmill.pipeline.dedup.shuffle import read_metadata, read_range, write_sorted

log = logging.getLogger(__name__)

# The pairs' first column, the top 32 bits of the hash: counting tasks take ranges of it.
_PREFIX_BITS = 32
# How many of the most repeated lines the stats show, and how much of each.
_EXAMPLES = 20
_EXAMPLE_CHARS = 200


def run_lines(layout: RunLayout, config: LinesConfig, client: Client) -> dict[str, Any]:
    """Find the lines in more than `config.max_docs` of the documents dedup kept, write them to
    OUT/lines/frequent.arrow and return the stage's stats. Skipped (its stats returned) when
    OUT/lines/_done.json exists."""
    done = layout.lines_marker
    if done.exists():
        log.info("lines: %s exists, skipping the stage", done)
        return json.loads(done.read_text())
    parts = layout.clean_parts()
    hashed = client.map(hash_part, parts, layout=layout, pure=False)
    rows = sum(gather(client, hashed, "lines: hashing", unit="part"))
    ranges = _prefix_ranges(math.ceil(rows / config.bucket_rows))
    paths = [layout.line_hashes(part) for part in parts]
    counted = client.map(count_range, ranges, paths=paths, max_docs=config.max_docs, pure=False)
    frequent = pa.concat_tables(gather(client, counted, "lines: counting", unit="bucket"))
    frequent = frequent.sort_by("hash")
    write_sorted(layout.frequent_lines, frequent)
    hashes = frequent.column("hash").to_numpy()
    dropped = client.map(count_dropped, parts, layout=layout, frequent=hashes, pure=False)
    totals: Counter[str] = Counter()
    for counts in gather(client, dropped, "lines: counting removals", unit="part"):
        totals.update(counts)
    emptied = {name: totals[f"emptied_{name}"] for name in ("docs", "bytes")}
    stats = {
        "max_docs": config.max_docs,
        "docs": totals["docs"],
        "bytes": totals["bytes"],
        "pairs": rows,
        "frequent": frequent.num_rows,
        "removed": {name: totals[f"removed_{name}"] for name in ("lines", "bytes")},
        "emptied": emptied,
        "kept": {
            "docs": totals["docs"] - emptied["docs"],
            "bytes": totals["bytes"] - totals["removed_bytes"],
        },
        "top": _examples(layout, frequent, client),
    }
    write_json(done, stats)
    return stats


def hash_part(part: int, layout: RunLayout) -> int:
    """Write the sorted (prefix, hash, key) rows of clean part `part`'s kept documents, one per
    distinct non-blank line of a document, unless written before; return how many."""
    path = layout.line_hashes(part)
    if (written := read_metadata(path)) is not None:
        return written["rows"]
    with open_input(layout.clean_part(part)) as source:
        texts = pq.read_table(source, columns=["text"]).column("text")
    keep = kept_mask(layout, part, len(texts))
    lines = split_lines(texts)
    hashes, blank = line_hashes(lines.flatten())
    owner = pc.list_parent_indices(lines).to_numpy()
    wanted = keep[owner] & ~blank
    hashes, keys = hashes[wanted], (np.int64(part) << ROW_BITS) + owner[wanted]
    order = np.lexsort((keys, hashes))
    hashes, keys = hashes[order], keys[order]
    first = np.ones(len(hashes), bool)
    first[1:] = (hashes[1:] != hashes[:-1]) | (keys[1:] != keys[:-1])
    hashes, keys = hashes[first], keys[first]
    prefix = (hashes >> np.uint64(_PREFIX_BITS)).astype(np.uint32)
    table = pa.table({"prefix": prefix, "hash": hashes, "key": keys})
    write_sorted(path, table, {"rows": table.num_rows})
    return table.num_rows


def count_range(bounds: tuple[int, int], paths: list[Any], max_docs: int) -> pa.Table:
    """The hashes of prefix range `bounds` in more than `max_docs` documents: each with its
    document count and its first document's key."""
    rows = read_range(paths, *bounds)
    hashes, keys = rows.column("hash").to_numpy(), rows.column("key").to_numpy()
    order = np.lexsort((keys, hashes))
    unique, first, docs = np.unique(hashes[order], return_index=True, return_counts=True)
    frequent = docs > max_docs
    return pa.table(
        {
            "hash": unique[frequent],
            "docs": docs[frequent].astype(np.int64),
            "first": keys[order][first][frequent],
        }
    )


def count_dropped(part: int, layout: RunLayout, frequent: np.ndarray) -> dict[str, int]:
    """Clean part `part`'s kept documents and their text bytes, and what removing the `frequent`
    lines takes from them: lines and bytes, and the documents (and their bytes) left without
    text."""
    with open_input(layout.clean_part(part)) as source:
        table = pq.read_table(source, columns=["text"])
    table = table.filter(kept_mask(layout, part, table.num_rows))
    dropped = drop_lines(table, frequent)
    return {
        "docs": table.num_rows,
        "bytes": int(pc.sum(pc.binary_length(table.column("text"))).as_py() or 0),
        "removed_lines": dropped.lines,
        "removed_bytes": dropped.bytes,
        "emptied_docs": dropped.emptied,
        "emptied_bytes": dropped.emptied_bytes,
    }


def _prefix_ranges(buckets: int) -> list[tuple[int, int]]:
    """`buckets` (at least one) ranges of the pairs' prefix column that cover all its values."""
    edges = np.linspace(0, 1 << _PREFIX_BITS, max(1, buckets) + 1).astype(np.int64)
    return [(int(low), int(high)) for low, high in zip(edges[:-1], edges[1:], strict=True)]


def _examples(layout: RunLayout, frequent: pa.Table, client: Client) -> list[dict[str, Any]]:
    """The most repeated lines (by documents, ties by hash): each one's document count and its
    text as the first document holding it has it, stripped and cut to 200 characters."""
    if not frequent.num_rows:
        return []
    docs, hashes = frequent.column("docs").to_numpy(), frequent.column("hash").to_numpy()
    top = np.lexsort((hashes, -docs))[:_EXAMPLES]
    firsts = frequent.column("first").to_numpy()[top]
    texts = client.submit(line_texts, layout, hashes[top], firsts, pure=False).result()
    return [
        {"docs": int(docs[index]), "line": text} for index, text in zip(top, texts, strict=True)
    ]


def line_texts(layout: RunLayout, hashes: np.ndarray, keys: np.ndarray) -> list[str]:
    """The text of the line of each hash in the document of the same place in `keys` (each
    clean part read once)."""
    parts, rows = split_keys(keys)
    texts: dict[int, str] = {}
    for part in np.unique(parts):
        with open_input(layout.clean_part(int(part))) as source:
            column = pq.read_table(source, columns=["text"]).column("text")
        for index in np.flatnonzero(parts == part):
            lines = split_lines(column.take([int(rows[index])])).flatten()
            found, _ = line_hashes(lines)
            line = lines[int(np.flatnonzero(found == hashes[index])[0])].as_py()
            texts[int(index)] = line.strip()[:_EXAMPLE_CHARS]
    return [texts[index] for index in range(len(keys))]
