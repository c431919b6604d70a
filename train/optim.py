"""AdamW, the learning-rate schedule (linear warm-up, cosine decay) and gradient-norm clipping."""

from __future__ import annotations

import math

import numpy as np

from corpusmill.train.model import Params


class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), updating arrays in place.

    Weight decay applies to matrices and embeddings only, not to biases and layer-norm gains,
    as in GPT-2/nanoGPT.
    """

    def __init__(
        self,
        params: Params,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.95),  # GPT-3 (Brown et al. 2020)
        eps: float = 1e-8,
    ) -> None:
        self.params = params
        self.weight_decay = weight_decay
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.steps = 0
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, grads: Params, lr: float) -> None:
        """One update of every parameter with learning rate `lr`."""
        self.steps += 1
        correction1 = 1.0 - self.beta1**self.steps
        correction2 = 1.0 - self.beta2**self.steps
        for name, p in self.params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            if p.ndim >= 2:
                p *= 1.0 - lr * self.weight_decay
            p -= lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)


def learning_rate(step: int, decayed: float, peak: float, warmup: int, final: float) -> float:
    """The rate at `step` (0-based): linear warm-up to `peak` over `warmup` steps, then a cosine
    decay reaching `final` when `decayed`, the share of the budget after warm-up spent, is 1."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return final + 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, decayed)))) * (peak - final)


def clip_gradients(grads: Params, max_norm: float) -> float:
    """Scale the gradients in place so their global L2 norm is at most `max_norm`; return the
    norm before clipping. `max_norm` <= 0 leaves them as they are."""
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale
    return norm
