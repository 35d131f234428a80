"""Checkpoints for the training loop: one format, atomic, checksummed, tied to the run that wrote them.

`Checkpoint` is everything a run needs to continue as if it had never stopped (weights, optimiser,
scheduler, scaler, RNG states, data position, loss history, counters); its `state_dict()` /
`load_state_dict()` are the only place the file format is written and read. On disk a checkpoint is
`step_NNNNNNN.pt` (a `torch.save` of that state dict) plus `step_NNNNNNN.sha256`:
- Atomic: both files go through `helpers.core.io` (temporary file, fsync, rename); the sidecar is
  written after the weights, so a checkpoint without a matching checksum is known to be unfinished,
  and a temporary file left by a killed write is removed at the next save into the folder.
- Safe to load: `torch.load(weights_only=True)` only rebuilds tensors and plain Python values.
- Tied to its run: `run_id` is a hash of the run's config and data (`run_identity`); the sidecar
  repeats it, so listing a folder's runs never unpickles a checkpoint. Pruning keeps the newest `keep`
  checkpoints *of the run that saves* (never the one just written) and leaves other runs' files alone:
  one folder reused by two runs loses nothing.
- Frozen weights (LoRA runs) are left out: only trainable weights and buffers are saved.

Left out: sharded/distributed checkpoint formats (the course's models fit one file), cloud storage,
and streaming the file to disk while it is pickled (it is built in memory first: fine at course sizes).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from helpers.core.io import write_bytes, write_text

CHECKPOINT_FORMAT = 2  # bump when Checkpoint's fields change; 2 = run_id, run, started_ns added
_STEP_FILE = re.compile(r"step_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, half-written, corrupted, of another run, or does not match the model."""


@dataclass
class Checkpoint:
    """One training run's complete state after `step` optimiser steps. Defaults = an empty state to load into."""

    step: int = 0  # optimiser steps completed
    run_id: str = ""  # run_identity(run): which run wrote it (resume refuses another run's)
    run: dict = field(default_factory=dict)  # what run_id hashes: {"config": {...}, "data": "..."}
    started_ns: int = 0  # time.time_ns() when the run started at step 0: orders two runs with one id
    model: dict = field(default_factory=dict)  # state_dict: all weights, or only trainable ones + buffers
    model_partial: bool = False  # True: frozen weights were left out (load non-strictly)
    optimizer: dict = field(default_factory=dict)
    scheduler: dict = field(default_factory=dict)
    scaler: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # the batches' state_dict(): the data position
    rng: dict = field(default_factory=dict)  # torch / python / numpy (/ cuda) generator states
    losses: list[float] = field(default_factory=list)  # training loss per optimiser step
    val_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    tokens: int = 0  # input tokens this process has seen (padding excluded)
    label_tokens: int = 0  # positions that carried a loss
    elapsed: float = 0.0  # seconds of training so far, over every resumed segment
    config: dict = field(default_factory=dict)  # the TrainConfig that wrote it (resume left out): for reading

    def state_dict(self) -> dict:
        """The on-disk format: a dict of tensors and plain Python values, with the format number."""
        return {"format": CHECKPOINT_FORMAT, **{f.name: getattr(self, f.name) for f in fields(self)}}

    def load_state_dict(self, state: dict, name: str = "checkpoint") -> None:
        """Fill this checkpoint from `state_dict()`'s output; a wrong format or missing field is a CheckpointError."""
        version = state.get("format") if isinstance(state, dict) else None
        if version != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{name} was written by another version of helpers.core.training (format {version!r}, "
                f"expected {CHECKPOINT_FORMAT}): start over with TrainConfig(resume=False)"
            )
        missing = [f.name for f in fields(self) if f.name not in state]
        if missing:
            raise CheckpointError(f"{name} lacks {missing}: it is not a training checkpoint; resume=False starts over")
        for f in fields(self):
            setattr(self, f.name, state[f.name])
        self.val_losses = [tuple(v) for v in self.val_losses]


# ----------------------------------------------------------------------------- identity


