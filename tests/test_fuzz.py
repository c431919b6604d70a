"""Damaged input, fuzzed: whatever is done to a valid WARC, WET, JSONL, Parquet or text file in any
compression (cut, bits flipped, bytes inserted or removed, a length field broken, text re-encoded,
garbage appended, emptied, oddly named, or an odd kind of file beside it), reading it never raises
or hangs, reads the same in one split or many, rejects or keeps each record once, loses nothing
without a rejected row, and keeps every record the damage left intact with its id and text; a run
over good and damaged files exits 0 with read = kept + rejected and the good documents kept.

The cases are seeded (tests/fuzz_inputs.py), so each run tries the same inputs and a failing test's
id is its reproducer: the damaged file of `[fmt-compression-corruption-seed]` is
`CORRUPTIONS[corruption](make_sample(fmt, compression, seed), random.Random(f"{corruption}-{seed}"))`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fuzz_inputs import (
    COMPRESSIONS,
    CORRUPTIONS,
    Corrupted,
    Placed,
    Sample,
    applicable,
    decompressed_prefix,
    make_sample,
)
from test_readers import compress

from corpusmill.cli.main import main
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.readers import ReadConfig, discover_inputs, plan_splits, read_split

# Reading one of these files takes milliseconds; a read still going after this long is a hang.
READ_SECONDS = 5
SEEDS = range(10)
WHOLE = 1 << 30
DEFAULT_READ = ReadConfig()


@dataclass(frozen=True)
class Outcome:
    """What reading some inputs gave: documents (id, text, url) and rejected rows (id, step,
    reason, bytes) in order, and the readers' counters."""

    docs: list[tuple[str, str, str | None]]
    rejected: list[tuple[str, str, str, int]]
    counters: dict[str, int]

    @property
    def ids(self) -> list[str]:
        return [doc[0] for doc in self.docs] + [row[0] for row in self.rejected]


