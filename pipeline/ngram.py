"""An interpolated Kneser–Ney token n-gram model, counted with numpy, giving full distributions.

Chen & Goodman (1998), "An empirical study of smoothing techniques for language modeling", eq. 21:
the highest order discounts raw counts, the lower orders discount continuation counts (how many
distinct tokens precede an n-gram), and each order hands the discounted mass to the next lower
one; the unigram level hands it to the uniform distribution, so every token of the vocabulary
has a non-zero probability and every distribution sums to 1, as an arithmetic coder needs.
Documents are coded as their tokens then EOS, with EOS tokens as the history before the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# Probability rows computed at once: bounds the dense (rows, vocabulary) array to 32 MB.
_CHUNK_VALUES = 1 << 22


@dataclass(frozen=True)
class _Level:
    """One order's k-grams sorted by (context, token), and per distinct context its range of
    k-grams and the weight `gamma` it gives the lower order."""

    contexts: np.ndarray  # distinct context keys, sorted
    starts: np.ndarray
    stops: np.ndarray
    gamma: np.ndarray
    tokens: np.ndarray  # per k-gram: its last token
    values: np.ndarray  # per k-gram: max(count - D, 0) / total count of its context


class KneserNey:
    """Interpolated Kneser–Ney of `order` (1 = absolutely discounted unigram) over token ids."""

    def __init__(
        self,
        docs: Sequence[np.ndarray],
        vocab_size: int,
        eos_id: int,
        order: int = 3,
        discount: float = 0.75,
    ) -> None:
        _check(vocab_size, order, discount)
        if not docs:
            raise ValueError("an n-gram model needs at least one training document")
        keys, counts = np.unique(_ngram_keys(docs, order, vocab_size, eos_id), return_counts=True)
        self._fit(keys, counts, vocab_size, eos_id, order, discount)

    @classmethod
    def from_counts(
        cls,
        keys: np.ndarray,
        counts: np.ndarray,
        vocab_size: int,
        eos_id: int,
        order: int,
        discount: float = 0.75,
    ) -> KneserNey:
        """The model whose training documents had these distinct n-gram `keys` (sorted) with
        these `counts`, as a model's `keys` and `counts` hold them: what a saved model keeps."""
        _check(vocab_size, order, discount)
        model = cls.__new__(cls)
        model._fit(
            np.asarray(keys, np.int64), np.asarray(counts), vocab_size, eos_id, order, discount
        )
        return model

    def _fit(
        self,
        keys: np.ndarray,
        counts: np.ndarray,
        vocab_size: int,
        eos_id: int,
        order: int,
        discount: float,
    ) -> None:
        """Set the model's levels and unigram distribution from its n-gram counts."""
        self.vocab_size = vocab_size
        self.eos_id = eos_id
        self.order = order
        self.discount = discount
        self.keys, self.counts = keys, counts
        levels = [_level(keys, counts, vocab_size, discount)]
        for k in range(order - 1, 0, -1):
            # Continuation counts: how many distinct tokens precede each shorter n-gram.
            keys, counts = np.unique(keys % vocab_size**k, return_counts=True)
            levels.append(_level(keys, counts, vocab_size, discount))
        self.levels = levels[::-1]  # unigram first
        unigram = self.levels[0]
        uniform = np.full(vocab_size, unigram.gamma[0] / vocab_size)
        uniform[unigram.tokens] += unigram.values
        self.unigram = uniform

    @property
    def context(self) -> int:
        """Tokens of history a prediction looks at."""
        return self.order - 1

    def next_probs(self, histories: np.ndarray) -> np.ndarray:
        """(rows, vocabulary) distributions of the token after each row's last `context` tokens.

        Element-wise arithmetic only, so a row's probabilities are bit-identical whatever the
        number of rows: the decoder, one row at a time, sees what the encoder saw.
        """
        histories = np.asarray(histories, dtype=np.int64).reshape(len(histories), -1)
        probs = np.tile(self.unigram, (len(histories), 1))
        for k, level in enumerate(self.levels[1:], start=1):
            keys = np.zeros(len(histories), dtype=np.int64)
            for column in range(histories.shape[1] - k, histories.shape[1]):
                keys = keys * self.vocab_size + histories[:, column]
            where = np.minimum(np.searchsorted(level.contexts, keys), len(level.contexts) - 1)
            found = level.contexts[where] == keys
            probs *= np.where(found, level.gamma[where], 1.0)[:, None]
            rows = np.flatnonzero(found)
            starts, stops = level.starts[where[rows]], level.stops[where[rows]]
            lengths = stops - starts
            entries = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
                lengths.sum()
            )
            probs[np.repeat(rows, lengths), level.tokens[entries]] += level.values[entries]
        return probs

    def document_probs(self, tokens: np.ndarray) -> list[np.ndarray]:
        """Distributions of each token of `tokens` (a document then EOS) given its history, in
        chunks of rows."""
        padded = np.concatenate([np.full(max(self.context, 1), self.eos_id), tokens])
        windows = np.lib.stride_tricks.sliding_window_view(padded, max(self.context, 1))
        windows = windows[: len(tokens), : self.context]
        rows = max(1, _CHUNK_VALUES // self.vocab_size)
        return [self.next_probs(windows[i : i + rows]) for i in range(0, len(tokens), rows)]

    def step_probs(self, tokens: Sequence[int]) -> np.ndarray:
        """The distribution of the token after `tokens` (a document's tokens so far)."""
        padded = [self.eos_id] * self.context + list(tokens)
        return self.next_probs(np.array([padded[len(padded) - self.context :]]))[0]

    def token_bits(self, tokens: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """-log2 of the probability of each token of documents laid end to end (document i
        starts at `starts[i]`) given the tokens before it in its document, EOS before the first.

        Looks up only the tokens' own probabilities, so a batch of documents is scored at once
        without the (rows, vocabulary) distributions: binary searches of sorted lookups (nine
        times faster than unsorted ones into a large model) in the levels' n-grams and contexts
        keyed newest token first, so that sorting the batch's histories once sorts them for
        every order (two sorts in all, not two per order).
        """
        tokens = np.asarray(tokens, np.int64)
        vocab, context = self.vocab_size, self.context
        position = np.arange(len(tokens)) - np.repeat(
            starts, np.diff(np.append(starts, len(tokens)))
        )
        history = np.zeros(len(tokens), np.int64)  # the tokens before, the latest first
        for back in range(1, context + 1):
            before = np.full(len(tokens), self.eos_id, np.int64)
            before[back:] = np.where(position[back:] >= back, tokens[:-back], self.eos_id)
            history = history * vocab + before
        ngrams = tokens * vocab**context + history
        by_ngram, by_history = np.argsort(ngrams), np.argsort(history)
        ngrams, history = ngrams[by_ngram], history[by_history]
        probs = self.unigram[tokens]
        value, gamma = np.empty(len(tokens)), np.empty(len(tokens))
        found = np.empty(len(tokens), bool)
        for k, level in enumerate(self._newest_first, start=1):
            sought = ngrams // vocab ** (context - k)
            entry = np.minimum(np.searchsorted(level.keys, sought), len(level.keys) - 1)
            value[by_ngram] = np.where(level.keys[entry] == sought, level.values[entry], 0.0)
            sought = history // vocab ** (context - k)
            where = np.minimum(np.searchsorted(level.contexts, sought), len(level.contexts) - 1)
            found[by_history] = level.contexts[where] == sought
            gamma[by_history] = level.gamma[where]
            probs = np.where(found, gamma * probs + value, probs)
        return -np.log2(probs)

    @cached_property
    def _newest_first(self) -> list[_NewestFirst]:
        """The levels above the unigram with their k-grams and contexts keyed newest token
        first, for token_bits."""
        levels = []
        for k, level in enumerate(self.levels[1:], start=1):
            keys = np.repeat(level.contexts, level.stops - level.starts) * self.vocab_size
            keys = _reversed(keys + level.tokens, k + 1, self.vocab_size)
            contexts = _reversed(level.contexts, k, self.vocab_size)
            by_key, by_context = np.argsort(keys), np.argsort(contexts)
            levels.append(
                _NewestFirst(
                    keys[by_key],
                    level.values[by_key],
                    contexts[by_context],
                    level.gamma[by_context],
                )
            )
        return levels


@dataclass(frozen=True)
class _NewestFirst:
    """A level's k-grams and contexts keyed newest token first, sorted, with their values and
    back-off weights."""

    keys: np.ndarray
    values: np.ndarray
    contexts: np.ndarray
    gamma: np.ndarray


def _reversed(keys: np.ndarray, digits: int, vocab_size: int) -> np.ndarray:
    """Keys of `digits` tokens with their tokens in the reverse order."""
    reversed_keys = np.zeros_like(keys)
    for _ in range(digits):
        reversed_keys = reversed_keys * vocab_size + keys % vocab_size
        keys = keys // vocab_size
    return reversed_keys


def _check(vocab_size: int, order: int, discount: float) -> None:
    """Raise ValueError for an order whose keys overflow int64, or a discount outside (0, 1)."""
    if order < 1 or vocab_size**order >= 1 << 63:
        raise ValueError(f"order {order} with a vocabulary of {vocab_size} is not supported")
    if not 0 < discount < 1:
        raise ValueError(f"the discount must be in (0, 1), got {discount}")


def _ngram_keys(docs: Sequence[np.ndarray], order: int, vocab_size: int, eos_id: int) -> np.ndarray:
    """Every n-gram of the documents (each EOS-padded before, EOS after) as one int64 key."""
    pad = np.full(order - 1, eos_id, dtype=np.int64)
    keys = []
    for doc in docs:
        sequence = np.concatenate([pad, np.asarray(doc, dtype=np.int64), [eos_id]])
        windows = np.lib.stride_tricks.sliding_window_view(sequence, order)
        keys.append(windows @ (vocab_size ** np.arange(order - 1, -1, -1, dtype=np.int64)))
    return np.concatenate(keys) if keys else np.empty(0, dtype=np.int64)


def _level(keys: np.ndarray, counts: np.ndarray, vocab_size: int, discount: float) -> _Level:
    """Discounted probabilities and back-off weights of sorted distinct k-gram keys."""
    contexts_of_keys = keys // vocab_size
    contexts, starts, types = np.unique(contexts_of_keys, return_index=True, return_counts=True)
    totals = np.add.reduceat(counts, starts).astype(np.float64) if len(keys) else np.empty(0)
    per_key = np.repeat(totals, types)
    return _Level(
        contexts=contexts,
        starts=starts,
        stops=starts + types,
        gamma=discount * types / totals,
        tokens=keys % vocab_size,
        values=np.maximum(counts - discount, 0.0) / per_key,
    )
