"""The one training loop: from-scratch pretraining and LoRA instruction-tuning both run through `train`.

Like minGPT's `trainer.py`, the loop knows nothing about GPT. It takes
- a `torch.nn.Module` (our tiny GPT, or a transformers model wrapped by peft),
- batches: an iterator of dicts `{"input_ids": LongTensor[B, T], "labels": LongTensor[B, T], optional
  "attention_mask", "position_ids"}` with `state_dict()`/`load_state_dict()` (see `helpers.core.batches`).
  Subtle: `labels[:, t]` is the target for position t, *already shifted* (the next token); -100 = ignore,
- a `TrainConfig` (`helpers.core.train_config`),
and returns a `helpers.core.records.RunRecord` (wall time, tokens, FLOPs, achieved FLOP/s, MFU against the
measured peak, peak memory, losses, energy) that the cost ledger reads.

`train` reads as its steps: set up (device, precision, DDP, optimiser) -> restore (a checkpoint of the
same run) -> repeat {step, evaluate, checkpoint} -> record. What they do: the precision policy (bf16
autocast, fp16 + gradient scaler, fp32), AdamW with weight-decay groups, linear warm-up then cosine decay,
gradient accumulation and clipping, evaluation on a fixed set of batches, a `tqdm.auto` progress bar,
callbacks (e.g. `helpers.core.plots.LivePlot`), checkpoints (`helpers.core.checkpoints`: atomic,
checksummed, tied to the run's identity) with exact resume, a clear stop on a NaN/inf loss, and DDP when
started with torchrun (every process draws the same global batch and keeps its slice: 2 processes = 1).

Counting (said once, used everywhere): `tokens` = input positions, padding (attention_mask == 0)
excluded; `extra["label_tokens"]` = positions that carry a loss. FLOPs = `config.flops_per_token` x
tokens, counted by the caller (`helpers.measure.flops.training_flops_per_token`), who knows the model;
without it the record says FLOPs were not counted (flops and MFU None) rather than guess.

Left out on purpose: model/tensor parallelism, FSDP, torch.compile (no steady-state gain on CPU here),
early stopping, and learning-rate finders.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.core.checkpoints import (  # noqa: F401  (CheckpointError, list/load: re-exported for callers)
    Checkpoint,
    CheckpointError,
    check_same_run,
    data_identity,
    list_checkpoints,
    load_checkpoint,
    load_model_state,
    model_state,
    resume_point,
    rng_state,
    run_identity,
    save_checkpoint,
    set_rng_state,
)
from helpers.core.device import PrecisionPolicy, pick_device
from helpers.core.energy import EnergyMeter
from helpers.core.loop_parts import (  # noqa: F401  (the loop's pieces, importable from here as before)
    LossFn,
    all_reduce,
    autocast,
    check_arguments,
    check_fits,
    count_tokens,
    default_loss_fn,
    distributed,
    draw_eval_set,
    evaluate,
    in_notebook,
    measured_peak_flops,
    optimizer_groups,
    peak_memory,
    resolve_precision,
    shard_for_ddp,
    to_device,
)
from helpers.core.records import RunRecord
from helpers.core.train_config import PRECISIONS, TrainConfig, lr_factor  # noqa: F401  (re-exported)

FLOPS_NOT_COUNTED = (
    "not counted: pass TrainConfig(flops_per_token=..., flops_method=...), e.g. from "
    "helpers.measure.flops.training_flops_per_token(model)"
)
# What may change between the segments of one run (resume with these changed continues the same run):
# its length, bookkeeping, where it runs and how it is measured. Every other field shapes the trajectory.
NOT_IN_RUN_IDENTITY = (
    "max_steps", "resume", "checkpoint_dir", "checkpoint_interval", "keep_checkpoints", "eval_interval",
    "eval_batches", "name", "route", "device", "progress", "peak_flops", "flops_per_token", "flops_method",
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
    def on_checkpoint(self, state: TrainState, path) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


class TrainingDivergedError(FloatingPointError):
    """The loss (or gradient norm) became NaN or infinite."""


@dataclass
class _Run:
    """Everything one call of `train` works with: built by `_set_up`, advanced by the steps below."""

    config: TrainConfig
    model: nn.Module  # what the forward pass runs through: the DDP wrapper under torchrun, else raw_model
    raw_model: nn.Module
    train_data: Iterator[dict]
    fixed_eval: list[dict] | None
    device: torch.device
    policy: PrecisionPolicy
    rank: int
    world: int
    created_group: bool
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    identity: dict  # {"config": ..., "data": ...}: hashed into every checkpoint's run_id
    peak_flops: float
    state: TrainState
    started_ns: int = field(default_factory=time.time_ns)  # when step 0 began; a resume keeps the original
    tokens: int = 0  # this process's input tokens (a resume starts from the checkpoint's count)
    label_tokens: int = 0
    previous_seconds: float = 0.0  # training time of earlier segments (resume)
    start: float = field(default_factory=time.perf_counter)
    eval_seconds: float = 0.0

    def seconds(self) -> float:
        return self.previous_seconds + time.perf_counter() - self.start


# ----------------------------------------------------------------------------- the loop


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
    check_arguments(model, train_data, config, eval_data, loss_fn, callbacks)
    run = _set_up(model, train_data, config, eval_data)
    try:
        _restore(run)
        return _loop(run, loss_fn or default_loss_fn, list(callbacks) if run.rank == 0 else [])
    finally:
        if run.created_group:
            torch.distributed.destroy_process_group()


def _loop(run: _Run, loss_fn: LossFn, callbacks: list[Callback]) -> RunRecord:
    """Step, evaluate, checkpoint until max_steps, with the progress bar and the energy meter around it."""
    config = run.config
    show = config.progress if config.progress is not None else (in_notebook() or sys.stderr.isatty())
    bar = tqdm(total=config.max_steps, initial=run.state.step, desc=config.name,
               disable=not (show and run.rank == 0), leave=False, mininterval=0.5)
    try:
        meter = EnergyMeter(run.device)
        run.start = time.perf_counter()
        run.state.elapsed, run.state.tokens = run.previous_seconds, run.tokens * run.world
        run.state.lr = run.scheduler.get_last_lr()[0]
        for cb in callbacks:
            cb.on_train_begin(run.state)
        with meter:
            while run.state.step < config.max_steps:
                step_loss = _step(run, loss_fn)
                _advance(run, step_loss, bar, callbacks)
                _maybe_evaluate(run, loss_fn, callbacks)
                _maybe_checkpoint(run, callbacks)
        wall = run.seconds()
    finally:
        bar.close()
    record = _record(run, wall, meter)
    for cb in callbacks:
        cb.on_train_end(run.state)
    return record


def _set_up(model: nn.Module, train_data, config: TrainConfig, eval_data) -> _Run:
    """Device, precision, checks of the data against the model, DDP, the fixed eval set, seeds, optimiser."""
    device = pick_device(config.device)
    rank, world, local_rank, created_group = distributed(device.type)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
    policy = resolve_precision(device, config.precision)
    peak = config.peak_flops or measured_peak_flops(str(device), policy.name)  # once per process
    raw_model = model.to(device)
    check_fits(raw_model, train_data)
    if eval_data is not None:
        check_fits(raw_model, eval_data, "eval_data")
    identity = _identity(config, train_data) if (config.checkpoint_dir or config.resume) else {}
    if world > 1:
        model, train_data, eval_data = shard_for_ddp(raw_model, train_data, eval_data, rank, world, device)
    fixed_eval = draw_eval_set(eval_data, config.eval_batches)  # before seeding: a resume draws the same
    torch.manual_seed(config.seed + rank)
    random.seed(config.seed + rank)
    np.random.seed(config.seed + rank)
    fused = config.fused_adamw and device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(
        optimizer_groups(raw_model, config.weight_decay), lr=config.lr, betas=config.betas, eps=config.eps,
        fused=fused or None,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, config))
    scaler = torch.amp.GradScaler(device.type, enabled=policy.use_grad_scaler)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return _Run(
        config=config, model=model, raw_model=raw_model, train_data=train_data, fixed_eval=fixed_eval,
        device=device, policy=policy, rank=rank, world=world, created_group=created_group,
        optimizer=optimizer, scheduler=scheduler, scaler=scaler, identity=identity, peak_flops=peak,
        state=TrainState(name=config.name, max_steps=config.max_steps),
    )


def _identity(config: TrainConfig, train_data) -> dict:
    """What makes this run this run: the config fields that shape its trajectory, and its data."""
    shaping = {k: v for k, v in asdict(config).items() if k not in NOT_IN_RUN_IDENTITY}
    return {"config": shaping, "data": data_identity(train_data)}


# ----------------------------------------------------------------------------- checkpoint <-> run


def _capture(run: _Run) -> Checkpoint:
    """This run's state as a Checkpoint (the inverse of `_restore_from`)."""
    weights, partial = model_state(run.raw_model)
    return Checkpoint(
        step=run.state.step, run_id=run_identity(run.identity), run=run.identity, started_ns=run.started_ns,
        model=weights, model_partial=partial, optimizer=run.optimizer.state_dict(),
        scheduler=run.scheduler.state_dict(), scaler=run.scaler.state_dict(),
        data=run.train_data.state_dict(), rng=rng_state(), losses=list(run.state.losses),
        val_losses=list(run.state.val_losses), tokens=run.tokens, label_tokens=run.label_tokens,
        elapsed=run.seconds(), config={k: v for k, v in asdict(run.config).items() if k != "resume"},
    )


