"""The arithmetic coder: exact round trips, near-zero probabilities, cost near the entropy."""

from __future__ import annotations

import numpy as np

from corpusmill.pipeline.ngram import KneserNey
from corpusmill.report.coder import TOTAL, Decoder, encode, intervals, quantize
from corpusmill.report.predict import code_documents


def _round_trip(probs: np.ndarray, symbols: np.ndarray) -> tuple[list[int], bytes]:
    freqs = quantize(probs)
    data = encode(*intervals(freqs, symbols))
    decoder = Decoder(data)
    cumulative = np.cumsum(freqs, axis=1)
    return [decoder.decode(row) for row in cumulative], data


def test_random_distributions_decode_to_the_same_symbols():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.full(300, 0.1), size=3000)
    symbols = np.array([rng.choice(300, p=row) for row in probs])
    decoded, _ = _round_trip(probs, symbols)
    assert decoded == symbols.tolist()


def test_symbols_of_near_zero_probability_are_coded_and_decoded():
    probs = np.full((500, 64), 1e-300)
    probs[:, 0] = 1.0  # the model is sure of symbol 0, and every coded symbol is another one
    symbols = np.arange(500) % 63 + 1
    decoded, data = _round_trip(probs, symbols)
    assert decoded == symbols.tolist()
    # Each costs about log2(TOTAL) = 28 bits (plus the integer interval's rounding), not infinity.
    assert 500 * 28 <= len(data) * 8 <= 500 * 28.5


def test_certain_symbols_cost_almost_nothing():
    probs = np.zeros((10000, 16))
    probs[:, 3] = 1.0
    decoded, data = _round_trip(probs, np.full(10000, 3))
    assert decoded == [3] * 10000
    assert len(data) <= 4


def test_quantized_frequencies_are_positive_and_fit_the_total():
    probs = np.random.default_rng(2).dirichlet(np.full(32768, 0.01), size=4)
    freqs = quantize(probs)
    assert freqs.min() == 1
    assert (freqs.sum(axis=1) <= TOTAL).all()


def test_a_float32_row_summing_over_one_still_fits_the_total_and_round_trips():
    # A sure model's float32 softmax: the top symbol's probability rounds up, and the row sums
    # to 1 + 3e-5, which unnormalized would give a total over TOTAL.
    probs = np.full((200, 2), 3e-5, dtype=np.float32)
    probs[:, 0] = np.float32(0.99998)
    assert float(probs[0].astype(np.float64).sum()) > 1.0
    freqs = quantize(probs)
    assert (freqs.sum(axis=1) <= TOTAL).all()
    symbols = np.arange(200) % 2
    decoded, _ = _round_trip(probs, symbols)
    assert decoded == symbols.tolist()


def test_coded_size_is_within_one_percent_of_the_cross_entropy():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.full(1000, 0.05), size=20000)
    symbols = np.array([rng.choice(1000, p=row) for row in probs])
    bound = -np.log2(probs[np.arange(len(symbols)), symbols]).sum()
    _, data = _round_trip(probs, symbols)
    assert bound <= len(data) * 8 <= bound * 1.01


def test_a_verify_limit_decodes_the_first_documents_only_and_counts_them():
    docs = [np.array([1, 2, 3, 1]), np.array([2, 2, 1]), np.array([3, 1, 2, 2, 1])]
    model = KneserNey(docs, vocab_size=4, eos_id=0, order=2)
    texts = ["".join("abc"[t - 1] for t in doc.tolist()) for doc in docs]

    def detokenize(ids: np.ndarray) -> str:
        return "".join("abc"[t - 1] for t in ids.tolist())

    coded = code_documents(model, docs, 0, texts, detokenize, verify_tokens=5)
    assert coded["decoded_documents"] == 1 and coded["decoded_tokens"] == 5
    assert coded["identical_documents"] == 1 and coded["round_trip"]
    everything = code_documents(model, docs, 0, texts, detokenize)
    assert everything["decoded_documents"] == everything["identical_documents"] == 3
