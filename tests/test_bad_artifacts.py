"""Damaged, mismatched and nonsense artifacts and settings are refused in one line that names the
file or key: manifests, shards, checkpoints, loader states, and the settings of train, sample and
report; the user's mistakes exit 2, damaged data 1."""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_train_loop import documents, write_tokenized_run

from corpusmill.cli.main import main
from corpusmill.loader import FormatError, TokenDataset, TokenStream
from corpusmill.loader.format import read_manifest
from corpusmill.loader.layout import MANIFEST, shard_name
from corpusmill.train.checkpoint import CheckpointError, load_checkpoint
from corpusmill.train.loop import TrainConfig, train

TINY = TrainConfig(
    n_layer=1, n_head=2, n_embd=8, seq_len=16, steps=2, batch_size=8, warmup=0, eval_every=2,
)  # fmt: skip
TRAIN_FLAGS = [
    "--steps", "2", "--seq-len", "16", "--n-layer", "1", "--n-head", "2", "--n-embd", "8",
    "--batch-size", "8", "--warmup", "0", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small tokenized run (two shards), shared by the tests, which damage copies of it."""
    return write_tokenized_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def ckpt(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of TINY trained on the run."""
    path = tmp_path_factory.mktemp("ckpt") / "model.npz"
    train(run, TINY, path, progress=False)
    return path


@pytest.fixture(scope="module")
def report_run(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run with a clean part holding its documents, which `corpusmill report` reads."""
    out = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(run, out)
    (out / "clean").mkdir()
    texts = documents()
    table = pa.table({"id": [f"doc#{i}" for i in range(len(texts))], "text": texts})
    pq.write_table(table, out / "clean" / "part-00000.parquet")
    return out


def copy_run(run: Path, tmp_path: Path, change: Callable[[dict], Any] | None = None) -> Path:
    """A copy of the run, its manifest's JSON replaced by what `change` makes of it."""
    out = tmp_path / "run"
    shutil.copytree(run, out)
    if change is not None:
        data = json.loads((out / MANIFEST).read_text())
        (out / MANIFEST).write_text(json.dumps(change(data)))
    return out


def with_shard(data: dict, index: int, **fields: Any) -> dict:
    """The manifest `data` with fields of shard `index` changed."""
    shards = list(data["shards"])
    shards[index] = shards[index] | fields
    return data | {"shards": shards}


def exit_and_error(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """The exit status of `corpusmill argv` run in-process and its error output, which must be
    one line."""
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return status, err


# --- manifests -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda data: [data], "holds a JSON list"),
        (lambda data: data | {"vocab_size": None}, "vocab_size is null, expected a JSON int"),
        (
            lambda data: {k: v for k, v in data.items() if k != "eos_id"},
            "lacks or misnames a field: eos_id is missing",
        ),
        (lambda data: data | {"eos_id": "0"}, 'eos_id is "0", expected a JSON int'),
        (lambda data: with_shard(data, 1, tokens=-1), "shards[1].tokens is -1"),
        (lambda data: with_shard(data, 0, tokens=1 << 62), "expected at most"),
        (
            lambda data: with_shard(data, 0, size=1 << 70),
            f"expected an integer from 0 to {(1 << 63) - 1}",
        ),
        (
            lambda data: data | {"vocab_size": 50_000_000, "token_dtype": "uint32"},
            f"vocab_size is 50000000, expected an integer from 1 to {1 << 24}",
        ),
        (lambda data: with_shard(data, 0, size=True), "shards[0].size is true"),
        (lambda data: data | {"shards": {}}, "shards is {}, expected a JSON list"),
        (lambda data: data | {"shards": [*data["shards"], 7]}, "shards[2] is a JSON int"),
        (lambda data: data | {"eos_id": 10**6}, "eos_id is 1000000, expected an id below"),
        (lambda data: data | {"token_dtype": "int8"}, 'token_dtype is "int8"'),
    ],
)
def test_inspect_refuses_a_manifest_not_of_the_manifests_shape_naming_the_key(
    run, tmp_path: Path, capsys, change, named
):
    out = copy_run(run, tmp_path, change)
    status, err = exit_and_error(["inspect", str(out)], capsys)
    assert status == 1
    assert f"{out / MANIFEST}" in err and named in err


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("shard", "../../etc/passwd"),
        ("shard", "/etc/passwd"),
        ("shard", "sub/shard-00000.arrow"),
        ("shard", "..\\shard-00000.arrow"),
        ("shard", ".."),
        ("tokenizer", "../tokenizer.json"),
    ],
)
def test_a_manifest_naming_a_file_outside_the_run_folder_is_refused_by_every_reader(
    run, tmp_path: Path, capsys, field, name
):
    def rename(data: dict) -> dict:
        if field == "shard":
            return with_shard(data, 0, name=name)
        return data | {"tokenizer": data["tokenizer"] | {"file": name}}

    out = copy_run(run, tmp_path, rename)
    key = "shards[0].name" if field == "shard" else "tokenizer.file"
    message = f"{key} is {json.dumps(name)}, expected a plain file name inside the run's folder"
    with pytest.raises(FormatError, match=re.escape(message)):
        read_manifest(out)
    with pytest.raises(FormatError, match=re.escape(message)):
        TokenStream(out, 16, 8)
    for command in (
        ["inspect", str(out), "--verify"],
        ["train", str(out), "--ckpt", str(tmp_path / "m.npz"), *TRAIN_FLAGS],
    ):
        status, err = exit_and_error(command, capsys)
        assert status == 1 and message in err


