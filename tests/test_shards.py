"""The shard format: files written, opened without copying, batched by tokens, and the manifest."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from corpusmill.core.checksums import file_checksum
from corpusmill.core.storage import location
from corpusmill.loader import format as format_module
from corpusmill.loader.format import (
    BATCH_TOKENS,
    FORMAT_VERSION,
    FormatError,
    Manifest,
    ShardInfo,
    batch_bounds,
    open_shard,
    read_manifest,
    shard_reader,
    token_type,
    tokens_array,
    verify_shards,
    write_shard,
)
from corpusmill.loader.layout import shard_name
from corpusmill.pipeline import shards as shards_module


def documents(lengths: list[int], first_token: int = 1) -> pa.Table:
    """Documents of the given token counts (EOS 0 included), token values counting up."""
    ids = [np.arange(first_token, first_token + n - 1, dtype=np.uint32) % 60000 for n in lengths]
    return pa.table(
        {
            "id": [f"doc#{i}" for i in range(len(lengths))],
            "tokens": tokens_array(ids, 0, pa.uint16()),
            "num_bytes": pa.array([4 * n for n in lengths], pa.int64()),
        }
    )


def test_tokens_array_appends_eos_to_every_document_including_empty_ones():
    ids = [np.array([5, 6, 7], np.uint32), np.array([], np.uint32), np.array([9], np.uint32)]
    array = tokens_array(ids, 0, pa.uint16())
    assert array.type == pa.list_(pa.uint16())
    assert array.to_pylist() == [[5, 6, 7, 0], [0], [9, 0]]


def test_token_type_is_uint16_exactly_when_every_id_fits():
    assert token_type(65536) == pa.uint16()
    assert token_type(65537) == pa.uint32()


def test_shard_name_is_zero_padded():
    assert shard_name(7) == "shard-00007.arrow"


def test_write_shard_counts_and_checksums_what_it_wrote(tmp_path: Path):
    table = documents([3, 5, 2])
    info = write_shard(tmp_path / "s.arrow", [table], pa.uint16(), name="shard-00000.arrow")
    assert info == ShardInfo(
        name="shard-00000.arrow",
        docs=3,
        tokens=10,
        num_bytes=40,
        size=(tmp_path / "s.arrow").stat().st_size,
        xxh3=file_checksum(tmp_path / "s.arrow"),
    )
    assert open_shard(tmp_path / "s.arrow").read_all().to_pylist() == table.to_pylist()


def test_shard_bytes_do_not_depend_on_how_the_documents_arrive(tmp_path: Path):
    # Documents straddle batch windows; one writer gets them whole, the other in odd pieces.
    lengths = [BATCH_TOKENS // 3] * 7 + [5, BATCH_TOKENS + 7, 1, 2]
    table = documents(lengths)
    whole = write_shard(tmp_path / "a.arrow", [table], pa.uint16())
    pieces = [table.slice(0, 1), table.slice(1, 4), table.slice(5, 0), table.slice(5, 6)]
    split = write_shard(tmp_path / "b.arrow", pieces, pa.uint16())
    assert (tmp_path / "a.arrow").read_bytes() == (tmp_path / "b.arrow").read_bytes()
    assert whole.xxh3 == split.xxh3


def test_record_batches_hold_the_documents_starting_in_one_window(tmp_path: Path):
    half = BATCH_TOKENS // 2
    # Starts in windows: 0, 0 | 1, 1 | 2 (5 tokens), 2 (two windows long) | 4, 4: window 3 is empty.
    lengths = [half, half, half, half, 5, 2 * BATCH_TOKENS + 7, 1, 2]
    write_shard(tmp_path / "s.arrow", [documents(lengths)], pa.uint16())
    reader = open_shard(tmp_path / "s.arrow")
    batches = [reader.get_batch(i)["id"].to_pylist() for i in range(reader.num_record_batches)]
    assert batches == [
        ["doc#0", "doc#1"],
        ["doc#2", "doc#3"],
        ["doc#4", "doc#5"],
        ["doc#6", "doc#7"],
    ]


def test_opening_a_shard_does_not_copy_its_tokens(tmp_path: Path):
    table = documents([200_000, 300_000, 100_000])
    write_shard(tmp_path / "s.arrow", [table], pa.uint16())
    before = pa.total_allocated_bytes()
    reader = open_shard(tmp_path / "s.arrow")
    batch = reader.get_batch(0)
    tokens = batch["tokens"].values.to_numpy(zero_copy_only=True)
    # The arrays point into the memory map: Arrow's allocator handed out nothing for them.
    assert pa.total_allocated_bytes() == before
    assert tokens.dtype == np.uint16 and len(tokens) == 600_000
    assert not tokens.flags.writeable  # a view of the read-only mapping, not a private copy
    assert tokens[:3].tolist() == [1, 2, 3]


def manifest(shards: tuple[ShardInfo, ...]) -> Manifest:
    return Manifest(
        tokenizer="tokenizer.json",
        tokenizer_xxh3="0123456789abcdef",
        vocab_size=4000,
        token_dtype="uint16",
        eos_id=0,
        tokens_per_shard=1000,
        shards=shards,
    )


def test_manifest_json_is_stable_and_reads_back_equal(tmp_path: Path):
    shards = (
        ShardInfo("shard-00000.arrow", docs=3, tokens=1000, num_bytes=4200, size=2500, xxh3="aa"),
        ShardInfo("shard-00001.arrow", docs=1, tokens=200, num_bytes=800, size=700, xxh3="bb"),
    )
    text = manifest(shards).to_json()
    (tmp_path / "index.json").write_text(text)
    assert read_manifest(tmp_path) == manifest(shards)
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["format_version"] == FORMAT_VERSION
    assert data["tokenizer"] == {"file": "tokenizer.json", "xxh3": "0123456789abcdef"}
    assert data["totals"] == {
        "shards": 2,
        "docs": 4,
        "tokens": 1200,
        "num_bytes": 5000,
        "size": 3200,
        "bytes_per_token": 4.1667,
    }


def test_reading_a_manifest_of_another_format_version_says_what_to_do(tmp_path: Path):
    data = json.loads(manifest(()).to_json())
    data["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "index.json").write_text(json.dumps(data))
    message = "format version 2, this corpusmill reads version 1"
    with pytest.raises(FormatError, match=message) as err:
        read_manifest(tmp_path)
    assert err.value.exit_code == 1


def test_reading_a_folder_without_manifest_names_the_file_as_the_users_mistake(tmp_path: Path):
    with pytest.raises(FormatError, match=f"{tmp_path / 'index.json'} does not exist") as err:
        read_manifest(tmp_path)
    assert err.value.exit_code == 2


def test_verify_reports_a_changed_byte_a_truncation_and_a_missing_shard(tmp_path: Path):
    infos = tuple(
        write_shard(tmp_path / shard_name(i), [documents([4, 6], first_token=10 * i)], pa.uint16())
        for i in range(4)
    )
    assert list(verify_shards(tmp_path, manifest(infos))) == []
    data = bytearray((tmp_path / shard_name(1)).read_bytes())
    data[-100] ^= 1
    (tmp_path / shard_name(1)).write_bytes(bytes(data))
    (tmp_path / shard_name(2)).write_bytes((tmp_path / shard_name(2)).read_bytes()[:-8])
    (tmp_path / shard_name(3)).unlink()
    problems = list(verify_shards(tmp_path, manifest(infos)))
    assert problems == [
        f"{tmp_path / shard_name(1)}: xxh3 {file_checksum(tmp_path / shard_name(1))}, "
        f"the manifest says {infos[1].xxh3}",
        f"{tmp_path / shard_name(2)}: {infos[2].size - 8} bytes, the manifest says {infos[2].size}",
        f"{tmp_path / shard_name(3)}: missing",
    ]


def test_batch_bounds_are_the_first_rows_of_the_batches_write_shard_writes(tmp_path: Path):
    half = BATCH_TOKENS // 2
    lengths = [half, half, half, half, 5, 2 * BATCH_TOKENS + 7, 1, 2]
    write_shard(tmp_path / "s.arrow", [documents(lengths)], pa.uint16())
    reader = open_shard(tmp_path / "s.arrow")
    rows = [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]
    assert (
        batch_bounds(np.array(lengths)).tolist()
        == [0, *np.cumsum(rows).tolist()]
        == [
            0,
            2,
            4,
            6,
            8,
        ]
    )
    assert batch_bounds(np.array([], np.int64)).tolist() == [0]


def test_a_shard_task_reads_only_the_record_batches_holding_its_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(format_module, "BATCH_TOKENS", 10)
    lengths = [4, 4, 4, 9, 3, 12, 2, 2, 6, 5]  # starting in windows 0 0 0 1 2 2 3 3 4 4
    table = documents(lengths)
    write_shard(tmp_path / "part.arrow", [table], pa.uint16())
    part = location(f"memory://shards-{tmp_path.name}/part-00000.arrow")
    part.fs.put_file(str(tmp_path / "part.arrow"), part.path)
    bounds = batch_bounds(np.array(lengths))
    assert bounds.tolist() == [0, 3, 4, 6, 8, 10]
    read, files = [], []

    @contextmanager
    def counting_reader(path):
        with shard_reader(path) as reader:
            files.append(reader)
            yield _Counting(reader, read)

    monkeypatch.setattr(shards_module, "shard_reader", counting_reader)
    rows = pa.concat_tables(shards_module._encoded_rows(part, bounds, 5, 9))
    assert rows["id"].to_pylist() == table["id"].to_pylist()[5:9]
    assert read == [2, 3, 4] and files[0].num_record_batches == 5


class _Counting:
    """A shard reader that records which record batches are read."""

    def __init__(self, reader: pa.ipc.RecordBatchFileReader, read: list[int]) -> None:
        self.reader, self.read = reader, read
        self.num_record_batches = reader.num_record_batches

    def get_batch(self, index: int) -> pa.RecordBatch:
        self.read.append(index)
        return self.reader.get_batch(index)