def read_all(inputs: list[str], split_bytes: int, read: ReadConfig = DEFAULT_READ) -> Outcome:
    """Discover, plan and read inputs as the clean stage does, failing if it takes too long."""
    config = dataclasses.replace(read, split_bytes=split_bytes)
    docs, rejected, counters = [], [], Counter()
    with deadline(READ_SECONDS, f"reading {inputs} in splits of {split_bytes} bytes"):
        for split in plan_splits(discover_inputs(inputs, config), config):
            for batch in read_split(split, config):
                # Valid Arrow data: offsets in bounds, strings in UTF-8 (Parquet's are unchecked).
                batch.docs.validate(full=True)
                batch.rejected.validate(full=True)
                docs += rows(batch.docs, "id", "text", "url")
                rejected += rows(batch.rejected, "id", "step", "reason", "bytes")
                counters.update(batch.counters)
    return Outcome(docs, rejected, dict(counters))


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise TimeoutError in the main thread if the block runs longer than `seconds`."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"{what} still running after {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def rows(table: pa.Table, *columns: str) -> list[tuple]:
    return list(zip(*(table[c].to_pylist() for c in columns), strict=True))


def expected_docs(name: str, placed: list[Placed]) -> list[tuple[str, str, str | None]]:
    return [(f"{name}#{p.offset}", p.text, p.url) for p in placed]


def assert_intact_records_kept(outcome: Outcome, name: str, intact: list[Placed]) -> None:
    """Every record the damage left intact is a document with its id, text and URL."""
    kept = {doc_id: (text, url) for doc_id, text, url in outcome.docs}
    expected = expected_docs(name, intact)
    missing = [(i, text[:30]) for i, text, url in expected if kept.get(i) != (text, url)]
    assert not missing, f"intact records not kept: {missing}; rejected: {outcome.rejected}"


def assert_nothing_lost_silently(outcome: Outcome, sample: Sample, damaged: Corrupted) -> None:
    """Fewer documents than the records left in the file means a rejected row says why (or a
    record now reads as a type that is not a document, and is counted as skipped)."""
    if len(outcome.docs) < len(sample.documents) - damaged.gone:
        skipped = outcome.counters.get("skipped_warc_records", 0)
        assert outcome.rejected or skipped > sample.skipped, (
            f"{len(outcome.docs)} of {len(sample.documents)} documents read, none rejected"
        )


def line_offsets(content: bytes) -> list[int]:
    """Where the JSON lines that are not blank start."""
    offsets, position = [], 0
    for line in content.split(b"\n"):
        if line.strip():
            offsets.append(position)
        position += len(line) + 1
    return offsets


def jsonl_content(sample: Sample, damaged: Corrupted, corruption: str) -> bytes | None:
    """The lines of a damaged JSONL file, if they are known: a plain file, or a stream whose
    compression is intact, not re-encoded in UTF-16 (whose lines are not split at b"\\n")."""
    if sample.fmt != "jsonl" or damaged.charset.startswith("utf-16") or not damaged.data:
        return None
    if sample.compression == "none":
        return damaged.data
    return (
        decompressed_prefix(damaged.data, sample.compression) if corruption == "reencode" else None
    )


CASES = [
    pytest.param(fmt, compression, corruption, seed, id=f"{fmt}-{compression}-{corruption}-{seed}")
    for fmt, compressions in COMPRESSIONS.items()
    for compression in compressions
    for corruption in CORRUPTIONS
    if applicable(fmt, compression, corruption)
    for seed in (SEEDS if corruption != "empty" else SEEDS[:1])
]


@pytest.mark.parametrize(("fmt", "compression", "corruption", "seed"), CASES)
def test_damage_costs_only_the_records_it_touches(
    tmp_path: Path, fmt: str, compression: str, corruption: str, seed: int
):
    sample = make_sample(fmt, compression, seed)
    rng = random.Random(f"{corruption}-{seed}")
    damaged = CORRUPTIONS[corruption](sample, rng)
    path = tmp_path / sample.name
    path.write_bytes(damaged.data)
    # Batches of one document or of all; JSONL and Parquet fields kept, or only text and URL.
    read = ReadConfig(batch_docs=rng.choice([1, 3, 10_000]), keep_fields=rng.random() < 0.5)
    whole = read_all([str(path)], WHOLE, read)
    pieces = read_all([str(path)], rng.choice([61, 256, 1500]), read)
    assert pieces == whole, "the file reads differently in many splits than in one"
    assert len(set(whole.ids)) == len(whole.ids), f"a record reported twice: {whole}"
    # Damage is recognised for what it is; read:error is the net for a reader that raised.
    assert [row for row in whole.rejected if row[2] == "error"] == []
    assert_intact_records_kept(whole, sample.name, damaged.intact)
    assert_nothing_lost_silently(whole, sample, damaged)
    if corruption == "empty":
        assert whole == Outcome([], [], {"empty_files": 1})
    content = jsonl_content(sample, damaged, corruption)
    if content is not None:
        # Each line that is not blank is one record: a document or a rejected row at its offset.
        offsets = sorted(int(i.rpartition("#")[2]) for i in whole.ids)
        assert offsets == line_offsets(content)


VALID = [
    pytest.param(fmt, compression, seed, id=f"{fmt}-{compression}-{seed}")
    for fmt, compressions in COMPRESSIONS.items()
    for compression in compressions
    for seed in range(3)
]


@pytest.mark.parametrize(("fmt", "compression", "seed"), VALID)
def test_valid_files_read_as_their_known_records(
    tmp_path: Path, fmt: str, compression: str, seed: int
):
    sample = make_sample(fmt, compression, seed)
    path = tmp_path / sample.name
    path.write_bytes(sample.data)
    whole = read_all([str(path)], WHOLE)
    assert whole.docs == expected_docs(sample.name, sample.documents)
    assert whole.rejected == []
    assert whole.counters == ({"skipped_warc_records": sample.skipped} if sample.skipped else {})
    # In many splits, in batches of two documents, JSONL read by Arrow's parser: the same.
    assert read_all([str(path)], 97, ReadConfig(batch_docs=2, keep_fields=False)) == whole


TEXT = "Première ligne d'un texte, façade à Zürich.\n\nΕλλάδα, Москва, 東京: the end of it."


@pytest.mark.parametrize("compression", COMPRESSIONS["text"])
def test_a_utf16_text_file_with_a_byte_order_mark_reads_as_its_text(
    tmp_path: Path, compression: str
):
    path = tmp_path / "doc.txt"
    path.write_bytes(compress(TEXT.encode("utf-16"), compression))
    outcome = read_all([str(path)], WHOLE)
    assert (outcome.docs, outcome.rejected) == ([("doc.txt#0", TEXT, None)], [])


@pytest.mark.parametrize("compression", COMPRESSIONS["text"])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_utf16_text_file_without_a_byte_order_mark_is_its_text_or_one_rejected_row(
    tmp_path: Path, encoding: str, compression: str
):
    """Never a document of UTF-16 decoded as UTF-8 (NULs and all)."""
    path = tmp_path / "doc.txt"
    path.write_bytes(compress(TEXT.encode(encoding), compression))
    outcome = read_all([str(path)], WHOLE)
    if outcome.docs:
        assert (outcome.docs, outcome.rejected) == ([("doc.txt#0", TEXT, None)], [])
    else:
        assert [row[0] for row in outcome.rejected] == ["doc.txt#0"]


@pytest.mark.parametrize("compression", COMPRESSIONS["text"])
@pytest.mark.parametrize("encoding", ["cp1252", "shift_jis", "koi8-r"])
def test_a_text_file_in_a_legacy_charset_is_one_document_not_binary(
    tmp_path: Path, encoding: str, compression: str
):
    text = {
        "cp1252": "Le café est très bon.",
        "shift_jis": "今日は雨が降った。",
        "koi8-r": "Утром шёл дождь.",
    }
    path = tmp_path / "doc.txt"
    path.write_bytes(compress(("\n".join([text[encoding]] * 20)).encode(encoding), compression))
    outcome = read_all([str(path)], WHOLE)
    assert ([doc[0] for doc in outcome.docs], outcome.rejected) == (["doc.txt#0"], [])


# Names a crawl's files can have: spaces, non-ASCII, the id separator, a newline, a leading dash,
# a long name, and bytes that are not UTF-8 (each format under one of them).
ODD_NAMES = [
    ("warc", "members", b"with space.warc.gz"),
    ("jsonl", "zstd", "ünïcödé 日本語.jsonl.zst".encode()),
    ("jsonl", "none", b"#hash#.jsonl"),
    ("text", "none", b"new\nline.txt"),
    ("wet", "members", b"-dash.warc.wet.gz"),
    ("parquet", "snappy", b"table with space.parquet"),
    ("jsonl", "gzip", b"x" * 200 + b".jsonl.gz"),
    ("warc", "none", b"latin1 caf\xe9.warc"),
    ("jsonl", "none", b"bad \xff\xfe.jsonl"),
]


@pytest.mark.parametrize(("fmt", "compression", "name"), ODD_NAMES, ids=repr)
def test_files_with_odd_names_are_read_whole(
    tmp_path: Path, fmt: str, compression: str, name: bytes
):
    sample = make_sample(fmt, compression, 0)
    folder = tmp_path / "in"
    folder.mkdir()
    Path(os.fsdecode(os.fsencode(folder) + b"/" + name)).write_bytes(sample.data)
    outcome = read_all([str(folder)], 300)
    assert [doc[1:] for doc in outcome.docs] == [(p.text, p.url) for p in sample.documents]
    assert outcome.rejected == []
    ids = [doc[0] for doc in outcome.docs]
    # Ids are text that can be written (UTF-8), each `<source>#<offset>`; a UTF-8 name is the source.
    assert [doc_id.encode().rpartition(b"#")[2] for doc_id in ids] == [
        b"%d" % p.offset for p in sample.documents
    ]
    if (source := utf8(name)) is not None:
        assert ids == [f"{source}#{p.offset}" for p in sample.documents]


def utf8(name: bytes) -> str | None:
    try:
        return name.decode()
    except UnicodeDecodeError:
        return None


def make_odd_file(folder: Path, kind: str) -> None:
    """Put something other than a regular file in a folder, under a name readers take."""
    if kind == "fifo":
        os.mkfifo(folder / "pipe.jsonl")
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(folder / "socket.txt"))
    elif kind == "dangling_symlink":
        (folder / "dangling.jsonl").symlink_to(folder / "nowhere.jsonl")
    elif kind == "symlink_loop":
        (folder / "loop.jsonl").symlink_to(folder / "loop.jsonl")
    elif kind == "symlink_to_its_folder":
        (folder / "again").symlink_to(folder, target_is_directory=True)
    elif kind == "symlink_to_a_file":
        (folder / "link.jsonl").symlink_to(folder / "good.jsonl")
    elif kind == "folder_named_like_a_file":
        (folder / "crawl.warc.gz").mkdir()
    elif kind == "endless_device":
        (folder / "zero.jsonl").symlink_to("/dev/zero")
    elif kind == "empty_device":
        (folder / "null.txt").symlink_to("/dev/null")


