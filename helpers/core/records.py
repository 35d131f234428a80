"""The run record: what one training run cost, in a form the cost ledger can compare.

Every run of the one training loop (`helpers.core.training`) returns a `RunRecord` — from-scratch
pretraining and LoRA instruction-tuning alike — so their time, compute and money sit side by side.
Money is *not* stored here: `helpers.measure.costs` derives it from the record plus editable assumptions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


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
    flops: float  # training FLOPs by the method below
    flops_method: str  # how `flops` was counted, in words (e.g. "6*N*D, N=non-embedding params")
    achieved_flops_per_s: float
    peak_flops_per_s: float  # measured matmul peak of this machine for `precision`
    mfu: float  # achieved / peak
    peak_memory_bytes: int
    trainable_params: int
    total_params: int
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    energy_kwh: float | None = None  # filled by helpers.measure.costs (measured or estimated)
    energy_method: str | None = None  # "measured: RAPL", "estimated: 65 W x time", ...
    losses: list[float] = field(default_factory=list)  # training loss per optimiser step
    val_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. {"accuracy": 0.81}
    test_set: str | None = None  # identifier of the test set `metrics` were measured on
    extra: dict[str, object] = field(default_factory=dict)  # free-form facts (N examples, label noise...)

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
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        tmp.replace(path)  # atomic: a reader never sees half a record
        return path

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        return cls.from_dict(json.loads(Path(path).read_text()))