# --- shards --------------------------------------------------------------------------------------


def set_token(shard: Path, index: int, value: int) -> None:
    """Overwrite token `index` of a one-batch uint16 shard in place, as a flipped bit would."""
    data = bytearray(shard.read_bytes())
    buffer = pa.py_buffer(bytes(data))
    values = pa.ipc.open_file(buffer).get_batch(0).column("tokens").values
    at = values.buffers()[1].address - buffer.address + 2 * (values.offset + index)
    data[at : at + 2] = struct.pack("<H", value)
    shard.write_bytes(data)


def test_a_token_id_outside_the_vocabulary_is_refused_naming_its_shard(run, tmp_path: Path, capsys):
    out = copy_run(run, tmp_path)
    manifest = read_manifest(out)
    assert list(TokenDataset(out).ids_out_of_range()) == []
    # Every 40th token of every shard, so that whatever training reads first holds one.
    for shard, info in enumerate(manifest.shards):
        for index in range(0, info.tokens, 40):
            set_token(out / shard_name(shard), index, 60000)
    problems = list(TokenDataset(out).ids_out_of_range())
    assert problems[0] == (
        f"{out / shard_name(0)}: token 0 is id 60000, outside the manifest's vocabulary "
        f"of {manifest.vocab_size}"
    )
    status, err = exit_and_error(
        ["train", str(out), "--ckpt", str(tmp_path / "m.npz"), *TRAIN_FLAGS], capsys
    )
    named = re.search(r"(\S+shard-\d+\.arrow): token (\d+) is id 60000, outside the", err)
    assert status == 1 and named, err
    assert int(named[2]) % 40 == 0 and Path(named[1]).parent == out
    assert not (tmp_path / "m.npz").exists()


def set_offset(shard: Path, index: int, value: int) -> None:
    """Overwrite list offset `index` of the tokens of a one-batch shard in place."""
    data = bytearray(shard.read_bytes())
    buffer = pa.py_buffer(bytes(data))
    tokens = pa.ipc.open_file(buffer).get_batch(0).column("tokens")
    at = tokens.buffers()[1].address - buffer.address + 4 * (tokens.offset + index)
    data[at : at + 4] = struct.pack("<i", value)
    shard.write_bytes(data)


@pytest.mark.parametrize("first", [True, False])
def test_the_loader_refuses_a_shard_whose_outer_document_offsets_are_damaged(
    run, tmp_path: Path, first
):
    out = copy_run(run, tmp_path)
    set_offset(out / shard_name(0), 0 if first else read_manifest(out).shards[0].docs, 1 << 30)
    stream = TokenStream(out, 16, 8, shuffle=False)
    with pytest.raises(FormatError, match=re.escape(f"{out / shard_name(0)} is damaged (")):
        next(iter(stream))


def test_inspect_show_names_a_shard_whose_document_offsets_are_damaged(run, tmp_path, capsys):
    out = copy_run(run, tmp_path)
    set_offset(out / shard_name(0), 2, 1 << 30)
    status, err = exit_and_error(["inspect", str(out), "--show", "3"], capsys)
    assert status == 1
    assert f"{out / shard_name(0)}: record batch 0 is damaged (" in err
    assert "offset for slot 2 out of bounds" in err


