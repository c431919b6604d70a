"""`corpusmill export --format llmc`: a run's documents as llm.c's train and validation .bin files,
read back here by a reader written from llm.c's description of its format."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
import xxhash
from test_train_loop import write_tokenized_run

from corpusmill.cli import export as export_command
from corpusmill.cli.main import describe, main
from corpusmill.core.checksums import file_checksum
from corpusmill.loader import format as shard_format
from corpusmill.loader.format import FormatError, Manifest, token_type, write_shard
from corpusmill.loader.layout import MANIFEST, shard_name
from corpusmill.loader.llmc import read_token_file

GPT2 = (20240520, 1)
LLAMA3 = (20240801, 7)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenized run of 300 short documents in two shards, vocabulary 120."""
    return write_tokenized_run(tmp_path_factory.mktemp("run"))


def export(run: Path, dest: Path, *flags: str) -> list[str]:
    """Run `export` through a parser built as `corpusmill` builds it; the names of the files in
    DEST afterwards."""
    parser = argparse.ArgumentParser(prog="corpusmill")
    export_command.add_parser(parser.add_subparsers(), parents=[])
    args = parser.parse_args(["export", str(run), str(dest), "--format", "llmc", *flags])
    assert args.handler(args) == 0
    return sorted(path.name for path in dest.iterdir())


def read_llmc(path: Path) -> tuple[tuple[int, int, int], np.ndarray]:
    """(magic, version, token count) and the tokens of a file, as llm.c's data_common.py writes
    it: 256 int32 of header, then uint16 tokens (magic 20240520) or uint32 (magic 20240801)."""
    data = path.read_bytes()
    header = np.frombuffer(data[:1024], dtype="<i4")
    assert not header[3:].any()
    tokens = np.frombuffer(data[1024:], dtype={GPT2[0]: "<u2", LLAMA3[0]: "<u4"}[header[0]])
    return (int(header[0]), int(header[1]), int(header[2])), tokens


def run_documents(run: Path) -> list[tuple[str, list[int]]]:
    """Every document of a run (id, tokens ending with EOS), in shard order, read with pyarrow."""
    docs = []
    for shard in sorted(run.glob("shard-*.arrow")):
        table = pa.ipc.open_file(pa.memory_map(str(shard))).read_all()
        docs += zip(table["id"].to_pylist(), table["tokens"].to_pylist(), strict=True)
    return docs


def eos_first(docs: list[tuple[str, list[int]]]) -> list[int]:
    """Documents as llm.c's writers put them one after another: the EOS, then the document."""
    return [token for _, tokens in docs for token in [tokens[-1], *tokens[:-1]]]


def split_tokens(dest: Path, split: str) -> list[int]:
    """The tokens of a split's files, in file order."""
    return [t for path in sorted(dest.glob(f"*_{split}_*.bin")) for t in read_llmc(path)[1]]


def id_hash(doc_id: str) -> int:
    return xxhash.xxh3_64_intdigest(doc_id.encode())


def write_run(
    folder: Path, docs: list[list[int]], vocab_size: int, batch_tokens: int = 1 << 20
) -> Path:
    """A tokenized run of one shard holding `docs` as given (EOS included or not), a record batch
    starting in every window of `batch_tokens` tokens."""
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{}")
    kind = token_type(vocab_size)
    table = pa.table(
        {
            "id": [f"doc#{i}" for i in range(len(docs))],
            "tokens": pa.array(docs, pa.list_(kind)),
            "num_bytes": [len(doc) for doc in docs],
        }
    )
    with mock.patch.object(shard_format, "BATCH_TOKENS", batch_tokens):
        shard = write_shard(folder / shard_name(0), [table], kind)
    manifest = Manifest(
        tokenizer="tokenizer.json",
        tokenizer_xxh3=file_checksum(folder / "tokenizer.json"),
        vocab_size=vocab_size,
        token_dtype=str(kind),
        eos_id=0,
        tokens_per_shard=1 << 20,
        shards=(shard,),
    )
    (folder / MANIFEST).write_text(manifest.to_json())
    return folder


def test_files_hold_every_document_once_after_its_eos_validation_chosen_by_id_hash(
    run: Path, tmp_path: Path
):
    names = export(run, tmp_path, "--val-fraction", "0.1", "--name", "web")
    docs = run_documents(run)
    val = [doc for doc in docs if id_hash(doc[0]) < int(0.1 * 2**64)]
    train = [doc for doc in docs if id_hash(doc[0]) >= int(0.1 * 2**64)]
    assert 0 < len(val) < len(docs) == 300
    assert names == ["web_train_000001.bin", "web_val_000000.bin"]
    for name, split in [(names[1], val), (names[0], train)]:
        (magic, version, count), tokens = read_llmc(tmp_path / name)
        assert (magic, version) == GPT2
        assert count == sum(len(t) for _, t in split)
        assert tokens.tolist() == eos_first(split)


