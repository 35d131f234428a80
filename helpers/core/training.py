"""The one training loop: from-scratch pretraining and LoRA instruction-tuning both run through `train`.

Like minGPT's `trainer.py`, the loop knows nothing about GPT. It takes
- a `torch.nn.Module` (our tiny GPT, or a transformers model wrapped by peft),
- batches: an iterator of dicts `{"input_ids": LongTensor[B, T], "labels": LongTensor[B, T], optional
  "attention_mask", "position_ids"}` with `state_dict()`/`load_state_dict()` (see `helpers.core.batches`).
  Subtle: `labels[:, t]` is the target for position t, *already shifted* (the next token); -100 = ignore,
- a `TrainConfig`,
and returns a `helpers.core.records.RunRecord` (wall time, tokens, FLOPs, achieved FLOP/s, MFU against the
measured peak, peak memory, losses, energy) that the cost ledger reads.

What it does: the precision policy (bf16 autocast, fp16 + gradient scaler, fp32), AdamW with weight-decay
groups, linear warm-up then cosine decay, gradient accumulation and clipping, periodic evaluation on a
fixed set of batches, a `tqdm.auto` progress bar, callbacks (e.g. `helpers.core.plots.LivePlot`), atomic
checkpoints with a checksum (`helpers.core.checkpoints`) and exact resume (model, optimiser, scheduler,
scaler, RNG states, data position, loss history), a clear stop on a NaN/inf loss, and DDP when started
with torchrun (every process draws the same global batch and keeps its slice: 2 processes = 1).

Counting (said once, used everywhere): `tokens` = input positions, padding (attention_mask == 0)
excluded; `extra["label_tokens"]` = positions that carry a loss. FLOPs = `flops_per_token` x tokens;
by default flops_per_token = 2N (forward) + 2N (activation gradients) + 2N_trainable (weight
gradients), which is the familiar 6N for full training (Kaplan et al. 2020, "Scaling Laws", sec. 2.1;
attention's extra FLOPs are left out). Callers with a better count pass their own.

Left out on purpose: model/tensor parallelism, FSDP, torch.compile (no steady-state gain on CPU here),
early stopping, and learning-rate finders.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.core.batches import IGNORE_INDEX
from helpers.core.checkpoints import (  # noqa: F401  (CheckpointError: re-exported for callers)
    CHECKPOINT_FORMAT,
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    load_model_state,
    model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from helpers.core.device import measure_matmul_flops, pick_device, precision_policy
from helpers.core.records import RunRecord

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
    resume: bool | str = False  # True = newest checkpoint in checkpoint_dir (fresh start if none); or a path
    name: str = "run"  # the run record's name, e.g. "pretrain tiny GPT"
    route: str = "scratch"  # "scratch", "instruct", ... (the ledger groups by it)
    flops_per_token: float | None = (
        None  # training FLOPs per token; None = 4N + 2N_trainable (6N if all train)
    )
    flops_method: str | None = None  # how flops_per_token was counted, in words (required with it)
    peak_flops: float | None = None  # peak FLOP/s for MFU; None = measured once per process for the precision
    progress: bool | None = None  # tqdm bar; None = on in Jupyter or a terminal, off otherwise

    def __post_init__(self) -> None:
        positive = {
            "max_steps": self.max_steps,
            "grad_accum_steps": self.grad_accum_steps,
            "eval_batches": self.eval_batches,
            "keep_checkpoints": self.keep_checkpoints,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "eval_interval", "checkpoint_interval"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 0, got {value!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = tuple(self.betas)
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(
                f"TrainConfig.grad_clip must be > 0 or None (no clipping), got {self.grad_clip!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if (self.flops_per_token is None) != (self.flops_method is None):
            raise ValueError(
                "TrainConfig.flops_per_token and flops_method go together: pass both (say how you "
                "counted, e.g. '6*N*D, N = non-embedding params') or neither"
            )
        if self.checkpoint_dir is not None:
            self.checkpoint_dir = str(self.checkpoint_dir)
        if (self.checkpoint_interval or self.resume is True) and self.checkpoint_dir is None:
            raise ValueError(
                "TrainConfig.checkpoint_interval/resume need TrainConfig.checkpoint_dir: "
                "name a folder for the checkpoints"
            )


@dataclass
class TrainState:
    """What callbacks see (rank 0 only). Losses are per optimiser step; val_losses are (step, loss)."""

    name: str
    max_steps: int
    step: int = 0  # optimiser steps completed
    lr: float = 0.0
    tokens: int = 0
    elapsed: float = 0.0  # seconds of training so far (including earlier, resumed-from segments)
    losses: list[float] = field(default_factory=list)
    val_losses: list[tuple[int, float]] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.elapsed if self.elapsed > 0 else 0.0


class Callback:
    """Hooks into the loop; override what you need. Called on rank 0 only, never inside autograd."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_eval_end(self, state: TrainState) -> None: ...
    def on_checkpoint(self, state: TrainState, path: Path) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


