"""Exact copies collapsed before the graph: a page copied G times is one node, not G edges.

Every candidate pair joins a star's centre, the first of its group in the keeper policy's order,
to a member after it (lsh.py), so each edge has a member end. The edges step writes each edge by
that end (members/partition-N.arrow: key, centre, copy), marking as `copy` a member of an exact
pair, a later document of the same normalized text as its centre, the first of that text; and
each such first once (firsts/partition-N.arrow). A copy is then left out of the graph with its
edges: it has the same shingles and band keys as its first, so its other edges join it to the
centres its first is joined to, with the same similarity, and it is removed for the document its
first is kept as (the clusters step gives it its first's label). No centre is a copy, so leaving
copies out changes no other document's edges. With `dedup.exact_url` a copy can have a URL twin
its first lacks: there nothing is marked and the graph keeps every edge.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from corpusmill.pipeline.dedup.lsh import Pairs


def member_rows(
    pairs: Pairs, score: Callable[[np.ndarray], np.ndarray] | None, collapse: bool
) -> tuple[pa.Table, pa.Table]:
    """(members, firsts) of edges: each edge by its member end (key, centre, copy), sorted by key,
    and the distinct centres of copies (key), sorted; `collapse` off marks no copies."""
    a_first = _comes_first(pairs.a, pairs.b, score)
    centre = np.where(a_first, pairs.a, pairs.b)
    member = np.where(a_first, pairs.b, pairs.a)
    copy = pairs.exact & collapse
    order = np.lexsort((centre, member))
    members = pa.table({"key": member[order], "centre": centre[order], "copy": copy[order]})
    firsts = pa.table({"key": np.unique(centre[copy])})
    return members, firsts


def graph_edges(members: pa.Table) -> np.ndarray:
    """The (centre, member) edges of the graph among member rows, as an (n, 2) int64 array: all
    but a copy's. A copy is never a centre, so the rows of a range of members decide alone."""
    member = members.column("key").to_numpy()
    centre = members.column("centre").to_numpy()
    copies = member[members.column("copy").to_numpy(zero_copy_only=False)]
    keep = ~np.isin(member, copies)
    return np.column_stack([centre[keep], member[keep]]).astype(np.int64).reshape(-1, 2)


def _comes_first(
    a: np.ndarray, b: np.ndarray, score: Callable[[np.ndarray], np.ndarray] | None
) -> np.ndarray:
    """Whether a comes before b (a < b) in the keeper policy's order: the higher score first,
    ties (and no score) to the smaller key; a missing score (NaN) last, as numpy sorts it."""
    if score is None or not len(a):
        return np.ones(len(a), bool)
    values = np.asarray(score(np.concatenate([a, b])), np.float64)
    score_a, score_b = values[: len(a)], values[len(a) :]
    return (score_a >= score_b) | np.isnan(score_b)
