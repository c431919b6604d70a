"""The training loop: batches from the loader, AdamW steps, held-out evaluation, a checkpoint.

Held-out set: the run's documents that train/heldout.py holds out (chosen by a hash of their id,
the same ones `corpusmill report` measures), read from the shards and evaluated whole, in windows
of the context length; bits per byte are their bits over their own UTF-8 bytes. A run with a
validation split holds out its validation shards, and training batches come from a shuffled
`TokenStream` over its training shards. In a run without one, they are chosen among its shards,
and any row equal to a sequence of the stream that overlaps a held-out document is dropped from
its batch, so the model never trains on what it is evaluated on.
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
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from corpusmill.core.atomic import unwritable_file
from corpusmill.core.checks import (
    COUNT,
    FINITE_NON_NEGATIVE,
    FINITE_POSITIVE,
    FRACTION,
    SIZE,
    Checked,
    ConfigValueError,
)
from corpusmill.core.errors import StageError
from corpusmill.loader.dataset import TokenDataset
from corpusmill.loader.format import (
    FormatError,
    checked_batch,
    open_shard,
    read_manifest,
    shard_schema,
)
from corpusmill.loader.split import VALIDATION
from corpusmill.loader.stream import TokenStream
from corpusmill.pipeline.config import ConfigError
from corpusmill.pipeline.readers import InputError
from corpusmill.train import heldout
from corpusmill.train.checkpoint import CheckpointError, save_checkpoint
from corpusmill.train.heldout import HELD_OUT_BYTES
from corpusmill.train.model import GPT, ModelConfig
from corpusmill.train.optim import AdamW, clip_gradients, learning_rate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig(Checked):
    """The model's shape and the optimization; the defaults train in about a minute on 2 cores."""

    n_layer: int = field(default=2, metadata={"help": "transformer blocks", "checks": SIZE})
    n_head: int = field(default=4, metadata={"help": "attention heads per block", "checks": SIZE})
    n_embd: int = field(
        default=64, metadata={"help": "width of the residual stream", "checks": SIZE}
    )
    seq_len: int = field(default=64, metadata={"help": "context length in tokens", "checks": SIZE})
    steps: int = field(
        default=300,
        metadata={"help": "optimizer steps, or fewer when --cpu-seconds run out", "checks": SIZE},
    )
    cpu_seconds: float = field(
        default=0.0,
        metadata={
            "help": "CPU seconds of training steps (every thread counted, evaluations not) "
            "after which training ends if --steps have not; the learning rate decays over "
            "whichever budget runs out first. 0: --steps alone, and the run is reproducible",
            "checks": FINITE_NON_NEGATIVE,
        },
    )
    batch_size: int = field(default=16, metadata={"help": "sequences per step", "checks": SIZE})
    lr: float = field(
        default=3e-3, metadata={"help": "peak learning rate", "checks": FINITE_POSITIVE}
    )
    # Cosine decay to 10% of the peak, as in Chinchilla (Hoffmann et al. 2022).
    min_lr_ratio: float = field(
        default=0.1,
        metadata={
            "help": "final learning rate as a fraction of the peak",
            "checks": (FRACTION,),
        },
    )
    warmup: int = field(
        default=30, metadata={"help": "steps of linear learning-rate warm-up", "checks": COUNT}
    )
    # Weight decay 0.1 and clipping at 1.0 follow GPT-3 (Brown et al. 2020).
    weight_decay: float = field(
        default=0.1,
        metadata={
            "help": "AdamW decoupled weight decay of matrices and embeddings",
            "checks": FINITE_NON_NEGATIVE,
        },
    )
    grad_clip: float = field(
        default=1.0,
        metadata={
            "help": "maximum global gradient norm; 0 disables clipping",
            "checks": FINITE_NON_NEGATIVE,
        },
    )
    eval_every: int = field(
        default=50, metadata={"help": "steps between held-out evaluations", "checks": SIZE}
    )
    held_out_bytes: int = field(
        default=HELD_OUT_BYTES,
        metadata={
            "help": "UTF-8 bytes of documents held out and evaluated (at most 10% of the run's), "
            "chosen by a hash of each document id, the same as `corpusmill report` measures",
            "checks": SIZE,
        },
    )
    seed: int = field(
        default=0,
        metadata={"help": "seed of the initial weights and the shuffle", "checks": COUNT},
    )

    def __post_init__(self) -> None:
        """Check each key, then that the heads split the width evenly."""
        super().__post_init__()
        if self.n_embd % self.n_head:
            raise ConfigValueError(
                "n_embd",
                self.n_embd,
                f"is not a multiple of n_head {self.n_head}: choose sizes where each head gets "
                "n_embd / n_head dimensions",
            )


