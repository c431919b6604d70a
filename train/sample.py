"""Generation: the model continues a prompt one token at a time, as a document of its corpus."""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from corpusmill.train.model import GPT, log_softmax


def sample_text(
    model: GPT,
    tokenizer: Tokenizer,
    eos_id: int,
    prompt: str,
    tokens: int,
    temperature: float = 1.0,
    seed: int = 0,
) -> str:
    """The prompt and `tokens` generated tokens as text, the EOS between documents written out.

    The context starts with EOS, which precedes every document in the training stream, so the
    prompt is read as the beginning of a document.
    """
    ids = tokenizer.encode(prompt, add_special_tokens=False).ids
    context = np.array([eos_id, *ids], dtype=np.int64)
    out = generate(model, context, tokens, temperature, seed)
    return tokenizer.decode(out[1:].tolist(), skip_special_tokens=False)


def generate(
    model: GPT, context: np.ndarray, tokens: int, temperature: float = 1.0, seed: int = 0
) -> np.ndarray:
    """`context` (1-D token ids, at least one) followed by `tokens` sampled ones.

    Each token is drawn from the softmax of the logits divided by `temperature`, seeing the last
    `seq_len` tokens; `temperature` 0 takes the most likely token (greedy decoding).
    """
    if len(context) == 0:
        raise ValueError("generation needs at least one context token")
    rng = np.random.default_rng(seed)
    out = list(np.asarray(context).tolist())
    window = model.config.seq_len
    for _ in range(tokens):
        logp = model.log_probs(np.array([out[-window:]]))[0, -1].astype(np.float64)
        out.append(_pick(logp, temperature, rng))
    return np.array(out, dtype=np.int64)


def _pick(logp: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """A token id drawn from log-probabilities sharpened or flattened by `temperature`."""
    if temperature <= 0:
        return int(np.argmax(logp))
    cdf = np.cumsum(np.exp(log_softmax(logp / temperature)))
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))