ODD_KINDS = [
    "fifo",
    "socket",
    "dangling_symlink",
    "symlink_loop",
    "symlink_to_its_folder",
    "symlink_to_a_file",
    "folder_named_like_a_file",
    "endless_device",
    "empty_device",
]


@pytest.mark.parametrize("kind", ODD_KINDS)
def test_an_odd_kind_of_file_beside_good_input_neither_hangs_nor_costs_it(
    tmp_path: Path, kind: str
):
    sample = make_sample("jsonl", "none", 1)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_bytes(sample.data)
    make_odd_file(folder, kind)
    outcome = read_all([str(folder)], WHOLE)
    good = [doc for doc in outcome.docs if doc[0].startswith("good.jsonl#")]
    assert good == expected_docs("good.jsonl", sample.documents)


# A small crawl for whole runs: a good file of each format, and damaged files beside them.
GOOD = [
    ("warc", "members"),
    ("wet", "members"),
    ("jsonl", "zstd"),
    ("parquet", "snappy"),
    ("text", "none"),
]
DAMAGED = [
    ("warc", "none", "break_length_field", 1),
    ("warc", "members", "truncate", 2),
    ("wet", "zstd", "flip_bits", 0),
    ("jsonl", "none", "insert_bytes", 3),
    ("jsonl", "gzip", "flip_bits", 0),
    ("parquet", "none", "flip_bits_in_a_record", 2),
    ("text", "zstd", "append_garbage", 0),
    ("text", "gzip", "empty", 0),
]
RUN_SPLIT_BYTES = 700


