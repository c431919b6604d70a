"""Candidate pairs from shared keys: documents with an equal band key (or text hash) are candidates.

Each group of documents sharing a key yields a star of pairs, from the group's first document in
the keeper policy's order (the largest score, then the smallest key: first in input order) to
each other member: linear in the group size (a page copied a million times gives a million pairs,
not half a trillion), centred on the document most likely to be kept, and, since document keys
follow input order, the same pairs whatever the partitioning. The edges of all bands together
then decide what is kept.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Pairs(NamedTuple):
    """Pairs of document keys, `a < b`, and whether they share an exact key (text or URL hash)."""

    a: np.ndarray  # int64
    b: np.ndarray  # int64
    exact: np.ndarray  # bool


def candidate_pairs(
    band: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    key: np.ndarray,
    exact_from: int,
    score: np.ndarray | None = None,
) -> Pairs:
    """Star pairs of each group of rows with equal (band, high, low), from the member with the
    largest `score` (none: all equal), ties to the smallest key; bands numbered `exact_from` and
    above hold exact hashes, so their pairs are exact.
    Memory: about 70 bytes per row (the sort order and group marks).
    """
    rank = () if score is None else (-np.asarray(score, np.float64),)
    order = np.lexsort((key, *rank, low, high, band))
    band, high, low, key = band[order], high[order], low[order], key[order]
    starts = np.ones(len(key), bool)
    starts[1:] = (band[1:] != band[:-1]) | (high[1:] != high[:-1]) | (low[1:] != low[:-1])
    first = np.maximum.accumulate(np.where(starts, np.arange(len(key)), 0))
    members = ~starts
    centre, member = key[first[members]], key[members]
    return Pairs(
        np.minimum(centre, member), np.maximum(centre, member), band[members] >= exact_from
    )


def unique_pairs(pairs: Pairs) -> Pairs:
    """Each pair once, sorted by (a, b); a pair found both ways counts as exact."""
    if not len(pairs.a):
        return pairs
    order = np.lexsort((~pairs.exact, pairs.b, pairs.a))
    a, b, exact = pairs.a[order], pairs.b[order], pairs.exact[order]
    first = np.ones(len(a), bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return Pairs(a[first], b[first], exact[first])
