"""Training on a run's shards, checkpoints, sampling, and the `train` and `sample` commands."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import xxhash
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from corpusmill.cli import sample as sample_command
from corpusmill.cli import train as train_command
from corpusmill.cli.main import main
from corpusmill.core.atomic import write_bytes
from corpusmill.core.checksums import file_checksum
from corpusmill.loader.format import Manifest, token_type, tokens_array, write_shard
from corpusmill.loader.layout import MANIFEST, shard_name
from corpusmill.loader.split import in_validation
from corpusmill.loader.stream import TokenStream
from corpusmill.report.predict import CheckpointModel, code_documents
from corpusmill.train.checkpoint import (
    CheckpointError,
    checkpoint_tokenizer,
    load_checkpoint,
    save_checkpoint,
)
from corpusmill.train.heldout import split_rows
from corpusmill.train.loop import (
    Budget,
    TrainConfig,
    held_out_documents,
    held_out_sequences,
    train,
)
from corpusmill.train.model import GPT, ModelConfig
from corpusmill.train.sample import generate, sample_text

EOS = "<|endoftext|>"
ANIMALS = ["cat", "dog", "bird", "fox", "cow", "owl"]
PLACES = ["mat", "log", "hill", "barn", "roof", "tree"]
SMALL = TrainConfig(
    n_layer=1, n_head=2, n_embd=32, seq_len=16, steps=300, batch_size=8, lr=1e-2, warmup=10,
    eval_every=150,
)  # fmt: skip


def documents() -> list[str]:
    """Short texts with structure a model can learn: a fixed sentence frame, varying words."""
    return [
        f"the {ANIMALS[i % 6]} sat on the {PLACES[i * 7 % 6]}. the {ANIMALS[i % 6]} is happy."
        for i in range(300)
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenized run of `documents()`."""
    return write_tokenized_run(tmp_path_factory.mktemp("run"))


