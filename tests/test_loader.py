"""The streaming loader on small runs: exact batches, shuffling, ranks, resume, mixing, and its files
(validation on open, named errors, lazy zero-copy mapping, light imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusmill.loader import FormatError, TokenDataset, TokenStream
from corpusmill.loader import stream as stream_module
from corpusmill.loader.format import Manifest, tokens_array, write_shard
from corpusmill.loader.layout import shard_name
from corpusmill.loader.plan import _apportion, mix_key, permutation


def write_run(folder: Path, shards: list[list[int]], seed: int = 0) -> np.ndarray:
    """A tokenized run of shards holding documents of the given token counts (EOS included);
    returns its whole token stream, read independently of the loader."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    infos, stream = [], []
    for index, lengths in enumerate(shards):
        ids = [rng.integers(1, 60000, n - 1).astype(np.uint32) for n in lengths]
        table = pa.table(
            {
                "id": [f"doc{index}-{i}" for i in range(len(lengths))],
                "tokens": tokens_array(ids, 0, pa.uint16()),
                "num_bytes": pa.array([4 * n for n in lengths], pa.int64()),
            }
        )
        infos.append(write_shard(folder / shard_name(index), [table], pa.uint16()))
        stream.extend(np.append(doc, 0) for doc in ids)
    manifest = Manifest(
        tokenizer="tokenizer.json",
        tokenizer_xxh3="0123456789abcdef",
        vocab_size=60000,
        token_dtype="uint16",
        eos_id=0,
        tokens_per_shard=1000,
        shards=tuple(infos),
    )
    (folder / "index.json").write_text(manifest.to_json())
    return np.concatenate(stream).astype(np.uint16)


def windows_of(stream: np.ndarray, seq_len: int) -> np.ndarray:
    """Every sequence of a token stream, by definition: windows of seq_len + 1 at stride seq_len."""
    count = (len(stream) - 1) // seq_len
    return np.stack([stream[i * seq_len : i * seq_len + seq_len + 1] for i in range(count)])


