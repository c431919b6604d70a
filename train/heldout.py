"""The held-out documents of a run, one definition for `corpusmill train` and `corpusmill report`.

Documents are ordered by the xxh3-64 of their id (ties in corpus order; loader/split.py, the rule
the tokenize stage writes the validation split by). A run with a validation split holds out
exactly its documents, the first in that order below `shards.validation_fraction` of the hash
range; a run without one holds out the first ones up to `held_out_bytes` of UTF-8 text but at
most a tenth of the corpus's bytes (and at least one document). The choice depends only on ids
and sizes, never on parts, shards or the tokenizer, so the trainer (reading shards) and the report
(reading the deduplicated documents) hold out the same documents, and every bits-per-byte figure
is bits over their own UTF-8 bytes.
A model sees each held-out document as the report's coder does: the document's tokens then EOS,
in consecutive windows of the context length, the first token given EOS alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from corpusmill.loader.split import hash_threshold, id_hashes

HELD_OUT_BYTES = 131072
# At most this share of a corpus's bytes is held out, so a small run still has most to train on.
MAX_HELD_OUT = 0.1


@dataclass(frozen=True)
class Windows:
    """Held-out documents cut into model inputs: (N, T) inputs and targets, and which targets are
    real (the last window of a document is padded with EOS)."""

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray


def split_rows(
    ids: Iterable[str],
    sizes: np.ndarray,
    held_out_bytes: int,
    train_bytes: int | None = None,
    validation_fraction: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row numbers of the held-out documents (the validation split's at
    `validation_fraction` when it is above 0) and of the training ones: every other document, or
    the next ones in hash order up to `train_bytes`."""
    hashes = id_hashes(ids)
    sizes = np.asarray(sizes, dtype=np.int64)
    order = np.lexsort((np.arange(len(hashes)), hashes))
    if not len(order):
        return order, order
    cumulative = np.cumsum(sizes[order])
    if validation_fraction:
        held = int(np.count_nonzero(hashes < np.uint64(hash_threshold(validation_fraction))))
    else:
        budget = min(held_out_bytes, int(cumulative[-1] * MAX_HELD_OUT))
        held = max(1, int(np.searchsorted(cumulative, budget, side="right")))
    if train_bytes is None:
        train = len(order)
    else:
        rest = cumulative[held:] - (cumulative[held - 1] if held else 0)
        train = held + int(np.searchsorted(rest, train_bytes, side="right"))
    return np.sort(order[:held]), np.sort(order[held:train])


def windows(docs: Sequence[np.ndarray], eos_id: int, seq_len: int) -> Windows:
    """The held-out documents (token ids, each ending with its EOS) as windows of `seq_len`
    targets, each window's first input the token before it (EOS for a document's first)."""
    inputs, targets, masks = [], [], []
    for doc in docs:
        sequence = np.concatenate([[eos_id], np.asarray(doc, dtype=np.int64)])
        for start in range(0, len(sequence) - 1, seq_len):
            chunk = sequence[start : start + seq_len + 1]
            padded = np.full(seq_len + 1, eos_id, dtype=np.int64)
            padded[: len(chunk)] = chunk
            inputs.append(padded[:-1])
            targets.append(padded[1:])
            masks.append(np.arange(seq_len) < len(chunk) - 1)
    return Windows(np.array(inputs), np.array(targets), np.array(masks))


def held_out_nats(log_probs, held: Windows, batch_size: int) -> float:
    """Total negative log-likelihood in nats of the held-out targets, `log_probs` ((B, T) tokens
    -> (B, T, V)) called on `batch_size` windows at a time."""
    total = 0.0
    for start in range(0, len(held.inputs), batch_size):
        rows = slice(start, start + batch_size)
        logp = log_probs(held.inputs[rows])
        picked = np.take_along_axis(logp, held.targets[rows][..., None], axis=-1)[..., 0]
        total -= float(picked[held.mask[rows]].astype(np.float64).sum())
    return total