@pytest.mark.parametrize(
    ("fraction", "val_count", "expected"),
    [
        (0.0, 0, ["web_train_000000.bin"]),
        (1e-12, 1, ["web_train_000001.bin", "web_val_000000.bin"]),
        (0.999999999, 299, ["web_train_000001.bin", "web_val_000000.bin"]),
    ],
)
def test_val_fraction_leaves_at_least_one_document_in_each_split(
    run: Path, tmp_path: Path, fraction: float, val_count: int, expected: list[str]
):
    names = export(run, tmp_path, "--val-fraction", str(fraction), "--name", "web")
    docs = run_documents(run)
    by_hash = sorted(docs, key=lambda doc: id_hash(doc[0]))
    val_ids = {doc_id for doc_id, _ in by_hash[:val_count]}
    val_docs = [doc for doc in docs if doc[0] in val_ids]
    train_docs = [doc for doc in docs if doc[0] not in val_ids]
    assert names == expected
    assert split_tokens(tmp_path, "val") == eos_first(val_docs)
    assert split_tokens(tmp_path, "train") == eos_first(train_docs)


def test_same_run_exports_byte_identical_files(run: Path, tmp_path: Path):
    first = export(run, tmp_path / "a", "--shard-tokens", "3000")
    second = export(run, tmp_path / "b", "--shard-tokens", "3000")
    assert (
        first
        == second
        == [f"{run.name}_train_{i:06d}.bin" for i in range(1, 6)] + [f"{run.name}_val_000000.bin"]
    )
    for name in first:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("shard_tokens", [10, 500, 12899])
def test_shard_tokens_cuts_files_between_documents_filling_each_greedily(
    run: Path, tmp_path: Path, shard_tokens: int
):
    names = export(run, tmp_path, "--val-fraction", "0", "--shard-tokens", str(shard_tokens))
    docs = run_documents(run)
    files: list[list[tuple[str, list[int]]]] = [[]]
    for doc in docs:
        if files[-1] and sum(len(t) for _, t in files[-1]) + len(doc[1]) > shard_tokens:
            files.append([])
        files[-1].append(doc)
    assert names == [f"{run.name}_train_{i:06d}.bin" for i in range(len(files))]
    assert len(files) == {10: 300, 500: 28, 12899: 2}[shard_tokens]
    for name, expected in zip(names, files, strict=True):
        (magic, version, count), tokens = read_llmc(tmp_path / name)
        assert (magic, version, count) == (*GPT2, sum(len(t) for _, t in expected))
        assert tokens.tolist() == eos_first(expected)


def test_vocabulary_above_65536_ids_is_written_as_llama3_uint32_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    docs = [[70_000, 65_536, 0], [5, 0], [69_999, 1, 2, 0]]
    run = write_run(tmp_path / "big", docs, vocab_size=70_001)
    with caplog.at_level(logging.WARNING):
        names = export(run, tmp_path / "dest", "--val-fraction", "0")
    (magic, version, count), tokens = read_llmc(tmp_path / "dest" / names[0])
    assert names == ["big_train_000000.bin"]
    assert (magic, version, count) == (*LLAMA3, 9)
    assert tokens.dtype == "<u4"
    assert tokens.tolist() == [0, 70_000, 65_536, 0, 5, 0, 69_999, 1, 2]
    assert "a vocabulary of 70001 ids needs uint32 tokens" in caplog.text


def test_an_earlier_export_of_the_same_name_is_replaced_other_files_stay(run: Path, tmp_path: Path):
    export(run, tmp_path, "--shard-tokens", "500", "--name", "web")
    (tmp_path / "other_train_000003.bin").write_bytes(b"mine")
    (tmp_path / "web_train_notes.bin").write_bytes(b"mine")
    names = export(run, tmp_path, "--name", "web")
    assert names == [
        "other_train_000003.bin",
        "web_train_000001.bin",
        "web_train_notes.bin",
        "web_val_000000.bin",
    ]