@dataclass(frozen=True)
class Crawl:
    """A folder of good and damaged files, and the ids of the documents that must be read."""

    folder: Path
    good: list[str]
    intact: list[str]


@pytest.fixture(scope="module")
def crawl(tmp_path_factory) -> Crawl:
    folder = tmp_path_factory.mktemp("crawl")
    (folder / "good").mkdir()
    (folder / "damaged").mkdir()
    good, intact = [], []
    for fmt, compression in GOOD:
        sample = make_sample(fmt, compression, 0)
        (folder / "good" / sample.name).write_bytes(sample.data)
        good += [f"good/{sample.name}#{p.offset}" for p in sample.documents]
    for fmt, compression, corruption, seed in DAMAGED:
        sample = make_sample(fmt, compression, seed)
        damaged = CORRUPTIONS[corruption](sample, random.Random(f"{corruption}-{seed}"))
        (folder / "damaged" / sample.name).write_bytes(damaged.data)
        intact += [f"damaged/{sample.name}#{p.offset}" for p in damaged.intact]
    return Crawl(folder, good, intact)


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of one local Dask cluster that the module's runs share (each would otherwise
    start its own, for a second)."""
    with dask_client("", 2) as client:
        yield client.scheduler.address


def run_crawl(crawl: Crawl, out: Path, scheduler: str, split_bytes: int) -> int:
    argv = ["run", str(crawl.folder), "--out", str(out), "--scheduler", scheduler]
    return main([*argv, "--read-split-bytes", str(split_bytes), "--no-dedup-enabled"])


def test_a_run_over_good_and_damaged_files_accounts_for_every_record(
    crawl: Crawl, scheduler: str, tmp_path: Path
):
    out = tmp_path / "out"
    assert run_crawl(crawl, out, scheduler, RUN_SPLIT_BYTES) == 0
    clean = json.loads((out / "stats.json").read_text())["clean"]
    kept = pq.read_table(out / "clean")
    rejected = pq.read_table(out / "rejected")
    read = read_all([str(crawl.folder)], RUN_SPLIT_BYTES)
    # read = kept + rejected, where read is what the readers report on their own.
    assert clean["read"]["docs"] == len(read.docs) + len(read.rejected)
    assert clean["read"]["docs"] == kept.num_rows + rejected.num_rows
    assert clean["kept"]["docs"] == kept.num_rows
    # The good files' documents are kept (their text passes every filter), and the damaged
    # files' intact records are read (then kept or filtered, as any document).
    kept_ids = set(kept["id"].to_pylist())
    assert [i for i in crawl.good if i not in kept_ids] == []
    filtered = {i for i, step in rows(rejected, "id", "step") if step not in ("read", "extract")}
    assert [i for i in crawl.intact if i not in kept_ids | filtered] == []
    # One split per file or many: the same documents kept.
    whole = tmp_path / "whole"
    assert run_crawl(crawl, whole, scheduler, WHOLE) == 0
    assert sorted(pq.read_table(whole / "clean")["id"].to_pylist()) == sorted(
        kept["id"].to_pylist()
    )