def reference_order(count: int, block: int, window: int, key: int, epoch: int) -> list[int]:
    """The shuffled order of an epoch, built the slow way from its definition."""
    blocks = [list(range(b, min(b + block, count))) for b in range(0, count, block)]
    permuted = [blocks[b] for b in permutation(len(blocks), mix_key(key, epoch)).tolist()]
    order = []
    for w in range(0, len(permuted), window):
        ids = [i for b in permuted[w : w + window] for i in b]
        shuffle = permutation(len(ids), mix_key(key, epoch, w // window)).tolist()
        order.extend(ids[s] for s in shuffle)
    return order


def all_batches(stream: TokenStream, epochs: int = 1) -> list[np.ndarray]:
    return [batch for _ in range(epochs) for batch in stream]


# Shards of a few documents, some shorter than a sequence, so windows cross shard boundaries.
SHARDS = [[5, 7, 30], [12], [40, 3, 9], [2], [60, 11, 25, 8], [33, 4]]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("run")
    return folder, write_run(folder, SHARDS)


def test_unshuffled_batches_are_the_stream_cut_into_consecutive_windows(run):
    folder, stream = run
    batches = all_batches(TokenStream(folder, seq_len=8, batch_size=4, shuffle=False))
    expected = windows_of(stream, 8)
    assert len(batches) == len(expected) // 4
    assert all(batch.shape == (4, 9) and batch.dtype == np.uint16 for batch in batches)
    np.testing.assert_array_equal(np.concatenate(batches), expected[: len(batches) * 4])


def test_windows_crossing_a_record_batch_boundary_are_exact(tmp_path: Path):
    # 3 documents of 600k tokens: the shard has record batches of about a million tokens.
    stream = write_run(tmp_path, [[600_000, 600_000, 600_000], [100]])
    loader = TokenStream(tmp_path, seq_len=4096, batch_size=16, shuffle=False)
    np.testing.assert_array_equal(
        np.concatenate(all_batches(loader)), windows_of(stream, 4096)[: 16 * (439 // 16)]
    )


def test_shuffled_epochs_follow_the_block_and_window_definition(run):
    folder, stream = run
    loader = TokenStream(folder, seq_len=4, batch_size=5, seed=7, block_tokens=12, window_blocks=3)
    sequences = windows_of(stream, 4)
    per_epoch = len(sequences) // 5 * 5
    for epoch in range(3):
        order = reference_order(len(sequences), 3, 3, mix_key(7, 0), epoch)[:per_epoch]
        np.testing.assert_array_equal(np.concatenate(list(loader)), sequences[order])
    assert loader.state_dict()["epoch"] == 3


def test_each_epoch_is_a_new_permutation_and_a_seed_repeats_it(run):
    folder, _ = run
    first = [tuple(row) for row in np.concatenate(list(TokenStream(folder, 4, 1, seed=1)))]
    loader = TokenStream(folder, 4, 1, seed=1)
    again = [[tuple(row) for row in np.concatenate(list(loader))] for _ in range(2)]
    other = [tuple(row) for row in np.concatenate(list(TokenStream(folder, 4, 1, seed=2)))]
    assert again[0] == first and again[1] != first and other != first
    assert sorted(again[1]) == sorted(first) == sorted(other)


def test_a_shuffle_window_reads_only_its_blocks(tmp_path: Path):
    write_run(tmp_path, [[100] * 40 + [1]])  # 400 sequences of 10, 80 blocks of 5
    loader = TokenStream(tmp_path, seq_len=10, batch_size=1, block_tokens=50, window_blocks=2)
    order = loader.orders[0]
    ids = order.sequences(0, np.arange(order.count))
    assert sorted(ids.tolist()) == list(range(order.count))
    for start in range(0, order.count, 10):  # a window is 2 blocks of 5 sequences
        assert len(np.unique(ids[start : start + 10] // 5)) == 2


@pytest.mark.parametrize("world_size", [2, 4])
def test_ranks_split_the_same_global_batches_whatever_the_world_size(run, world_size):
    folder, _ = run
    whole = all_batches(TokenStream(folder, 4, 8, seed=3, block_tokens=16), epochs=2)
    ranks = [
        all_batches(
            TokenStream(
                folder, 4, 8 // world_size, seed=3, rank=r, world_size=world_size, block_tokens=16
            ),
            epochs=2,
        )
        for r in range(world_size)
    ]
    assert [len(batches) for batches in ranks] == [len(whole)] * world_size
    for step, batch in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([rank[step] for rank in ranks]), batch)


def test_workers_of_a_rank_take_alternate_batches(run):
    folder, _ = run
    whole = all_batches(TokenStream(folder, 4, 3, seed=5, rank=1, world_size=2))
    workers = [
        list(TokenStream(folder, 4, 3, seed=5, rank=1, world_size=2, worker_id=w, num_workers=3))
        for w in range(3)
    ]
    merged = [workers[step % 3][step // 3] for step in range(len(whole))]
    assert sum(map(len, workers)) == len(whole)
    for got, expected in zip(merged, whole, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_without_drop_last_the_short_last_batch_goes_to_the_first_ranks(run):
    folder, stream = run
    assert len(windows_of(stream, 8)) == 31  # 3 global batches of 8, then 7 sequences
    ranks = [
        list(TokenStream(folder, 8, 4, rank=r, world_size=2, drop_last=False, shuffle=False))
        for r in range(2)
    ]
    assert [batch.shape[0] for batch in ranks[0]] == [4, 4, 4, 4]
    assert [batch.shape[0] for batch in ranks[1]] == [4, 4, 4, 3]
    rows = np.concatenate([np.concatenate([ranks[0][s], ranks[1][s]]) for s in range(4)])
    np.testing.assert_array_equal(rows, windows_of(stream, 8))


def test_a_rank_with_no_row_of_a_short_epoch_yields_nothing_and_moves_to_the_next(run):
    folder, stream = run
    # 31 sequences, a global batch of 5 ranks x 8: rank 3 gets the last 7 rows, rank 4 none.
    loaders = [
        TokenStream(folder, 8, 8, rank=r, world_size=5, drop_last=False, shuffle=False)
        for r in range(5)
    ]
    ranks = [list(loader) for loader in loaders]
    assert [[batch.shape[0] for batch in batches] for batches in ranks] == [[8], [8], [8], [7], []]
    np.testing.assert_array_equal(np.concatenate(sum(ranks, [])), windows_of(stream, 8))
    assert [loader.state_dict()["epoch"] for loader in loaders] == [1] * 5


def test_windows_over_more_small_shards_than_stay_mapped_are_exact(tmp_path: Path):
    # 120 shards, some shorter than a window, all read by one plan: a window can span three
    # shards, the middle one holding no window's start.
    stream = write_run(tmp_path, [[5], [20], [3, 2], [30]] * 30)
    loader = TokenStream(tmp_path, seq_len=8, batch_size=4, shuffle=False)
    expected = windows_of(stream, 8)
    assert len(expected) == 224
    np.testing.assert_array_equal(np.concatenate(all_batches(loader)), expected)


@pytest.mark.parametrize("tokens", [1, 37])
def test_batches_do_not_depend_on_how_many_are_planned_at_once(run, monkeypatch, tokens):
    folder, _ = run
    settings_ = {"seq_len": 4, "batch_size": 3, "seed": 6, "rank": 1, "world_size": 2}
    runs = [folder, folder]
    whole = all_batches(TokenStream(runs, weights=[2, 1], block_tokens=12, **settings_), 2)
    monkeypatch.setattr(stream_module, "_PLAN_TOKENS", tokens)  # one batch a plan, or a few
    planned = all_batches(TokenStream(runs, weights=[2, 1], block_tokens=12, **settings_), 2)
    assert len(planned) == len(whole) == 2 * (124 // 6)  # 124 sequences an epoch
    for got, expected in zip(planned, whole, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_batches_are_copies_that_can_be_changed_and_outlive_their_stream(run):
    folder, stream = run
    loader = TokenStream(folder, 8, 4, shuffle=False)
    batch = next(iter(loader))
    del loader
    batch[:] = 0
    again = next(iter(TokenStream(folder, 8, 4, shuffle=False)))
    np.testing.assert_array_equal(again, windows_of(stream, 8)[:4])
    assert not batch.any()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stop=st.integers(0, 44),  # 3 epochs of 15 global batches
    before=st.sampled_from([1, 2, 4]),
    after=st.sampled_from([1, 2, 4]),
    prefetch=st.sampled_from([0, 2]),
)
def test_resuming_from_any_batch_continues_exactly_with_any_world_size(
    run, stop, before, after, prefetch
):
    folder, _ = run
    settings_ = {"seq_len": 4, "seed": 11, "block_tokens": 20, "window_blocks": 2}
    whole = np.concatenate(all_batches(TokenStream(folder, batch_size=4, **settings_), epochs=3))
    # Rank 0 of `before` ranks trains `stop` steps; its state restarts `after` ranks.
    first = TokenStream(
        folder, batch_size=4 // before, world_size=before, prefetch=prefetch, **settings_
    )
    batches = (batch for _ in range(3) for batch in first)
    for _ in range(stop):
        next(batches)
    state = json.loads(json.dumps(first.state_dict()))
    ranks = []
    for rank in range(after):
        resumed = TokenStream(
            folder, batch_size=4 // after, rank=rank, world_size=after, **settings_
        )
        resumed.load_state_dict(state)
        ranks.append(all_batches(resumed, epochs=3 - state["epoch"]))
    rest = np.concatenate([np.concatenate(step) for step in zip(*ranks, strict=True)])
    np.testing.assert_array_equal(rest, whole[len(whole) - len(rest) :])
    assert len(whole) - len(rest) == 4 * stop


def test_state_dict_is_small_json(run):
    folder, _ = run
    loader = TokenStream([folder, folder], 4, 2)
    next(iter(loader))
    state = loader.state_dict()
    assert json.loads(json.dumps(state)) == state
    assert state["epoch"] == 0 and state["position"] == 2
    assert len(json.dumps(state)) < 400


def test_a_state_from_another_seed_or_run_is_refused_naming_the_difference(run, tmp_path: Path):
    folder, _ = run
    state = TokenStream(folder, 4, 2, seed=1).state_dict()
    with pytest.raises(ValueError, match=r"another seed \(1, this stream has 2\)"):
        TokenStream(folder, 4, 2, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="another seq_len"):
        TokenStream(folder, 5, 2, seed=1).load_state_dict(state)
    write_run(tmp_path, SHARDS, seed=9)
    with pytest.raises(ValueError, match="another datasets"):
        TokenStream(tmp_path, 4, 2, seed=1).load_state_dict(state)


def reference_mix(counts: list[int], weights: list[float], positions: int) -> list[tuple[int, int]]:
    """(dataset, item) of the first positions of a mix, by merging every item's exact key."""
    shares = _apportion(weights, 1 << 16)
    keys = []
    for d, share in enumerate(shares):
        for j in range(positions):
            keys.append((j // share + Fraction(2 * (j % share) + 1, 2 * share), d, j))
    return [(d, j) for _, d, j in sorted(keys)[:positions]]


def test_mixing_interleaves_runs_by_weight_each_cycling_its_own_epochs(tmp_path: Path):
    small = write_run(tmp_path / "small", [[21, 20]], seed=1)  # 10 sequences of 4
    large = write_run(tmp_path / "large", [[50, 31], [40]], seed=2)  # 30 sequences
    sequences = [windows_of(small, 4), windows_of(large, 4)]
    loader = TokenStream(
        [tmp_path / "small", tmp_path / "large"], 4, 4, shuffle=False, weights=[3, 1]
    )
    got = np.concatenate(all_batches(loader, epochs=2))
    mix = reference_mix([10, 30], [3, 1], 80)
    np.testing.assert_array_equal(
        got, np.stack([sequences[d][j % len(sequences[d])] for d, j in mix])
    )
    assert [d for d, _ in mix[:8]] == [0, 0, 1, 0, 0, 0, 1, 0]


def test_without_weights_runs_mix_by_size_and_an_epoch_sees_every_sequence_once(tmp_path: Path):
    small = write_run(tmp_path / "small", [[21, 20]], seed=1)
    large = write_run(tmp_path / "large", [[50, 31], [40]], seed=2)
    loader = TokenStream([tmp_path / "small", tmp_path / "large"], 4, 8, seed=4)
    got = sorted(map(tuple, np.concatenate(list(loader))))
    assert got == sorted(map(tuple, np.concatenate([windows_of(small, 4), windows_of(large, 4)])))


def test_runs_of_different_tokenizers_are_not_mixed(tmp_path: Path):
    write_run(tmp_path / "a", [[30]])
    write_run(tmp_path / "b", [[30]])
    index = tmp_path / "b" / "index.json"
    index.write_text(index.read_text().replace("0123456789abcdef", "fedcba9876543210"))
    with pytest.raises(ValueError, match="another tokenizer"):
        TokenStream([tmp_path / "a", tmp_path / "b"], 4, 1)


def test_prefetching_yields_the_same_batches_and_state(run):
    folder, _ = run
    plain = TokenStream(folder, 4, 3, seed=2)
    ahead = TokenStream(folder, 4, 3, seed=2, prefetch=3)
    for expected, got in zip(plain, ahead, strict=True):
        np.testing.assert_array_equal(got, expected)
        assert ahead.state_dict() == plain.state_dict()


@pytest.fixture
def small_run(tmp_path: Path) -> Path:
    write_run(tmp_path, [[300, 200], [400], [250, 50]])
    return tmp_path


def test_importing_the_loader_imports_neither_dask_nor_torch():
    code = "import sys, corpusmill.loader; print(sorted({'dask', 'distributed', 'torch'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_folder_without_manifest_names_the_file(tmp_path: Path):
    with pytest.raises(FormatError, match=f"{tmp_path / 'index.json'} does not exist"):
        TokenStream(tmp_path, 8, 2)


def test_the_manifest_path_itself_opens_the_run(small_run):
    assert TokenDataset(small_run / "index.json").tokens == TokenDataset(small_run).tokens == 1200


def test_a_missing_shard_is_named_on_open(small_run):
    (small_run / "shard-00001.arrow").unlink()
    with pytest.raises(FormatError, match=f"{small_run / 'shard-00001.arrow'}: missing"):
        TokenStream(small_run, 8, 2)


def test_a_shard_of_the_wrong_size_is_named_on_open(small_run):
    with open(small_run / "shard-00002.arrow", "ab") as shard:
        shard.write(b"\0")
    with pytest.raises(
        FormatError, match=f"{small_run / 'shard-00002.arrow'}: \\d+ bytes, the manifest says"
    ):
        TokenStream(small_run, 8, 2)


def test_verify_names_a_shard_whose_bytes_changed(small_run):
    path = small_run / "shard-00000.arrow"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=f"{path}: xxh3 [0-9a-f]+, the manifest says"):
        TokenStream(small_run, 8, 2, verify=True)


def test_an_unreadable_shard_is_named_when_first_read_never_yielding_tokens(small_run):
    path = small_run / "shard-00001.arrow"
    path.write_bytes(b"x" * path.stat().st_size)  # right size, not a shard: found on reading
    loader = TokenStream(small_run, 8, 2, shuffle=False)
    with pytest.raises(FormatError, match=f"{path} is not a readable shard"):
        list(loader)


def test_a_shard_holding_other_tokens_than_listed_is_named(small_run):
    index = json.loads((small_run / "index.json").read_text())
    index["shards"][0]["tokens"] = 499
    index["shards"][1]["tokens"] = 401
    (small_run / "index.json").write_text(json.dumps(index))
    with pytest.raises(
        FormatError,
        match=f"{small_run / 'shard-00000.arrow'} holds 500 tokens, the manifest says 499",
    ):
        list(TokenStream(small_run, 8, 2, shuffle=False))


def test_opening_maps_no_shard_and_mapping_copies_no_tokens(tmp_path: Path):
    write_run(tmp_path, [[200_000, 300_000], [100_000]])
    before = pa.total_allocated_bytes()
    dataset = TokenDataset(tmp_path)
    assert not dataset._open
    arrays, index, offsets = dataset.windows(np.array([10, 250_000, 550_000]), 1025)
    sources = [arrays[k] for k in index]
    # Views of the mapping: Arrow allocated nothing, numpy owns nothing, nobody can write.
    assert pa.total_allocated_bytes() == before
    assert all(not source.flags.owndata and not source.flags.writeable for source in sources)
    assert [len(source) for source in sources] == [500_000, 500_000, 100_000]
    assert offsets.tolist() == [10, 250_000, 50_000]


def test_shards_mapped_stay_bounded(tmp_path: Path):
    stream = write_run(tmp_path, [[20]] * 30)
    dataset = TokenDataset(tmp_path, max_open_shards=4)
    for start in range(0, 590, 7):
        arrays, index, offsets = dataset.windows(np.array([start]), 9)
        window = arrays[index[0]][offsets[0] : offsets[0] + 9]
        np.testing.assert_array_equal(window, stream[start : start + 9])
        assert len(dataset._open) <= 4


def test_bytes_of_shards_mapped_stay_bounded_with_at_least_one_mapped(tmp_path: Path):
    stream = write_run(tmp_path, [[20]] * 30)
    size = (tmp_path / "shard-00000.arrow").stat().st_size
    for limit, most in ((3 * size, 3), (1, 1)):
        dataset = TokenDataset(tmp_path, max_open_bytes=limit)
        for start in range(0, 590, 7):
            arrays, index, offsets = dataset.windows(np.array([start]), 9)
            window = arrays[index[0]][offsets[0] : offsets[0] + 9]
            np.testing.assert_array_equal(window, stream[start : start + 9])
            assert 1 <= len(dataset._open) <= most
