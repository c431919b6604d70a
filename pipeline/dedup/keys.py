"""Document keys: (clean part number << ROW_BITS) | row in the part, the order of the input.

Dedup knows every document by its key, and its per-part outputs name removed documents by key;
readers of those outputs split keys back into parts and rows.
"""

from __future__ import annotations

import numpy as np

ROW_BITS = 32


def split_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(clean part numbers, rows in the part) of document keys."""
    keys = np.asarray(keys, np.int64)
    return keys >> ROW_BITS, keys & ((1 << ROW_BITS) - 1)