class TrainingDivergedError(FloatingPointError):
    """The loss (or gradient norm) became NaN or infinite."""


LossFn = Callable[[nn.Module, dict], torch.Tensor]


# ----------------------------------------------------------------------------- pieces


def default_loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy over positions whose label is not -100.

    Calls `model(input_ids)` (plus attention_mask/position_ids when the batch has them, as transformers
    models expect); the output may be logits, a tuple whose first item is logits, or an object with `.logits`.
    """
    extras = {k: batch[k] for k in ("attention_mask", "position_ids") if k in batch}
    out = model(batch["input_ids"], **extras)
    logits = out.logits if hasattr(out, "logits") else out[0] if isinstance(out, (tuple, list)) else out
    B, T, V = logits.shape
    return F.cross_entropy(
        logits.reshape(B * T, V), batch["labels"].reshape(B * T), ignore_index=IGNORE_INDEX
    )


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


def optimizer_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: `model.configure_optimizer_groups(wd)` if it has one, else decay matrices
    (dim >= 2: linear and embedding weights) and not biases or norm gains. Frozen parameters are left out."""
    if hasattr(model, "configure_optimizer_groups"):
        groups = []
        for group in model.configure_optimizer_groups(weight_decay):
            params = [p for p in group["params"] if p.requires_grad]
            if params:
                groups.append({**group, "params": params})
    else:
        trainable = [p for p in model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError(
            "the model has no trainable parameters (requires_grad=False everywhere): "
            "unfreeze something, e.g. add LoRA adapters, before training"
        )
    return groups


@cache
def measured_peak_flops(device: str, precision: str) -> float:
    """Matmul FLOP/s of `device` in the dtype `precision` trains in: measured once per process (~1 s)."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return measure_matmul_flops(dtype, n=1024, seconds=1.0, device=torch.device(device))


def _peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "torch.cuda.max_memory_allocated during the run"
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
        return int(peak * scale), "process peak RSS (ru_maxrss): includes everything loaded before training"
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss)), "process peak working set (psutil)"


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _context_limit(model: nn.Module) -> int | None:
    """The longest sequence a model accepts, if it says (block_size, n_positions, max_position_embeddings)."""
    for owner in (model, getattr(model, "config", None)):
        for attr in ("block_size", "n_positions", "max_position_embeddings"):
            value = getattr(owner, attr, None)
            if isinstance(value, int):
                return value
    return None


def _vocab_limit(model: nn.Module) -> int | None:
    for owner in (model, getattr(model, "config", None)):
        value = getattr(owner, "vocab_size", None)
        if isinstance(value, int):
            return value
    return None


def check_fits(model: nn.Module, data, what: str = "train_data") -> None:
    """Fail before training when the batches cannot go through the model (too long, unknown token ids)."""
    limit, seq_len = _context_limit(model), getattr(data, "seq_len", None)
    if limit is not None and seq_len is not None and seq_len > limit:
        raise ValueError(
            f"{what} has sequences of {seq_len} tokens but the model accepts at most {limit} (its block_size "
            f"/ max_position_embeddings): build the batches with block_size <= {limit}, or a model with a "
            "longer context"
        )
    vocab, top = _vocab_limit(model), getattr(data, "max_token_id", None)
    if vocab is not None and top is not None and top >= vocab:
        raise ValueError(
            f"{what} contains token id {top} but the model's vocab_size is {vocab}: encode with the "
            f"tokenizer the model was built for, or build the model with vocab_size >= {top + 1}"
        )


# ----------------------------------------------------------------------------- distributed


def _distributed() -> tuple[int, int, int, bool]:
    """(rank, world_size, local_rank, created_here); starts the process group under torchrun."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return 0, 1, 0, False
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        created = True
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), created


