"""The numpy GPT: hand-written gradients, causality, the optimizer and the schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from corpusmill.train.model import GPT, ModelConfig
from corpusmill.train.optim import AdamW, clip_gradients, learning_rate

TINY = ModelConfig(vocab_size=11, seq_len=6, n_layer=2, n_head=2, n_embd=8)


def perturbed_tiny_model() -> GPT:
    """A float64 tiny model whose gains and biases are not 1 and 0, so their gradients matter."""
    model = GPT.init(TINY, seed=1, dtype=np.float64)
    rng = np.random.default_rng(2)
    for param in model.params.values():
        if param.ndim == 1:
            param += rng.normal(0.0, 0.2, param.shape)
    return model


def test_every_gradient_matches_finite_differences():
    model = perturbed_tiny_model()
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, TINY.vocab_size, (2, 5))
    targets = rng.integers(0, TINY.vocab_size, (2, 5))
    _, grads = model.loss_and_grads(tokens, targets)
    assert set(grads) == set(model.params)
    step = 1e-6
    for name, param in model.params.items():
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + step
            plus = model.loss(tokens, targets)
            param[index] = saved - step
            minus = model.loss(tokens, targets)
            param[index] = saved
            numeric[index] = (plus - minus) / (2 * step)
        assert grads[name].shape == param.shape, name
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)


def test_float32_model_computes_in_float32():
    model = GPT.init(TINY, seed=0)
    tokens = np.arange(6).reshape(1, 6)
    loss, grads = model.loss_and_grads(tokens, (tokens + 1) % TINY.vocab_size)
    assert model.log_probs(tokens).dtype == np.float32
    assert {grad.dtype for grad in grads.values()} == {np.dtype(np.float32)}
    # A fresh model predicts nearly uniformly: loss about ln(vocab_size).
    assert abs(loss - math.log(TINY.vocab_size)) < 0.05


def test_changing_a_future_token_leaves_earlier_predictions_unchanged():
    model = perturbed_tiny_model()
    tokens = np.array([[1, 2, 3, 4, 5, 6]])
    changed = tokens.copy()
    changed[0, 4] = 9
    before, after = model.log_probs(tokens), model.log_probs(changed)
    np.testing.assert_array_equal(before[:, :4], after[:, :4])
    assert not np.allclose(before[:, 4:], after[:, 4:])


@pytest.mark.parametrize("chunk", [1, 2])
def test_cached_keys_and_values_give_the_full_forwards_logits_at_every_position(chunk):
    model = perturbed_tiny_model()
    tokens = np.random.default_rng(3).integers(0, TINY.vocab_size, (3, TINY.seq_len))
    full, _ = model.forward(tokens)
    past, rows = None, []
    for start in range(0, TINY.seq_len, chunk):
        logits, cache = model.forward(tokens[:, start : start + chunk], past)
        past = model.keys_values(cache)
        rows.append(logits)
    assert np.abs(np.concatenate(rows, axis=1) - full).max() < 1e-9
    assert past[0][0].shape == (3, TINY.n_head, TINY.seq_len, TINY.n_embd // TINY.n_head)


def test_a_cache_full_to_the_context_refuses_another_token():
    model = GPT.init(TINY, seed=0)
    _, cache = model.forward(np.zeros((1, TINY.seq_len), dtype=np.int64))
    with pytest.raises(ValueError, match="exceed the model's context"):
        model.forward(np.zeros((1, 1), dtype=np.int64), model.keys_values(cache))


def test_log_probs_are_normalized_per_position():
    model = perturbed_tiny_model()
    logp = model.log_probs(np.array([[1, 2, 3], [4, 5, 6]]))
    assert logp.shape == (2, 3, TINY.vocab_size)
    np.testing.assert_allclose(np.exp(logp).sum(axis=-1), 1.0, rtol=1e-12)


def test_more_tokens_than_the_context_are_refused():
    with pytest.raises(ValueError, match="exceed the model's context of 6"):
        GPT.init(TINY).log_probs(np.zeros((1, 7), dtype=np.int64))


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="n_embd 10 is not a multiple of n_head 4"):
        ModelConfig(n_embd=10, n_head=4)


def test_adamw_step_matches_a_hand_computation():
    params = {"w": np.array([[1.0, -2.0]]), "b": np.array([0.5])}
    optimizer = AdamW(params, weight_decay=0.1, betas=(0.9, 0.95), eps=1e-8)
    optimizer.step({"w": np.array([[0.2, -0.4]]), "b": np.array([1.0])}, lr=0.01)
    optimizer.step({"w": np.array([[0.1, 0.0]]), "b": np.array([-1.0])}, lr=0.01)

    def by_hand(p: float, g1: float, g2: float, decay: bool) -> float:
        m = v = 0.0
        for t, g in enumerate((g1, g2), start=1):
            m = 0.9 * m + 0.1 * g
            v = 0.95 * v + 0.05 * g * g
            if decay:
                p -= 0.01 * 0.1 * p
            p -= 0.01 * (m / (1 - 0.9**t)) / (math.sqrt(v / (1 - 0.95**t)) + 1e-8)
        return p

    expected_w = [by_hand(1.0, 0.2, 0.1, True), by_hand(-2.0, -0.4, 0.0, True)]
    np.testing.assert_allclose(params["w"], [expected_w], rtol=1e-12)
    # Biases (1-D parameters) are not decayed.
    np.testing.assert_allclose(params["b"], [by_hand(0.5, 1.0, -1.0, False)], rtol=1e-12)


def test_schedule_warms_up_linearly_peaks_then_decays_to_the_final_rate():
    rates = [
        learning_rate(step, (step - 10) / 100, peak=1.0, warmup=10, final=0.1)
        for step in range(111)
    ]
    assert rates[0] == pytest.approx(0.1)
    assert rates[4] == pytest.approx(0.5)
    assert rates[10] == pytest.approx(1.0)
    assert rates[60] == pytest.approx(0.55)  # half way down the cosine
    assert rates[110] == pytest.approx(0.1)
    assert max(rates) == rates[10]
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))


def test_clipping_scales_to_the_maximum_norm_and_reports_the_norm_before():
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    assert clip_gradients(grads, max_norm=1.0) == pytest.approx(5.0)
    np.testing.assert_allclose([grads["a"][0], grads["b"][0, 0]], [0.6, 0.8], rtol=1e-6)
    small = {"a": np.array([0.3])}
    assert clip_gradients(small, max_norm=1.0) == pytest.approx(0.3)
    assert small["a"][0] == 0.3