def test_module_reader_reads_the_files_and_refuses_damaged_ones(run: Path, tmp_path: Path):
    names = export(run, tmp_path, "--name", "web")
    path = tmp_path / names[0]
    assert read_token_file(path).tolist() == read_llmc(path)[1].tolist()
    data = bytearray(path.read_bytes())
    (tmp_path / "short.bin").write_bytes(data[:-1])
    data[0] ^= 1
    (tmp_path / "magic.bin").write_bytes(data)
    with pytest.raises(FormatError) as short:
        read_token_file(tmp_path / "short.bin")
    with pytest.raises(FormatError) as magic:
        read_token_file(tmp_path / "magic.bin")
    count = read_llmc(path)[0][2]
    assert str(short.value) == (
        f"{tmp_path / 'short.bin'} is {1024 + 2 * count - 1} bytes, its header says {count} "
        "uint16 tokens after 1024; export it again"
    )
    assert str(magic.value) == (
        f"{tmp_path / 'magic.bin'} is not an llm.c token file (no magic 20240520 or 20240801 "
        "with its version in a 1024-byte header); export it again"
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--format", "parquet"], "--format parquet: unknown; give one of llmc, jsonl"),
        (["--val-fraction", "1"], "--val-fraction 1.0 must be at least 0 and below 1"),
        (["--val-fraction", "-0.1"], "--val-fraction -0.1 must be at least 0 and below 1"),
        (["--val-fraction", "nan"], "--val-fraction nan must be at least 0 and below 1"),
        (
            ["--shard-tokens", "0"],
            "--shard-tokens 0 must be from 1 to 2147483647 (the file header counts tokens in "
            "an int32)",
        ),
        (
            ["--name", "a/b"],
            "--name 'a/b': give letters, digits, '_', '.' or '-', which a glob such as "
            "NAME_train_*.bin matches as written",
        ),
    ],
)
def test_flags_out_of_range_are_refused_in_one_line_exit_2(
    run: Path, tmp_path: Path, flags: list[str], message: str
):
    with pytest.raises(Exception) as refused:
        export(run, tmp_path / "dest", *flags)
    assert describe(refused.value) == (message, 2)
    assert not (tmp_path / "dest").exists()


def test_a_dir_that_is_a_file_and_a_folder_without_a_run_are_refused_exit_2(
    run: Path, tmp_path: Path
):
    (tmp_path / "file").write_text("")
    with pytest.raises(Exception) as file_dest:
        export(run, tmp_path / "file")
    with pytest.raises(Exception) as no_run:
        export(tmp_path, tmp_path / "dest")
    assert describe(file_dest.value) == (
        f"DIR {tmp_path / 'file'}: {tmp_path / 'file'} is a file, not a folder; name a folder "
        "for the files",
        2,
    )
    assert describe(no_run.value) == (
        f"{tmp_path / MANIFEST} does not exist: {tmp_path} holds no tokenized run (run the "
        "tokenize stage)",
        2,
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize(
    ("docs", "message"),
    [
        ([[5, 0], [6, 7]], "document doc#1 does not end with the EOS id 0"),
        ([[5, 0], [120, 0]], "token id 120 is outside the manifest's vocabulary of 120"),
    ],
)
def test_damaged_documents_are_refused_exit_1_leaving_no_file(
    tmp_path: Path, docs: list[list[int]], message: str
):
    # A record batch per document: the first is written before the second is refused.
    run = write_run(tmp_path / "run", docs, vocab_size=120, batch_tokens=2)
    with pytest.raises(FormatError) as damaged:
        export(run, tmp_path / "dest", "--val-fraction", "0")
    assert describe(damaged.value) == (
        f"{run / shard_name(0)}: {message}; rerun the tokenize stage",
        1,
    )
    assert list((tmp_path / "dest").iterdir()) == []


def test_documents_are_read_a_record_batch_at_a_time_and_written_in_order(tmp_path: Path):
    docs = [[i % 9 + 1] * (i % 4) + [0] for i in range(40)]
    run = write_run(tmp_path / "run", docs, vocab_size=10, batch_tokens=5)
    assert pa.ipc.open_file(pa.memory_map(str(run / shard_name(0)))).num_record_batches == 20
    names = export(run, tmp_path / "dest", "--val-fraction", "0.3", "--shard-tokens", "7")
    val = [doc for doc in run_documents(run) if id_hash(doc[0]) < int(0.3 * 2**64)]
    train = [doc for doc in run_documents(run) if id_hash(doc[0]) >= int(0.3 * 2**64)]
    assert (len(val), len(train), len(names)) == (12, 28, 17)
    assert split_tokens(tmp_path / "dest", "val") == eos_first(val)
    assert split_tokens(tmp_path / "dest", "train") == eos_first(train)
    assert max(read_llmc(tmp_path / "dest" / name)[0][2] for name in names) == 7


def test_corpusmill_export_is_a_subcommand(run: Path, tmp_path: Path, capsys):
    assert main(["export", str(run), str(tmp_path), "--format", "llmc", "--name", "web"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'web_val_000000.bin'}: 1 documents, 42 tokens",
        f"{tmp_path / 'web_train_000001.bin'}: 299 documents, 12858 tokens",
    ]
