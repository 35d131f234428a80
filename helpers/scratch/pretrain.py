"""Pretraining the course's tiny GPT on review text: the data and the loop settings.

Notebook 03 walks through these steps one cell at a time. The profile-driven recipe and the catch-up for
later notebooks (`pretrain_tiny_gpt`, `pretrained_tiny_gpt`: the model saved in artifacts/tiny_gpt if it
was made with this profile's sizes and this tokenizer, else pretrained now) live in the course layer,
`helpers.course.catchup`; this module takes explicit sizes.

The data: `helpers.core.data.pretraining_text`, one review after another with the end-of-text token between
them, encoded with the course tokenizer; the last `VAL_FRACTION` of the stream is held out for the
validation loss (the reviews come in hash order, so the tail is a fair sample).

Left out: data deduplication beyond `helpers.core.data`'s, curriculum, and multi-epoch bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from helpers.core.data import pretraining_text
from helpers.core.training import TrainConfig
from helpers.measure.flops import training_flops_per_token
from helpers.scratch.gpt import GPT
from helpers.scratch.tokenizer import EOT

VAL_FRACTION = 0.1  # share of the token stream held out for validation
SEED = 1337  # model init, batch order and the loop's RNG: the ci run is repeatable


@dataclass(frozen=True)
class PretrainData:
    """The encoded corpus, split into a training stream and a held-out validation stream."""

    train: torch.Tensor  # (N_train,) token ids
    val: torch.Tensor  # (N_val,) token ids
    chars: int  # characters of review text encoded

    @property
    def chars_per_token(self) -> float:
        return self.chars / (len(self.train) + len(self.val))


def pretraining_data(tokenizer, train_chars: int) -> PretrainData:
    """Encode `train_chars` characters of reviews (end-of-text between reviews) and split off validation."""
    text = pretraining_text(train_chars, separator=EOT)
    ids = torch.tensor(tokenizer.encode(text, allowed_special={EOT}), dtype=torch.long)
    cut = int(len(ids) * (1 - VAL_FRACTION))
    return PretrainData(train=ids[:cut], val=ids[cut:], chars=len(text))


def pretrain_config(
    model: GPT, max_steps: int, lr: float, eval_interval: int, block_size: int, **overrides
) -> TrainConfig:
    """The loop settings for pretraining `model` on rows of `block_size` tokens (warm-up = 10 % of the steps,
    seeded, FLOPs counted); `overrides` set any other TrainConfig field (checkpoint_dir, progress, ...)."""
    flops = training_flops_per_token(model, seq_len=block_size)  # 6N + 12*L*C*T: helpers.measure.flops
    values = dict(
        max_steps=max_steps,
        lr=lr,
        warmup_steps=max(1, max_steps // 10),
        eval_interval=eval_interval,
        eval_batches=8,
        seed=SEED,
        name="pretrain tiny GPT",
        route="scratch",
        flops_per_token=flops.per_token,
        flops_method=flops.method,
    )
    return TrainConfig(**{**values, **overrides})