def _restore_from(run: _Run, checkpoint: Checkpoint, name: str) -> None:
    """Put a checkpoint's state back into the run (the inverse of `_capture`)."""
    load_model_state(run.raw_model, checkpoint.model, checkpoint.model_partial, name)
    run.optimizer.load_state_dict(checkpoint.optimizer)
    run.scheduler.load_state_dict(checkpoint.scheduler)
    run.scaler.load_state_dict(checkpoint.scaler)
    run.train_data.load_state_dict(checkpoint.data)
    set_rng_state(checkpoint.rng)
    run.state.step, run.state.losses = checkpoint.step, list(checkpoint.losses)
    run.state.val_losses = [tuple(v) for v in checkpoint.val_losses]
    run.tokens, run.label_tokens = checkpoint.tokens, checkpoint.label_tokens
    run.previous_seconds, run.started_ns = checkpoint.elapsed, checkpoint.started_ns


def _restore(run: _Run) -> None:
    """resume=True: this run's newest checkpoint in checkpoint_dir (none yet: a fresh start); resume=<path>:
    that file. Either way a checkpoint of another run (other config or data) is refused."""
    resume = run.config.resume
    if not resume:
        return
    path = resume_point(run.config.checkpoint_dir, run.identity) if resume is True else Path(resume)
    if path is None:
        return
    checkpoint = load_checkpoint(path)
    check_same_run(checkpoint, run.identity, path)
    _restore_from(run, checkpoint, path.name)