# --- loader states and mixing weights ------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"position": -1}, "position is -1, outside this stream's range: an integer from 0 to"),
        ({"position": 10**9}, "position is 1000000000, outside this stream's range"),
        ({"position": "8"}, 'position is "8", expected an integer from 0 to'),
        ({"position": 8.0}, "position is 8.0, expected an integer"),
        ({"epoch": -1}, "epoch is -1, outside this stream's range: an integer of at least 0"),
        ({"step": 3}, "unknown keys 'step'"),
        ({"global_batch": 16}, "another global_batch (16, this stream has 8)"),
        ({"seed": True}, "another seed (true, this stream has 1)"),
        ({"seq_len": 17}, "another seq_len (17, this stream has 16)"),
    ],
)
def test_a_loader_state_outside_the_stream_is_refused_naming_the_key(run, change, named):
    stream = TokenStream(run, 16, 8, seed=1)
    state = stream.state_dict()
    with pytest.raises(ValueError, match=re.escape(named)):
        TokenStream(run, 16, 8, seed=1).load_state_dict(state | change)
    last = stream.sequences_per_epoch // 8 * 8 - 8
    resumed = TokenStream(run, 16, 8, seed=1)
    resumed.load_state_dict(state | {"position": last})
    assert [batch.shape for batch in resumed] == [(8, 17)]


def test_a_loader_state_saved_before_the_global_batch_was_recorded_still_resumes(run):
    state = TokenStream(run, 16, 8, seed=1).state_dict()
    state.pop("global_batch")
    resumed = TokenStream(run, 16, 4, seed=1, world_size=2)
    resumed.load_state_dict(state | {"position": 16})
    assert resumed.position == 16


def test_a_loader_state_that_is_not_a_dict_is_refused(run):
    with pytest.raises(ValueError, match="a loader state is a dict as state_dict"):
        TokenStream(run, 16, 8).load_state_dict([0, 8])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("weights", "named"),
    [
        ([float("nan")], "weights [nan] must be finite and positive"),
        ([float("inf")], "weights [inf] must be finite and positive"),
        ([0.0], "weights [0.0] must be finite and positive"),
        ([1.0, 1.0], "2 weights for 1 runs: give one per run"),
    ],
)
def test_mixing_weights_that_are_not_one_finite_positive_number_per_run_are_refused(
    run, weights, named
):
    with pytest.raises(ValueError, match=re.escape(named)):
        TokenStream(run, 16, 8, weights=weights)


# --- train settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--seq-len", "100000"], "sequences of seq_len 100000: fewer than the 10"),
        (["--batch-size", "100000"], "fewer than the 100000 a batch of batch_size 100000"),
        (["--n-head", "3"], "n_embd = 8: is not a multiple of n_head 3"),
        (["--n-embd", "0"], "n_embd = 0: must be at least 1"),
        (["--n-head", "0"], "n_head = 0: must be at least 1"),
        (["--n-layer", "-1"], "n_layer = -1: must be at least 1"),
        (["--lr", "nan"], "lr = nan: must be a finite number"),
        (["--lr", "inf"], "lr = inf: must be a finite number"),
        (["--lr", "0"], "lr = 0.0: must be greater than 0"),
        (["--cpu-seconds", "inf"], "cpu_seconds = inf: must be a finite number"),
        (["--weight-decay", "nan"], "weight_decay = nan: must be a finite number"),
        (["--grad-clip", "-1"], "grad_clip = -1.0: must be at least 0"),
        (["--min-lr-ratio", "nan"], "min_lr_ratio = nan: must be from 0 to 1"),
        (["--warmup", "-1"], "warmup = -1: must be at least 0"),
        (["--blas-threads", "0"], "--blas-threads 0 must be at least 1"),
    ],
)
def test_train_refuses_settings_the_model_or_the_run_cannot_take(
    run, tmp_path: Path, capsys, flags, named
):
    ckpt = tmp_path / "m.npz"
    status, err = exit_and_error(
        ["train", str(run), "--ckpt", str(ckpt), *TRAIN_FLAGS, *flags], capsys
    )
    assert status == 2 and named in err
    assert not ckpt.exists()


def test_train_names_the_largest_seq_len_and_batch_size_the_run_allows(run, tmp_path, capsys):
    tokens = read_manifest(run).totals()["tokens"]
    status, err = exit_and_error(
        [
            "train",
            str(run),
            "--ckpt",
            str(tmp_path / "m.npz"),
            *TRAIN_FLAGS,
            "--batch-size",
            "1000",
        ],
        capsys,
    )
    count, longest = (tokens - 1) // 16, (tokens - 1) // 1000
    assert status == 2
    assert f"{run} holds {tokens} tokens, {count} sequences of seq_len 16" in err
    assert f"use --seq-len {longest} or --batch-size {count} or less" in err
    # Either is enough: the longest seq_len fills a batch of 1000, the largest batch trains.
    assert next(iter(TokenStream(run, longest, 1000))).shape == (1000, longest + 1)
    assert (tokens - 1) // (longest + 1) < 1000
    ckpt = tmp_path / "m.npz"
    assert (
        main(["train", str(run), "--ckpt", str(ckpt), *TRAIN_FLAGS, "--batch-size", str(count)])
        == 0
    )


def test_train_refuses_a_run_without_tokens(run, tmp_path: Path, capsys):
    out = copy_run(run, tmp_path, lambda data: data | {"shards": []})
    status, err = exit_and_error(
        ["train", str(out), "--ckpt", str(tmp_path / "m.npz"), *TRAIN_FLAGS], capsys
    )
    assert (status, err) == (
        2,
        f"corpusmill train: {out} holds no tokens: tokenize some text before training on it",
    )


def test_train_refuses_a_checkpoint_path_it_could_not_write_before_training(
    run, tmp_path: Path, capsys
):
    status, err = exit_and_error(["train", str(run), "--ckpt", str(tmp_path), *TRAIN_FLAGS], capsys)
    assert status == 2
    assert (
        f"{tmp_path} is a folder: name the checkpoint file, such as {tmp_path / 'model.npz'}" in err
    )
    (tmp_path / "file").write_text("")
    inside = tmp_path / "file" / "m.npz"
    status, err = exit_and_error(["train", str(run), "--ckpt", str(inside), *TRAIN_FLAGS], capsys)
    assert status == 2
    assert f"{inside} cannot be written: {tmp_path / 'file'} is a file, not a folder" in err
    # A missing folder is created, as for every output.
    deeper = tmp_path / "new" / "folder" / "m.npz"
    assert main(["train", str(run), "--ckpt", str(deeper), *TRAIN_FLAGS]) == 0
    load_checkpoint(deeper)


def test_training_whose_loss_becomes_nan_stops_naming_the_step(run, tmp_path: Path, capsys):
    ckpt = tmp_path / "m.npz"
    flags = ["--lr", "1e12", "--grad-clip", "0", "--steps", "20"]
    status, err = exit_and_error(
        ["train", str(run), "--ckpt", str(ckpt), *TRAIN_FLAGS, *flags], capsys
    )
    assert status == 1
    assert re.search(r"training diverged: the training loss of step \d+ is nan", err), err
    assert "Lower --lr (now 1000000000000.0)" in err
    assert not ckpt.exists()


def test_training_on_text_that_only_repeats_the_held_out_sequences_is_refused(
    run, tmp_path: Path, capsys
):
    # The run's 300 documents are 6 sentences repeated, 258 tokens a round: with seq_len 258 every
    # training sequence is the same one, which a held-out document holds too.
    flags = ["--seq-len", "258", "--batch-size", "8"]
    status, err = exit_and_error(
        ["train", str(run), "--ckpt", str(tmp_path / "m.npz"), *TRAIN_FLAGS, *flags], capsys
    )
    assert status == 1
    assert f"every training sequence of {run} equals a held-out one" in err


# --- checkpoints ---------------------------------------------------------------------------------


def rewrite(ckpt: Path, tmp_path: Path, change: Callable[[dict, dict], None]) -> Path:
    """A copy of `ckpt` whose arrays (by name) and metadata `change` edits in place."""
    with np.load(ckpt) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(arrays, meta)
    path = tmp_path / "changed.npz"
    with open(path, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)
    return path


def set_nan(arrays: dict, _: dict) -> None:
    """A NaN among the token embeddings."""
    arrays["param/wte"] = arrays["param/wte"].copy()
    arrays["param/wte"][3, 1] = np.nan


def set_inf(arrays: dict, _: dict) -> None:
    """An infinite layer-norm gain."""
    arrays["param/ln_f.g"] = np.full_like(arrays["param/ln_f.g"], np.inf)


