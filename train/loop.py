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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from corpusmill.core.atomic import unwritable_file
from corpusmill.core.errors import StageError
from corpusmill.loader.dataset import TokenDataset
from corpusmill.loader.format import FormatError, read_manifest
from corpusmill.loader.stream import TokenStream
from corpusmill.pipeline.config import ConfigError
from corpusmill.pipeline.readers import InputError
from corpusmill.train.checkpoint import CheckpointError, save_checkpoint
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
        sizes = ("n_layer", "n_head", "n_embd", "seq_len", "steps", "batch_size", "eval_every")
        for name in (*sizes, "eval_batches"):
            _require(self, name, int, lambda value: value >= 1, "an integer of at least 1")
        for name in ("warmup", "seed"):
            _require(self, name, int, lambda value: value >= 0, "an integer of at least 0")
        _require(self, "lr", float, lambda value: value > 0, "a finite number above 0")
        _require(self, "min_lr_ratio", float, lambda value: 0 <= value <= 1, "from 0 to 1")
        for name in ("weight_decay", "grad_clip"):
            _require(self, name, float, lambda value: value >= 0, "a finite number, at least 0")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}: choose sizes "
                "where each head gets n_embd / n_head dimensions"
            )


def train(run: Path, config: TrainConfig, ckpt: Path, progress: bool = True) -> dict[str, Any]:
    """Train a model on the tokenized run in `run`, save it to `ckpt`; return the loss history.

    Losses are in nats per token and in bits per byte of source text (the run's tokens per byte
    from its manifest), so models with different tokenizers compare.
    """
    started = time.perf_counter()
    manifest = read_manifest(run)
    totals = manifest.totals()
    _check_fits(run, totals["tokens"], config)
    _check_writable(Path(ckpt))
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
        _check_finite(losses["eval"], f"the held-out loss after step {step}", config)
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
    # Overflow shows as a non-finite loss, which stops training naming the step: no warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(1, config.steps + 1):
            batch = next(batches)
            loss, grads = model.loss_and_grads(batch[:, :-1], batch[:, 1:])
            _check_finite(loss, f"the training loss of step {step}", config)
            norm = clip_gradients(grads, config.grad_clip)
            lr = learning_rate(step - 1, config.lr, config.warmup, config.steps, final_lr)
            optimizer.step(grads, lr)
            step_losses.append(loss)
            bar.set_postfix(
                loss=f"{loss:.3f}", bpb=f"{loss * bits_per_byte:.3f}", norm=f"{norm:.2f}"
            )
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
    return _checked_ids(next(iter(stream)), stream.datasets[0])


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
            batch = _checked_ids(batch, stream.datasets[0])
            keep = [row.tobytes() not in excluded for row in batch]
            if any(keep):
                yielded = True
                yield batch[keep]
        if not yielded:
            raise StageError(
                f"every training sequence of {stream.datasets[0].folder} equals a held-out one: "
                "its text repeats itself; tokenize more varied text, or change --seq-len"
            )


def _checked_ids(batch: np.ndarray, dataset: TokenDataset) -> np.ndarray:
    """A batch as int64, refused (naming the damaged shard) if a token id lies outside the
    vocabulary: the loader leaves that check to its consumer, where it costs nothing next to a
    training step."""
    if batch.max() >= dataset.manifest.vocab_size:
        problem = next(dataset.ids_out_of_range(), f"{dataset.folder} changed while read")
        raise FormatError(f"{problem}: the shard is damaged; rerun the tokenize stage")
    return batch.astype(np.int64)


def _check_fits(run: Path, tokens: int, config: TrainConfig) -> None:
    """Refuse a run too small for the settings before any work: a training batch and held-out
    sequences (a tenth of the run's at most) must fit in its tokens."""
    if tokens == 0:
        raise InputError(f"{run} holds no tokens: tokenize some text before training on it")
    held_out_needs = math.ceil(1 / _MAX_HELD_OUT)  # sequences for one to be held out
    need = max(config.batch_size, held_out_needs)
    count = (tokens - 1) // config.seq_len
    if count >= need:
        return
    fixes = []
    if (tokens - 1) // need >= 1:
        fixes.append(f"--seq-len {(tokens - 1) // need}")
    if count >= held_out_needs:
        fixes.append(f"--batch-size {count}")
    raise ConfigError(
        f"{run} holds {tokens} tokens, {count} sequences of seq_len {config.seq_len}: fewer "
        f"than the {need} a batch of batch_size {config.batch_size} and a held-out set need; "
        + (f"use {' or '.join(fixes)} or less" if fixes else "tokenize more text")
    )


def _check_writable(ckpt: Path) -> None:
    """Refuse a checkpoint path that cannot become a file before training, not after."""
    if ckpt.is_dir():
        raise CheckpointError(
            f"{ckpt} is a folder: name the checkpoint file, such as {ckpt / 'model.npz'}"
        )
    if problem := unwritable_file(ckpt):
        raise CheckpointError(f"{ckpt} cannot be written: {problem}")


def _check_finite(loss: float, what: str, config: TrainConfig) -> None:
    """Stop training when the loss is no longer a number: the weights are lost."""
    if not math.isfinite(loss):
        raise StageError(
            f"training diverged: {what} is {loss}; no checkpoint was written. Lower --lr (now "
            f"{config.lr}) or raise --warmup (now {config.warmup})"
        )


def _require(
    config: TrainConfig, name: str, kind: type, allowed: Callable[[Any], bool], what: str
) -> None:
    """Raise a ValueError naming the key unless config.`name` is a finite number of `kind` (an
    int is a float too) that `allowed` accepts."""
    value = getattr(config, name)
    kinds = (int, float) if kind is float else (int,)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not math.isfinite(value)
        or not allowed(value)
    ):
        raise ValueError(f"{name} must be {what}, got {value!r}")