def train(run: Path, config: TrainConfig, ckpt: Path, progress: bool = True) -> dict[str, Any]:
    """Train a model on the tokenized run in `run`, save it to `ckpt`; return the loss history.

    Held-out losses are in nats per token and in bits per byte of the held-out documents' own
    UTF-8 bytes, so models with different tokenizers compare; training losses in nats per token.
    """
    started = time.perf_counter()
    manifest = read_manifest(run)
    totals = manifest.totals()
    _check_fits(run, totals["tokens"], config)
    _check_writable(Path(ckpt))
    model_config = ModelConfig(
        vocab_size=manifest.vocab_size,
        seq_len=config.seq_len,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_embd=config.n_embd,
    )
    model = GPT.init(model_config, seed=config.seed)
    optimizer = AdamW(model.params, weight_decay=config.weight_decay)
    stream = TokenStream(run, config.seq_len, config.batch_size, seed=config.seed)
    held = held_out_documents(run, config.held_out_bytes)
    held_windows = heldout.windows(held.docs, manifest.eos_id, config.seq_len)
    echo = tqdm.write if progress else log.info
    echo(
        f"{run}: {totals['tokens']} tokens, {totals['bytes_per_token']:.3f} bytes/token; "
        f"model of {model.num_params()} parameters; held out: {held.describe()}"
    )

    budget = Budget(config)

    def evaluate(step: int, train_loss: float | None = None) -> dict[str, Any]:
        nats = heldout.held_out_nats(model.log_probs, held_windows, config.batch_size)
        loss = nats / held.tokens
        _check_finite(loss, f"the held-out loss after step {step}", config)
        entry: dict[str, Any] = {
            "step": step,
            "tokens_seen": step * config.batch_size * config.seq_len,
            "cpu_seconds": round(budget.cpu, 2),
            "eval_loss": loss,
            "eval_bpb": nats / math.log(2) / held.bytes,
        }
        shown = f"eval {loss:.3f} nats/token {entry['eval_bpb']:.3f} bits/byte"
        if train_loss is not None:
            entry["train_loss"] = train_loss
            shown = f"train {train_loss:.3f} nats/token | {shown}"
        echo(f"step {step:>5}: {shown}")
        return entry

    history = [evaluate(0)]
    step_losses: list[float] = []
    final_lr = config.lr * config.min_lr_ratio
    bar = tqdm(
        total=None if config.cpu_seconds else config.steps,
        disable=None if progress else True,
        unit="step",
        dynamic_ncols=True,
    )
    excluded = held_out_sequences(stream, held) if not held.validation_fraction else ()
    batches = _training_batches(stream, excluded)
    # Overflow shows as a non-finite loss, which stops training naming the step: no warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        while not budget.spent():
            started_step = time.process_time()
            batch = next(batches)
            loss, grads = model.loss_and_grads(batch[:, :-1], batch[:, 1:])
            _check_finite(loss, f"the training loss of step {budget.steps + 1}", config)
            norm = clip_gradients(grads, config.grad_clip)
            lr = learning_rate(budget.steps, budget.decayed(), config.lr, config.warmup, final_lr)
            optimizer.step(grads, lr)
            budget.add_step(time.process_time() - started_step)
            step_losses.append(loss)
            bar.set_postfix(loss=f"{loss:.3f}", norm=f"{norm:.2f}")
            bar.update()
            if budget.steps % config.eval_every == 0 or budget.spent():
                history.append(evaluate(budget.steps, float(np.mean(step_losses))))
                step_losses = []
    bar.close()
    stats = {
        "steps": budget.steps,
        "cpu_seconds": round(budget.cpu, 2),
        "params": model.num_params(),
        "bytes_per_token": totals["bytes_per_token"],
        "held_out": held.summary(config.held_out_bytes),
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


class Budget:
    """How much of the training budget is spent: `steps` steps, or `cpu_seconds` of the steps'
    CPU time, whichever runs out first. Under a CPU budget the schedule follows the time spent,
    so a slow spell on a shared machine costs steps, not the end of the decay."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.steps = 0
        self.cpu = 0.0
        self._cpu_at_warmup = 0.0

    def add_step(self, cpu: float) -> None:
        """Count a step that took `cpu` seconds of CPU time."""
        self.steps += 1
        self.cpu += cpu
        if self.steps == self.config.warmup:
            self._cpu_at_warmup = self.cpu

    def spent(self) -> bool:
        """Whether training is over."""
        limit = self.config.cpu_seconds
        return self.steps >= self.config.steps or bool(limit and self.cpu >= limit)

    def decayed(self) -> float:
        """The share of the budget after warm-up spent, which the learning rate decays over."""
        warmup, limit = self.config.warmup, self.config.cpu_seconds
        shares = [(self.steps - warmup) / max(1, self.config.steps - warmup)]
        if limit and self.steps >= warmup:
            shares.append((self.cpu - self._cpu_at_warmup) / max(1e-9, limit - self._cpu_at_warmup))
        return max(shares)


@dataclass(frozen=True)
class HeldOut:
    """The held-out documents of a run: their ids, token ids (each ending with EOS), UTF-8 bytes
    and where each lies in the token stream of their split ([start, stop) positions); the
    fraction of the run's validation split, which holds them, or 0 when they are chosen among
    its training shards."""

    ids: list[str]
    docs: list[np.ndarray]
    bytes: int
    starts: np.ndarray
    stops: np.ndarray
    validation_fraction: float = 0.0

    @property
    def tokens(self) -> int:
        """Tokens predicted: every document's, EOS included."""
        return sum(len(doc) for doc in self.docs)

    def describe(self) -> str:
        """One line for the log, saying which documents they are."""
        which = (
            f"the validation split (shards.validation_fraction {self.validation_fraction})"
            if self.validation_fraction
            else "first by id hash, no validation split"
        )
        return f"{len(self.docs)} documents, {self.bytes} bytes, {self.tokens} tokens: {which}"

    def summary(self, held_out_bytes: int) -> dict[str, Any]:
        """What the checkpoint records of the held-out set, for the report to compare."""
        return {
            "held_out_bytes": held_out_bytes,
            "validation_fraction": self.validation_fraction,
            "ids": self.ids,
            "docs": len(self.docs),
            "bytes": self.bytes,
            "tokens": self.tokens,
        }


def held_out_documents(run: Path, held_out_bytes: int) -> HeldOut:
    """The run's held-out documents (train/heldout.py): its validation split when it has one,
    else documents of its shards. Read from the shards: ids, sizes and lengths of every document
    first, then the tokens of the chosen ones."""
    dataset = TokenDataset(run)
    fraction = dataset.manifest.validation_fraction
    if fraction:
        dataset = TokenDataset(run, split=VALIDATION)
    schema = shard_schema(pa.from_numpy_dtype(dataset.dtype))
    ids, sizes, lengths = [], [], []
    for batch in _shard_batches(dataset, schema):
        ids += batch["id"].to_pylist()
        sizes.append(batch["num_bytes"].to_numpy())
        lengths.append(pc.list_value_length(batch["tokens"]).to_numpy())
    rows, _ = heldout.split_rows(ids, np.concatenate(sizes), held_out_bytes, None, fraction)
    lengths = np.concatenate(lengths).astype(np.int64)
    stops = np.cumsum(lengths)
    chosen = np.zeros(len(lengths), dtype=bool)
    chosen[rows] = True
    docs, first = [], 0
    for batch in _shard_batches(dataset, schema):
        local = np.flatnonzero(chosen[first : first + batch.num_rows])
        docs += [_checked_ids(batch["tokens"][int(i)].values.to_numpy(), dataset) for i in local]
        first += batch.num_rows
    return HeldOut(
        ids=[ids[row] for row in rows],
        docs=docs,
        bytes=int(np.concatenate(sizes)[rows].sum()),
        starts=stops[rows] - lengths[rows],
        stops=stops[rows],
        validation_fraction=fraction,
    )


def held_out_sequences(stream: TokenStream, held: HeldOut) -> np.ndarray:
    """The stream's sequences (N, seq_len + 1) that hold a token of a held-out document: the
    rows training leaves out."""
    seq_len, dataset = stream.seq_len, stream.datasets[0]
    count = (dataset.tokens - 1) // seq_len
    # Sequence j holds tokens [j T, j T + T]: it meets [start, stop) when j T < stop and
    # j T + T >= start.
    firsts = np.maximum(0, (held.starts - seq_len - 1) // seq_len + 1)
    lasts = np.minimum(count - 1, (held.stops - 1) // seq_len)
    numbers = np.unique(
        np.concatenate([np.arange(a, b + 1) for a, b in zip(firsts, lasts, strict=True)])
    )
    arrays, index, offsets = dataset.windows(numbers * seq_len, seq_len + 1)
    return np.array(
        [arrays[i][o : o + seq_len + 1] for i, o in zip(index, offsets, strict=True)],
        dtype=np.int64,
    )


def _training_batches(
    stream: TokenStream, held_out: np.ndarray | tuple[()]
) -> Iterator[np.ndarray]:
    """The stream's batches, epoch after epoch, as int64, without the `held_out` sequences."""
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


def _shard_batches(dataset: TokenDataset, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Every record batch of the shards of the dataset's split in stream order, checked."""
    for shard in dataset.shards:
        path = dataset.folder / shard.name
        reader = open_shard(path)
        for index in range(reader.num_record_batches):
            yield checked_batch(path, reader, index, schema)


def _check_fits(run: Path, tokens: int, config: TrainConfig) -> None:
    """Refuse a run too small for the settings before any work: a training batch and held-out
    sequences (a tenth of the run's at most) must fit in its tokens."""
    if tokens == 0:
        raise InputError(f"{run} holds no tokens: tokenize some text before training on it")
    held_out_needs = math.ceil(1 / heldout.MAX_HELD_OUT)  # sequences for one to be held out
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
