"""The PyTorch adapter: a DataLoader with any number of workers yields the stream's batches in its
order, as int64 or int32 tensors, and its state (or StatefulDataLoader's) resumes exactly."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_loader import all_batches  # noqa: E402
from test_loader import run as run  # noqa: E402, F401 (its fixture)

from corpusmill.loader import TokenStream  # noqa: E402
from corpusmill.loader.torch import TokenBatches, TokenLoader  # noqa: E402

# 31 sequences of 8 tokens: 7 global batches of 4 and a short one, crossing shard boundaries.
SETTINGS = {"seq_len": 8, "batch_size": 4, "seed": 3, "block_tokens": 16, "window_blocks": 2}


def stream_batches(folder, epochs: int = 1, **options) -> list[np.ndarray]:
    return all_batches(TokenStream(folder, **(SETTINGS | options)), epochs)


def loader_batches(loader, epochs: int = 1) -> list[np.ndarray]:
    return [batch.numpy() for _ in range(epochs) for batch in loader]


def endless(loader):
    """The loader's batches epoch after epoch."""
    while True:
        yield from loader


def assert_same(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("workers", [0, 2, 3])
def test_a_loader_with_any_number_of_workers_yields_the_streams_batches_in_order(run, workers):
    folder, _ = run
    loader = TokenLoader(folder, **SETTINGS, num_workers=workers)
    got = loader_batches(loader, epochs=2)
    assert_same(got, stream_batches(folder, epochs=2))
    assert all(batch.dtype == np.int64 for batch in got)
    assert loader.state_dict() == TokenStream(folder, **SETTINGS).state_dict() | {"epoch": 2}


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(("rank", "last_rows"), [(0, [1]), (4, [])])
def test_ranks_without_drop_last_get_their_rows_of_the_short_last_batch(
    run, workers, rank, last_rows
):
    folder, _ = run
    # 31 sequences in global batches of 10: the fourth holds one, rank 0's.
    options = {"world_size": 5, "rank": rank, "drop_last": False, "batch_size": 2}
    loader = TokenLoader(folder, **(SETTINGS | options), num_workers=workers)
    expected = stream_batches(folder, **options)
    assert [len(batch) for batch in expected] == [2, 2, 2, *last_rows]
    assert_same(loader_batches(loader, epochs=2), stream_batches(folder, epochs=2, **options))
    assert loader.state_dict()["epoch"] == 2


@pytest.mark.parametrize(("workers", "resumed_workers"), [(0, 2), (2, 2), (2, 3), (3, 0)])
def test_a_state_taken_after_k_batches_resumes_at_batch_k_plus_one(run, workers, resumed_workers):
    folder, _ = run
    expected = stream_batches(folder, epochs=2)
    for k in (1, 4, 7, 9):  # 7 batches an epoch
        loader = TokenLoader(folder, **SETTINGS, num_workers=workers)
        taken = [batch.numpy() for _, batch in zip(range(k), endless(loader), strict=False)]
        state = json.loads(json.dumps(loader.state_dict()))
        assert (state["epoch"], state["position"]) == (k // 7, k % 7 * 4)
        resumed = TokenLoader(folder, **SETTINGS, num_workers=resumed_workers)
        resumed.load_state_dict(state)
        assert_same(taken + loader_batches(resumed, epochs=2 - state["epoch"]), expected)


def test_a_loaders_state_resumes_a_stream_and_a_streams_the_loader(run):
    folder, _ = run
    expected = stream_batches(folder)
    loader = TokenLoader(folder, **SETTINGS, num_workers=2)
    first = [batch.numpy() for _, batch in zip(range(3), loader, strict=False)]
    stream = TokenStream(folder, **SETTINGS)
    stream.load_state_dict(loader.state_dict())
    assert_same(first + list(stream), expected)
    stream = TokenStream(folder, **SETTINGS)
    first = [batch for _, batch in zip(range(5), stream, strict=False)]
    loader = TokenLoader(folder, **SETTINGS, num_workers=2)
    loader.load_state_dict(stream.state_dict())
    assert_same(first + loader_batches(loader), expected)


def test_a_state_of_another_seed_is_refused_naming_it(run):
    folder, _ = run
    loader = TokenLoader(folder, **SETTINGS)
    with pytest.raises(ValueError, match="seed"):
        loader.load_state_dict(TokenLoader(folder, **(SETTINGS | {"seed": 4})).state_dict())


def test_int32_and_int64_batches_feed_an_embedding(run):
    folder, _ = run
    embedding = torch.nn.Embedding(60000, 3)
    for dtype in (torch.int64, torch.int32):
        batch = next(iter(TokenLoader(folder, **SETTINGS, dtype=dtype, num_workers=2)))
        assert batch.dtype == dtype and batch.shape == (4, 9)
        assert embedding(batch[:, :-1]).shape == (4, 8, 3)
    with pytest.raises(ValueError, match="torch.int64 or torch.int32"):
        TokenLoader(folder, **SETTINGS, dtype=torch.uint16)


def test_the_dataset_pickles_without_its_memory_maps(run):
    folder, _ = run
    batches = TokenBatches(folder, **SETTINGS)
    copy = pickle.loads(pickle.dumps(batches))
    assert len(pickle.dumps(batches)) < 4000
    assert_same([batch.numpy() for batch in copy], stream_batches(folder))


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stateful_dataloader_state_resumes_exactly_across_epochs(run, workers):
    stateful = pytest.importorskip("torchdata.stateful_dataloader")
    folder, _ = run
    expected = stream_batches(folder, epochs=2)

    def loader():
        return stateful.StatefulDataLoader(
            TokenBatches(folder, **SETTINGS),
            batch_size=None,
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    for k in (1, 3, 6, 9):  # 7 batches an epoch
        first = loader()
        taken = [batch.numpy() for _, batch in zip(range(k), endless(first), strict=False)]
        resumed = loader()
        resumed.load_state_dict(first.state_dict())
        assert_same(taken + loader_batches(resumed, epochs=2 - k // 7), expected)