def damage_bytes(ckpt: Path, tmp_path: Path, how: str) -> Path:
    """A copy of `ckpt` cut short, emptied or with four bytes of its weights overwritten."""
    data = bytearray(ckpt.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "empty":
        data = bytearray()
    else:
        data[len(data) // 2 : len(data) // 2 + 4] = b"\xff\xff\xff\xff"
    path = tmp_path / f"{how}.npz"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda arrays, meta: arrays.update({"param/wte": arrays["param/wte"][:5]}),
         "param/wte is float32 of shape (5, 8), its model config needs floats of shape"),
        (lambda arrays, meta: arrays.pop("param/h0.attn.w_qkv"),
         "its weights do not match its model config (missing param/h0.attn.w_qkv)"),
        (lambda arrays, meta: arrays.update({"param/extra": np.zeros(2)}),
         "(unexpected param/extra)"),
        (lambda arrays, meta: arrays.update({"param/ln_f.b": np.zeros(8, np.int32)}),
         "param/ln_f.b is int32 of shape (8,), its model config needs floats of shape (8,)"),
        (set_nan, "param/wte holds 1 NaN or infinite values"),
        (set_inf, "param/ln_f.g holds 8 NaN or infinite values"),
        (lambda arrays, meta: meta["model"].update(n_head=3),
         "n_embd 8 is not a multiple of n_head 3"),
        (lambda arrays, meta: meta.pop("model"), "its model config null cannot be used"),
        (lambda arrays, meta: meta.update(model={}), "it must have the keys n_embd, n_head"),
        (lambda arrays, meta: meta["model"].update(n_layer=10**20),
         "its model config has 100000000000000000000 layers, its file 16 weights"),
        (lambda arrays, meta: meta["tokenizer"].pop("xxh3"), "lacks a file, xxh3 or eos_id"),
        (lambda arrays, meta: meta["tokenizer"].update(eos_id=10**6),
         "its EOS id 1000000 is outside its vocabulary"),
    ],
)  # fmt: skip
def test_a_checkpoint_not_matching_its_config_or_not_finite_is_refused_by_sample_and_report(
    ckpt, report_run, tmp_path: Path, capsys, change, named
):
    path = rewrite(ckpt, tmp_path, change)
    with pytest.raises(CheckpointError, match=re.escape(named)):
        load_checkpoint(path)
    for command in (["sample", str(path)], ["report", str(report_run), "--model", str(path)]):
        status, err = exit_and_error(command, capsys)
        assert status == 2 and f"{path}: " in err and named in err


@pytest.mark.parametrize(
    ("how", "named"),
    [
        ("truncated", "File is not a zip file"),
        ("empty", "No data left in file"),
        ("flipped", "Bad CRC-32"),
    ],
)
def test_a_damaged_checkpoint_file_is_refused_by_sample_and_report(
    ckpt, report_run, tmp_path: Path, capsys, how, named
):
    path = damage_bytes(ckpt, tmp_path, how)
    for command in (["sample", str(path)], ["report", str(report_run), "--model", str(path)]):
        status, err = exit_and_error(command, capsys)
        assert status == 2
        assert f"{path} is not a corpusmill checkpoint or is damaged" in err and named in err


def test_any_flipped_bits_in_a_checkpoint_give_its_weights_or_a_checkpoint_error(
    ckpt, tmp_path: Path
):
    original, _ = load_checkpoint(ckpt)
    data = ckpt.read_bytes()
    rng = random.Random(13)
    outcomes = Counter()
    for case in range(600):
        damaged = bytearray(data)
        for _ in range(rng.choice([1, 3])):
            # The zip headers and directory are where the surprising errors come from.
            at = rng.choice([rng.randrange(2048), len(data) - 1 - rng.randrange(2048)])
            damaged[at] ^= 1 << rng.randrange(8)
        path = tmp_path / f"{case}.npz"
        path.write_bytes(damaged if case % 5 else damaged[: rng.randrange(len(damaged))])
        try:
            model, _ = load_checkpoint(path)
        except CheckpointError as exc:
            assert str(path) in str(exc)
            outcomes["refused"] += 1
            continue
        for name, weights in original.params.items():
            np.testing.assert_array_equal(model.params[name], weights)
        outcomes["intact"] += 1
    assert outcomes["refused"] > 400