def _all_reduce(values: list[float], world: int, op: str = "mean") -> list[float]:
    if world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return (t / world if op == "mean" else t).tolist()


# ----------------------------------------------------------------------------- the loop


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _count(batch: dict, step: int) -> tuple[int, int]:
    """(input tokens without padding, label tokens) of one batch, counted on the CPU before the copy."""
    ids, labels = batch.get("input_ids"), batch.get("labels")
    if ids is None or labels is None or ids.dim() != 2 or ids.shape != labels.shape:
        raise ValueError(
            f"step {step}: a batch must hold 'input_ids' and 'labels' of the same shape [B, T], got "
            f"{ {k: tuple(v.shape) for k, v in batch.items()} }: see helpers.core.batches"
        )
    mask = batch.get("attention_mask")
    tokens = int(mask.sum()) if mask is not None and mask.dim() == 2 else ids.numel()
    label_tokens = int((labels != IGNORE_INDEX).sum())
    if label_tokens == 0:
        raise ValueError(
            f"step {step}: a batch has no label other than -100, so there is nothing to learn "
            "(check the prompt masking and truncation that built it)"
        )
    return tokens, label_tokens


def _check_data(data, config: TrainConfig) -> None:
    if not hasattr(data, "__next__"):
        raise TypeError(
            f"train_data must be an iterator of batch dicts, got {type(data).__name__}: wrap a list of "
            "batches in helpers.core.batches.ListBatches(batches), or a token tensor in TokenBatches(tokens, B, T)"
        )
    if (config.checkpoint_dir or config.resume) and not hasattr(data, "state_dict"):
        raise TypeError(
            f"checkpoints must record the data position, but {type(data).__name__} has no state_dict(): "
            "use helpers.core.batches.TokenBatches / ListBatches, or train without checkpoint_dir"
        )


def _resume_path(config: TrainConfig) -> Path | None:
    """The checkpoint to resume from: resume=True -> the newest in checkpoint_dir (None if there is none
    yet: a fresh start); resume=<path> -> that file (an error if it is missing)."""
    if not config.resume:
        return None
    if config.resume is True:
        found = list_checkpoints(config.checkpoint_dir) if Path(config.checkpoint_dir).is_dir() else []
        return found[-1] if found else None
    return Path(config.resume)


