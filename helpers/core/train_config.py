"""How to train: `TrainConfig`, every knob of the one loop (`helpers.core.training`), checked once, here.

Each default carries its reason; `__post_init__` refuses what cannot work (a bool where a count is due,
NaN, a negative rate, a device this machine lacks) naming the field, the value and the fix, so `train`
never starts on a config that fails later. `lr_factor` is the learning-rate schedule the config describes.

Left out on purpose: schedules other than warm-up + cosine, and per-group learning rates.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass

from helpers.core.device import pick_device

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """How to train. The batch size is the data's business (`helpers.core.batches`), not the config's."""

    max_steps: int = 100  # optimiser steps (each sees grad_accum_steps micro-batches)
    grad_accum_steps: int = 1  # micro-batches per optimiser step: a bigger batch without more memory
    lr: float = 3e-4  # peak learning rate, reached after warm-up (nanoGPT's 6e-4 halved for safety)
    weight_decay: float = 0.1  # AdamW decay on matrices only (GPT-3); LoRA runs usually pass 0.0
    betas: tuple[float, float] = (0.9, 0.95)  # beta2 = 0.95 is steadier than 0.999 for LMs (GPT-3)
    eps: float = 1e-8  # AdamW's default
    warmup_steps: int = 10  # linear ramp from lr/warmup to lr: avoids early blow-ups
    min_lr_ratio: float = 0.1  # cosine decays to lr * 0.1 (Chinchilla paper's choice)
    grad_clip: float | None = 1.0  # clip the global grad norm (GPT-3); None = no clipping
    eval_interval: int = 0  # evaluate every N steps and at the end; 0 = only at the end
    eval_batches: int = 8  # batches in the fixed evaluation set (drawn once, reused every time)
    precision: str = "auto"  # "auto" = helpers.core.device.precision_policy; or "fp32", "bf16", "fp16"
    device: str | None = None  # None = helpers.core.device.pick_device() (cuda > mps > cpu)
    seed: int = 1337  # seeds torch/python/numpy at the start (dropout, etc.); model init is the caller's
    fused_adamw: bool = True  # one fused kernel per step on CPU/CUDA: faster than the for-each version
    checkpoint_dir: str | None = None  # None = no checkpoints
    checkpoint_interval: int = 0  # save every N steps and at the end; 0 = only at the end
    keep_checkpoints: int = 2  # newest files kept: a broken newest one never takes the last good one
    resume: bool | str = False  # True = this run's newest checkpoint in checkpoint_dir (fresh if none); or a path
    name: str = "run"  # the run record's name, e.g. "pretrain tiny GPT"
    route: str = "scratch"  # "scratch", "instruct", ... (the ledger groups by it)
    flops_per_token: float | None = None  # training FLOPs per token (helpers.measure.flops); None = not counted
    flops_method: str | None = None  # how flops_per_token was counted, in words (required with it)
    peak_flops: float | None = None  # peak FLOP/s for MFU; None = measured once per process for the precision
    progress: bool | None = None  # tqdm bar; None = on in Jupyter or a terminal, off otherwise

    def __post_init__(self) -> None:
        self._check_counts()
        self._check_numbers()
        self._check_choices()
        self._check_checkpoints()

    def _check_counts(self) -> None:
        for name, low in (("max_steps", 1), ("grad_accum_steps", 1), ("eval_batches", 1), ("keep_checkpoints", 1),
                          ("warmup_steps", 0), ("eval_interval", 0), ("checkpoint_interval", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                what = "a positive integer" if low == 1 else "an integer >= 0"
                raise ValueError(f"TrainConfig.{name} must be {what}, got {value!r}"
                                 + (" (a bool is not a count)" if isinstance(value, bool) else ""))
            setattr(self, name, int(value))  # numpy integers become plain ints (JSON, checkpoints)
        if not _is_int(self.seed):
            raise ValueError(f"TrainConfig.seed must be an integer, got {self.seed!r}")
        self.seed = int(self.seed)

    def _check_numbers(self) -> None:
        if not (_is_number(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if not (_is_number(self.eps) and self.eps > 0):
            raise ValueError(f"TrainConfig.eps must be a positive number, got {self.eps!r}: AdamW's default is 1e-8")
        if not (_is_number(self.min_lr_ratio) and 0.0 <= self.min_lr_ratio <= 1.0):
            raise ValueError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if not (_is_number(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"TrainConfig.weight_decay must be a number >= 0, got {self.weight_decay!r}")
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else ()
        if len(betas) != 2 or not all(_is_number(b) and 0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = betas
        for name in ("grad_clip", "peak_flops", "flops_per_token"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and value > 0):
                raise ValueError(f"TrainConfig.{name} must be a positive number or None, got {value!r}"
                                 + (" (None = no clipping)" if name == "grad_clip" else ""))

    def _check_choices(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.device is not None:
            try:
                pick_device(str(self.device))
            except ValueError as err:
                raise ValueError(f"TrainConfig.device={self.device!r}: {err}") from None
            self.device = str(self.device)
        for name in ("fused_adamw", "progress"):
            value = getattr(self, name)
            if not (isinstance(value, bool) or (name == "progress" and value is None)):
                raise ValueError(f"TrainConfig.{name} must be True or False, got {value!r}")
        for name in ("name", "route"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"TrainConfig.{name} must be a non-empty string, got {getattr(self, name)!r}")
        if (self.flops_per_token is None) != (self.flops_method is None):
            raise ValueError(
                "TrainConfig.flops_per_token and flops_method go together: pass both (say how you "
                "counted, e.g. helpers.measure.flops.training_flops_per_token(model)) or neither"
            )

    def _check_checkpoints(self) -> None:
        if self.checkpoint_dir is not None:
            if not isinstance(self.checkpoint_dir, (str, os.PathLike)) or not str(self.checkpoint_dir).strip():
                raise ValueError(f"TrainConfig.checkpoint_dir must be a folder path or None, got "
                                 f"{self.checkpoint_dir!r}")
            self.checkpoint_dir = str(self.checkpoint_dir)
        if not isinstance(self.resume, (bool, str, os.PathLike)) or (
            not isinstance(self.resume, bool) and not str(self.resume).strip()
        ):
            raise ValueError(f"TrainConfig.resume must be True, False or a checkpoint file's path, got "
                             f"{self.resume!r}")
        if isinstance(self.resume, os.PathLike):
            self.resume = str(self.resume)
        if (self.checkpoint_interval or self.resume is True) and self.checkpoint_dir is None:
            raise ValueError(
                "TrainConfig.checkpoint_interval/resume need TrainConfig.checkpoint_dir: "
                "name a folder for the checkpoints"
            )


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier on config.lr at optimiser step `step` (0-based): linear warm-up, then cosine decay.

    >>> c = TrainConfig(max_steps=10, warmup_steps=2, min_lr_ratio=0.1)
    >>> [round(lr_factor(s, c), 3) for s in (0, 1, 2, 9)]
    [0.5, 1.0, 1.0, 0.1]
    """
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    decay_steps = max(1, config.max_steps - 1 - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine
