"""The dataset stage: the deduplicated corpus as Parquet, for reading with pyarrow, pandas, duckdb
or HF `datasets`.

A task per clean part writes the documents dedup kept (all of them when dedup is off), in input
order, to `OUT/dataset/part-N.parquet` (schema DATASET; a part with none still gets its file, so
parts map 1:1), then its marker `OUT/dataset/.done/part-N.json` with its counts. A rerun skips the
parts whose marker exists. The input record's own id moves from `meta` to `source_id`, and `meta`
becomes a struct of the record's other fields (pipeline/meta.py), of one type for the whole run:
a first task per part returns the kind of its meta, which are unified here in part order before
any part is written, as `datasets.load_dataset` needs every part to have the same schema.
"""

from __future__ import annotations

import json
import logging
import time
from functools import reduce
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from distributed import Client

from corpusmill.core.atomic import write_json
from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location, location
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.clean import parquet_sink, text_bytes
from corpusmill.pipeline.cluster import gather, run_tasks
from corpusmill.pipeline.corpus import read_kept
from corpusmill.pipeline.meta import Kind, arrow_field, meta_kind, typed_meta, unify
from corpusmill.pipeline.schema import DATASET

log = logging.getLogger(__name__)

# A record's own id as the readers write it into meta: its first key (json.dumps' spacing), holding
# a string or another scalar.
_OWN_ID = r'^\{"id": (?P<value>"(?:[^"\\]|\\.)*"|[^",{}\[\]]+)'
_OWN_ID_SCHEMA = pa.schema([("id", pa.string())])
# A JSON string up to its first lone surrogate (which Python's json writes and Arrow's reader
# refuses), read escape by escape from the start so that `\\ud800`, an escaped backslash, is not
# taken for one: a low surrogate, or a high one and what follows it when that is not a low one.
_UP_TO_LONE_SURROGATE = (
    r"^((?:[^\\]|\\[^u]|\\u(?:d[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|[0-9a-ce-f][0-9a-f]{3}"
    r"|d[0-7][0-9a-f]{2}))*)(?:\\ud[c-f][0-9a-f]{2}"
    r"|\\ud[89ab][0-9a-f]{2}([^\\]|\\[^u]|\\u(?:[0-9a-ce-f]|d[0-7]|d[89ab])))"
)


def run_dataset(out: str | Location, client: Client) -> dict[str, Any]:
    """Write the kept documents of every clean part into `OUT/dataset/` (a local folder or an
    object store's), skipping finished parts; return the stage's counts."""
    started = time.perf_counter()
    layout = RunLayout(location(out))
    parts = layout.clean_parts()
    todo = [part for part in parts if not layout.dataset_marker(part).exists()]
    log.info("dataset: %d parts, %d already written", len(parts), len(parts) - len(todo))
    kind = run_meta_kind(layout, parts, client) if todo else None
    run_tasks(
        client,
        write_dataset_part,
        todo,
        describe=lambda part: str(layout.clean_part(part)),
        desc="dataset",
        done=len(parts) - len(todo),
        layout=layout,
        kind=kind,
    )
    counts = [json.loads(layout.dataset_marker(part).read_text()) for part in parts]
    return {
        "docs": sum(part["docs"] for part in counts),
        "bytes": sum(part["bytes"] for part in counts),
        "parts": len(parts),
        "seconds": round(time.perf_counter() - started, 3),
    }


def run_meta_kind(layout: RunLayout, parts: list[int], client: Client) -> Kind:
    """The kind of the run's meta: every part's, unified in part order."""
    futures = client.map(part_meta_kind, parts, layout=layout, pure=False)
    try:
        kinds = gather(client, futures, "dataset: meta types", unit="part")
    except Exception as exc:
        raise StageError(
            f"dataset: reading the meta of {layout.clean} failed: {exc!r}; rerun the same command "
            "to retry"
        ) from exc
    return reduce(unify, kinds, None)


def part_meta_kind(part: int, layout: RunLayout) -> Kind:
    """The kind of clean part `part`'s kept documents' meta, without their own ids."""
    return meta_kind(split_own_id(read_kept(layout, part, columns=["meta"])["meta"])[1].to_pylist())


def write_dataset_part(part: int, layout: RunLayout, kind: Kind) -> dict[str, int]:
    """Write clean part `part`'s kept documents as its dataset part, their meta of the run's
    `kind`, then its marker."""
    docs = read_kept(layout, part, columns=None)
    source_id, meta = split_own_id(docs["meta"])
    table = (
        docs.drop_columns(["offset", "meta"])
        .append_column("source_id", source_id)
        .append_column("meta", typed_meta(meta.to_pylist(), kind))
    )
    schema = DATASET.set(DATASET.get_field_index("meta"), arrow_field("meta", kind))
    with parquet_sink(layout.dataset_part(part), schema) as write:
        write(table)
    counts = {"docs": table.num_rows, "bytes": text_bytes(table)}
    write_json(layout.dataset_marker(part), counts)
    return counts


def split_own_id(meta: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """(the record's own id as a string, or null; meta without it, null when nothing is left)."""
    meta = meta.combine_chunks()
    value = pc.struct_field(pc.extract_regex(meta, _OWN_ID), "value")
    if value.null_count == len(value):
        return pa.nulls(len(meta), pa.string()), meta
    rest = pc.replace_substring_regex(meta, _OWN_ID + "(?:, )?", "{")
    rest = pc.if_else(pc.equal(rest, "{}"), pa.scalar(None, pa.string()), rest)
    return _json_strings(value), rest


def _json_strings(values: pa.Array) -> pa.Array:
    """JSON scalars (`"a\\u00e9"`, `12`, or null) decoded as strings (`aé`, `12`, null), by Arrow's
    JSON reader on one line per value; a lone surrogate becomes U+FFFD, as the readers make it."""
    while pc.any(pc.match_substring_regex(values, _UP_TO_LONE_SURROGATE)).as_py():
        values = pc.replace_substring_regex(values, _UP_TO_LONE_SURROGATE, r"\1\\ufffd\2")
    quoted = pc.if_else(
        pc.starts_with(values, '"'), values, pc.binary_join_element_wise('"', values, '"', "")
    )
    lines = pc.binary_join_element_wise('{"id": ', pc.fill_null(quoted, "null"), "}", "")
    one = pc.binary_join(
        pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines), "\n"
    )
    decoded = pj.read_json(
        pa.BufferReader(one[0].as_buffer()),
        parse_options=pj.ParseOptions(explicit_schema=_OWN_ID_SCHEMA),
    )
    return decoded["id"].combine_chunks()