def evaluate(
    model: nn.Module,
    batches: list[dict],
    loss_fn: LossFn = default_loss_fn,
    device: torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> float:
    """Mean loss over `batches` with gradients off and the model in eval mode (dropout off)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad(), _autocast(device, autocast_dtype):
        for batch in batches:
            total += float(loss_fn(model, _to(batch, device)))
    model.train(was_training)
    return total / len(batches)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return (
        torch.autocast(device_type=device.type, dtype=dtype)
        if dtype is not None
        else contextlib.nullcontext()
    )


def _resolve_precision(device: torch.device, asked: str):
    policy = precision_policy(device, None if asked == "auto" else asked)
    if asked != "auto" and policy.name != asked:
        raise ValueError(
            f"TrainConfig.precision={asked!r} is not available on {device.type} ({policy.reason}): "
            f"use 'auto' or {policy.name!r}"
        )
    return policy


def train(
    model: nn.Module,
    train_data: Iterator[dict],
    config: TrainConfig,
    eval_data: Iterator[dict] | list[dict] | None = None,
    loss_fn: LossFn | None = None,
    callbacks: tuple[Callback, ...] | list[Callback] = (),
) -> RunRecord:
    """Train `model` on `train_data` for `config.max_steps` optimiser steps; return the run's record.

    Under torchrun each process must get the same `train_data` object (same seed); the loop keeps its
    slice via `train_data.shard(rank, world_size)`.
    """
    loss_fn = loss_fn or default_loss_fn
    rank, world, local_rank, created_group = _distributed()
    device = torch.device(config.device) if config.device else pick_device()
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
    policy = _resolve_precision(device, config.precision)
    raw_model = model.to(device)
    _check_data(train_data, config)
    check_fits(raw_model, train_data)
    if eval_data is not None:
        check_fits(raw_model, eval_data, "eval_data")
    if world > 1:
        for name, data in (("train_data", train_data), ("eval_data", eval_data)):
            if data is not None and not isinstance(data, list) and not hasattr(data, "shard"):
                raise ValueError(
                    f"{name} has no shard(rank, world_size) method, so {world} processes would train "
                    "on the same rows: use helpers.core.batches.TokenBatches or ListBatches"
                )
        train_data = train_data.shard(rank, world)
        if eval_data is not None and not isinstance(eval_data, list):
            eval_data = eval_data.shard(rank, world)
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(raw_model, device_ids=[local_rank] if device.type == "cuda" else None)

    torch.manual_seed(config.seed + rank)
    random.seed(config.seed + rank)
    np.random.seed(config.seed + rank)
    groups = optimizer_groups(raw_model, config.weight_decay)
    fused = config.fused_adamw and device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(
        groups, lr=config.lr, betas=config.betas, eps=config.eps, fused=fused or None
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, config))
    scaler = torch.amp.GradScaler(device.type, enabled=policy.use_grad_scaler)

    state = TrainState(name=config.name, max_steps=config.max_steps)
    tokens = label_tokens = 0
    previous_seconds = 0.0
    resume_from = _resume_path(config)
    if resume_from is not None:
        payload = load_checkpoint(resume_from)
        load_model_state(raw_model, payload["model"], payload["model_partial"], resume_from.name)
        for part, key in (
            (optimizer, "optimizer"),
            (scheduler, "scheduler"),
            (scaler, "scaler"),
            (train_data, "data"),
        ):
            part.load_state_dict(payload[key])
        set_rng_state(payload["rng"])
        state.step, state.losses = payload["step"], list(payload["losses"])
        state.val_losses = [tuple(v) for v in payload["val_losses"]]
        tokens, label_tokens, previous_seconds = (
            payload["tokens"],
            payload["label_tokens"],
            payload["elapsed"],
        )

    fixed_eval = None
    if eval_data is not None:  # drawn once, so every evaluation (and a resumed run) scores the same rows
        fixed_eval = (
            list(eval_data)
            if isinstance(eval_data, list)
            else [next(eval_data) for _ in range(config.eval_batches)]
        )

    trainable = sum(p.numel() for p in raw_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in raw_model.parameters())
    if config.flops_per_token is not None:
        flops_per_token, flops_method = config.flops_per_token, config.flops_method
    else:
        flops_per_token = 4 * total + 2 * trainable
        flops_method = (
            f"(4N + 2N_trainable) x tokens, N = {total:,} params, N_trainable = {trainable:,} "
            "(forward 2N, activation gradients 2N, weight gradients 2N_trainable; attention excluded)"
        )
    peak = config.peak_flops or measured_peak_flops(str(device), policy.name)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    show = rank == 0
    callbacks = list(callbacks) if show else []
    progress = config.progress if config.progress is not None else (in_notebook() or sys.stderr.isatty())
    from tqdm.auto import tqdm

    bar = tqdm(
        total=config.max_steps,
        initial=state.step,
        desc=config.name,
        disable=not (progress and show),
        leave=False,
        mininterval=0.5,
    )
    try:
        from helpers.core.energy import EnergyMeter

        meter = EnergyMeter(device)
    except ImportError:
        meter = None

    model.train()
    autocast = _autocast(device, policy.autocast_dtype)
    eval_seconds = 0.0
    start = time.perf_counter()
    state.elapsed, state.tokens, state.lr = previous_seconds, tokens, scheduler.get_last_lr()[0]
    for cb in callbacks:
        cb.on_train_begin(state)
    with meter if meter is not None else contextlib.nullcontext():
        while state.step < config.max_steps:
            loss_sum = torch.zeros((), device=device)
            for micro in range(config.grad_accum_steps):
                try:
                    batch = next(train_data)
                except StopIteration:
                    raise ValueError(
                        f"train_data ran out of batches at step {state.step + 1} of {config.max_steps}: "
                        "use an endless source (helpers.core.batches.TokenBatches / ListBatches cycle) or fewer "
                        "max_steps"
                    ) from None
                n_tok, n_lab = _count(batch, state.step)
                tokens, label_tokens = tokens + n_tok, label_tokens + n_lab
                last = micro == config.grad_accum_steps - 1
                sync = contextlib.nullcontext() if world == 1 or last else model.no_sync()
                with sync:
                    with autocast:
                        loss = loss_fn(model, _to(batch, device))
                    scaler.scale(loss / config.grad_accum_steps).backward()
                loss_sum += loss.detach()
            (step_loss,) = _all_reduce([loss_sum.item() / config.grad_accum_steps], world)
            if not math.isfinite(step_loss):
                raise TrainingDivergedError(
                    f"the training loss became {step_loss} at step {state.step + 1} of {config.max_steps} "
                    f"(lr {scheduler.get_last_lr()[0]:.3g}, precision {policy.name}): lower TrainConfig.lr, "
                    "raise warmup_steps, or use precision='fp32'; "
                    "the weights were not updated with it"
                )
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                norm = float(torch.nn.utils.clip_grad_norm_(raw_model.parameters(), config.grad_clip))
                if (
                    not math.isfinite(norm) and not policy.use_grad_scaler
                ):  # the scaler skips such steps itself
                    raise TrainingDivergedError(
                        f"the gradient norm became {norm} at step {state.step + 1} of {config.max_steps}: "
                        "lower TrainConfig.lr, keep "
                        "grad_clip set, or use precision='fp32'; the weights were not updated with it"
                    )
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()

            state.step += 1
            state.losses.append(step_loss)
            state.lr = scheduler.get_last_lr()[0]
            state.tokens = tokens * world  # every process sees the same number of positions per step
            state.elapsed = previous_seconds + time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{state.tokens_per_second:,.0f}", refresh=False)
            for cb in callbacks:
                cb.on_step_end(state)
            at_end = state.step == config.max_steps
            if fixed_eval is not None and (
                at_end or (config.eval_interval and state.step % config.eval_interval == 0)
            ):
                t0 = time.perf_counter()
                (val,) = _all_reduce(
                    [evaluate(model, fixed_eval, loss_fn, device, policy.autocast_dtype)], world
                )
                eval_seconds += time.perf_counter() - t0
                state.val_losses.append((state.step, val))
                for cb in callbacks:
                    cb.on_eval_end(state)
            if config.checkpoint_dir and (
                at_end or (config.checkpoint_interval and state.step % config.checkpoint_interval == 0)
            ):
                weights, partial = model_state(raw_model)
                payload = {
                    "format": CHECKPOINT_FORMAT,
                    "step": state.step,
                    "model": weights,
                    "model_partial": partial,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "data": train_data.state_dict(),
                    "rng": rng_state(),
                    "losses": state.losses,
                    "val_losses": state.val_losses,
                    "tokens": tokens,
                    "label_tokens": label_tokens,
                    "elapsed": previous_seconds + time.perf_counter() - start,
                    "config": {k: v for k, v in asdict(config).items() if k != "resume"},
                }
                if rank == 0:
                    path = save_checkpoint(
                        config.checkpoint_dir, state.step, payload, config.keep_checkpoints
                    )
                    for cb in callbacks:
                        cb.on_checkpoint(state, path)
                if world > 1:
                    torch.distributed.barrier()
    wall = previous_seconds + time.perf_counter() - start
    bar.close()

    tokens, label_tokens = (int(v) for v in _all_reduce([tokens, label_tokens], world, op="sum"))
    peak_memory, memory_method = _peak_memory(device)
    flops = flops_per_token * tokens
    achieved = flops / wall if wall > 0 else 0.0
    tail = state.losses[-10:]
    record = RunRecord(
        name=config.name,
        route=config.route,
        device=device.type,
        precision=policy.name,
        steps=state.step,
        wall_seconds=wall,
        tokens=tokens,
        flops=flops,
        flops_method=flops_method,
        achieved_flops_per_s=achieved,
        peak_flops_per_s=peak * world,
        mfu=achieved / (peak * world),
        peak_memory_bytes=peak_memory,
        trainable_params=trainable,
        total_params=total,
        final_train_loss=sum(tail) / len(tail) if tail else None,
        final_val_loss=state.val_losses[-1][1] if state.val_losses else None,
        energy_kwh=getattr(meter, "kwh", None),
        energy_method=getattr(meter, "method", None),
        losses=list(state.losses),
        val_losses=list(state.val_losses),
        extra={
            "label_tokens": label_tokens,
            "world_size": world,
            "grad_accum_steps": config.grad_accum_steps,
            "lr": config.lr,
            "eval_seconds": round(eval_seconds, 3),
            "peak_memory_method": memory_method,
            "final_train_loss_is": f"mean of the last {len(tail)} step losses",
            "tokens_are": "input positions, padding excluded (label_tokens: positions with a loss)",
            "precision_reason": policy.reason,
        },
    )
    for cb in callbacks:
        cb.on_train_end(state)
    if created_group:
        torch.distributed.destroy_process_group()
    return record