def write_tokenized_run(out: Path, validation_fraction: float = 0.0) -> Path:
    """A tokenized run in `out`: a byte-level BPE tokenizer, two shards and their manifest; with
    `validation_fraction`, the documents loader/split.py holds out at it in a validation shard."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=120,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    texts = documents()
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.save(str(out / "tokenizer.json"))
    eos_id = tokenizer.token_to_id(EOS)
    vocab_size = tokenizer.get_vocab_size()
    ids = [np.array(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    kind = token_type(vocab_size)
    table = pa.table(
        {
            "id": [f"doc#{i}" for i in range(300)],
            "tokens": tokens_array(ids, eos_id, kind),
            "num_bytes": [len(t.encode()) for t in texts],
        }
    )
    held = pa.array(in_validation(table["id"].to_pylist(), validation_fraction))
    rest = table.filter(pc.invert(held))
    shards = [
        write_shard(out / shard_name(index), [rest.slice(first, 200)], kind)
        for index, first in enumerate((0, 200))
    ]
    validation = ()
    if validation_fraction:
        path = out / shard_name(0, "validation")
        validation = (write_shard(path, [table.filter(held)], kind),)
    manifest = Manifest(
        tokenizer="tokenizer.json",
        tokenizer_xxh3=file_checksum(out / "tokenizer.json"),
        vocab_size=vocab_size,
        token_dtype=str(kind),
        eos_id=eos_id,
        tokens_per_shard=1 << 20,
        shards=tuple(shards),
        validation=validation,
        validation_fraction=validation_fraction,
    )
    (out / MANIFEST).write_text(manifest.to_json())
    return out


@pytest.fixture(scope="module")
def trained(run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """SMALL trained on the run: the checkpoint and the training stats."""
    ckpt = tmp_path_factory.mktemp("ckpt") / "model.npz"
    return ckpt, train(run, SMALL, ckpt, progress=False)


def test_training_on_structured_text_lowers_the_held_out_loss(trained):
    _, stats = trained
    history = stats["history"]
    assert [entry["step"] for entry in history] == [0, 150, 300]
    first, last = history[0]["eval_loss"], history[-1]["eval_loss"]
    assert first > 4.0  # about ln(vocab size) before training
    assert last < first / 3
    assert history[1]["train_loss"] > history[2]["train_loss"]


def test_a_cpu_budget_ends_training_and_the_decay_when_its_seconds_are_spent():
    budget = Budget(dataclasses.replace(SMALL, steps=1000, warmup=2, cpu_seconds=10.0))
    for _ in range(2):  # warm-up takes 2 of the 10 seconds; the decay spans the other 8
        budget.add_step(1.0)
    assert budget.decayed() == 0.0
    for _ in range(4):
        budget.add_step(1.0)
    assert (budget.decayed(), budget.spent()) == (0.5, False)
    for _ in range(4):
        budget.add_step(1.0)
    assert (budget.decayed(), budget.spent(), budget.steps) == (1.0, True, 10)


def test_without_a_cpu_budget_the_steps_alone_end_training_and_the_decay():
    budget = Budget(dataclasses.replace(SMALL, steps=12, warmup=2))
    for _ in range(7):
        budget.add_step(100.0)
    assert (budget.decayed(), budget.spent()) == (0.5, False)
    for _ in range(5):
        budget.add_step(100.0)
    assert (budget.decayed(), budget.spent()) == (1.0, True)


def test_training_under_a_cpu_budget_stops_after_it_and_evaluates_the_last_step(
    run: Path, tmp_path: Path
):
    config = dataclasses.replace(SMALL, steps=10**6, eval_every=10**6, cpu_seconds=0.5)
    stats = train(run, config, tmp_path / "model.npz", progress=False)
    assert 1 <= stats["steps"] < 10**6 and stats["cpu_seconds"] >= 0.5
    assert [entry["step"] for entry in stats["history"]] == [0, stats["steps"]]
    assert [entry["cpu_seconds"] for entry in stats["history"]] == [0, stats["cpu_seconds"]]
    _, meta = load_checkpoint(tmp_path / "model.npz")
    assert (meta["steps"], meta["train"]["cpu_seconds"]) == (stats["steps"], 0.5)


def test_held_out_documents_come_first_by_id_hash_up_to_a_tenth_of_the_bytes(run: Path):
    held = held_out_documents(run, SMALL.held_out_bytes)
    texts = documents()
    ids = [f"doc#{i}" for i in range(len(texts))]
    ranked = sorted(range(len(ids)), key=lambda i: (xxhash.xxh3_64_intdigest(ids[i].encode()), i))
    budget = sum(len(t.encode()) for t in texts) // 10  # the run is far below 131072 bytes
    chosen, used = [], 0
    for i in ranked:
        if used + len(texts[i].encode()) > budget:
            break
        chosen.append(i)
        used += len(texts[i].encode())
    assert held.bytes == used == sum(len(texts[i].encode()) for i in chosen)
    assert held.ids == [ids[i] for i in sorted(chosen)]
    tokenizer = Tokenizer.from_file(str(run / "tokenizer.json"))
    eos_id = tokenizer.token_to_id(EOS)
    expected = [tokenizer.encode(texts[i]).ids + [eos_id] for i in sorted(chosen)]
    assert [doc.tolist() for doc in held.docs] == expected


def test_the_training_part_is_the_next_documents_by_id_hash_up_to_its_bytes():
    ids = [f"page-{i}" for i in range(100)]
    ranked = sorted(range(100), key=lambda i: xxhash.xxh3_64_intdigest(ids[i].encode()))
    held, train_rows = split_rows(ids, np.full(100, 10), held_out_bytes=50, train_bytes=30)
    assert held.tolist() == sorted(ranked[:5])
    assert train_rows.tolist() == sorted(ranked[5:8])
    # A tenth of the 1,000 bytes at most, whatever is asked; without a training limit, the rest.
    held, train_rows = split_rows(ids, np.full(100, 10), held_out_bytes=10**9)
    assert held.tolist() == sorted(ranked[:10]) and train_rows.tolist() == sorted(ranked[10:])
    nothing = split_rows([], np.array([], np.int64), 50, 30)
    assert [len(rows) for rows in nothing] == [0, 0]


def test_held_out_bits_per_byte_are_the_held_out_documents_bits_over_their_bytes(run, trained):
    ckpt, stats = trained
    model, meta = load_checkpoint(ckpt)
    held = held_out_documents(run, SMALL.held_out_bytes)
    assert stats["held_out"] == {
        "held_out_bytes": SMALL.held_out_bytes,
        "validation_fraction": 0.0,
        "ids": held.ids,
        "docs": len(held.docs),
        "bytes": held.bytes,
        "tokens": held.tokens,
    }
    # The report's coder, one token at a time through the cache, gives the same bits.
    eos_id = meta["tokenizer"]["eos_id"]
    coded = code_documents(
        CheckpointModel(model, eos_id), [doc[:-1] for doc in held.docs], eos_id,
        ["x"] * len(held.docs), lambda ids: "x", verify_tokens=1,
    )  # fmt: skip
    last = stats["history"][-1]
    assert last["eval_bpb"] == pytest.approx(coded["cross_entropy_bits"] / held.bytes, rel=1e-4)
    assert last["eval_loss"] == pytest.approx(
        last["eval_bpb"] * math.log(2) * held.bytes / held.tokens
    )


def test_training_leaves_out_every_sequence_holding_a_held_out_token(run: Path):
    stream = TokenStream(run, SMALL.seq_len, SMALL.batch_size)
    held = held_out_documents(run, SMALL.held_out_bytes)
    excluded = {row.tobytes() for row in held_out_sequences(stream, held)}
    tokens = np.concatenate(
        [pa.ipc.open_file(str(path)).read_all()["tokens"].combine_chunks().flatten().to_numpy()
         for path in sorted(run.glob("shard-*.arrow"))]
    ).astype(np.int64)  # fmt: skip
    inside = np.zeros(len(tokens), dtype=bool)
    for start, stop in zip(held.starts, held.stops, strict=True):
        assert tokens[stop - 1] == tokens[-1]  # a document's span ends with its EOS
        inside[start:stop] = True
    for sequence in range((len(tokens) - 1) // SMALL.seq_len):
        window = slice(sequence * SMALL.seq_len, (sequence + 1) * SMALL.seq_len + 1)
        if inside[window].any():
            assert tokens[window].tobytes() in excluded


def test_checkpoint_round_trip_gives_the_same_log_probs(trained, run: Path):
    ckpt, _ = trained
    model, meta = load_checkpoint(ckpt)
    assert meta["model"] == {
        "vocab_size": model.config.vocab_size,
        "seq_len": 16,
        "n_layer": 1,
        "n_head": 2,
        "n_embd": 32,
    }
    assert meta["tokenizer"]["file"] == str((run / "tokenizer.json").resolve())
    assert meta["train"]["steps"] == 300
    tokens = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    again_path = ckpt.with_name("again.npz")
    save_checkpoint(again_path, model, meta["tokenizer"], {"note": "copy"})
    again, again_meta = load_checkpoint(again_path)
    assert again_meta["note"] == "copy"
    np.testing.assert_array_equal(model.log_probs(tokens), again.log_probs(tokens))
    assert {p.dtype for p in again.params.values()} == {np.dtype(np.float32)}


def test_a_file_that_is_not_a_checkpoint_is_refused_by_name(tmp_path: Path):
    path = tmp_path / "weights.npz"
    np.savez(path, w=np.zeros(3))
    with pytest.raises(CheckpointError, match=f"{path} is not a corpusmill checkpoint"):
        load_checkpoint(path)


def test_a_tokenizer_other_than_the_checkpoints_is_refused(trained, tmp_path: Path):
    ckpt, _ = trained
    _, meta = load_checkpoint(ckpt)
    other = tmp_path / "tokenizer.json"
    other.write_text(Path(meta["tokenizer"]["file"]).read_text().replace("cat", "cut", 1))
    with pytest.raises(CheckpointError, match="is not the tokenizer checkpoint"):
        checkpoint_tokenizer(ckpt, meta, other)


def test_the_checkpoints_tokenizer_is_read_from_an_object_of_a_run_on_s3(trained, s3_bucket):
    ckpt, _ = trained
    _, meta = load_checkpoint(ckpt)
    local = Path(meta["tokenizer"]["file"])
    remote = s3_bucket / "run" / "tokenizer.json"
    write_bytes(remote, local.read_bytes())
    tokenizer = checkpoint_tokenizer(ckpt, meta, remote)
    assert tokenizer.to_str() == checkpoint_tokenizer(ckpt, meta).to_str()


def test_sampling_is_deterministic_for_a_seed_and_greedy_at_temperature_zero():
    model = GPT.init(ModelConfig(vocab_size=13, seq_len=8, n_layer=1, n_head=2, n_embd=8), seed=3)
    context = np.array([1, 2])
    first = generate(model, context, 20, temperature=1.0, seed=7)
    assert np.array_equal(first, generate(model, context, 20, temperature=1.0, seed=7))
    assert not np.array_equal(first, generate(model, context, 20, temperature=1.0, seed=8))
    greedy = generate(model, context, 20, temperature=0.0)
    assert np.array_equal(greedy, generate(model, context, 20, temperature=1e-6, seed=5))
    assert greedy.tolist() == uncached_generate(model, context, 20, 0.0, 0)


@pytest.mark.parametrize("context", [[1, 2], list(range(13)) * 2])
def test_cached_sampling_draws_the_tokens_a_whole_forward_per_token_draws(context: list[int]):
    model = GPT.init(ModelConfig(vocab_size=13, seq_len=8, n_layer=2, n_head=2, n_embd=8), seed=5)
    for seed in range(3):
        drawn = generate(model, np.array(context), 40, temperature=1.0, seed=seed)
        assert drawn.tolist() == uncached_generate(model, context, 40, 1.0, seed)


def uncached_generate(
    model: GPT, context: list[int], tokens: int, temperature: float, seed: int
) -> list[int]:
    """Sampling by hand, the whole window read for every token: the window is the last seq_len
    tokens, and restarts from the last seq_len // 2 tokens when a new one would pass seq_len."""
    rng, out, seq_len = np.random.default_rng(seed), list(context), model.config.seq_len
    start = max(0, len(out) - seq_len)
    for _ in range(tokens):
        if len(out) - start > seq_len:
            start = len(out) - seq_len // 2
        logp = model.log_probs(np.array([out[start:]]))[0, -1].astype(np.float64)
        if temperature == 0:
            out.append(int(np.argmax(logp)))
        else:
            cdf = np.cumsum(np.exp(logp / temperature - np.logaddexp.reduce(logp / temperature)))
            out.append(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")))
    return out


def test_the_trained_model_continues_the_sentence_frame(trained):
    ckpt, _ = trained
    model, meta = load_checkpoint(ckpt)
    tokenizer = checkpoint_tokenizer(ckpt, meta)
    text = sample_text(model, tokenizer, meta["tokenizer"]["eos_id"], "the cat sat", 12, 0.0)
    assert text.startswith("the cat sat on the ")


def command_parser() -> argparse.ArgumentParser:
    """A parser with just the `train` and `sample` subcommands."""
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(required=True)
    train_command.add_parser(subparsers, parents=[])
    sample_command.add_parser(subparsers, parents=[])
    return parser


def test_train_and_sample_commands(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    ckpt = tmp_path / "cli.npz"
    parser = command_parser()
    args = parser.parse_args(
        ["train", str(run), "--ckpt", str(ckpt), "--steps", "3", "--seq-len", "16",
         "--n-embd", "16", "--eval-every", "2", "--cpu-seconds", "1000", "--no-progress"]
    )  # fmt: skip
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{ckpt}: ") and " 3 steps in " in printed
    assert "CPU-seconds of steps" in printed
    args = parser.parse_args(["sample", str(ckpt), "--prompt", "the dog", "--tokens", "5"])
    assert args.handler(args) == 0
    assert capsys.readouterr().out.startswith("the dog")


def test_train_command_explains_a_folder_without_tokens(tmp_path: Path, capsys):
    assert main(["train", str(tmp_path), "--no-progress"]) == 2
    assert "holds no tokenized run" in capsys.readouterr().err


def test_a_run_with_a_validation_split_is_evaluated_on_exactly_its_documents(tmp_path: Path):
    run = write_tokenized_run(tmp_path, validation_fraction=0.1)
    config = dataclasses.replace(SMALL, steps=20, eval_every=20)
    stats = train(run, config, tmp_path / "model.npz", progress=False)
    ids = [f"doc#{i}" for i in range(300)]
    chosen = [i for i, held in enumerate(in_validation(ids, 0.1)) if held]
    texts = documents()
    num_bytes = sum(len(texts[i].encode()) for i in chosen)
    assert stats["held_out"]["ids"] == [ids[i] for i in chosen] and 10 < len(chosen) < 60
    assert (stats["held_out"]["validation_fraction"], stats["held_out"]["bytes"]) == (
        0.1,
        num_bytes,
    )
    # Bits per byte from the validation shard's tokens, coded by the report's coder, over the
    # documents' own UTF-8 bytes.
    model, meta = load_checkpoint(tmp_path / "model.npz")
    eos_id = meta["tokenizer"]["eos_id"]
    shard = pa.ipc.open_file(pa.memory_map(str(run / shard_name(0, "validation")))).read_all()
    docs = [np.array(tokens[:-1]) for tokens in shard["tokens"].to_pylist()]
    coded = code_documents(
        CheckpointModel(model, eos_id), docs, eos_id, ["x"] * len(docs), lambda ids: "x",
        verify_tokens=1,
    )  # fmt: skip
    bpb = stats["history"][-1]["eval_bpb"]
    assert bpb == pytest.approx(coded["cross_entropy_bits"] / num_bytes, rel=1e-4)
