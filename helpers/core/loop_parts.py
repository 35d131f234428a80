"""The training loop's parts that know nothing of its order: loss, optimiser groups, argument checks,
evaluation, precision, distributed plumbing and measurements. `helpers.core.training.train` puts them in
order; each is usable (and tested) alone, e.g. `evaluate(model, batches)` in notebook 03.

Left out on purpose: anything model-specific (a model may offer `configure_optimizer_groups`, and says
its context and vocabulary through `block_size`/`vocab_size`-like attributes; nothing else is assumed).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from functools import cache

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from helpers.core.batches import IGNORE_INDEX
from helpers.core.device import PrecisionPolicy, measure_matmul_flops, precision_policy
from helpers.core.train_config import TrainConfig

LossFn = Callable[[nn.Module, dict], torch.Tensor]
CALLBACK_HOOKS = ("on_train_begin", "on_step_end", "on_eval_end", "on_checkpoint", "on_train_end")


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


# ----------------------------------------------------------------------------- checks at the boundary


def check_arguments(model, train_data, config, eval_data, loss_fn, callbacks) -> None:
    """Everything `train` can refuse before it touches the model, each naming the argument and the fix."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a helpers.core.training.TrainConfig, got {type(config).__name__}: "
                        "build one with TrainConfig(max_steps=..., lr=...)")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (model, batch) -> loss, got {type(loss_fn).__name__}")
    for i, cb in enumerate(callbacks):
        if not all(callable(getattr(cb, hook, None)) for hook in CALLBACK_HOOKS):
            raise TypeError(f"callbacks[{i}] is a {type(cb).__name__}, not a Callback: subclass "
                            "helpers.core.training.Callback and override the hooks you need")
    if not hasattr(train_data, "__next__"):
        raise TypeError(
            f"train_data must be an iterator of batch dicts, got {type(train_data).__name__}: wrap a list of "
            "batches in helpers.core.batches.ListBatches(batches), or a token tensor in TokenBatches(tokens, B, T)"
        )
    if (config.checkpoint_dir or config.resume) and not hasattr(train_data, "state_dict"):
        raise TypeError(
            f"checkpoints must record the data position, but {type(train_data).__name__} has no state_dict(): "
            "use helpers.core.batches.TokenBatches / ListBatches, or train without checkpoint_dir"
        )
    if eval_data is not None:
        if isinstance(eval_data, (list, tuple)) and len(eval_data) == 0:
            raise ValueError("eval_data is empty, so there is nothing to evaluate on: pass at least one batch, "
                             "or eval_data=None to train without evaluation")
        if not isinstance(eval_data, (list, tuple)) and not hasattr(eval_data, "__next__"):
            raise TypeError(f"eval_data must be a list of batch dicts or an iterator of them, got "
                            f"{type(eval_data).__name__}")


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


def count_tokens(batch: dict, step: int) -> tuple[int, int]:
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


def resolve_precision(device: torch.device, asked: str) -> PrecisionPolicy:
    policy = precision_policy(device, None if asked == "auto" else asked)
    if asked != "auto" and policy.name != asked:
        raise ValueError(
            f"TrainConfig.precision={asked!r} is not available on {device.type} ({policy.reason}): "
            f"use 'auto' or {policy.name!r}"
        )
    return policy


# ----------------------------------------------------------------------------- evaluation


def draw_eval_set(eval_data, n_batches: int) -> list[dict] | None:
    """The fixed evaluation set: a list as given, or `n_batches` drawn once from an iterator, so every
    evaluation (and a resumed run) scores the same rows."""
    if eval_data is None:
        return None
    if isinstance(eval_data, (list, tuple)):
        return list(eval_data)
    drawn = []
    for _ in range(n_batches):
        try:
            drawn.append(next(eval_data))
        except StopIteration:
            raise ValueError(f"eval_data ran out after {len(drawn)} batches but TrainConfig.eval_batches="
                             f"{n_batches}: lower eval_batches, or pass more evaluation data") from None
    return drawn


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def evaluate(
    model: nn.Module,
    batches: list[dict],
    loss_fn: LossFn = default_loss_fn,
    device: torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> float:
    """Mean loss over `batches` with gradients off and the model in eval mode (dropout off)."""
    batches = list(batches)
    if not batches:
        raise ValueError("evaluate got no batches: pass at least one batch dict")
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad(), autocast(device, autocast_dtype):
        for batch in batches:
            total += float(loss_fn(model, to_device(batch, device)))
    model.train(was_training)
    return total / len(batches)


# ----------------------------------------------------------------------------- distributed


def distributed(device_type: str) -> tuple[int, int, int, bool]:
    """(rank, world_size, local_rank, created_here); starts the process group under torchrun, with the
    backend the training device needs (NCCL for CUDA tensors, gloo for CPU ones, even on a GPU machine)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return 0, 1, 0, False
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        created = True
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), created


def all_reduce(values: list[float], world: int, op: str = "mean") -> list[float]:
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return (t / world if op == "mean" else t).tolist()


def shard_for_ddp(raw_model: nn.Module, train_data, eval_data, rank: int, world: int, device: torch.device):
    """(DDP-wrapped model, this process's train_data slice, its eval_data slice)."""
    for name, data in (("train_data", train_data), ("eval_data", eval_data)):
        if data is not None and not isinstance(data, (list, tuple)) and not hasattr(data, "shard"):
            raise ValueError(
                f"{name} has no shard(rank, world_size) method, so {world} processes would train "
                "on the same rows: use helpers.core.batches.TokenBatches or ListBatches"
            )
    train_data = train_data.shard(rank, world)
    if eval_data is not None and not isinstance(eval_data, (list, tuple)):
        eval_data = eval_data.shard(rank, world)
    model = DistributedDataParallel(raw_model, device_ids=[device.index or 0] if device.type == "cuda" else None)
    return model, train_data, eval_data


# ----------------------------------------------------------------------------- measurements


@cache
def measured_peak_flops(device: str, precision: str) -> float:
    """Matmul FLOP/s of `device` in the dtype `precision` trains in: measured once per process (~1 s)."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return measure_matmul_flops(dtype, n=1024, seconds=1.0, device=torch.device(device))


def peak_memory(device: torch.device) -> tuple[int, str]:
    """(peak bytes, how they were measured): the CUDA allocator's peak, else the process's peak RSS."""
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
        from IPython import get_ipython  # optional: absent outside Jupyter installs
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")