def digest(obj) -> str:
    """sha256 of nested dicts/lists/tuples of tensors and plain values, independent of dict order.

    digest({"a": 1, "b": [2.0]}) == digest({"b": [2.0], "a": 1})
    """
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h, obj) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"tensor {t.dtype} {tuple(obj.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for key in sorted(obj, key=repr):
            _feed(h, key)
            _feed(h, obj[key])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _feed(h, item)
        h.update(b"]")
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def data_identity(data) -> str:
    """What identifies a run's data: `data.fingerprint()` (TokenBatches, ListBatches: contents, batch
    shape, seed) or, for other sources, their type, length and starting state_dict()."""
    if hasattr(data, "fingerprint"):
        return str(data.fingerprint())
    size = len(data) if hasattr(data, "__len__") else None
    state = data.state_dict() if hasattr(data, "state_dict") else None
    return f"{type(data).__qualname__}:{digest([size, state])[:16]}"


def run_identity(run: dict) -> str:
    """Short hash of {"config": ..., "data": ...}: equal for two segments of one run, different otherwise."""
    return hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode()).hexdigest()[:16]


def describe_difference(saved: dict, current: dict) -> str:
    """Which parts of two runs' identities differ, in words: "lr 0.01 -> 0.001; the training data"."""
    parts = []
    old_cfg, new_cfg = saved.get("config", {}), current.get("config", {})
    for key in sorted(set(old_cfg) | set(new_cfg)):
        if old_cfg.get(key) != new_cfg.get(key):
            parts.append(f"{key} {old_cfg.get(key)!r} -> {new_cfg.get(key)!r}")
    if saved.get("data") != current.get("data"):
        parts.append("the training data (another corpus, batch size, block size or seed)")
    return "; ".join(parts) or "its identity"


# ----------------------------------------------------------------------------- random states


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


# ----------------------------------------------------------------------------- files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def step_of(path: Path) -> int:
    """step_0000042.pt -> 42."""
    match = _STEP_FILE.search(Path(path).name)
    if match is None:
        raise ValueError(f"{Path(path).name} is not a checkpoint file name (step_NNNNNNN.pt)")
    return int(match.group(1))


def sidecar_facts(path: Path) -> dict | None:
    """What the checksum file beside `path` says: {"sha256", "run", "started", "step"}; None if absent."""
    sidecar = Path(path).with_suffix(".sha256")
    try:
        lines = sidecar.read_text().split("\n")
    except OSError:
        return None
    facts: dict = {"sha256": lines[0].strip()}
    for pair in " ".join(lines[1:]).split():
        key, _, value = pair.partition("=")
        facts[key] = value
    facts["started"] = int(facts["started"]) if str(facts.get("started", "")).isdigit() else 0
    return facts


