"""Compression by prediction: a model's next-token probabilities drive the arithmetic coder over
the held-out documents; the coded size is set beside the model's cross-entropy, and the stream is
decoded back with the same model to check it gives the documents' bytes again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from corpusmill.report.coder import Decoder, encode, intervals, quantize


class NextTokenModel(Protocol):
    """What the coder needs of a model: all of a document's distributions at once (for speed),
    and one step's given the tokens so far (for decoding), equal to the former's row."""

    vocab_size: int

    def document_probs(self, tokens: np.ndarray) -> list[np.ndarray]: ...

    def step_probs(self, tokens: Sequence[int]) -> np.ndarray: ...


def code_documents(
    model: NextTokenModel,
    docs: Sequence[np.ndarray],
    eos_id: int,
    texts: Sequence[str],
    detokenize: Callable[[np.ndarray], str],
    verify_tokens: int = 0,
) -> dict[str, Any]:
    """Code each document's tokens then EOS; return the cross-entropy bits, the coded bytes, and
    how many documents (of the first `verify_tokens` tokens; 0 = all) decode to identical text."""
    sequences = [np.append(np.asarray(doc, dtype=np.int64), eos_id) for doc in docs]
    bits = 0.0
    lows, freqs, totals = [], [], []
    for sequence in sequences:
        first = 0
        for probs in model.document_probs(sequence):
            targets = sequence[first : first + len(probs)]
            bits -= float(np.log2(probs[np.arange(len(targets)), targets]).sum())
            low, freq, total = intervals(quantize(probs), targets)
            lows.append(low)
            freqs.append(freq)
            totals.append(total)
            first += len(probs)
    data = encode(np.concatenate(lows), np.concatenate(freqs), np.concatenate(totals))
    decoded = _decode(model, data, [len(s) for s in sequences], eos_id, verify_tokens)
    verified = texts[: len(decoded)]  # the first documents, as many as were decoded
    identical = sum(
        detokenize(np.array(ids)) == text for ids, text in zip(decoded, verified, strict=True)
    )
    return {
        "tokens": int(sum(len(s) for s in sequences)),
        "cross_entropy_bits": bits,
        "coded_bytes": len(data),
        "coded_over_cross_entropy": len(data) * 8 / bits if bits else float("nan"),
        "decoded_tokens": sum(len(ids) + 1 for ids in decoded),
        "decoded_documents": len(decoded),
        "identical_documents": identical,
        "round_trip": bool(decoded) and identical == len(decoded),
    }


def _decode(
    model: NextTokenModel, data: bytes, lengths: Sequence[int], eos_id: int, limit: int
) -> list[list[int]]:
    """The token ids of the documents decoded from `data`, whole documents until `limit` tokens
    (0: all); a document whose EOS does not come by its coded length is cut there."""
    decoder = Decoder(data)
    documents: list[list[int]] = []
    tokens = 0
    for length in lengths:
        if limit and documents and tokens + length > limit:
            break
        ids: list[int] = []
        while len(ids) < length:
            symbol = decoder.decode(np.cumsum(quantize(model.step_probs(ids))))
            if symbol == eos_id:
                break
            ids.append(symbol)
        documents.append(ids)
        tokens += length
    return documents


class CheckpointModel:
    """A trained model with `log_probs((B, T) tokens) -> (B, T, V)` seen as a NextTokenModel.

    A document is scored in consecutive windows of `seq_len` tokens, each token given the tokens
    before it in its window. Every call gives the model one full window, the positions not known
    yet filled with EOS: the model is causal, so they do not change the rows that are read, and
    with the same shapes the encoder's and the decoder's floating-point results are identical,
    which an arithmetic decoder needs to find the same tokens again.
    """

    def __init__(self, model: Any, vocab_size: int, eos_id: int, seq_len: int) -> None:
        self.model = model
        self.vocab_size = vocab_size
        self.eos_id = eos_id
        self.seq_len = seq_len

    def document_probs(self, tokens: np.ndarray) -> list[np.ndarray]:
        """Distributions of `tokens` (a document then EOS), its first given EOS alone."""
        inputs = np.concatenate([[self.eos_id], tokens[:-1]]).astype(np.int64)
        chunks = []
        for start in range(0, len(inputs), self.seq_len):
            window = inputs[start : start + self.seq_len]
            chunks.append(self._window_probs(window)[: len(window)])
        return chunks

    def step_probs(self, tokens: Sequence[int]) -> np.ndarray:
        """The distribution after a document's first `tokens`, within the same window."""
        inputs = [self.eos_id, *tokens]
        start = (len(inputs) - 1) // self.seq_len * self.seq_len
        window = np.array(inputs[start:], dtype=np.int64)
        return self._window_probs(window)[len(window) - 1]

    def _window_probs(self, window: np.ndarray) -> np.ndarray:
        """Next-token probabilities at each position of `window`, run as a full-length window."""
        full = np.full(self.seq_len, self.eos_id, dtype=np.int64)
        full[: len(window)] = window
        return np.exp(self.model.log_probs(full[None, :])[0].astype(np.float64))
