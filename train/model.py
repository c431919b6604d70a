"""A tiny GPT in numpy: each layer's forward and hand-written backward side by side.

The architecture is GPT-2's (Radford et al. 2019) at toy size: token and position embeddings,
`n_layer` pre-norm blocks of causal multi-head self-attention and a GELU MLP, a final layer norm
and an output layer tied to the token embedding. Every `*_forward` returns its output and a cache
of what its `*_backward` needs; a backward takes the gradient of the output and that cache and
returns the gradients of the inputs and of the layer's parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Params = dict[str, np.ndarray]
# Per layer, the attention keys and values (B, H, T, D) of the positions already seen.
Past = list[tuple[np.ndarray, np.ndarray]]

_LN_EPS = 1e-5
_GELU_C = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True)
class ModelConfig:
    """The shape of the network; saved in every checkpoint."""

    vocab_size: int = field(
        default=4096, metadata={"help": "token ids the model reads and predicts"}
    )
    seq_len: int = field(default=64, metadata={"help": "context length in tokens"})
    n_layer: int = field(default=2, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads per block"})
    n_embd: int = field(default=64, metadata={"help": "width of the residual stream"})

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer of at least 1, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}: choose "
                "sizes where each head gets n_embd / n_head dimensions"
            )


class GPT:
    """The network: its parameters by name, the loss with its gradients, next-token log-probs."""

    def __init__(self, config: ModelConfig, params: Params) -> None:
        self.config = config
        self.params = params

    @classmethod
    def init(cls, config: ModelConfig, seed: int = 0, dtype: type = np.float32) -> GPT:
        """Fresh weights as in GPT-2: N(0, 0.02), residual projections scaled by 1/sqrt(2 L)."""
        rng = np.random.default_rng(seed)
        params = {}
        for name, (shape, scale) in _param_specs(config).items():
            if scale is None:  # layer-norm gains start at 1
                params[name] = np.ones(shape, dtype=dtype)
            elif scale == 0.0:
                params[name] = np.zeros(shape, dtype=dtype)
            else:
                params[name] = (rng.standard_normal(shape) * scale).astype(dtype)
        return cls(config, params)

    def num_params(self) -> int:
        """Number of weights (the tied output layer counted once)."""
        return sum(p.size for p in self.params.values())

    def forward(self, tokens: np.ndarray, past: Past | None = None) -> tuple[np.ndarray, list]:
        """Logits (B, T, V) of the next token at every position of `tokens` (B, T), and caches.

        `past` (`keys_values` of an earlier call's caches) holds the keys and values of the tokens
        before these: they are attended to, not computed again, so a sequence fed a token at a time
        costs one position per call instead of the whole prefix.
        """
        p, cfg = self.params, self.config
        start = past[0][0].shape[2] if past else 0
        t = tokens.shape[1]
        if start + t > cfg.seq_len:
            raise ValueError(f"{start + t} tokens exceed the model's context of {cfg.seq_len}")
        x = p["wte"][tokens] + p["wpe"][start : start + t]
        caches = []
        for i in range(cfg.n_layer):
            x, cache = block_forward(x, p, f"h{i}.", cfg.n_head, past[i] if past else None)
            caches.append(cache)
        x, ln_cache = layer_norm_forward(x, p["ln_f.g"], p["ln_f.b"])
        logits = (x.reshape(-1, cfg.n_embd) @ p["wte"].T).reshape(*tokens.shape, cfg.vocab_size)
        return logits, [tokens, caches, ln_cache, x]

    @staticmethod
    def keys_values(cache: list) -> Past:
        """Per layer, the attention keys and values (B, H, T, D) of every position a forward has
        seen: the `past` of the next call."""
        return [(attn[2], attn[3]) for _, attn, _, _ in cache[1]]

    def backward(self, dlogits: np.ndarray, cache: list) -> Params:
        """Gradients of every parameter, given the gradient of the logits."""
        p, cfg = self.params, self.config
        tokens, caches, ln_cache, x = cache
        c = cfg.n_embd
        grads: Params = {}
        # The output layer is the token embedding: both uses add to its gradient.
        dlogits = dlogits.reshape(-1, cfg.vocab_size)
        grads["wte"] = dlogits.T @ x.reshape(-1, c)
        dx = (dlogits @ p["wte"]).reshape(x.shape)
        dx, grads["ln_f.g"], grads["ln_f.b"] = layer_norm_backward(dx, ln_cache)
        for i in reversed(range(cfg.n_layer)):
            dx = block_backward(dx, caches[i], p, f"h{i}.", grads)
        np.add.at(grads["wte"], tokens.reshape(-1), dx.reshape(-1, c))
        grads["wpe"] = np.zeros_like(p["wpe"])
        grads["wpe"][: tokens.shape[1]] = dx.sum(axis=0)
        return grads

    def loss_and_grads(self, tokens: np.ndarray, targets: np.ndarray) -> tuple[float, Params]:
        """Mean cross-entropy in nats per token of `targets` given `tokens`, and its gradients."""
        logits, cache = self.forward(tokens)
        loss, dlogits = cross_entropy_forward_backward(logits, targets)
        return loss, self.backward(dlogits, cache)

    def loss(self, tokens: np.ndarray, targets: np.ndarray) -> float:
        """Mean cross-entropy in nats per token, without gradients."""
        logp = self.log_probs(tokens)
        return float(-np.take_along_axis(logp, targets[..., None], axis=-1).mean())

    def log_probs(self, tokens: np.ndarray) -> np.ndarray:
        """Log-probabilities (B, T, V) of the next token after each prefix of `tokens` (B, T)."""
        logits, _ = self.forward(np.asarray(tokens))
        return log_softmax(logits)


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every parameter of a model of `config`."""
    return {name: shape for name, (shape, _) in _param_specs(config).items()}


def _param_specs(config: ModelConfig) -> dict[str, tuple[tuple[int, ...], float | None]]:
    """Every parameter's shape and initial standard deviation (0: zeros, None: ones)."""
    c, std = config.n_embd, 0.02
    proj_std = std / math.sqrt(2 * config.n_layer)
    shapes = {"wte": ((config.vocab_size, c), std), "wpe": ((config.seq_len, c), std)}
    for i in range(config.n_layer):
        shapes |= {
            f"h{i}.ln1.g": ((c,), None),
            f"h{i}.ln1.b": ((c,), 0.0),
            f"h{i}.attn.w_qkv": ((c, 3 * c), std),
            f"h{i}.attn.b_qkv": ((3 * c,), 0.0),
            f"h{i}.attn.w_proj": ((c, c), proj_std),
            f"h{i}.attn.b_proj": ((c,), 0.0),
            f"h{i}.ln2.g": ((c,), None),
            f"h{i}.ln2.b": ((c,), 0.0),
            f"h{i}.mlp.w_fc": ((c, 4 * c), std),
            f"h{i}.mlp.b_fc": ((4 * c,), 0.0),
            f"h{i}.mlp.w_proj": ((4 * c, c), proj_std),
            f"h{i}.mlp.b_proj": ((c,), 0.0),
        }
    return shapes | {"ln_f.g": ((c,), None), "ln_f.b": ((c,), 0.0)}


def block_forward(
    x: np.ndarray,
    p: Params,
    name: str,
    n_head: int,
    past: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple]:
    """One pre-norm block: x + attn(ln1(x)), then + mlp(ln2(x))."""
    h, ln1 = layer_norm_forward(x, p[name + "ln1.g"], p[name + "ln1.b"])
    h, attn = attention_forward(h, p, name + "attn.", n_head, past)
    x = x + h
    h, ln2 = layer_norm_forward(x, p[name + "ln2.g"], p[name + "ln2.b"])
    h, mlp = mlp_forward(h, p, name + "mlp.")
    return x + h, (ln1, attn, ln2, mlp)


def block_backward(dy: np.ndarray, cache: tuple, p: Params, name: str, grads: Params) -> np.ndarray:
    """Gradient of a block's input; its parameters' gradients go into `grads`."""
    ln1, attn, ln2, mlp = cache
    dh = mlp_backward(dy, mlp, p, name + "mlp.", grads)
    dh, grads[name + "ln2.g"], grads[name + "ln2.b"] = layer_norm_backward(dh, ln2)
    dx = dy + dh
    dh = attention_backward(dx, attn, p, name + "attn.", grads)
    dh, grads[name + "ln1.g"], grads[name + "ln1.b"] = layer_norm_backward(dh, ln1)
    return dx + dh


def layer_norm_forward(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Normalize the last axis to zero mean and unit variance, then scale by g and shift by b."""
    mean = x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + _LN_EPS)
    xhat = (x - mean) * rstd
    return xhat * g + b, (xhat, rstd, g)


def layer_norm_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the input, the gain and the bias of a layer norm."""
    xhat, rstd, g = cache
    axes = tuple(range(dy.ndim - 1))
    dg = (dy * xhat).sum(axis=axes)
    db = dy.sum(axis=axes)
    dxhat = dy * g
    dx = rstd * (
        dxhat
        - dxhat.mean(axis=-1, keepdims=True)
        - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)
    )
    return dx, dg, db


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x @ w + b over the last axis (as one 2-D product: BLAS is much faster on those)."""
    return (x.reshape(-1, x.shape[-1]) @ w + b).reshape(*x.shape[:-1], w.shape[1]), x


def linear_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the input, the weight and the bias of a linear layer."""
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    return (dy2 @ w.T).reshape(x.shape), x2.T @ dy2, dy2.sum(axis=0)


def attention_forward(
    x: np.ndarray,
    p: Params,
    name: str,
    n_head: int,
    past: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple]:
    """Causal multi-head self-attention: every position attends to itself and earlier ones,
    those of `past` (keys and values of earlier positions) included."""
    bsz, t, c = x.shape
    qkv, x_in = linear_forward(x, p[name + "w_qkv"], p[name + "b_qkv"])
    # (B, T, 3C) -> three (B, H, T, D)
    q, k, v = qkv.reshape(bsz, t, 3, n_head, c // n_head).transpose(2, 0, 3, 1, 4)
    if past is not None:
        k = np.concatenate([past[0], k], axis=2)
        v = np.concatenate([past[1], v], axis=2)
    scale = 1.0 / math.sqrt(c // n_head)
    scores = (q @ k.transpose(0, 1, 3, 2)) * scale
    scores = np.where(_causal_mask(t, k.shape[2] - t), scores, -np.inf)
    att = softmax(scores)
    y = (att @ v).transpose(0, 2, 1, 3).reshape(bsz, t, c)
    out, y_in = linear_forward(y, p[name + "w_proj"], p[name + "b_proj"])
    return out, (x_in, q, k, v, att, y_in, scale)


def attention_backward(
    dout: np.ndarray, cache: tuple, p: Params, name: str, grads: Params
) -> np.ndarray:
    """Gradient of the attention's input; its parameters' gradients go into `grads`."""
    x_in, q, k, v, att, y_in, scale = cache
    bsz, n_head, t, d = q.shape
    dy, grads[name + "w_proj"], grads[name + "b_proj"] = linear_backward(
        dout, y_in, p[name + "w_proj"]
    )
    dy = dy.reshape(bsz, t, n_head, d).transpose(0, 2, 1, 3)
    datt = dy @ v.transpose(0, 1, 3, 2)
    dv = att.transpose(0, 1, 3, 2) @ dy
    # Softmax backward; masked positions have att = 0, so they get no gradient.
    dscores = att * (datt - (datt * att).sum(axis=-1, keepdims=True)) * scale
    dq = dscores @ k
    dk = dscores.transpose(0, 1, 3, 2) @ q
    dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(bsz, t, 3 * n_head * d)
    dx, grads[name + "w_qkv"], grads[name + "b_qkv"] = linear_backward(
        dqkv, x_in, p[name + "w_qkv"]
    )
    return dx


def mlp_forward(x: np.ndarray, p: Params, name: str) -> tuple[np.ndarray, tuple]:
    """Linear to 4x the width, GELU, linear back."""
    h, x_in = linear_forward(x, p[name + "w_fc"], p[name + "b_fc"])
    a, gelu = gelu_forward(h)
    out, a_in = linear_forward(a, p[name + "w_proj"], p[name + "b_proj"])
    return out, (x_in, gelu, a_in)


def mlp_backward(dout: np.ndarray, cache: tuple, p: Params, name: str, grads: Params) -> np.ndarray:
    """Gradient of the MLP's input; its parameters' gradients go into `grads`."""
    x_in, gelu, a_in = cache
    da, grads[name + "w_proj"], grads[name + "b_proj"] = linear_backward(
        dout, a_in, p[name + "w_proj"]
    )
    dh = gelu_backward(da, gelu)
    dx, grads[name + "w_fc"], grads[name + "b_fc"] = linear_backward(dh, x_in, p[name + "w_fc"])
    return dx


def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """GELU, tanh approximation (Hendrycks & Gimpel 2016), as in GPT-2."""
    tanh = np.tanh(_GELU_C * (x + 0.044715 * x * x * x))
    return 0.5 * x * (1.0 + tanh), (x, tanh)


def gelu_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """Gradient of GELU's input."""
    x, tanh = cache
    dinner = _GELU_C * (1.0 + 3 * 0.044715 * x * x)
    return dy * (0.5 * (1.0 + tanh) + 0.5 * x * (1.0 - tanh**2) * dinner)


def cross_entropy_forward_backward(
    logits: np.ndarray, targets: np.ndarray
) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood of `targets` and its gradient with respect to the logits."""
    logp = log_softmax(logits)
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)
    loss = float(-picked.mean())
    dlogits = np.exp(logp)
    np.put_along_axis(
        dlogits, targets[..., None], np.take_along_axis(dlogits, targets[..., None], -1) - 1, -1
    )
    return loss, dlogits / targets.size


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the maximum so exp never overflows."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Log of the softmax over the last axis, computed stably."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _causal_mask(t: int, past: int = 0) -> np.ndarray:
    """(T, past + T) booleans: True where a query position may attend to a key position, the
    queries being the last T of the keys' positions."""
    return np.tril(np.ones((t, past + t), dtype=bool), k=past)
