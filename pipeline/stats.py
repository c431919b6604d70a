"""Counting documents and bytes per reason, and adding such counts up across tasks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Counts = dict[str, dict[str, int]]


def count_by_reason(rejected: pa.Table) -> Counts:
    """{"step:reason": {"docs": n, "bytes": b}} for a table of rejected rows, in the order the
    reasons first occur. Counted with numpy over the reasons' dictionary: a clean task calls
    this per batch and a refilter per part, and Arrow's group_by cost ten times as much on
    tables of a few rows (and its engine's import on a worker's first call)."""
    if rejected.num_rows == 0:
        return {}
    keys = pc.binary_join_element_wise(rejected["step"], rejected["reason"], ":")
    reasons = keys.combine_chunks().dictionary_encode()
    index = reasons.indices.to_numpy()
    docs = np.bincount(index, minlength=len(reasons.dictionary))
    total = np.zeros(len(reasons.dictionary), np.int64)
    np.add.at(total, index, rejected["bytes"].to_numpy())
    return {
        key: {"docs": int(count), "bytes": int(size)}
        for key, count, size in zip(reasons.dictionary.to_pylist(), docs, total, strict=True)
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
