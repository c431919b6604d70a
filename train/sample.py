"""Generation: the model continues a prompt one token at a time, as a document of its corpus."""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from corpusmill.train.model import GPT, Past, log_softmax


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

    Each token is drawn from the softmax of the logits divided by `temperature`; `temperature` 0
    takes the most likely token (greedy decoding). The model reads the tokens of its window, their
    keys and values cached, so a new token costs one position; when the window would pass
    `seq_len` tokens, it starts again from the last half of them, read in one forward call.
    """
    if len(context) == 0:
        raise ValueError("generation needs at least one context token")
    rng = np.random.default_rng(seed)
    out = list(np.asarray(context).tolist())
    seq_len = model.config.seq_len
    fresh = out[-seq_len:]  # tokens the model has not read yet
    past: Past | None = None
    held = 0  # tokens of the window in `past`
    for _ in range(tokens):
        if held + len(fresh) > seq_len:
            fresh, past, held = out[-max(1, seq_len // 2) :], None, 0
        logits, cache = model.forward(np.array([fresh]), past)
        past, held = model.keys_values(cache), held + len(fresh)
        out.append(_pick(log_softmax(logits[0, -1]).astype(np.float64), temperature, rng))
        fresh = out[-1:]
    return np.array(out, dtype=np.int64)


def _pick(logp: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """A token id drawn from log-probabilities sharpened or flattened by `temperature`."""
    if temperature <= 0:
        return int(np.argmax(logp))
    cdf = np.cumsum(np.exp(log_softmax(logp / temperature)))
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))
