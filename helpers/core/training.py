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
What the steps share (`Run`, the callbacks' `TrainState`) and how a run becomes a checkpoint and a record
are `helpers.core.train_run`; the parts that need no run (loss, evaluation, precision, DDP plumbing) are
`helpers.core.loop_parts`.

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
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.core.checkpoints import check_same_run, load_checkpoint, resume_point, save_checkpoint
from helpers.core.device import pick_device
from helpers.core.energy import EnergyMeter
from helpers.core.loop_parts import (
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
    resolve_precision,
    shard_for_ddp,
    to_device,
)
from helpers.core.records import RunRecord
from helpers.core.train_config import TrainConfig, lr_factor
from helpers.core.train_run import Run, TrainState, capture, identity_of, record, restore_from


class Callback:
    """Hooks into the loop; override what you need. Called on rank 0 only, never inside autograd."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_eval_end(self, state: TrainState) -> None: ...
    def on_checkpoint(self, state: TrainState, path) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


class TrainingDivergedError(FloatingPointError):
    """The loss (or gradient norm) became NaN or infinite."""


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


def _loop(run: Run, loss_fn: LossFn, callbacks: list[Callback]) -> RunRecord:
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
    run_record = record(run, wall, meter)
    for cb in callbacks:
        cb.on_train_end(run.state)
    return run_record


def _set_up(model: nn.Module, train_data, config: TrainConfig, eval_data) -> Run:
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
    identity = identity_of(config, train_data) if (config.checkpoint_dir or config.resume) else {}
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
    return Run(
        config=config, model=model, raw_model=raw_model, train_data=train_data, fixed_eval=fixed_eval,
        device=device, policy=policy, rank=rank, world=world, created_group=created_group,
        optimizer=optimizer, scheduler=scheduler, scaler=scaler, identity=identity, peak_flops=peak,
        state=TrainState(name=config.name, max_steps=config.max_steps),
    )


def _restore(run: Run) -> None:
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
    restore_from(run, checkpoint, path.name)


# ----------------------------------------------------------------------------- one step and its aftermath


def _step(run: Run, loss_fn: LossFn) -> float:
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


def _next_batch(run: Run) -> dict:
    try:
        return next(run.train_data)
    except StopIteration:
        raise ValueError(
            f"train_data ran out of batches at step {run.state.step + 1} of {run.config.max_steps}: use an "
            "endless source (helpers.core.batches.TokenBatches / ListBatches cycle) or fewer max_steps"
        ) from None


def _advance(run: Run, step_loss: float, bar, callbacks: list[Callback]) -> None:
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


def _maybe_evaluate(run: Run, loss_fn: LossFn, callbacks: list[Callback]) -> None:
    if run.fixed_eval is None or not _due(run.state.step, run.config.max_steps, run.config.eval_interval):
        return
    t0 = time.perf_counter()
    (val,) = all_reduce([evaluate(run.model, run.fixed_eval, loss_fn, run.device, run.policy.autocast_dtype)],
                        run.world)
    run.eval_seconds += time.perf_counter() - t0
    run.state.val_losses.append((run.state.step, val))
    for cb in callbacks:
        cb.on_eval_end(run.state)


def _maybe_checkpoint(run: Run, callbacks: list[Callback]) -> None:
    config = run.config
    if not config.checkpoint_dir or not _due(run.state.step, config.max_steps, config.checkpoint_interval):
        return
    if run.rank == 0:
        path = save_checkpoint(config.checkpoint_dir, capture(run), config.keep_checkpoints)
        for cb in callbacks:
            cb.on_checkpoint(run.state, path)
    if run.world > 1:
        torch.distributed.barrier()
