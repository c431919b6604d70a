"""A bucket swollen by one key's many rows is paired in chunks of bounded size, merged from every
part's signature file, with exactly the pairs of the whole bucket at once; the shuffle files give
a key range's rows by position, reading only the batches that hold them."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from corpusmill.core.errors import StageError
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.dedup.candidates import bucket_chunks, candidates_task, chunk_rows
from corpusmill.pipeline.dedup.config import DedupConfig
from corpusmill.pipeline.dedup.files import DedupFiles, compact_parts
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.lsh import Pairs, candidate_pairs, unique_pairs
from corpusmill.pipeline.dedup.shuffle import (
    range_rows,
    read_range,
    read_range_rows,
    read_table,
    write_sorted,
)
from corpusmill.pipeline.dedup.signatures import Signed

BANDS = 4
COPIES = 3000


def signature_files(folder: Path, score: str | None = None) -> list[Path]:
    """Three parts' signature rows over buckets 0-2: each part's 1,000 copies of one page share
    its 4 band keys and text hash (band 4); 2,000 documents of its own have keys of their own but
    for band 0, which 4 in 5 share with a few others. With `score`, a keeper score column of that
    name: text bytes ("bytes") or minus bits per byte ("quality"), both with ties."""
    rng = np.random.default_rng(7)
    paths = []
    for part in range(3):
        own = 2000
        keys = (np.int64(part) << ROW_BITS) + np.arange(COPIES // 3 + own)
        band = np.tile(np.arange(BANDS + 1, dtype=np.uint16), len(keys))
        doc = np.repeat(np.arange(len(keys)), BANDS + 1)
        copy = doc < COPIES // 3
        value = np.where(copy, band, rng.integers(10, 1 << 40, len(doc)).astype(np.uint64))
        shared = ~copy & (band == 0) & (rng.random(len(doc)) < 0.8)
        value[shared] = rng.integers(100, 400, int(shared.sum()))
        high = value.astype(np.uint64) * np.uint64(3)
        low = value.astype(np.uint64)
        columns = {
            "bucket": (low % np.uint64(3)).astype(np.uint32),
            "band": band,
            "high": high,
            "low": low,
            "key": keys[doc],
        }
        if score == "bytes":
            columns[score] = rng.integers(1, 50, len(keys))[doc]
        elif score == "quality":
            columns[score] = -rng.integers(1, 50, len(keys))[doc] / 16
        table = pa.table(columns)
        order = [(n, "ascending") for n in ("bucket", "band", "high", "low")]
        order += [(score, "descending")] if score else []
        table = table.take(pc.sort_indices(table, [*order, ("key", "ascending")]))
        paths.append(folder / f"part-{part}.arrow")
        write_sorted(paths[-1], table)
    return paths


def pairs_of(columns: dict[str, np.ndarray], score: str = "score") -> Pairs:
    return candidate_pairs(
        columns["band"],
        columns["high"],
        columns["low"],
        columns["key"],
        BANDS,
        columns.get(score),
    )


def stored_pairs(path: Path) -> Pairs:
    table = read_table(path)
    return Pairs(*(table.column(name).to_numpy() for name in ("a", "b", "exact")))


def merged(pieces: list[Pairs]) -> Pairs:
    return unique_pairs(Pairs(*(np.concatenate(column) for column in zip(*pieces, strict=True))))


@pytest.mark.parametrize("score", [None, "bytes", "quality"])
def test_a_swollen_bucket_in_chunks_gives_the_pairs_of_the_whole_bucket(tmp_path, score):
    paths = signature_files(tmp_path, score)
    for j in range(3):
        whole = read_range(paths, j, j + 1)
        everything = {name: whole.column(name).to_numpy() for name in whole.column_names}
        chunks = list(bucket_chunks(paths, j, 900, score))
        # Rows of one key running through one file after another are read mostly from the file
        # they are in, so the chunks are nearly full.
        assert whole.num_rows / 900 <= len(chunks) <= 2 * whole.num_rows / 900
        assert max(len(chunk["key"]) for chunk in chunks) <= 901
        expected = unique_pairs(pairs_of(everything, score or "score"))
        found = merged([pairs_of(chunk) for chunk in chunks])
        for column, want in zip(found, expected, strict=True):
            assert np.array_equal(column, want)


def test_every_bucket_is_paired_in_chunks_of_at_most_pair_rows_with_the_same_pairs(tmp_path):
    paths = signature_files(tmp_path)
    signed = [Signed(path, path, {}) for path in paths]
    runs = {}
    for limit in (10**9, 1000):
        files = DedupFiles(RunLayout(tmp_path / str(limit)), (0, 1, 2), 3)
        config = DedupConfig(bands=BANDS, pair_rows=limit)
        runs[limit] = [candidates_task(j, signed, files, config) for j in range(3)]
    for j, (whole, chunked) in enumerate(zip(runs[10**9], runs[1000], strict=True)):
        rows = read_range(paths, j, j + 1).num_rows
        # Buckets hold 12,969 to 16,093 rows; every chunk after the first is led by a row
        # carried over.
        assert len(whole.pairs) == 1 and len(chunked.pairs) >= rows // 1001
        # A pair sharing keys of two bands may come from two chunks; the edges step takes
        # each pair once.
        expected, pairs = (
            merged([stored_pairs(path) for path in found.pairs]) for found in (whole, chunked)
        )
        for column, want in zip(pairs, expected, strict=True):
            assert np.array_equal(column, want)


def test_the_most_rows_paired_at_once_is_pair_rows_or_a_bucket_and_a_quarter():
    assert chunk_rows(DedupConfig()) == 500_000
    assert chunk_rows(DedupConfig(pair_rows=10**7)) == 5_000_000
    assert chunk_rows(DedupConfig(bucket_rows=400)) == 500


def test_a_page_copied_in_every_part_is_a_star_from_its_first_copy(tmp_path):
    paths = signature_files(tmp_path)
    copies = np.concatenate(
        [(np.int64(part) << ROW_BITS) + np.arange(COPIES // 3) for part in range(3)]
    )
    bucket = 0  # band 0's copy key is 0, in bucket 0
    found = merged([pairs_of(chunk) for chunk in bucket_chunks(paths, bucket, 500)])
    star = np.isin(found.b, copies) & (found.a == copies[0])
    assert np.array_equal(np.sort(found.b[star]), copies[1:])
    assert not found.exact[star].any()


def test_a_signature_file_out_of_key_order_is_named_not_merged(tmp_path):
    paths = signature_files(tmp_path)
    rows = read_range([paths[1]], 0, 3)
    shuffled = rows.take(np.random.default_rng(1).permutation(rows.num_rows))
    write_sorted(paths[1], shuffled.take(pc.sort_indices(shuffled, [("bucket", "ascending")])))
    with pytest.raises(StageError, match=f"{paths[1]} is not sorted by key; delete it and rerun"):
        list(bucket_chunks(paths, 0, 900))


def test_a_bucket_within_the_limit_is_one_chunk_as_read(tmp_path):
    paths = signature_files(tmp_path)
    whole = read_range(paths, 1, 2)
    (chunk,) = bucket_chunks(paths, 1, whole.num_rows)
    assert np.array_equal(chunk["key"], whole.column("key").to_numpy())


@pytest.mark.parametrize("store", ["local", "object store"])
def test_rows_of_a_key_range_by_position_read_across_record_batches(tmp_path, store, request):
    values = np.sort(np.random.default_rng(3).integers(0, 40, 200_000))
    folder = tmp_path if store == "local" else request.getfixturevalue("s3_bucket")
    path = folder / "sorted.arrow"
    write_sorted(path, pa.table({"value": values, "row": np.arange(len(values))}))
    for low, high in [(0, 1), (5, 30), (39, 40), (41, 50), (0, 40)]:
        inside = np.flatnonzero((values >= low) & (values < high))
        assert range_rows(path, low, high) == len(inside)
        for start, stop in [(0, 10), (1000, 70_000), (len(inside) - 5, len(inside) + 5)]:
            rows = read_range_rows(path, low, high, max(start, 0), stop)
            assert rows.column("row").to_numpy().tolist() == inside[max(start, 0) : stop].tolist()


def test_parts_without_gaps_travel_as_a_range_and_name_each_parts_file(tmp_path):
    """Every dedup task receives the run's parts: numbered without gaps, as the clean stage
    numbers them, they pickle in a few bytes however many there are."""
    run = RunLayout(tmp_path)
    files = DedupFiles(run, compact_parts([0, 1, 2]), 1)
    assert files.parts == range(3)
    assert compact_parts([0, 2, 5]) == (0, 2, 5)
    sizes = files.per_part("sizes")
    assert dict(sizes) == {part: files.file("sizes", part) for part in (0, 1, 2)}
    assert sizes.get(3) is None
    many = DedupFiles(run, compact_parts(list(range(100_000))), 8)
    assert len(pickle.dumps(many)) < 1_000
    assert len(pickle.dumps(many.per_part("sizes"))) < 1_000
