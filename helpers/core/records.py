"""The run record: what one training run cost, in a form the cost ledger can compare.

Every run of the one training loop (`helpers.core.training`) returns a `RunRecord` — from-scratch
pretraining and LoRA instruction-tuning alike — so their time, compute and money sit side by side.
Money is *not* stored here: `helpers.measure.money` derives it from the record plus editable assumptions.
A record refuses impossible numbers (negative or NaN time, tokens, FLOPs) when it is made, so everything
downstream can trust them; FLOPs a run did not count are None, never a guess.

Left out on purpose: units other than seconds, bytes, FLOPs and kWh; schema migrations of old files.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from helpers.core.io import write_json

_COUNTS = ("steps", "tokens", "peak_memory_bytes", "trainable_params", "total_params")
_AMOUNTS = ("wall_seconds", "peak_flops_per_s")  # required, finite, >= 0
_OPTIONAL_AMOUNTS = ("flops", "achieved_flops_per_s", "mfu", "energy_kwh")  # None or finite, >= 0


@dataclass
class RunRecord:
    """One training run. Times in seconds, memory in bytes, energy in kWh."""

    name: str  # e.g. "pretrain tiny GPT" or "LoRA smollm2 N=64"
    route: str  # "scratch", "scratch-no-pretrain", "instruct", or free text
    device: str  # "cpu", "cuda", "mps"
    precision: str  # "fp32", "bf16", "fp16"
    steps: int
    wall_seconds: float
    tokens: int  # tokens processed in training (input positions, padding excluded)
    flops: float | None  # training FLOPs by the method below; None = not counted (flops_method says so)
    flops_method: str  # how `flops` was counted, in words (e.g. "6*N*D, N=non-embedding params")
    achieved_flops_per_s: float | None  # flops / wall_seconds; None when flops were not counted
    peak_flops_per_s: float  # measured matmul peak of this machine for `precision`
    mfu: float | None  # achieved / peak; None when flops were not counted
    peak_memory_bytes: int
    trainable_params: int
    total_params: int
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    energy_kwh: float | None = None  # the loop fills it: measured (RAPL/NVML), else estimated (core.power)
    energy_method: str | None = None  # "measured: RAPL ...", "estimated: 2 core(s) x 3.75 W per core ..."
    losses: list[float] = field(default_factory=list)  # training loss per optimiser step
    val_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. {"accuracy": 0.81}
    test_set: str | None = None  # identifier of the test set `metrics` were measured on
    extra: dict[str, object] = field(default_factory=dict)  # free-form facts (N examples, label noise...)

    def __post_init__(self) -> None:
        for name in _COUNTS:
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
                raise ValueError(f"RunRecord.{name} must be an integer >= 0, got {value!r}")
        for name in _AMOUNTS + _OPTIONAL_AMOUNTS:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_AMOUNTS:
                continue
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"RunRecord.{name} must be a finite number >= 0, got {value!r}"
                                 + (" (None = not counted)" if name in _OPTIONAL_AMOUNTS else ""))
        if self.flops is None and (self.mfu is not None or self.achieved_flops_per_s is not None):
            raise ValueError("RunRecord: mfu and achieved_flops_per_s need flops; with flops=None (not counted) "
                             "leave them None too")
        if self.trainable_params > self.total_params:
            raise ValueError(f"RunRecord.trainable_params ({self.trainable_params:,}) exceeds total_params "
                             f"({self.total_params:,}): count the trainable ones among all parameters")

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"run record has unknown fields {sorted(unknown)}: was it written by another version?")
        try:
            record = cls(**data)
        except TypeError as err:
            raise ValueError(f"run record is incomplete ({err}): re-run the training that wrote it") from err
        record.val_losses = [tuple(v) for v in record.val_losses]  # JSON turns tuples into lists
        return record

    def save(self, path: str | Path) -> Path:
        """Write the record as JSON, atomically (helpers.core.io): a reader never sees half a record."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no run record at {path}: save one with RunRecord.save(path) first")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not a run record (not JSON: {err}): re-run the training that wrote it, "
                             "or delete the file") from err
        if not isinstance(data, dict):
            raise ValueError(f"{path} holds a JSON {type(data).__name__}, not a run record: re-run the training")
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
