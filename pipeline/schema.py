"""The table schemas of a run: documents, rejected records and the duplicates dedup removes.

Every step takes and returns pyarrow Tables of DOCUMENTS; nothing builds a Python object per
document. A document's `id` is `<source>#<offset>`: its input file's path relative to the input
root, and the byte offset of its record in that file (in the compressed file for per-record gzip
WARC members, in the decompressed stream otherwise), so ids never depend on how files were split.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DOCUMENTS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("title", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),
        # Everything else a reader knows (WARC date, HTTP charset, JSONL extra fields), as JSON.
        pa.field("meta", pa.string()),
    ]
)

# The deduplicated corpus, OUT/dataset/part-N.parquet: the documents dedup kept, for users of the
# data; `source_id` is the input record's own id (JSONL, Parquet), which `meta` then leaves out.
DATASET = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("title", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),
        pa.field("source_id", pa.string()),
        # The record's own fields as a struct whose type a run decides from all its parts
        # (pipeline/meta.py); this string type stands for it until then.
        pa.field("meta", pa.string()),
    ]
)

# A record that never became a document (unreadable, binary, broken JSON) or a document a filter
# removed. `text` holds what could be read, for inspection; it is null for binaries.
REJECTED = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("step", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("text", pa.large_string()),
    ]
)


def signals_schema(signals: pa.StructType) -> pa.Schema:
    """OUT/signals/part-N.parquet: every document the filters measured, as it reached them, in
    input order, with `texts` in place of `text` (paired_texts); and `signals`, the filters'
    statistics of it (filters/base.py signals_type), from which new thresholds are decided
    without the inputs."""
    documents = DOCUMENTS.remove(DOCUMENTS.get_field_index("text"))
    texts = pa.field("texts", pa.large_list(pa.large_string()), nullable=False)
    return documents.append(texts).append(pa.field("signals", signals, nullable=False))


def paired_texts(reached: pa.Array, left: pa.Array) -> pa.LargeListArray:
    """The `texts` of OUT/signals/: each document's text as it reached the filters, then as the
    filters that edit texts left it, where that differs. Side by side in one column, Parquet's
    zstd stores the second as a copy of the first: half the bytes of two columns."""
    reached, left = reached.cast(pa.large_string()), left.cast(pa.large_string())
    changed = pc.fill_null(pc.not_equal(reached, left), True).to_numpy(zero_copy_only=False)
    ends = np.cumsum(1 + changed.astype(np.int64))
    starts = ends - 1 - changed
    order = np.empty(int(ends[-1]) if len(ends) else 0, np.int64)
    order[starts] = np.arange(len(reached))
    order[starts[changed] + 1] = len(reached) + np.flatnonzero(changed)
    values = pa.concat_arrays([reached, left]).take(pa.array(order))
    offsets = pa.array(np.concatenate([[0], ends]), pa.int64())
    return pa.LargeListArray.from_arrays(offsets, values)


def unpaired_texts(texts: pa.LargeListArray) -> tuple[pa.Array, pa.Array]:
    """The texts as they reached the filters and as the filters left them, from `texts`."""
    offsets = texts.offsets.to_numpy()
    return texts.values.take(pa.array(offsets[:-1])), texts.values.take(pa.array(offsets[1:] - 1))


# The dedup stage's result, OUT/dedup/removed.parquet: one row per document removed as a
# duplicate, in input order, with the document kept from its cluster (the first in input order).
REMOVED = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("cluster", pa.int64(), nullable=False),
        pa.field("kept_id", pa.string(), nullable=False),
    ]
)


def document_id(source: str, offset: int) -> str:
    """The deterministic id of the record at `offset` in input file `source`."""
    return f"{source}#{offset}"
