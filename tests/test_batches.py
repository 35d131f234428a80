"""Tests for helpers.core.batches: windows line up, seeds repeat, positions resume, shards tile the global batch.

Run: .venv/bin/python -m pytest tests/test_batches.py -q
"""

from __future__ import annotations

import pytest
import torch

from helpers.core.batches import ListBatches, TokenBatches


def _draw(batches, n):
    return [next(batches) for _ in range(n)]


def test_windows_are_shifted_by_one_token():
    tokens = torch.arange(50)
    batch = next(TokenBatches(tokens, batch_size=3, block_size=5, seed=0))
    assert batch["input_ids"].shape == batch["labels"].shape == (3, 5)
    assert torch.equal(batch["labels"], batch["input_ids"] + 1)  # arange: the next token is id + 1


def test_same_seed_same_batches_and_state_resumes():
    tokens = torch.arange(100)
    a, b = TokenBatches(tokens, 4, 8, seed=3), TokenBatches(tokens, 4, 8, seed=3)
    _draw(a, 2)
    saved = a.state_dict()
    after = _draw(a, 3)
    b.load_state_dict(saved)
    assert b.batches_drawn == 2
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(after, _draw(b, 3), strict=False))


def test_shards_tile_the_global_batch():
    tokens = torch.arange(200)
    whole = _draw(TokenBatches(tokens, 8, 6, seed=5), 3)
    parts = [_draw(TokenBatches(tokens, 4, 6, seed=5).shard(r, 2), 3) for r in range(2)]
    for i in range(3):
        glued = torch.cat([parts[0][i]["input_ids"], parts[1][i]["input_ids"]])
        assert torch.equal(glued, whole[i]["input_ids"])


@pytest.mark.parametrize(
    ("n_tokens", "batch_size", "block_size", "message"),
    [
        (20, 30, 8, "larger than the data"),
        (5, 1, 8, "needs 9 tokens"),
        (50, 0, 8, "batch_size must be an integer >= 1, got 0"),
    ],
)
def test_bad_sizes_give_clear_errors(n_tokens, batch_size, block_size, message):
    with pytest.raises(ValueError, match=message):
        TokenBatches(torch.arange(n_tokens), batch_size, block_size)


def test_two_dimensional_tokens_are_refused():
    with pytest.raises(ValueError, match="1-D"):
        TokenBatches(torch.zeros(4, 10, dtype=torch.long), 1, 4)


def _batches(n, rows=4, T=3):
    return [{"input_ids": torch.full((rows, T), i), "labels": torch.full((rows, T), i)} for i in range(n)]


def test_list_batches_cycle_shuffle_and_resume():
    lb = ListBatches(_batches(5), shuffle=True, seed=1)
    first_epoch = [int(b["input_ids"][0, 0]) for b in _draw(lb, 5)]
    assert sorted(first_epoch) == list(range(5))
    saved = lb.state_dict()
    rest = [int(b["input_ids"][0, 0]) for b in _draw(lb, 7)]
    again = ListBatches(_batches(5), shuffle=True, seed=1)
    again.load_state_dict(saved)
    assert [int(b["input_ids"][0, 0]) for b in _draw(again, 7)] == rest


def test_list_batches_shard_rows():
    lb = ListBatches(_batches(2, rows=4))
    halves = [next(lb.shard(r, 2))["input_ids"] for r in range(2)]
    assert all(h.shape == (2, 3) for h in halves)


@pytest.mark.parametrize(
    ("batches", "message"),
    [
        ([], "no batches"),
        ([{"input_ids": torch.zeros(2, 3, dtype=torch.long)}], "needs 'input_ids' and 'labels'"),
        (
            [
                {
                    "input_ids": torch.zeros(2, 3, dtype=torch.long),
                    "labels": torch.zeros(2, 4, dtype=torch.long),
                }
            ],
            "must both be",
        ),
    ],
)
def test_list_batches_bad_input(batches, message):
    with pytest.raises(ValueError, match=message):
        ListBatches(batches)


def test_fingerprint_names_the_data_not_its_position():
    """What a checkpoint's run identity hashes: same data = same fingerprint, wherever the stream is."""
    tokens = torch.arange(100)
    a = TokenBatches(tokens, 4, 8, seed=3)
    before = a.fingerprint()
    _draw(a, 2)
    assert a.fingerprint() == before == TokenBatches(tokens.clone(), 4, 8, seed=3).fingerprint()
    others = [TokenBatches(tokens, 4, 8, seed=4), TokenBatches(tokens, 2, 8, seed=3),
              TokenBatches(tokens, 4, 6, seed=3), TokenBatches(tokens.flip(0), 4, 8, seed=3)]
    assert len({before, *(o.fingerprint() for o in others)}) == 5
    batch = next(TokenBatches(tokens, 2, 4, seed=0))
    listed = ListBatches([batch], shuffle=True, seed=1)
    next(listed)
    assert listed.fingerprint() == ListBatches([dict(batch)], shuffle=True, seed=1).fingerprint()
    changed = {**batch, "labels": batch["labels"].clone().fill_(-100)}
    assert len({listed.fingerprint(), ListBatches([changed], shuffle=True, seed=1).fingerprint(),
                ListBatches([batch], shuffle=True, seed=2).fingerprint()}) == 3
