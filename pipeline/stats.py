"""Counting documents and bytes per reason, and adding such counts up across tasks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

Counts = dict[str, dict[str, int]]


def count_by_reason(rejected: pa.Table) -> Counts:
    """{"step:reason": {"docs": n, "bytes": b}} for a table of rejected rows."""
    if rejected.num_rows == 0:
        return {}
    keys = pc.binary_join_element_wise(rejected["step"], rejected["reason"], ":")
    grouped = (
        pa.table({"key": keys, "bytes": rejected["bytes"]})
        .group_by("key")
        .aggregate([("bytes", "count"), ("bytes", "sum")])
    )
    return {
        key: {"docs": docs, "bytes": total}
        for key, docs, total in zip(
            grouped["key"].to_pylist(),
            grouped["bytes_count"].to_pylist(),
            grouped["bytes_sum"].to_pylist(),
            strict=True,
        )
    }


def add_counts(parts: Iterable[Mapping[str, Mapping[str, int]]]) -> Counts:
    """Sum nested {key: {field: int}} counts, keys sorted so the result is stable."""
    total: Counts = {}
    for part in parts:
        for key, fields in part.items():
            slot = total.setdefault(key, {})
            for name, value in fields.items():
                slot[name] = slot.get(name, 0) + value
    return dict(sorted(total.items()))
