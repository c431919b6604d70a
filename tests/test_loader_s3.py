"""The loader on a run in an S3 bucket (tests/conftest.py's server on 127.0.0.1): the batches and
resumption of a local copy, a byte-bounded local cache that never evicts a shard between its
hand-out and its mapping, and damaged or missing objects named."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from test_loader import SHARDS, all_batches, write_run

from corpusmill.core.checksums import file_checksum
from corpusmill.core.errors import UserError
from corpusmill.core.storage import ObjectPath, location
from corpusmill.loader import FormatError, TokenDataset, TokenStream
from corpusmill.loader import stream as stream_module
from corpusmill.loader.cache import ShardCache
from corpusmill.loader.format import MissingRunError, ShardInfo, read_manifest


def upload(folder: Path, bucket: ObjectPath, name: str = "run") -> ObjectPath:
    """Copy a local run folder into the bucket; the run's URL."""
    bucket.fs.put(str(folder), f"{bucket.path}/{name}", recursive=True)
    return bucket / name


def cached_files(cache: Path) -> list[Path]:
    return sorted(path for path in cache.rglob("*") if path.is_file())


@pytest.fixture
def runs(tmp_path: Path, s3_bucket: ObjectPath) -> tuple[Path, ObjectPath]:
    """A local run of several small shards and its copy in a bucket."""
    local = tmp_path / "run"
    write_run(local, SHARDS)
    return local, upload(local, s3_bucket)


@pytest.mark.parametrize("shuffle", [True, False])
def test_a_remote_run_yields_every_batch_of_its_local_copy(runs, tmp_path, s3_server, shuffle):
    local, remote = runs
    settings = {"seq_len": 4, "batch_size": 3, "seed": 5, "shuffle": shuffle, "block_tokens": 12}
    expected = all_batches(TokenStream(local, **settings), epochs=3)
    stream = TokenStream(
        str(remote),
        **settings,
        storage_options=s3_server.options,
        cache_dir=tmp_path / "cache",
        prefetch=2,
    )
    got = all_batches(stream, epochs=3)
    assert len(got) == len(expected) > 10
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.dtype == theirs.dtype
        np.testing.assert_array_equal(mine, theirs)
    assert len(cached_files(tmp_path / "cache")) == len(SHARDS)


def test_a_remote_stream_resumes_exactly_where_it_stopped(runs, tmp_path, s3_server):
    local, remote = runs
    options = {"storage_options": s3_server.options, "cache_dir": tmp_path / "cache"}
    whole = all_batches(TokenStream(local, 4, 2, seed=9), epochs=2)
    first = TokenStream(remote, 4, 2, seed=9, **options)
    iterator = iter(first)
    before = [next(iterator) for _ in range(7)]
    state = json.loads(json.dumps(first.state_dict()))
    resumed = TokenStream(remote, 4, 2, seed=9, **options)
    resumed.load_state_dict(state)
    after = all_batches(resumed, epochs=2 - state["epoch"])
    np.testing.assert_array_equal(np.concatenate(before + after), np.concatenate(whole))
    # A state saved on the local copy resumes on the remote one: it is the same run.
    assert (
        first.state_dict()["datasets"] == TokenStream(local, 4, 2, seed=9).state_dict()["datasets"]
    )


def test_a_cache_bound_below_the_run_evicts_old_shards_and_yields_the_same_batches(
    tmp_path, s3_bucket, s3_server, monkeypatch
):
    # Twelve shards of about 2 kB; a plan of one batch touches one or two of them.
    local = tmp_path / "run"
    write_run(local, [[300, 200, 500]] * 12)
    remote = upload(local, s3_bucket)
    monkeypatch.setattr(stream_module, "_PLAN_TOKENS", 1)
    sizes = [shard.size for shard in read_manifest(local).shards]
    bound = 3 * max(sizes)
    cache = tmp_path / "cache"
    expected = all_batches(TokenStream(local, 64, 4, shuffle=False))
    stream = TokenStream(
        remote,
        64,
        4,
        shuffle=False,
        storage_options=s3_server.options,
        cache_dir=cache,
        cache_bytes=bound,
    )
    np.testing.assert_array_equal(np.concatenate(all_batches(stream)), np.concatenate(expected))
    kept = cached_files(cache)
    assert 0 < len(kept) < len(sizes)
    assert sum(path.stat().st_size for path in kept) <= bound
    # The last shards read are those kept.
    assert [path.name.partition(".")[0] for path in kept][-1] == "shard-00011"


