"""Tests for helpers.scratch.pretrain: the data split and the loop settings (the catch-up that later
notebooks use, helpers.course.catchup.pretrained_tiny_gpt: tests/test_catch_up.py).

Run: .venv/bin/python -m pytest tests/test_pretrain.py -q
"""

from __future__ import annotations

import pytest
import torch

import helpers.scratch.pretrain as pretrain
from helpers.scratch.gpt import GPT, GPTConfig
from helpers.scratch.tokenizer import BPETokenizer


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


def test_pretrain_config_takes_explicit_sizes():
    model = GPT(GPTConfig.preset("gpt-nano", vocab_size=300, block_size=16))
    config = pretrain.pretrain_config(model, max_steps=40, lr=1e-3, eval_interval=10, block_size=16,
                                      progress=False)
    assert (config.max_steps, config.lr, config.eval_interval, config.warmup_steps) == (40, 1e-3, 10, 4)
    assert (config.seed, config.route, config.progress) == (pretrain.SEED, "scratch", False)
    assert config.flops_per_token > 0 and config.flops_method
