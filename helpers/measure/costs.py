"""What training and running a model costs: FLOPs, energy, money, and a ledger to compare runs.

- FLOPs: `full_training_flops` (6·N·D), `lora_training_flops` (≈ 4·N + 6·N_lora per token, see its
  docstring), `inference_flops` (2·N per token); `matmul_params(model)` gives the N they expect.
- Energy and money of a run: `attach_energy` fills a RunRecord's energy (measured by
  `helpers.core.energy.EnergyMeter` if the platform allows, else estimated from a stated power figure and
  labelled "estimated"); `run_cost` turns a record into EUR: energy, hardware amortisation, and what the
  same hours would cost on a rented cloud machine.
- Extrapolation: `pretraining_estimate` / `pretraining_table` (hours, kWh, EUR of training a model of
  N parameters on D tokens, default D = 20·N, Chinchilla's compute-optimal ratio);
  `inherited_pretraining_flops(spec)` for the compute a pretrained model carries into the instruct route.
- `Ledger`: run records side by side (JSON save/load, table, plot); `compare` refuses records measured
  on different test sets.

Every number comes from `helpers.measure.assumptions` (editable, with source and date). Break-even (local vs
cloud vs API) lives in `helpers.measure.breakeven`.

Left out on purpose: attention-score FLOPs (∝ T·d per layer per token; small next to 6·N when the
context is short relative to 6·d — Kaplan et al. 2020, section 2.1), optimiser-step FLOPs, data-loading
time, and the carbon intensity of electricity.

References: Kaplan et al. 2020 (arXiv:2001.08361) for 6·N·D; Hoffmann et al. 2022 (Chinchilla,
arXiv:2203.15556) for D ≈ 20·N; Hu et al. 2021 (LoRA, arXiv:2106.09685).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from helpers.core.records import RunRecord
from helpers.measure.assumptions import DEFAULT_ASSUMPTIONS, Assumption, Assumptions, DeviceCosts  # noqa: F401

HOURS_PER_YEAR = 24 * 365  # 8760: the amortisation period is counted in calendar hours
CHINCHILLA_TOKENS_PER_PARAM = 20  # Hoffmann et al. 2022: compute-optimal D ≈ 20·N

FULL_TRAINING_FLOPS_METHOD = (
    "6*N*D: N = parameters in matmuls (no embedding lookup, LM head included), D = tokens; "
    "2N forward + 4N backward per token; attention scores left out"
)
LORA_TRAINING_FLOPS_METHOD = (
    "(4*N_frozen + 6*N_lora)*D: forward 2N, activation gradients 2N (backward still passes through the "
    "frozen weights), weight gradients only for the adapters 2*N_lora; N = all matmul params"
)
INFERENCE_FLOPS_METHOD = "2*N per token (forward only)"


# ---------------------------------------------------------------------------------------------
# FLOPs
# ---------------------------------------------------------------------------------------------
def _check_count(name: str, value: float, allow_zero: bool = False) -> None:
    if (
        not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise ValueError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}"
        )


def full_training_flops(n_params: float, tokens: float) -> float:
    """6·N·D FLOPs to train every weight on D tokens: 2N forward (a multiply and an add per weight per
    token), 2N for gradients w.r.t. activations, 2N for gradients w.r.t. weights.

    N = parameters that take part in matrix multiplies: every nn.Linear weight including the LM head
    (even when tied to the embedding: the head still multiplies), *not* the embedding table (a lookup
    costs no FLOPs), not biases or norms (negligible). `matmul_params(model)` counts exactly this.
    full_training_flops(1e6, 1e3) -> 6e9."""
    _check_count("n_params", n_params)
    _check_count("tokens", tokens, allow_zero=True)
    return 6.0 * n_params * tokens


def lora_training_flops(n_params_frozen: float, n_params_trainable: float, tokens: float) -> float:
    """FLOPs to train LoRA adapters on D tokens: (4·N_frozen + 6·N_lora)·D, not 6·N·D.

    What we count, per token, with N = N_frozen + N_lora (matmul parameters, as for full training):
    - forward through everything: 2·N;
    - gradients w.r.t. activations: 2·N — the backward pass must still travel through the frozen
      weights to reach the adapters in earlier layers;
    - gradients w.r.t. weights: only for the adapters, 2·N_lora (the frozen 2·N_frozen is skipped).
    So LoRA saves about a third of the compute of full fine-tuning (4N vs 6N), not 99% — the saving in
    *memory* (no optimiser state for frozen weights) is what is large.
    Subtle: autograd also skips the input gradient of the first layer when its input (the embedding
    output) needs no gradient, so a measured count is lower by 2·(first layer's matmul params) per token.
    lora_training_flops(1e6, 1e3, 1e3) -> 4.006e9."""
    _check_count("n_params_frozen", n_params_frozen)
    _check_count("n_params_trainable", n_params_trainable)
    _check_count("tokens", tokens, allow_zero=True)
    return (4.0 * n_params_frozen + 6.0 * n_params_trainable) * tokens


def inference_flops(n_params: float, tokens: float) -> float:
    """2·N FLOPs per token processed (prompt or generated), forward only: inference_flops(1e6, 10) -> 2e7."""
    _check_count("n_params", n_params)
    _check_count("tokens", tokens, allow_zero=True)
    return 2.0 * n_params * tokens


def matmul_params(model, trainable: bool | None = None) -> int:
    """Weights of every nn.Linear in `model` (counted per module, so a tied LM head counts once more,
    as it multiplies once more). trainable=True/False counts only weights that do / do not need grad."""
    import torch.nn as nn

    total = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            w = module.weight
            if trainable is None or w.requires_grad == trainable:
                total += w.numel()
    return total


class InheritedCompute(NamedTuple):
    flops: float
    source: str


def inherited_pretraining_flops(spec) -> InheritedCompute:
    """The pretraining compute a model carries into the instruct route: 6 × parameters × tokens, from
    its model card (`helpers.instruct.models.ModelSpec`). Uses all stated parameters (embeddings included), so
    it is an upper-side estimate; the source string says where the token count comes from."""
    _check_count(f"{spec.name}.parameters", spec.parameters)
    _check_count(f"{spec.name}.training_tokens", spec.training_tokens)
    flops = full_training_flops(spec.parameters, spec.training_tokens)
    source = (
        f"6 x {spec.parameters:,} parameters x {spec.training_tokens:.3g} tokens "
        f"({spec.training_tokens_source})"
    )
    return InheritedCompute(flops, source)


# ---------------------------------------------------------------------------------------------
# Energy and money of one run
# ---------------------------------------------------------------------------------------------
def estimated_kwh(seconds: float, power_w: float) -> float:
    """Energy of `power_w` watts for `seconds`: estimated_kwh(3600, 1000) -> 1.0."""
    return power_w * seconds / 3.6e6


def default_device_key(device: str) -> str:
    """The assumption row for a torch device type when the learner has not named one:
    cpu -> cpu-laptop (the course's typical machine), cuda -> by GPU name if known, else gpu-t4."""
    kind = device.split(":")[0]
    if kind == "cuda":
        try:
            import torch

            name = torch.cuda.get_device_name().lower()
            for key in ("h100", "a100", "t4", "4090"):
                if key in name:
                    return next(k for k in DEFAULT_ASSUMPTIONS.devices if key in k)
        except Exception:  # noqa: BLE001  no GPU here: fall through to the default
            pass
        return "gpu-t4"
    return "cpu-laptop"


def attach_energy(
    record: RunRecord,
    meter=None,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    device_key: str | None = None,
) -> RunRecord:
    """Fill record.energy_kwh / energy_method: measured if `meter` (an EnergyMeter that ran around the
    training) measured something, else power × wall time from the assumptions, labelled "estimated"."""
    if meter is not None and meter.kwh is not None:
        record.energy_kwh, record.energy_method = meter.kwh, meter.method
        return record
    key = device_key or default_device_key(record.device)
    power = assumptions.device(key).power_w.value
    record.energy_kwh = estimated_kwh(record.wall_seconds, power)
    why = meter.method if meter is not None else record.energy_method
    record.energy_method = _estimated_label(power, key, record.wall_seconds, why)
    return record


def _estimated_label(power_w: float, key: str, seconds: float, why: str | None) -> str:
    """E.g. 'estimated: 28 W (cpu-laptop TDP) x 120.0 s; not measured because <why>'."""
    label = f"estimated: {power_w:g} W ({key} TDP) x {seconds:.1f} s"
    if why and why.startswith("unavailable:"):
        label += "; not measured because " + why.removeprefix("unavailable:").strip()
    return label


@dataclass(frozen=True)
class RunCost:
    """The money side of one run. total_eur = energy + amortisation (what it cost on your own machine);
    cloud_eur is the alternative — renting instead of owning — not a part of the total."""

    kwh: float
    kwh_method: str  # "measured: ..." or "estimated: ..."
    energy_eur: float
    hardware_eur: float
    cloud_eur: float | None  # None when the device has no cloud equivalent in the assumptions
    hours: float
    device_key: str

    @property
    def total_eur(self) -> float:
        return self.energy_eur + self.hardware_eur


def run_cost(
    record: RunRecord, assumptions: Assumptions = DEFAULT_ASSUMPTIONS, device_key: str | None = None
) -> RunCost:
    """Energy, amortisation and cloud-equivalent EUR of one run.

    kWh: record.energy_kwh if set (measured or estimated earlier), else power × wall time ("estimated").
    Amortisation: price / (years · 8760 h · utilisation) per busy hour, times the run's hours.
    Cloud: on-demand hourly price × hours (the same wall time on the rented equivalent)."""
    key = device_key or default_device_key(record.device)
    dev = assumptions.device(key)
    if record.wall_seconds < 0:
        raise ValueError(f"record {record.name!r} has wall_seconds={record.wall_seconds}: it must be >= 0")
    hours = record.wall_seconds / 3600
    if record.energy_kwh is not None:
        kwh, method = record.energy_kwh, record.energy_method or "given in the record"
    else:
        kwh = estimated_kwh(record.wall_seconds, dev.power_w.value)
        method = _estimated_label(dev.power_w.value, key, record.wall_seconds, record.energy_method)
    energy_eur = kwh * assumptions.eur(assumptions.energy_price)
    busy_hours = assumptions.amortisation_years.value * HOURS_PER_YEAR * assumptions.utilisation.value
    hardware_eur = assumptions.eur(dev.hardware_price) / busy_hours * hours
    cloud = None if dev.cloud_per_hour is None else assumptions.eur(dev.cloud_per_hour) * hours
    return RunCost(kwh, method, energy_eur, hardware_eur, cloud, hours, key)


# ---------------------------------------------------------------------------------------------
# Extrapolation: what would pretraining a bigger model cost?
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Machine:
    """A machine to extrapolate on: its peak FLOP/s, the fraction of it training achieves, its power."""

    name: str
    peak_flops: float
    mfu: float  # model FLOPs utilisation: achieved / peak
    power_w: float
    cloud_eur_per_hour: float | None
    source: str


def reference_machines(
    measured_flops_per_s: float | None = None,
    measured_mfu: float | None = None,
    local_key: str = "cpu-laptop",
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    gpu_keys: Sequence[str] = ("gpu-a100", "gpu-h100"),
) -> list[Machine]:
    """This machine (measured peak and MFU from a run, if given) plus data-centre GPUs at their stated
    peak bf16 FLOP/s and the assumed data-centre MFU."""
    machines = []
    if measured_flops_per_s is not None:
        dev = assumptions.device(local_key)
        mfu = measured_mfu if measured_mfu is not None else 1.0
        machines.append(
            Machine(
                "this machine (measured)",
                measured_flops_per_s,
                mfu,
                dev.power_w.value,
                None if dev.cloud_per_hour is None else assumptions.eur(dev.cloud_per_hour),
                f"measured matmul peak, MFU {'of the run' if measured_mfu else '1.0 (no run given)'}, "
                f"power: {dev.power_w.source}",
            )
        )
    for key in gpu_keys:
        dev = assumptions.device(key)
        if dev.peak_flops is None:
            raise ValueError(
                f"device {key!r} has no peak_flops: add it with with_device({key!r}, peak_flops=...)"
            )
        mfu = assumptions.datacentre_mfu
        machines.append(
            Machine(
                dev.description,
                dev.peak_flops.value,
                mfu.value,
                dev.power_w.value,
                None if dev.cloud_per_hour is None else assumptions.eur(dev.cloud_per_hour),
                f"{dev.peak_flops.source}; MFU {mfu.value:g}: {mfu.source}",
            )
        )
    return machines


@dataclass(frozen=True)
class PretrainingEstimate:
    n_params: float
    tokens: float
    flops: float
    hours: float  # device-hours (divide by the number of devices for wall time)
    kwh: float
    energy_eur: float
    cloud_eur: float | None


def pretraining_estimate(
    n_params: float,
    tokens: float | None = None,
    *,
    flops_per_s: float,
    utilisation: float,
    power_w: float,
    price_eur_per_kwh: float,
    cloud_eur_per_hour: float | None = None,
) -> PretrainingEstimate:
    """Hours, kWh and EUR to pretrain N parameters on D tokens (default D = 20·N, compute-optimal per
    Chinchilla) on one device doing `flops_per_s` peak at `utilisation` (MFU).
    pretraining_estimate(1e6, 1e6, flops_per_s=6e12, utilisation=1, power_w=1000, price_eur_per_kwh=1).hours
    -> 6e12 FLOPs / 6e12 FLOP/s = 1 s = 1/3600 h."""
    _check_count("n_params", n_params)
    tokens = CHINCHILLA_TOKENS_PER_PARAM * n_params if tokens is None else tokens
    _check_count("tokens", tokens)
    for name, value in (
        ("flops_per_s", flops_per_s),
        ("power_w", power_w),
        ("price_eur_per_kwh", price_eur_per_kwh),
    ):
        _check_count(name, value)
    if not 0 < utilisation <= 1:
        raise ValueError(
            f"utilisation (MFU) must be in (0, 1], got {utilisation}: e.g. 0.4 for a tuned GPU run"
        )
    flops = full_training_flops(n_params, tokens)
    hours = flops / (flops_per_s * utilisation) / 3600
    kwh = estimated_kwh(hours * 3600, power_w)
    cloud = None if cloud_eur_per_hour is None else cloud_eur_per_hour * hours
    return PretrainingEstimate(n_params, tokens, flops, hours, kwh, kwh * price_eur_per_kwh, cloud)


def pretraining_table(
    n_params_list: Iterable[float],
    machines: Sequence[Machine],
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM,
) -> pd.DataFrame:
    """One row per (model size, machine): tokens, FLOPs, device-hours, kWh, energy EUR, cloud EUR."""
    price = assumptions.eur(assumptions.energy_price)
    rows = []
    for n in n_params_list:
        for m in machines:
            e = pretraining_estimate(
                n,
                tokens_per_param * n,
                flops_per_s=m.peak_flops,
                utilisation=m.mfu,
                power_w=m.power_w,
                price_eur_per_kwh=price,
                cloud_eur_per_hour=m.cloud_eur_per_hour,
            )
            rows.append(
                {
                    "params": n,
                    "machine": m.name,
                    "tokens": e.tokens,
                    "flops": e.flops,
                    "device_hours": e.hours,
                    "kwh": e.kwh,
                    "energy_eur": e.energy_eur,
                    "cloud_eur": e.cloud_eur,
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# The ledger
# ---------------------------------------------------------------------------------------------
class EmptyLedgerError(ValueError):
    """Table/plot/compare asked of a ledger with no records."""


class Ledger:
    """Run records side by side. Saved as one JSON file (written atomically: temp file + rename).

    A run's name identifies it: adding a record whose name is already in the ledger replaces the old
    one in place, so re-running a notebook updates its rows instead of piling up duplicates."""

    def __init__(self, records: Iterable[RunRecord] = ()):
        self.records: list[RunRecord] = []
        for r in records:
            self.add(r)

    def add(self, record: RunRecord) -> RunRecord:
        if not isinstance(record, RunRecord):
            raise TypeError(f"Ledger.add expects a RunRecord, got {type(record).__name__}")
        names = [r.name for r in self.records]
        if record.name in names:
            self.records[names.index(record.name)] = record
        else:
            self.records.append(record)
        return record

    def __getitem__(self, name: str) -> RunRecord:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(f"no run named {name!r} in the ledger (it has {[r.name for r in self.records]})")

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": 1, "records": [r.to_dict() for r in self.records]}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(payload, f, indent=1)
            os.replace(tmp, path)  # atomic: a reader sees the old ledger or the new one, never half
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load_or_new(cls, path: str | os.PathLike) -> Ledger:
        """The ledger saved at `path`, or an empty one if there is none yet (first notebook to write)."""
        return cls.load(path) if Path(path).exists() else cls()

    @classmethod
    def load(cls, path: str | os.PathLike) -> Ledger:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"no ledger at {path.name}: run the notebook that writes it, or start Ledger()"
            )
        try:
            payload = json.loads(path.read_text())
            records = payload["records"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path.name} is not a ledger file ({err}): delete it and re-run") from err
        return cls(RunRecord.from_dict(r) for r in records)

    def _require_records(self, what: str) -> None:
        if not self.records:
            raise EmptyLedgerError(f"the ledger is empty: add a run with ledger.add(record) before {what}")

    def table(
        self,
        assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
        device_key: str | None = None,
        extras: Sequence[str] = (),
    ) -> pd.DataFrame:
        """One row per run: time, tokens, FLOPs, MFU, kWh (and how), EUR, every metric, and the
        record.extra entries named in `extras` (e.g. ("n_examples", "label_noise"); missing -> NaN)."""
        self._require_records("asking for a table")
        rows = []
        for r in self.records:
            c = run_cost(r, assumptions, device_key)
            row = {
                "name": r.name,
                "route": r.route,
                "seconds": r.wall_seconds,
                "tokens": r.tokens,
                "flops": r.flops,
                "mfu": r.mfu,
                "kwh": c.kwh,
                "kwh_method": c.kwh_method.split(":")[0],
                "energy_eur": c.energy_eur,
                "hardware_eur": c.hardware_eur,
                "total_eur": c.total_eur,
                "cloud_eur": c.cloud_eur,
                "test_set": r.test_set,
            }
            row.update(r.metrics)
            row.update({k: r.extra.get(k, math.nan) for k in extras})
            rows.append(row)
        return pd.DataFrame(rows).set_index("name")

    def plot(
        self,
        assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
        device_key: str | None = None,
        columns: Sequence[str] = ("seconds", "flops", "kwh", "total_eur"),
    ):
        """Bar charts, one panel per column, runs side by side (log scale). Returns the Figure."""
        import matplotlib.pyplot as plt

        table = self.table(assumptions, device_key)
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise KeyError(f"unknown ledger columns {missing}: use some of {list(table.columns)}")
        fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.2), squeeze=False)
        for ax, col in zip(axes[0], columns, strict=True):
            values = table[col].astype(float)
            ax.bar(range(len(values)), values, color=[f"C{i % 10}" for i in range(len(values))])
            ax.set_xticks(range(len(values)), table.index, rotation=45, ha="right", fontsize=7)
            if (values > 0).all():
                ax.set_yscale("log")
            ax.set_title(col)
        fig.tight_layout()
        plt.close(fig)  # the caller displays it; no double rendering in notebooks
        return fig

    def compare(self, metric: str, names: Sequence[str] | None = None) -> pd.DataFrame:
        self._require_records("comparing")
        chosen = [r for r in self.records if names is None or r.name in names]
        return compare(chosen, metric)


def compare(records: Sequence[RunRecord], metric: str) -> pd.DataFrame:
    """`metric` of several runs side by side — only if they were measured on the same test set."""
    if not records:
        raise EmptyLedgerError("nothing to compare: pass at least one RunRecord")
    for r in records:
        if metric not in r.metrics:
            raise KeyError(f"run {r.name!r} has no metric {metric!r} (it has {sorted(r.metrics)})")
    first = records[0]
    for r in records[1:]:
        if r.test_set != first.test_set:
            raise ValueError(
                f"cannot compare {metric!r}: run {first.name!r} was measured on test set {first.test_set!r} "
                f"but run {r.name!r} on {r.test_set!r}; evaluate both on the same test set"
            )
    return pd.DataFrame(
        [
            {
                "name": r.name,
                "route": r.route,
                metric: r.metrics[metric],
                "test_set": r.test_set,
                "flops": r.flops,
                "seconds": r.wall_seconds,
            }
            for r in records
        ]
    ).set_index("name")