def list_checkpoints(directory: str | Path, run_id: str | None = None) -> list[Path]:
    """Checkpoint files in `directory` (temporary files ignored). Without run_id: every step_*.pt, lowest
    step first. With run_id: only that run's finished ones (sidecar present), oldest first: by the run's
    start, then step, so a run restarted from step 0 counts as newer than its earlier attempt."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = sorted((p for p in directory.glob("step_*.pt") if _STEP_FILE.fullmatch(p.name)), key=step_of)
    if run_id is None:
        return found
    mine = [(facts["started"], step_of(p), p) for p in found
            if (facts := sidecar_facts(p)) is not None and facts.get("run") == run_id]
    return [p for *_, p in sorted(mine)]


def save_checkpoint(directory: str | Path, checkpoint: Checkpoint, keep: int = 2) -> Path:
    """Save `checkpoint` as step_NNNNNNN.pt + its checksum; then keep only the newest `keep` of its run.

    A full disk raises `helpers.core.io.DiskFullError` naming the folder; the previous files are untouched.
    """
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise ValueError(f"keep must be a positive integer, got {keep!r}: 1 keeps only the newest checkpoint")
    directory = Path(directory)
    path = directory / f"step_{checkpoint.step:07d}.pt"
    buffer = io.BytesIO()
    torch.save(checkpoint.state_dict(), buffer)
    blob = buffer.getvalue()
    write_bytes(path, blob)  # also removes temporary files of killed writes in this folder
    sha = hashlib.sha256(blob).hexdigest()
    write_text(path.with_suffix(".sha256"),
               f"{sha}\nrun={checkpoint.run_id} started={checkpoint.started_ns} step={checkpoint.step}\n")
    for old in list_checkpoints(directory, checkpoint.run_id)[:-keep]:
        if old != path:  # subtle: an earlier attempt of this run may hold higher steps; never drop the newest
            old.unlink(missing_ok=True)
            old.with_suffix(".sha256").unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Verify a checkpoint's checksum and load it without unpickling code (`weights_only=True`).

    A folder means its highest-step checkpoint. Every failure is a CheckpointError naming the file and,
    when there is one, the previous checkpoint to fall back to.
    """
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise CheckpointError(f"no checkpoint (step_*.pt) in {path}: train with checkpoint_dir set first")
        path = found[-1]
    older = [p.name for p in list_checkpoints(path.parent) if step_of(p) < _step_or(path)]
    fallback = (
        f" The previous checkpoint {older[-1]} is untouched: resume from it with "
        f"TrainConfig(resume=<folder>/{older[-1]}), or delete the broken file."
        if older
        else " Set TrainConfig(resume=False) to start over."
    )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path.name} does not exist.{fallback}")
    facts = sidecar_facts(path)
    if facts is None:
        raise CheckpointError(
            f"checkpoint {path.name} is half-written (its checksum file {path.with_suffix('.sha256').name} "
            f"is missing: the run stopped while saving).{fallback}"
        )
    if _sha256(path) != facts["sha256"]:
        raise CheckpointError(
            f"checkpoint {path.name} is corrupted (its sha256 does not match "
            f"{path.with_suffix('.sha256').name}).{fallback}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise CheckpointError(
            f"checkpoint {path.name} cannot be read ({type(err).__name__}: {err}).{fallback}"
        ) from err
    checkpoint = Checkpoint()
    checkpoint.load_state_dict(state, f"checkpoint {path.name}")
    return checkpoint


def resume_point(directory: str | Path, run: dict) -> Path | None:
    """The checkpoint that `resume=True` continues: the newest of this run (`run` as in run_identity).

    None when the folder holds no checkpoint at all (a fresh start). A file newer than this run's newest
    but without its checksum is returned, so that loading it says it is half-written and names the
    fallback. A folder holding only other runs' checkpoints is an error: resuming would continue them.
    """
    found = list_checkpoints(directory)
    if not found:
        return None
    mine = list_checkpoints(directory, run_identity(run))
    newest = step_of(mine[-1]) if mine else -1
    unfinished = [p for p in found if sidecar_facts(p) is None and step_of(p) > newest]
    finished_others = [p for p in found if p not in mine and p not in unfinished]
    if unfinished and (mine or not finished_others):
        return unfinished[-1]
    if mine:
        return mine[-1]
    other = finished_others[-1]
    saved = load_checkpoint(other)
    raise another_run_error(other, saved.run, run)


def check_same_run(checkpoint: Checkpoint, run: dict, path: Path) -> None:
    """Refuse to restore `checkpoint` into a run whose identity differs (another config or data)."""
    if checkpoint.run_id != run_identity(run):
        raise another_run_error(path, checkpoint.run, run)


def another_run_error(path: Path, saved: dict, current: dict) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {Path(path).name} in {Path(path).parent} belongs to another run (differs in: "
        f"{describe_difference(saved, current)}), so resuming from it would continue that run, not this "
        "one: give this run a new TrainConfig.checkpoint_dir, or start it with resume=False (that run's "
        "checkpoints are then kept beside this run's); or resume that run with its own config and data"
    )


def _step_or(path: Path) -> int:
    try:
        return step_of(path)
    except ValueError:
        return 1 << 62  # not a step file: every checkpoint in the folder is older


# ----------------------------------------------------------------------------- model weights


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
