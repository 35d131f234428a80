"""Checkpoints for the training loop: atomic, checksummed, loaded without unpickling code.

A checkpoint is one `torch.save` file `step_NNNNNNN.pt` (weights, optimiser, scheduler, scaler, RNG
states, data position, loss history: whatever dict the loop hands over) plus `step_NNNNNNN.sha256`.
- Atomic: written to a temporary file in the same folder, flushed to disk, then renamed; the checksum
  is written after the rename, so a checkpoint without a matching checksum is known to be unfinished.
- Safe to load: `torch.load(weights_only=True)` only rebuilds tensors and plain Python values.
- The newest `keep` checkpoints are kept, so a broken newest one never takes the last good one with it.
- Frozen weights (LoRA runs) are left out: only trainable weights and buffers are saved.

Left out: sharded/distributed checkpoint formats (the course's models fit one file) and cloud storage.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

CHECKPOINT_FORMAT = 1  # bump when the checkpoint payload changes shape


class CheckpointError(RuntimeError):
    """A checkpoint is missing, half-written, corrupted or does not match the model."""


def rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename: all or nothing."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(directory: str | Path, step: int, payload: dict, keep: int = 2) -> Path:
    """Save `payload` as `step_NNNNNNN.pt` plus its sha256 in `step_NNNNNNN.sha256`; keep the newest `keep`.

    The .pt file is renamed into place only once complete, and the checksum is written after it, so a
    checkpoint without a matching checksum is known to be unfinished.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step_{step:07d}.pt"
    _atomic_write(path, lambda tmp: torch.save(payload, tmp))
    digest = _sha256(path)
    _atomic_write(path.with_suffix(".sha256"), lambda tmp: tmp.write_text(digest + "\n"))
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".sha256").unlink(missing_ok=True)
    return path


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Checkpoint files in `directory`, oldest first (temporary files are ignored)."""
    return sorted(Path(directory).glob("step_*.pt"))


def load_checkpoint(path: str | Path) -> dict:
    """Verify a checkpoint's checksum and load it without unpickling code (`weights_only=True`)."""
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise CheckpointError(
                f"no checkpoint (step_*.pt) in {path.name}/: train with checkpoint_dir set first"
            )
        path = found[-1]
    older = [p.name for p in list_checkpoints(path.parent) if p < path]
    fallback = (
        f" The previous checkpoint {older[-1]} is untouched: resume from it with "
        f"TrainConfig(resume=<folder>/{older[-1]}), or delete the broken file."
        if older
        else " Set TrainConfig(resume=False) to start over."
    )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path.name} does not exist.{fallback}")
    sidecar = path.with_suffix(".sha256")
    if not sidecar.is_file():
        raise CheckpointError(
            f"checkpoint {path.name} is half-written (its checksum file {sidecar.name} is "
            f"missing: the run stopped while saving).{fallback}"
        )
    if _sha256(path) != sidecar.read_text().strip():
        raise CheckpointError(
            f"checkpoint {path.name} is corrupted (its sha256 does not match {sidecar.name}).{fallback}"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise CheckpointError(
            f"checkpoint {path.name} cannot be read ({type(err).__name__}: {err}).{fallback}"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path.name} was written by another version of helpers.core.training "
            f"(format {payload.get('format') if isinstance(payload, dict) else '?'}, expected "
            f"{CHECKPOINT_FORMAT}): start over with TrainConfig(resume=False)"
        )
    return payload


def model_state(model: nn.Module) -> tuple[dict, bool]:
    """All weights for full training; only trainable ones (+ buffers) when some are frozen (LoRA)."""
    params = dict(model.named_parameters(remove_duplicate=False))  # tied weights under every name
    if all(p.requires_grad for p in params.values()):
        return model.state_dict(), False
    keep = {n for n, p in params.items() if p.requires_grad}
    keep |= {n for n, _ in model.named_buffers(remove_duplicate=False)}
    return {n: t for n, t in model.state_dict().items() if n in keep}, True


def load_model_state(model: nn.Module, state: dict, partial: bool, name: str) -> None:
    try:
        result = model.load_state_dict(state, strict=not partial)
    except RuntimeError as err:  # shapes or names differ
        first = str(err).split("\n\t")[1] if "\n\t" in str(err) else str(err)
        raise CheckpointError(
            f"checkpoint {name} does not match this model ({first.strip()}): build the same "
            "model as the run that saved it, or start over with TrainConfig(resume=False)"
        ) from err
    frozen = {n for n, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    missing = [k for k in getattr(result, "missing_keys", []) if k not in frozen]
    if missing or getattr(result, "unexpected_keys", []):
        raise CheckpointError(
            f"checkpoint {name} does not match this model (missing {missing[:3]}, unexpected "
            f"{list(result.unexpected_keys)[:3]}): build the same model as the run that saved it"
        )
