"""The training loop: batches from the loader, AdamW steps, held-out evaluation, a checkpoint.

Held-out split: the last sequences of the run's token stream (its last documents, in the last
shard) are the evaluation set, read once by an unshuffled `TokenStream`; training batches
come from a shuffled `TokenStream` over the whole run, and any row equal to a held-out sequence is
dropped from its batch, so the model never trains on what it is evaluated on.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from corpusmill.loader.format import read_manifest
from corpusmill.loader.stream import TokenStream
from corpusmill.train.checkpoint import save_checkpoint
from corpusmill.train.model import GPT, ModelConfig
from corpusmill.train.optim import AdamW, clip_gradients, learning_rate

log = logging.getLogger(__name__)

# At most this share of a run's sequences is held out, so a small run still has most to train on.
_MAX_HELD_OUT = 0.1


@dataclass(frozen=True)
class TrainConfig:
    """The model's shape and the optimization; the defaults train in about a minute on 2 cores."""

    n_layer: int = field(default=2, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads per block"})
    n_embd: int = field(default=64, metadata={"help": "width of the residual stream"})
    seq_len: int = field(default=64, metadata={"help": "context length in tokens"})
    steps: int = field(default=300, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=16, metadata={"help": "sequences per step"})
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate"})
    # Cosine decay to 10% of the peak, as in Chinchilla (Hoffmann et al. 2022).
    min_lr_ratio: float = field(
        default=0.1, metadata={"help": "final learning rate as a fraction of the peak"}
    )
    warmup: int = field(default=30, metadata={"help": "steps of linear learning-rate warm-up"})
    # Weight decay 0.1 and clipping at 1.0 follow GPT-3 (Brown et al. 2020).
    weight_decay: float = field(
        default=0.1, metadata={"help": "AdamW decoupled weight decay of matrices and embeddings"}
    )
    grad_clip: float = field(
        default=1.0, metadata={"help": "maximum global gradient norm; 0 disables clipping"}
    )
    eval_every: int = field(default=50, metadata={"help": "steps between held-out evaluations"})
    eval_batches: int = field(
        default=4,
        metadata={"help": "held-out batches (at most 10% of the run's sequences)"},
    )
    seed: int = field(default=0, metadata={"help": "seed of the initial weights and the shuffle"})

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_every", "eval_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"lr {self.lr} must be > 0 and min_lr_ratio in [0, 1]")


def train(run: Path, config: TrainConfig, ckpt: Path, progress: bool = True) -> dict[str, Any]:
    """Train a model on the tokenized run in `run`, save it to `ckpt`; return the loss history.

    Losses are in nats per token and in bits per byte of source text (the run's tokens per byte
    from its manifest), so models with different tokenizers compare.
    """
    started = time.perf_counter()
    manifest = read_manifest(run)
    totals = manifest.totals()
    bits_per_byte = totals["tokens"] / max(totals["num_bytes"], 1) / math.log(2)
    model_config = ModelConfig(
        vocab_size=manifest.vocab_size,
        seq_len=config.seq_len,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_embd=config.n_embd,
    )
    model = GPT.init(model_config, seed=config.seed)
    optimizer = AdamW(model.params, weight_decay=config.weight_decay)
    held_out = held_out_sequences(run, config)
    stream = TokenStream(run, config.seq_len, config.batch_size, seed=config.seed)
    echo = tqdm.write if progress else log.info
    echo(
        f"{run}: {totals['tokens']} tokens, {totals['bytes_per_token']:.3f} bytes/token; "
        f"model of {model.num_params()} parameters; {len(held_out)} sequences held out"
    )

    def evaluate(step: int, train_loss: float | None = None) -> dict[str, Any]:
        losses = {"eval": held_out_loss(model, held_out, config.batch_size)}
        if train_loss is not None:
            losses["train"] = train_loss
        entry: dict[str, Any] = {"step": step}
        for split, loss in losses.items():
            entry |= {f"{split}_loss": loss, f"{split}_bpb": loss * bits_per_byte}
        shown = (
            f"{split} {loss:.3f} nats/token {loss * bits_per_byte:.3f} bits/byte"
            for split, loss in losses.items()
        )
        echo(f"step {step:>5}: " + " | ".join(shown))
        return entry

    history = [evaluate(0)]
    step_losses: list[float] = []
    final_lr = config.lr * config.min_lr_ratio
    bar = tqdm(
        total=config.steps, disable=None if progress else True, unit="step", dynamic_ncols=True
    )
    batches = _training_batches(stream, held_out)
    for step in range(1, config.steps + 1):
        batch = next(batches)
        loss, grads = model.loss_and_grads(batch[:, :-1], batch[:, 1:])
        norm = clip_gradients(grads, config.grad_clip)
        lr = learning_rate(step - 1, config.lr, config.warmup, config.steps, final_lr)
        optimizer.step(grads, lr)
        step_losses.append(loss)
        bar.set_postfix(loss=f"{loss:.3f}", bpb=f"{loss * bits_per_byte:.3f}", norm=f"{norm:.2f}")
        bar.update()
        if step % config.eval_every == 0 or step == config.steps:
            history.append(evaluate(step, float(np.mean(step_losses))))
            step_losses = []
    bar.close()
    stats = {
        "steps": config.steps,
        "params": model.num_params(),
        "bytes_per_token": totals["bytes_per_token"],
        "history": history,
        "seconds": round(time.perf_counter() - started, 2),
    }
    tokenizer = {
        "file": str((Path(run) / manifest.tokenizer).resolve()),
        "xxh3": manifest.tokenizer_xxh3,
        "eos_id": manifest.eos_id,
    }
    info = {"run": str(Path(run).resolve()), "train": dataclasses.asdict(config), **stats}
    save_checkpoint(ckpt, model, tokenizer, info)
    return stats


def held_out_sequences(run: Path, config: TrainConfig) -> np.ndarray:
    """The evaluation sequences (N, seq_len + 1): the last sequences of the run's token stream,
    read by an unshuffled stream resumed just before them."""
    stream = TokenStream(run, config.seq_len, 1, shuffle=False, drop_last=False)
    count = stream.sequences_per_epoch
    wanted = min(config.eval_batches * config.batch_size, int(count * _MAX_HELD_OUT))
    if wanted < 1:
        raise ValueError(
            f"{run} holds {count} sequences of {config.seq_len} tokens, too few to hold any out "
            "for evaluation: tokenize more text or lower --seq-len"
        )
    stream = TokenStream(run, config.seq_len, wanted, shuffle=False, drop_last=False)
    stream.load_state_dict({**stream.state_dict(), "position": count - wanted})
    return next(iter(stream)).astype(np.int64)


def held_out_loss(model: GPT, held_out: np.ndarray, batch_size: int) -> float:
    """Mean loss in nats per token over the held-out sequences, `batch_size` at a time."""
    total = 0.0
    for start in range(0, len(held_out), batch_size):
        batch = held_out[start : start + batch_size]
        total += model.loss(batch[:, :-1], batch[:, 1:]) * len(batch)
    return total / len(held_out)


def _training_batches(stream: TokenStream, held_out: np.ndarray) -> Iterator[np.ndarray]:
    """The stream's batches, epoch after epoch, as int64, without the held-out sequences."""
    excluded = {row.tobytes() for row in held_out}
    while True:
        yielded = False
        for batch in stream:
            batch = batch.astype(np.int64)
            keep = [row.tobytes() not in excluded for row in batch]
            if any(keep):
                yielded = True
                yield batch[keep]
        if not yielded:
            raise ValueError(
                "an epoch of the training stream gave no batch outside the held-out set"
            )
