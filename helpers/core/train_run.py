"""One call of `train` as data: what the loop's steps share, and how a run becomes a checkpoint and a record.

- `TrainState`: what callbacks see (rank 0 only): step, learning rate, tokens, time, losses.
- `Run`: everything one call of `helpers.core.training.train` works with (the model and its DDP wrapper,
  the data, optimiser, scheduler, scaler, device, precision, identity and counters); `train`'s set-up builds
  it and its steps advance it.
- `identity_of(config, data)`: what makes a run this run, the config fields that shape its trajectory (all
  but `NOT_IN_RUN_IDENTITY`) and its data; every checkpoint carries its hash, and a resume checks it.
- `capture(run)` -> `Checkpoint` and `restore_from(run, checkpoint)`: a run to its checkpoint and back (the
  file format is `helpers.core.checkpoints`).
- `record(run, wall, meter)` -> `RunRecord`: time, tokens, FLOPs (only when the config counts them:
  `FLOPS_NOT_COUNTED` otherwise), MFU, memory, energy (measured by the meter, else estimated by
  `helpers.core.power`) and losses, summed over the processes.

Left out on purpose: the order of the steps and the step itself (`helpers.core.training`), and the loop's
parts that need no run (`helpers.core.loop_parts`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from helpers.core.checkpoints import (
    Checkpoint,
    data_identity,
    load_model_state,
    model_state,
    rng_state,
    run_identity,
    set_rng_state,
)
from helpers.core.device import PrecisionPolicy
from helpers.core.loop_parts import all_reduce, peak_memory
from helpers.core.power import energy_of
from helpers.core.records import RunRecord
from helpers.core.train_config import TrainConfig

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


@dataclass
class Run:
    """Everything one call of `train` works with: built by its set-up step, advanced by the others."""

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


def identity_of(config: TrainConfig, train_data) -> dict:
    """What makes this run this run: the config fields that shape its trajectory, and its data."""
    shaping = {k: v for k, v in asdict(config).items() if k not in NOT_IN_RUN_IDENTITY}
    return {"config": shaping, "data": data_identity(train_data)}


# ----------------------------------------------------------------------------- run <-> checkpoint


def capture(run: Run) -> Checkpoint:
    """This run's state as a Checkpoint (the inverse of `restore_from`)."""
    weights, partial = model_state(run.raw_model)
    return Checkpoint(
        step=run.state.step, run_id=run_identity(run.identity), run=run.identity, started_ns=run.started_ns,
        model=weights, model_partial=partial, optimizer=run.optimizer.state_dict(),
        scheduler=run.scheduler.state_dict(), scaler=run.scaler.state_dict(),
        data=run.train_data.state_dict(), rng=rng_state(), losses=list(run.state.losses),
        val_losses=list(run.state.val_losses), tokens=run.tokens, label_tokens=run.label_tokens,
        elapsed=run.seconds(), config={k: v for k, v in asdict(run.config).items() if k != "resume"},
    )


def restore_from(run: Run, checkpoint: Checkpoint, name: str) -> None:
    """Put a checkpoint's state back into the run (the inverse of `capture`)."""
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


# ----------------------------------------------------------------------------- run -> record


def record(run: Run, wall: float, meter) -> RunRecord:
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
    gpu = torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else None
    energy_kwh, energy_method = energy_of(meter, run.device.type, wall, torch.get_num_threads(), gpu, world)
    return RunRecord(
        name=config.name, route=config.route, device=run.device.type, precision=run.policy.name,
        steps=state.step, wall_seconds=wall, tokens=tokens, flops=flops, flops_method=flops_method,
        achieved_flops_per_s=achieved, peak_flops_per_s=run.peak_flops * world, mfu=mfu,
        peak_memory_bytes=memory, trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_params=sum(p.numel() for p in params),
        final_train_loss=sum(tail) / len(tail) if tail else None,
        final_val_loss=state.val_losses[-1][1] if state.val_losses else None,
        energy_kwh=energy_kwh, energy_method=energy_method,
        losses=list(state.losses), val_losses=list(state.val_losses),
        extra={
            "label_tokens": label_tokens, "world_size": world, "grad_accum_steps": config.grad_accum_steps,
            "lr": config.lr, "eval_seconds": round(run.eval_seconds, 3), "peak_memory_method": memory_method,
            "final_train_loss_is": f"mean of the last {len(tail)} step losses",
            "tokens_are": "input positions, padding excluded (label_tokens: positions with a loss)",
            "precision_reason": run.policy.reason,
        },
    )