def test_a_damaged_object_is_detected_naming_it_and_the_manifest(runs, tmp_path, s3_server):
    _, remote = runs
    shard = remote / "shard-00002.arrow"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x40
    shard.fs.pipe_file(shard.path, bytes(data))
    stream = TokenStream(
        remote, 4, 2, shuffle=False, storage_options=s3_server.options, cache_dir=tmp_path / "c"
    )
    with pytest.raises(FormatError, match=r"shard-00002\.arrow: xxh3 [0-9a-f]{16}, the manifest"):
        all_batches(stream)
    assert not any(path.name.startswith("shard-00002") for path in cached_files(tmp_path / "c"))


def test_a_cached_shard_is_read_again_without_downloading_it(runs, tmp_path, s3_server):
    local, remote = runs
    options = {"storage_options": s3_server.options, "cache_dir": tmp_path / "cache"}
    expected = all_batches(TokenStream(local, 4, 2, seed=1))
    all_batches(TokenStream(remote, 4, 2, seed=1, **options))
    # Damaged in the bucket now, the shard is served from the cache, checked when it came.
    shard = remote / "shard-00004.arrow"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 1
    shard.fs.pipe_file(shard.path, bytes(data))
    again = all_batches(TokenStream(remote, 4, 2, seed=1, **options))
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(expected))


def test_a_missing_or_resized_object_is_named_when_the_run_is_opened(runs, s3_server, tmp_path):
    _, remote = runs
    (remote / "shard-00001.arrow").unlink()
    shard = remote / "shard-00003.arrow"
    shard.fs.pipe_file(shard.path, shard.read_bytes() + b"\0")
    with pytest.raises(FormatError) as raised:
        TokenDataset(remote, cache_dir=tmp_path)
    message = str(raised.value)
    assert f"{remote}/shard-00001.arrow: missing" in message
    assert f"{remote}/shard-00003.arrow: {shard.stat().st_size} bytes, the manifest says" in message


def test_a_url_without_a_run_is_a_missing_run_error(s3_bucket, s3_server, tmp_path):
    with pytest.raises(MissingRunError, match=f"{s3_bucket}/nothing/index.json does not exist"):
        TokenDataset(f"{s3_bucket}/nothing", storage_options=s3_server.options, cache_dir=tmp_path)


def test_a_run_on_an_unreachable_store_is_the_one_line_user_error_of_the_cli(s3_server, tmp_path):
    options = {**s3_server.options, "endpoint_url": "http://127.0.0.1:9"}
    with pytest.raises(UserError, match=r"^s3://outb/run1: cannot reach http://127.0.0.1:9 ") as e:
        TokenDataset("s3://outb/run1", storage_options=options, cache_dir=tmp_path / "cache")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "cache").exists()


def test_the_default_cache_is_under_the_users_cache_folder(runs, s3_server, tmp_path, monkeypatch):
    _, remote = runs
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dataset = TokenDataset(remote / "index.json", storage_options=s3_server.options)
    dataset.windows(np.array([0]), 5)
    files = cached_files(tmp_path / "xdg" / "corpusmill" / "shards")
    assert [path.name.partition(".")[0] for path in files] == ["shard-00000"]
    assert os.path.getsize(files[0]) == dataset.manifest.shards[0].size


def test_the_shards_of_the_next_batches_are_downloaded_before_they_are_needed(
    tmp_path, s3_bucket, s3_server, monkeypatch
):
    local = tmp_path / "run"
    write_run(local, [[300, 200, 500]] * 8)  # 1,000 tokens a shard
    remote = upload(local, s3_bucket)
    monkeypatch.setattr(stream_module, "_PLAN_TOKENS", 1)  # one batch a plan
    cache = tmp_path / "cache"
    stream = TokenStream(
        remote, 64, 16, shuffle=False, storage_options=s3_server.options, cache_dir=cache
    )
    batches = iter(stream)
    next(batches)  # tokens [0, 1025): shards 0 and 1; the next batch's reach shard 2

    def shards() -> set[str]:
        return {path.name.partition(".")[0] for path in cached_files(cache)}

    deadline = time.monotonic() + 10
    while "shard-00002" not in shards() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shards() == {"shard-00000", "shard-00001", "shard-00002"}


