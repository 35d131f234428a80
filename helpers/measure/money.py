"""Money and energy of training: what one run cost, and what pretraining a bigger model would cost.

- `attach_energy` fills a RunRecord's energy: measured by `helpers.core.energy.EnergyMeter` where the
  platform allows, else estimated from a stated power figure and labelled "estimated".
- `run_cost` turns a record into EUR: energy, hardware amortisation, and what the same hours would
  cost on a rented cloud machine (an alternative, not part of the total).
- `reference_machines`, `pretraining_estimate`, `pretraining_table`: hours, kWh and EUR of training N
  parameters on D tokens (default D = 20·N, Chinchilla's compute-optimal ratio), FLOPs by
  `helpers.measure.flops.full_training_flops` (6·N·D).

Every number comes from `helpers.measure.assumptions` (editable, with source and date). Run records
side by side: `helpers.measure.ledger`; local vs cloud vs API per month: `helpers.measure.breakeven`.

Left out on purpose: data-loading time, the carbon intensity of electricity, multi-device scaling
losses (hours are device-hours: divide by the number of devices for wall time, optimistically).

References: Hoffmann et al. 2022 (Chinchilla, arXiv:2203.15556) for D ≈ 20·N.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from helpers.core.checks import instance, non_empty, number, text
from helpers.core.power import cpu_watts, this_cpu_name, this_machine_has_battery
from helpers.core.records import RunRecord
from helpers.measure.assumptions import CLOUD_PER_VCPU_HOUR, DEFAULT_ASSUMPTIONS, Assumptions
from helpers.measure.flops import CHINCHILLA_TOKENS_PER_PARAM, full_training_flops

HOURS_PER_YEAR = 24 * 365  # 8760: the amortisation period is counted in calendar hours


def _check_positive(name: str, value: float, fix: str = "") -> float:
    return number(name, value, 0, above_minimum=True, fix=fix)


def _check_record(record: RunRecord) -> RunRecord:
    """A RunRecord whose time and energy can be priced. RunRecord refuses NaN or negative numbers when it
    is made; this catches a field changed afterwards, so no path returns NaN money."""
    instance("record", record, RunRecord, "pass the RunRecord that helpers.core.training.train returned")
    number(f"record {record.name!r}: wall_seconds", record.wall_seconds, 0,
           fix="it was changed after the record was made; re-run the training or set the measured time")
    if record.energy_kwh is not None:
        number(f"record {record.name!r}: energy_kwh", record.energy_kwh, 0,
               fix="set the measured kWh, or None to estimate it from the assumptions")
    return record


# ---------------------------------------------------------------------------------------------
# Energy and money of one run
# ---------------------------------------------------------------------------------------------
def estimated_kwh(seconds: float, power_w: float) -> float:
    """Energy of `power_w` watts for `seconds`: estimated_kwh(3600, 1000) -> 1.0."""
    number("seconds", seconds, 0, fix="a duration in seconds")
    number("power_w", power_w, 0, fix="a power in watts")
    return power_w * seconds / 3.6e6


def default_device_key(device: str) -> str:
    """The assumption row for a torch device type when the learner has not named one:
    cpu -> cpu-laptop (the course's typical machine), cuda -> by GPU name if known, else gpu-t4."""
    text("device", device, "a torch device type such as 'cpu' or 'cuda'")
    kind = device.split(":")[0]
    if kind == "cuda":
        try:
            import torch  # heavy: only needed to name a CUDA device

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
    training) measured something; else the record's own energy when the loop filled it and no `device_key`
    is named (measured, or estimated for this machine's class by helpers.core.power); else power × wall
    time of the assumptions' `device_key` row, labelled "estimated" (name a row to price your own machine)."""
    _check_record(record)
    instance("assumptions", assumptions, Assumptions, "edit DEFAULT_ASSUMPTIONS with .edit(...)")
    if meter is not None and not hasattr(meter, "kwh"):
        raise TypeError(f"meter must be a helpers.core.energy.EnergyMeter (or None), got {type(meter).__name__}")
    if meter is not None and meter.kwh is not None:
        number("meter.kwh", meter.kwh, 0, fix="the meter measured nothing usable: pass meter=None to estimate")
        record.energy_kwh, record.energy_method = meter.kwh, meter.method
        return record
    if device_key is None and record.energy_kwh is not None:
        return record  # the training loop's value: measured, or estimated with its figure stated
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
    _check_record(record)
    instance("assumptions", assumptions, Assumptions, "edit DEFAULT_ASSUMPTIONS with .edit(...)")
    key = device_key or default_device_key(record.device)
    dev = assumptions.device(key)
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

    def __post_init__(self) -> None:
        _check_positive(f"Machine {self.name!r}: peak_flops", self.peak_flops, "FLOP/s, e.g. 312e12")
        number(f"Machine {self.name!r}: mfu", self.mfu, 0, 1, above_minimum=True, fix="a fraction, e.g. 0.4")
        _check_positive(f"Machine {self.name!r}: power_w", self.power_w)
        if self.cloud_eur_per_hour is not None:
            number(f"Machine {self.name!r}: cloud_eur_per_hour", self.cloud_eur_per_hour, 0,
                   fix="None when it cannot be rented")


def reference_machines(
    measured_flops_per_s: float | None = None,
    measured_mfu: float | None = None,
    local_key: str | None = None,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    gpu_keys: Sequence[str] = ("gpu-a100", "gpu-h100"),
    cores: int | None = None,
) -> list[Machine]:
    """This machine (measured peak and MFU from a run, if given) plus data-centre GPUs at their stated
    peak bf16 FLOP/s and the assumed data-centre MFU.

    This machine's power and rent: with `local_key` (e.g. "cpu-laptop"), that device row of `assumptions`;
    by default, what this machine is: its CPU class's power share for its `cores` (default: the CPUs this
    process sees; `helpers.core.power.cpu_watts`, the figure the training loop's energy estimate uses) and
    the rent of as many cloud vCPUs (`CLOUD_PER_VCPU_HOUR`). So 2 cores of a server are not priced as a laptop.
    """
    if measured_flops_per_s is not None:
        _check_positive("measured_flops_per_s", measured_flops_per_s, "the matmul peak notebook 00 measured")
    if measured_mfu is not None:
        number("measured_mfu", measured_mfu, 0, 1, above_minimum=True, fix="RunRecord.mfu of a run, or None")
    instance("assumptions", assumptions, Assumptions)
    if isinstance(gpu_keys, str):
        raise TypeError(f"gpu_keys must be a list of device keys, got the string {gpu_keys!r}: write "
                        f"({gpu_keys!r},)")
    if cores is not None and (isinstance(cores, bool) or not isinstance(cores, int) or cores < 1):
        raise ValueError(f"cores must be a whole number >= 1, got {cores!r}: the CPU cores this machine has")
    machines = []
    if measured_flops_per_s is not None:
        mfu = measured_mfu if measured_mfu is not None else 1.0
        if local_key is not None:
            dev = assumptions.device(local_key)
            power, power_source = dev.power_w.value, dev.power_w.source
            rent = None if dev.cloud_per_hour is None else assumptions.eur(dev.cloud_per_hour)
        else:
            n = cores or os.cpu_count() or 1
            power, _, power_source = cpu_watts(n, this_cpu_name(), this_machine_has_battery())
            rent = assumptions.eur(CLOUD_PER_VCPU_HOUR) * n
            power_source += f"; rent: {n} vCPU x {CLOUD_PER_VCPU_HOUR.source}"
        machines.append(
            Machine(
                "this machine (measured)",
                measured_flops_per_s,
                mfu,
                power,
                rent,
                f"measured matmul peak, MFU {'of the run' if measured_mfu else '1.0 (no run given)'}, "
                f"power: {power_source}",
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
    _check_positive("n_params", n_params)
    tokens = CHINCHILLA_TOKENS_PER_PARAM * n_params if tokens is None else tokens
    _check_positive("tokens", tokens)
    for name, value in (
        ("flops_per_s", flops_per_s),
        ("power_w", power_w),
        ("price_eur_per_kwh", price_eur_per_kwh),
    ):
        _check_positive(name, value)
    number("utilisation (MFU)", utilisation, 0, 1, above_minimum=True, fix="e.g. 0.4 for a tuned GPU run")
    if cloud_eur_per_hour is not None:
        number("cloud_eur_per_hour", cloud_eur_per_hour, 0, fix="None when there is no cloud equivalent")
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
    if isinstance(n_params_list, (str, bytes)) or not isinstance(n_params_list, Iterable):
        raise TypeError(f"n_params_list must be a list of model sizes, got {n_params_list!r}: e.g. [1e8, 1e9]")
    n_params_list = list(non_empty("n_params_list", list(n_params_list), "model sizes, e.g. [1e8, 1e9]"))
    non_empty("machines", machines, "e.g. reference_machines()")
    for i, m in enumerate(machines):
        instance(f"machines[{i}]", m, Machine, "build them with reference_machines()")
    _check_positive("tokens_per_param", tokens_per_param, "20 is Chinchilla's compute-optimal ratio")
    instance("assumptions", assumptions, Assumptions)
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