def test_a_checkpoint_from_another_tokenizer_is_refused_by_sample_and_report(
    ckpt, report_run, tmp_path: Path, capsys
):
    other = rewrite(ckpt, tmp_path, lambda _, meta: meta["tokenizer"].update(xxh3="0" * 16))
    for command in (["sample", str(other)], ["report", str(report_run), "--model", str(other)]):
        status, err = exit_and_error(command, capsys)
        assert status == 2
        assert f"is not the tokenizer checkpoint {other} was trained with (xxh3 {'0' * 16})" in err

    def widen(arrays: dict, meta: dict) -> None:
        vocab = meta["model"]["vocab_size"]
        meta["model"]["vocab_size"] = vocab + 10
        arrays["param/wte"] = np.zeros((vocab + 10, 8), np.float32)

    wider = rewrite(ckpt, tmp_path, widen)
    status, err = exit_and_error(["sample", str(wider)], capsys)
    assert (
        status == 2 and f"{wider}: its model reads " in err and " token ids, its tokenizer " in err
    )


def test_report_refuses_a_checkpoint_whose_training_history_is_damaged(
    ckpt, report_run, tmp_path: Path, capsys
):
    path = rewrite(ckpt, tmp_path, lambda _, meta: meta.update(history=[{"step": 1}]))
    status, err = exit_and_error(["report", str(report_run), "--model", str(path)], capsys)
    assert (status, err) == (
        2,
        f"corpusmill report: {path}: its training history is damaged; retrain it with "
        "`corpusmill train`",
    )


# --- report, sample and inspect settings ---------------------------------------------------------


def test_report_refuses_a_folder_without_a_run_shards_or_model(report_run, tmp_path: Path, capsys):
    cases = {
        str(tmp_path / "none"): f"{tmp_path / 'none'} is not a folder",
        str(tmp_path): f"{tmp_path} holds no run: {tmp_path / 'clean'} has no part",
    }
    for folder, named in cases.items():
        status, err = exit_and_error(["report", folder], capsys)
        assert status == 2 and named in err
    no_shards = tmp_path / "no-shards"
    shutil.copytree(report_run / "clean", no_shards / "clean")
    status, err = exit_and_error(["report", str(no_shards)], capsys)
    assert status == 2 and f"{no_shards} has no tokenized shards (index.json)" in err
    missing = tmp_path / "missing.npz"
    status, err = exit_and_error(["report", str(report_run), "--model", str(missing)], capsys)
    assert (status, err) == (2, f"corpusmill report: checkpoint {missing} does not exist")


def test_report_refuses_a_destination_that_is_a_file_before_any_work(report_run, tmp_path, capsys):
    dest = tmp_path / "report.html"
    dest.write_text("")
    status, err = exit_and_error(["report", str(report_run), "--dest", str(dest)], capsys)
    assert (status, err) == (
        2,
        f"corpusmill report: --dest {dest} is a file: name a folder for the report files",
    )


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--tokens", "-1"], "--tokens -1 and --seed 0 must be at least 0"),
        (["--seed", "-1"], "--tokens 200 and --seed -1 must be at least 0"),
        (["--temperature", "nan"], "--temperature nan must be a finite number, at least 0"),
        (["--temperature", "-0.5"], "--temperature -0.5 must be a finite number, at least 0"),
    ],
)
def test_sample_refuses_negative_counts_and_temperatures_that_are_not_numbers(
    ckpt, capsys, flags, named
):
    status, err = exit_and_error(["sample", str(ckpt), *flags], capsys)
    assert status == 2 and named in err


@pytest.mark.parametrize(
    ("command", "fixture"), [(["inspect", "--show", "1"], "run"), (["report"], "report_run")]
)
def test_a_damaged_or_missing_run_tokenizer_is_damaged_data_naming_it(
    request, tmp_path, capsys, command, fixture
):
    out = copy_run(request.getfixturevalue(fixture), tmp_path)
    tokenizer = out / "tokenizer.json"
    tokenizer.write_text('{"model": ')
    argv = [command[0], str(out), *command[1:]]
    status, err = exit_and_error(argv, capsys)
    assert status == 1 and f"{tokenizer}: xxh3 " in err and "rerun the tokenize stage" in err
    tokenizer.unlink()
    status, err = exit_and_error(argv, capsys)
    assert status == 1 and f"{tokenizer}: missing; rerun the tokenize stage" in err


def test_inspect_refuses_a_negative_show_count(run, capsys):
    status, err = exit_and_error(["inspect", str(run), "--show", "-2"], capsys)
    assert (status, err) == (
        2,
        "corpusmill inspect: --show -2: give how many documents to decode, at least 0",
    )