def test_a_cache_bound_below_one_shard_still_yields_every_batch(runs, tmp_path, s3_server):
    local, remote = runs
    expected = all_batches(TokenStream(local, 4, 2, seed=3), epochs=2)
    stream = TokenStream(
        remote,
        4,
        2,
        seed=3,
        storage_options=s3_server.options,
        cache_dir=tmp_path / "cache",
        cache_bytes=1,
    )
    got = all_batches(stream, epochs=2)
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(expected))


def test_a_forked_process_downloads_the_shards_it_needs_with_threads_of_its_own(
    runs, tmp_path, s3_server
):
    local, remote = runs
    dataset = TokenDataset(remote, storage_options=s3_server.options, cache_dir=tmp_path / "c")
    dataset.windows(np.array([0]), 5)  # the parent's download threads have run and wait
    last = int(dataset.shard_starts[-2])
    out = tmp_path / "child.npy"
    pid = os.fork()
    if pid == 0:  # a DataLoader worker forked from a process that already read
        try:
            arrays, index, offsets = dataset.windows(np.array([last]), 5)
            np.save(out, arrays[index[0]][offsets[0] : offsets[0] + 5])
        finally:
            os._exit(0)
    deadline = time.monotonic() + 30
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked process hung reading the remote run")
        time.sleep(0.05)
    arrays, index, offsets = TokenDataset(local).windows(np.array([last]), 5)
    np.testing.assert_array_equal(np.load(out), arrays[index[0]][offsets[0] : offsets[0] + 5])


def test_a_shard_that_disagrees_with_the_manifest_is_named_by_its_url(
    tmp_path, s3_bucket, s3_server
):
    local = tmp_path / "run"
    write_run(local, SHARDS)
    manifest = json.loads((local / "index.json").read_text())
    manifest["shards"][1]["tokens"] -= 1  # the file, checksum and size as they are
    (local / "index.json").write_text(json.dumps(manifest))
    remote = upload(local, s3_bucket)
    dataset = TokenDataset(remote, storage_options=s3_server.options, cache_dir=tmp_path / "c")
    with pytest.raises(
        FormatError, match=f"^{remote}/shard-00001.arrow holds 12 tokens, the manifest says 11;"
    ):
        dataset.windows(np.array([int(dataset.shard_starts[1])]), 3)


@pytest.fixture
def memory_cache(tmp_path: Path) -> tuple[list[bytes], object]:
    """Three objects of 1000 bytes on a memory:// store, and a cache of 1500 bytes for them: a
    second shard fits only when the first is evicted."""
    folder = location(f"memory://cache-{tmp_path.name}/run")
    contents = [bytes([index]) * 1000 for index in range(3)]
    infos = []
    for index, content in enumerate(contents):
        path = folder / f"shard-{index:05d}.arrow"
        path.fs.pipe_file(path.path, content)
        infos.append(ShardInfo(path.name, 1, 1, 1, 1000, file_checksum(path)))
    return contents, lambda: ShardCache(folder, tuple(infos), tmp_path / "cache", max_bytes=1500)


def test_a_shard_handed_out_is_not_evicted_by_a_download_before_it_is_mapped(memory_cache):
    contents, new_cache = memory_cache
    cache = new_cache()

    def map_while_the_next_shard_downloads(path: Path) -> bytes:
        assert cache.open(2, Path.read_bytes) == contents[2]
        return path.read_bytes()

    assert cache.open(0, map_while_the_next_shard_downloads) == contents[0]
    assert cache.open(1, Path.read_bytes) == contents[1]  # shard 0 and 2 no longer locked
    assert sum(path.stat().st_size for path in cached_files(cache.root)) <= 1500


def test_a_shard_another_process_is_mapping_is_not_evicted(memory_cache):
    contents, new_cache = memory_cache
    mapping, other = new_cache(), new_cache()  # two processes sharing the cache folder

    def map_while_the_other_downloads(path: Path) -> bytes:
        assert other.open(2, Path.read_bytes) == contents[2]
        return path.read_bytes()

    assert mapping.open(0, map_while_the_other_downloads) == contents[0]


def test_a_shard_deleted_before_it_was_locked_is_downloaded_again(memory_cache, monkeypatch):
    contents, new_cache = memory_cache
    cache = new_cache()
    handed_out = cache._path
    deleted = []

    def evicted_at_once(shard: int) -> Path:
        path = handed_out(shard)
        if not deleted:
            deleted.append(path)
            path.unlink()
        return path

    monkeypatch.setattr(cache, "_path", evicted_at_once)
    assert cache.open(1, Path.read_bytes) == contents[1]
    assert deleted and deleted[0].is_file()
