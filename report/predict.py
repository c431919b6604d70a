"""Compression by prediction: a model's next-token probabilities drive the arithmetic coder over
the held-out documents; the coded size is set beside the model's cross-entropy, and the stream is
decoded back with the same model to check it gives the documents' bytes again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from corpusmill.core.progress import progress
from corpusmill.report.coder import Decoder, encode, intervals, quantize
from corpusmill.train.model import GPT, Past, log_softmax


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
    name: str = "model",
) -> dict[str, Any]:
    """Code each document's tokens then EOS; return the cross-entropy bits, the coded bytes, and
    how many documents (of the first `verify_tokens` tokens; 0 = all) decode to identical text.
    `name` labels the progress of encoding and decoding."""
    sequences = [np.append(np.asarray(doc, dtype=np.int64), eos_id) for doc in docs]
    bits = 0.0
    lows, freqs, totals = [], [], []
    with progress(f"report: {name}: encode", sum(map(len, sequences)), unit="token") as bar:
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
                bar.update(len(probs))
    data = encode(np.concatenate(lows), np.concatenate(freqs), np.concatenate(totals))
    lengths = [len(s) for s in sequences]
    decoded = _decode(model, data, lengths, eos_id, verify_tokens, f"report: {name}: decode")
    verified = texts[: len(decoded)]  # the first documents, as many as were decoded
    identical = sum(
        detokenize(np.array(ids)) == text for ids, text in zip(decoded, verified, strict=True)
    )
    return {
        "tokens": int(sum(lengths)),
        "cross_entropy_bits": bits,
        "coded_bytes": len(data),
        "coded_over_cross_entropy": len(data) * 8 / bits if bits else float("nan"),
        "decoded_tokens": sum(len(ids) + 1 for ids in decoded),
        "decoded_documents": len(decoded),
        "identical_documents": identical,
        "round_trip": bool(decoded) and identical == len(decoded),
    }


def _decode(
    model: NextTokenModel,
    data: bytes,
    lengths: Sequence[int],
    eos_id: int,
    limit: int,
    desc: str,
) -> list[list[int]]:
    """The token ids of the documents decoded from `data`, whole documents until `limit` tokens
    (0: all); a document whose EOS does not come by its coded length is cut there."""
    decoder = Decoder(data)
    documents: list[list[int]] = []
    tokens = 0
    wanted = sum(lengths) if not limit else min(limit, sum(lengths))
    with progress(desc, wanted, unit="token") as bar:
        for length in lengths:
            if limit and documents and tokens + length > limit:
                break
            ids: list[int] = []
            while len(ids) < length:
                symbol = decoder.decode(np.cumsum(quantize(model.step_probs(ids))))
                bar.update()
                if symbol == eos_id:
                    break
                ids.append(symbol)
            documents.append(ids)
            tokens += length
    return documents


class CheckpointModel:
    """A trained GPT seen as a NextTokenModel, fed one token per call through its key/value cache.

    A document is scored in consecutive windows of `seq_len` tokens, each token given the tokens
    before it in its window. The encoder and the decoder both feed one token per forward call, the
    window's earlier keys and values cached, so a token costs one position's work and both sides'
    floating-point results are identical, which an arithmetic decoder needs to find the same
    tokens again.
    """

    def __init__(self, model: GPT, eos_id: int) -> None:
        self.model = model
        self.vocab_size = model.config.vocab_size
        self.eos_id = eos_id
        self.seq_len = model.config.seq_len
        self._fed: list[int] = []  # the current window's tokens the cache holds
        self._past: Past | None = None

    def document_probs(self, tokens: np.ndarray) -> list[np.ndarray]:
        """Distributions of `tokens` (a document then EOS), its first given EOS alone, a window
        of rows at a time."""
        inputs = [self.eos_id, *np.asarray(tokens[:-1]).tolist()]
        chunks = []
        for start in range(0, len(inputs), self.seq_len):
            window = inputs[start : start + self.seq_len]
            chunks.append(
                np.stack([self._window_step(window[: i + 1]) for i in range(len(window))])
            )
        return chunks

    def step_probs(self, tokens: Sequence[int]) -> np.ndarray:
        """The distribution after a document's first `tokens`, within the same window."""
        inputs = [self.eos_id, *tokens]
        start = (len(inputs) - 1) // self.seq_len * self.seq_len
        return self._window_step(inputs[start:])

    def _window_step(self, window: list[int]) -> np.ndarray:
        """Next-token probabilities after the tokens of one window, the cache reused when it holds
        all of them but the last (as when a document is coded or decoded in order)."""
        if self._fed != window[:-1]:
            self._fed, self._past = [], None
            for token in window[:-1]:
                self._feed(token)
        return self._feed(window[-1])

    def _feed(self, token: int) -> np.ndarray:
        """Run the model on one more token of the window; its next-token probabilities."""
        logits, cache = self.model.forward(np.array([[token]]), self._past)
        self._past = self.model.keys_values(cache)
        self._fed.append(token)
        return np.exp(log_softmax(logits[0, -1]).astype(np.float64))
