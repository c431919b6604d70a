"""Which documents of a run are held out for validation: the one rule the tokenize stage writes
the validation shards by, and `corpusmill train`, `report` and `export` hold documents out by.

Documents are ordered by the xxh3-64 of their id; a fraction f of the corpus is the documents whose
hash lies below f * 2**64. The choice depends on each document's id alone, never on parts,
workers, order or the tokenizer, and the documents held out at a smaller fraction are held out at
every larger one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xxhash

from corpusmill.loader.layout import SPLITS

TRAIN, VALIDATION = SPLITS


def id_hashes(ids: Iterable[str]) -> np.ndarray:
    """The xxh3-64 of each document id, as uint64: its place in the hold-out order."""
    return np.fromiter((xxhash.xxh3_64_intdigest(doc_id.encode()) for doc_id in ids), np.uint64)


def hash_threshold(fraction: float) -> int:
    """The id hash below which documents are held out at `fraction` (from 0 to 1) of the corpus."""
    return min(int(fraction * 2**64), 2**64 - 1)


def in_validation(ids: Iterable[str], fraction: float) -> np.ndarray:
    """For each document id, whether the validation split at `fraction` holds it."""
    return id_hashes(ids) < np.uint64(hash_threshold(fraction))


def splits(fraction: float) -> tuple[str, ...]:
    """The splits of a run that holds out `fraction` of its documents: training alone at 0."""
    return (TRAIN, VALIDATION) if fraction else (TRAIN,)
