"""Tests for helpers.scratch.pretrain: the data split, and the catch-up path that later notebooks use.

Run: .venv/bin/python -m pytest tests/test_pretrain.py -q
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import helpers.scratch.pretrain as pretrain
from helpers.course.profiles import PretrainSizes, Profile, TokenizerSizes
from helpers.scratch.tokenizer import BPETokenizer

TINY = Profile(
    "ci",
    tokenizer=TokenizerSizes(train_chars=20_000, vocab_size=300),
    pretrain=PretrainSizes(
        n_layer=1,
        n_head=2,
        n_embd=16,
        block_size=16,
        batch_size=4,
        max_steps=4,
        eval_interval=2,
        train_chars=20_000,
    ),
)


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_ARTIFACTS_DIR", str(tmp_path))
    return tmp_path


def test_data_is_split_and_reviews_are_separated(artifacts):
    tok = BPETokenizer.train("a good film. a bad film. " * 50, 270)
    data = pretrain.pretraining_data(tok, 5_000)
    n = len(data.train) + len(data.val)
    assert len(data.val) == n - int(n * (1 - pretrain.VAL_FRACTION))
    assert (torch.cat([data.train, data.val]) == tok.eot_id).sum() > 1  # end-of-text between reviews
    assert data.chars_per_token > 1


def test_pretrained_tiny_gpt_trains_once_then_loads(artifacts, monkeypatch):
    model, record = pretrain.pretrained_tiny_gpt(TINY)
    assert (artifacts / "tiny_gpt" / pretrain.RUN_FILE).is_file()
    assert record.steps == 4 and record.route == "scratch" and len(record.val_losses) == 2

    def no_training(*args, **kwargs):
        raise AssertionError("the saved model should have been loaded, not trained again")

    monkeypatch.setattr(pretrain, "pretrain_tiny_gpt", no_training)
    again, same_record = pretrain.pretrained_tiny_gpt(TINY)
    assert same_record == record
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_other_sizes_or_damage_trigger_a_rebuild(artifacts):
    pretrain.pretrained_tiny_gpt(TINY)
    longer = dataclasses.replace(TINY, pretrain=dataclasses.replace(TINY.pretrain, max_steps=6))
    _, record = pretrain.pretrained_tiny_gpt(longer)
    assert record.steps == 6
    (artifacts / "tiny_gpt" / pretrain.RUN_FILE).write_text("{not json")
    _, record = pretrain.pretrained_tiny_gpt(longer)
    assert record.steps == 6