# ----------------------------------------------------------------------------- one step and its aftermath


def _step(run: _Run, loss_fn: LossFn) -> float:
    """One optimiser step over grad_accum_steps micro-batches; returns its mean loss over all processes."""
    config, accum = run.config, run.config.grad_accum_steps
    loss_sum = torch.zeros((), device=run.device)
    for micro in range(accum):
        batch = _next_batch(run)
        n_tok, n_lab = count_tokens(batch, run.state.step)
        run.tokens, run.label_tokens = run.tokens + n_tok, run.label_tokens + n_lab
        last = micro == accum - 1
        sync = contextlib.nullcontext() if run.world == 1 or last else run.model.no_sync()
        with sync:
            with autocast(run.device, run.policy.autocast_dtype):
                loss = loss_fn(run.model, to_device(batch, run.device))
            run.scaler.scale(loss / accum).backward()
        loss_sum += loss.detach()
    (step_loss,) = all_reduce([loss_sum.item() / accum], run.world)
    where = f"at step {run.state.step + 1} of {config.max_steps}"
    if not math.isfinite(step_loss):
        raise TrainingDivergedError(
            f"the training loss became {step_loss} {where} (lr {run.scheduler.get_last_lr()[0]:.3g}, precision "
            f"{run.policy.name}): lower TrainConfig.lr, raise warmup_steps, or use precision='fp32'; "
            "the weights were not updated with it"
        )
    if config.grad_clip is not None:
        run.scaler.unscale_(run.optimizer)
        norm = float(torch.nn.utils.clip_grad_norm_(run.raw_model.parameters(), config.grad_clip))
        if not math.isfinite(norm) and not run.policy.use_grad_scaler:  # the scaler skips such steps itself
            raise TrainingDivergedError(
                f"the gradient norm became {norm} {where}: lower TrainConfig.lr, keep grad_clip set, or use "
                "precision='fp32'; the weights were not updated with it"
            )
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.scheduler.step()
    return step_loss


