"""What a quality filter returns, how filters run in sequence, and the line helpers they share.

A filter looks at a whole table of documents at once and answers, per row, keep or not and, if
not, the first rule the document failed, so counts per reason add up to the rows removed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.pipeline.words import split_words

log = logging.getLogger(__name__)

# Marks that end a sentence: C4's set (. ! ? " ') with closing quotes, and the full stops and
# question marks of scripts that do not use the Latin ones (CJK, Arabic, Devanagari, Ethiopic,
# Armenian, Myanmar, Khmer), so prose in those scripts is not taken for lines without punctuation.
TERMINAL_PUNCTUATION = ".!?\"'”’»。！？｡」』؟۔।॥።։။។"
_ENDS_WITH_TERMINAL = f"[{re.escape(TERMINAL_PUNCTUATION)}]$"
# A line ending with an ellipsis, three dots or the single character.
ENDS_WITH_ELLIPSIS = r"(\.\.\.|…)$"


@dataclass(frozen=True)
class FilterResult:
    """Per row of the input: keep or not, and why not ("<filter>:<rule>", null where kept).

    `text`, when set, replaces the text column of the kept rows: a filter that removes lines
    (C4) returns the edited texts, one per input row, alongside its verdict.
    """

    keep: np.ndarray
    reason: pa.Array
    text: pa.Array | None = None


class Filter(Protocol):
    """A quality filter: a name (the prefix of its reasons) and a verdict on a table of docs.

    A filter that `needs_words` is given the words of the texts (pipeline.words.split_words, row
    for row), which `apply_filters` splits once for all such filters; called alone, it splits them.
    """

    name: str
    needs_words: bool

    def __call__(self, docs: pa.Table, words: pa.LargeListArray | None = None) -> FilterResult: ...


def apply_filters(docs: pa.Table, filters: Sequence[Filter]) -> tuple[pa.Table, pa.Table]:
    """Run `filters` in order, each on the rows the previous ones kept.

    Returns the kept rows and the removed rows with a `reason` column holding the first rule each
    failed; removed rows keep the text they had when they were removed.
    """
    removed_schema = docs.schema.append(pa.field("reason", pa.string(), nullable=False))
    removed = [removed_schema.empty_table()]
    words = None
    for filt in filters:
        if docs.num_rows == 0:
            break
        if filt.needs_words and words is None:
            words = split_words(docs.column("text"))
        result = filt(docs, words)
        keep = pa.array(result.keep, pa.bool_())
        drop = pc.invert(keep)
        rejected = docs.filter(drop).append_column(
            removed_schema.field("reason"), result.reason.filter(drop)
        )
        removed.append(rejected)
        log.debug("%s removed %d of %d documents", filt.name, rejected.num_rows, docs.num_rows)
        docs = docs.filter(keep)
        words = None if words is None or result.text is not None else words.filter(keep)
        if result.text is not None:
            text_index = docs.schema.get_field_index("text")
            edited = result.text.filter(keep).cast(docs.schema.field("text").type)
            docs = docs.set_column(text_index, docs.schema.field("text"), edited)
    return docs, pa.concat_tables(removed)


def first_failures(
    name: str, num_rows: int, rules: Sequence[tuple[str, np.ndarray]]
) -> FilterResult:
    """Combine per-rule failure masks, checked in the given order, into a verdict per row."""
    failed = np.vstack([np.asarray(mask, bool) for _, mask in rules])
    any_failed = failed.any(axis=0)
    first = pa.array(failed.argmax(axis=0), pa.int32(), mask=~any_failed)
    names = pa.array([f"{name}:{rule}" for rule, _ in rules], pa.string())
    return FilterResult(~any_failed, names.take(first))


def split_nonempty(texts: pa.Array, separator: str) -> tuple[pa.Array, np.ndarray]:
    """All non-empty parts of all texts split at the RE2 `separator`, flattened, with the row
    index each part came from: lines with "\\n", paragraphs with "\\n\\n+"."""
    parts = pc.split_pattern_regex(texts, separator)
    flat = pc.list_flatten(parts)
    parents = pc.list_parent_indices(parts).to_numpy()
    nonempty = pc.greater(pc.binary_length(flat), 0)
    return flat.filter(nonempty), parents[to_bool(nonempty)]


def ends_with_terminal_punctuation(lines: pa.Array) -> np.ndarray:
    """Whether each line ends with a sentence-ending mark of any script (TERMINAL_PUNCTUATION)."""
    return matches(lines, _ENDS_WITH_TERMINAL)


def is_in(values: pa.Array, options: Sequence[str]) -> np.ndarray:
    """Whether each string is one of `options` (null is not)."""
    return to_bool(pc.is_in(values, pa.array(list(options), pa.string())))


def matches(strings: pa.Array, pattern: str, ignore_case: bool = False) -> np.ndarray:
    """Whether each string contains a match of the RE2 `pattern` (null strings do not)."""
    return to_bool(pc.match_substring_regex(strings, pattern, ignore_case=ignore_case))


def later_duplicates(values: pa.Array, parents: np.ndarray) -> np.ndarray:
    """Whether each value repeats an earlier value of the same row (the first occurrence is not)."""
    ids = pc.dictionary_encode(values).indices.to_numpy().astype(np.int64)
    keys = parents.astype(np.int64) * (int(ids.max(initial=0)) + 1) + ids
    duplicate = np.ones(len(keys), bool)
    duplicate[np.unique(keys, return_index=True)[1]] = False
    return duplicate


def per_row(values: np.ndarray, parents: np.ndarray, num_rows: int) -> np.ndarray:
    """Sum `values` (bools count as 1) into one total per row."""
    return np.bincount(parents, weights=np.asarray(values, np.float64), minlength=num_rows)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def to_bool(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean pyarrow array as numpy, nulls as False."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
