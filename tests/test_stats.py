"""Counting rejected documents per reason and adding counts across tasks."""

from __future__ import annotations

import pyarrow as pa

from corpusmill.pipeline.stats import add_counts, count_by_reason


def test_count_by_reason_groups_step_and_reason_with_docs_and_bytes():
    rejected = pa.table(
        {
            "step": ["read", "read", "gopher_quality", "read"],
            "reason": ["invalid_json", "invalid_json", "too_few_words", "binary_content"],
            "bytes": pa.array([10, 5, 300, 7], pa.int64()),
        }
    )
    assert count_by_reason(rejected) == {
        "read:invalid_json": {"docs": 2, "bytes": 15},
        "gopher_quality:too_few_words": {"docs": 1, "bytes": 300},
        "read:binary_content": {"docs": 1, "bytes": 7},
    }


def test_count_by_reason_of_nothing_is_empty():
    empty = pa.table(
        {
            "step": pa.array([], pa.string()),
            "reason": pa.array([], pa.string()),
            "bytes": pa.array([], pa.int64()),
        }
    )
    assert count_by_reason(empty) == {}


def test_add_counts_sums_fields_and_sorts_keys():
    parts = [{"b": {"docs": 1, "bytes": 2}}, {"a": {"docs": 3}, "b": {"docs": 4, "bytes": 5}}]
    assert add_counts(parts) == {"a": {"docs": 3}, "b": {"docs": 5, "bytes": 7}}
    assert list(add_counts(parts)) == ["a", "b"]