def _next_batch(run: _Run) -> dict:
    try:
        return next(run.train_data)
    except StopIteration:
        raise ValueError(
            f"train_data ran out of batches at step {run.state.step + 1} of {run.config.max_steps}: use an "
            "endless source (helpers.core.batches.TokenBatches / ListBatches cycle) or fewer max_steps"
        ) from None


def _advance(run: _Run, step_loss: float, bar, callbacks: list[Callback]) -> None:
    """Count the finished step in the state callbacks see, and in the progress bar."""
    state = run.state
    state.step += 1
    state.losses.append(step_loss)
    state.lr = run.scheduler.get_last_lr()[0]
    state.tokens = run.tokens * run.world  # every process sees the same number of positions per step
    state.elapsed = run.seconds()
    bar.update(1)
    bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{state.tokens_per_second:,.0f}", refresh=False)
    for cb in callbacks:
        cb.on_step_end(state)


def _due(step: int, max_steps: int, interval: int) -> bool:
    """At the end, and every `interval` steps when interval > 0."""
    return step == max_steps or bool(interval and step % interval == 0)


def _maybe_evaluate(run: _Run, loss_fn: LossFn, callbacks: list[Callback]) -> None:
    if run.fixed_eval is None or not _due(run.state.step, run.config.max_steps, run.config.eval_interval):
        return
    t0 = time.perf_counter()
    (val,) = all_reduce([evaluate(run.model, run.fixed_eval, loss_fn, run.device, run.policy.autocast_dtype)],
                        run.world)
    run.eval_seconds += time.perf_counter() - t0
    run.state.val_losses.append((run.state.step, val))
    for cb in callbacks:
        cb.on_eval_end(run.state)


def _maybe_checkpoint(run: _Run, callbacks: list[Callback]) -> None:
    config = run.config
    if not config.checkpoint_dir or not _due(run.state.step, config.max_steps, config.checkpoint_interval):
        return
    if run.rank == 0:
        path = save_checkpoint(config.checkpoint_dir, _capture(run), config.keep_checkpoints)
        for cb in callbacks:
            cb.on_checkpoint(run.state, path)
    if run.world > 1:
        torch.distributed.barrier()


# ----------------------------------------------------------------------------- around the loop


def _record(run: _Run, wall: float, meter) -> RunRecord:
    """The run's record: time, tokens, FLOPs (when the config counts them), memory, energy, losses."""
    config, state, world = run.config, run.state, run.world
    tokens, label_tokens = (int(v) for v in all_reduce([run.tokens, run.label_tokens], world, op="sum"))
    memory, memory_method = peak_memory(run.device)
    if config.flops_per_token is not None:
        flops, flops_method = config.flops_per_token * tokens, config.flops_method
        achieved = flops / wall if wall > 0 else 0.0
        mfu = achieved / (run.peak_flops * world)
    else:
        flops, flops_method, achieved, mfu = None, FLOPS_NOT_COUNTED, None, None
    params = list(run.raw_model.parameters())
    tail = state.losses[-10:]
    return RunRecord(
        name=config.name, route=config.route, device=run.device.type, precision=run.policy.name,
        steps=state.step, wall_seconds=wall, tokens=tokens, flops=flops, flops_method=flops_method,
        achieved_flops_per_s=achieved, peak_flops_per_s=run.peak_flops * world, mfu=mfu,
        peak_memory_bytes=memory, trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_params=sum(p.numel() for p in params),
        final_train_loss=sum(tail) / len(tail) if tail else None,
        final_val_loss=state.val_losses[-1][1] if state.val_losses else None,
        energy_kwh=getattr(meter, "kwh", None), energy_method=getattr(meter, "method", None),
        losses=list(state.losses), val_losses=list(state.val_losses),
        extra={
            "label_tokens": label_tokens, "world_size": world, "grad_accum_steps": config.grad_accum_steps,
            "lr": config.lr, "eval_seconds": round(run.eval_seconds, 3), "peak_memory_method": memory_method,
            "final_train_loss_is": f"mean of the last {len(tail)} step losses",
            "tokens_are": "input positions, padding excluded (label_tokens: positions with a loss)",
            "precision_reason": run.policy.reason,
        },
    )
