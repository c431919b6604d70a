"""True Jaccard similarity of candidate pairs, from their shingle sets: drops chance matches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def jaccard(sets_a: pa.LargeListArray, sets_b: pa.LargeListArray) -> np.ndarray:
    """|A ∩ B| / |A ∪ B| of each pair of sorted distinct uint32 sets (0 for two empty sets).

    Both sets of every pair are tagged with the pair's number and sorted together once; an element
    in both sets shows up as two equal neighbours. Memory: 16 bytes per element of all the sets.
    """
    pair_a = pc.list_parent_indices(sets_a).to_numpy().astype(np.uint64)
    pair_b = pc.list_parent_indices(sets_b).to_numpy().astype(np.uint64)
    tagged = np.sort(
        np.concatenate(
            [
                (pair_a << np.uint64(32)) | _values(sets_a),
                (pair_b << np.uint64(32)) | _values(sets_b),
            ]
        )
    )
    shared = tagged[1:][tagged[1:] == tagged[:-1]] >> np.uint64(32)
    both = np.bincount(shared.astype(np.int64), minlength=len(sets_a))
    union = _lengths(sets_a) + _lengths(sets_b) - both
    return np.divide(both, union, out=np.zeros(len(both)), where=union > 0)


def _values(sets: pa.LargeListArray) -> np.ndarray:
    """The elements of all sets, in order, as uint64."""
    return pc.list_flatten(sets).to_numpy(zero_copy_only=False).astype(np.uint64)


def _lengths(sets: pa.LargeListArray) -> np.ndarray:
    return pc.list_value_length(sets).to_numpy(zero_copy_only=False).astype(np.int64)
