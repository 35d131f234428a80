"""Every price and power figure the cost model uses, each with its unit, source and date.

Nothing in `helpers.measure.money` or `helpers.measure.breakeven` hard-codes a number: they read this table, which a
learner edits for their own country, contract or hardware:

    a = DEFAULT_ASSUMPTIONS.edit(energy_price=0.35)          # my bill: 0.35 EUR/kWh
    a = a.with_device("my-laptop", power_w=45, hardware_price=1500)
    a.table()                                                 # every number with source and date

The figures are snapshots (dates say when), not live prices: cloud and API prices change often. A
chip's TDP is the power it is designed to dissipate under sustained load — a stated figure, not a
measurement, and it leaves out the rest of the machine (RAM, disk, fans, PSU losses). Hardware prices
without an official list price are marked "illustrative". USD figures are converted with `usd_per_eur`.

Left out on purpose: taxes on hardware, cooling overhead (PUE), staff time, discounts for reserved or
spot cloud capacity.
"""

from __future__ import annotations

import datetime
import math
import numbers
from dataclasses import dataclass, field, fields, replace

import pandas as pd

from helpers.core.checks import instance, text
from helpers.core.power import POWER_FIGURES


@dataclass(frozen=True)
class Assumption:
    """One number with its provenance: Assumption(0.2872, "EUR/kWh", "Eurostat ...", "2024-H2")."""

    value: float
    unit: str  # a unit starting with "USD" is converted to EUR with Assumptions.usd_per_eur
    source: str
    date: str  # when the figure was true (period or publication date)

    def check(self, name: str, upper: float | None = None) -> None:
        value = self.value
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        if not ok or (upper is not None and self.value > upper):
            bound = f"in (0, {upper}]" if upper is not None else "> 0"
            raise ValueError(
                f"assumption {name!r} must be {bound} {self.unit}, got {self.value!r}: "
                f"set a positive number, e.g. assumptions.edit({name.split('.')[-1]}=...)"
            )


@dataclass(frozen=True)
class DeviceCosts:
    """What one kind of machine draws, costs to buy, and costs to rent."""

    description: str
    power_w: Assumption  # stated TDP of the chip doing the work
    hardware_price: Assumption  # purchase price (EUR or USD)
    cloud_per_hour: Assumption | None = None  # closest rentable equivalent, on-demand
    peak_flops: Assumption | None = None  # vendor peak (dense bf16/fp16 tensor) FLOP/s, GPUs only


def _usd_gpu_hour(instance_usd: float, gpus: int, instance: str, date: str, note: str = "") -> Assumption:
    source = f"AWS EC2 on-demand {instance}, ${instance_usd}/h / {gpus} GPUs, us-east-1"
    source += " (aws.amazon.com/ec2/pricing)"
    return Assumption(instance_usd / gpus, "USD/h", source + note, date)


def _power(key: str) -> Assumption:
    """A device's power row from helpers.core.power.POWER_FIGURES (the one home of every TDP, which the
    training loop also uses to estimate energy where it cannot measure it)."""
    figure = POWER_FIGURES[key]
    return Assumption(figure.watts, "W", figure.source, figure.date)


_M7I = "AWS EC2 on-demand m7i, us-east-1, $0.0504 per vCPU-hour (aws.amazon.com/ec2/pricing)"
# Renting a given number of CPU cores (money.reference_machines: "this machine" as the cores it has)
CLOUD_PER_VCPU_HOUR = Assumption(0.0504, "USD/h", _M7I + ": one vCPU", "2024")

DEVICES: dict[str, DeviceCosts] = {
    "cpu-laptop": DeviceCosts(
        "laptop CPU (Intel Core i7-1360P class)",
        _power("cpu-laptop"),
        Assumption(1200, "EUR", "illustrative: a business laptop", "2025"),
        Assumption(0.2016, "USD/h", _M7I + ": m7i.xlarge, 4 vCPU 16 GiB", "2024"),
    ),
    "cpu-desktop": DeviceCosts(
        "desktop CPU (AMD Ryzen 7 7700 class)",
        _power("cpu-desktop"),
        Assumption(1000, "EUR", "illustrative: a desktop PC without GPU", "2025"),
        Assumption(0.2016, "USD/h", _M7I + ": m7i.xlarge, 4 vCPU 16 GiB", "2024"),
    ),
    "cpu-server": DeviceCosts(
        "one server CPU socket (AMD EPYC 9654 class, 96 cores)",
        _power("cpu-server"),
        Assumption(15000, "EUR", "illustrative: a 1-socket server", "2025"),
        Assumption(9.6768, "USD/h", _M7I + ": m7i.48xlarge, 192 vCPU", "2024"),
    ),
    "gpu-t4": DeviceCosts(
        "NVIDIA T4 16 GB (Turing; fp16, no bf16)",
        _power("gpu-t4"),
        Assumption(2000, "USD", "illustrative: street price of a T4 card", "2025"),
        Assumption(
            0.35, "USD/h", "Google Cloud Compute Engine GPU pricing, NVIDIA T4 on-demand, us-central1", "2024"
        ),
        Assumption(65e12, "FLOP/s", "NVIDIA T4 datasheet: 65 TFLOPS mixed precision (fp16 tensor)", "2019"),
    ),
    "gpu-a100": DeviceCosts(
        "NVIDIA A100 SXM4 40 GB (Ampere)",
        _power("gpu-a100"),
        Assumption(15000, "USD", "illustrative: reported street price of one A100 SXM module", "2024"),
        _usd_gpu_hour(32.7726, 8, "p4d.24xlarge (8x A100 40 GB)", "2024"),
        Assumption(
            312e12, "FLOP/s", "NVIDIA A100 datasheet: BF16 tensor 312 TFLOPS dense (624 sparse)", "2021"
        ),
    ),
    "gpu-h100": DeviceCosts(
        "NVIDIA H100 SXM5 80 GB (Hopper)",
        _power("gpu-h100"),
        Assumption(30000, "USD", "illustrative: reported street price of one H100 SXM module", "2024"),
        _usd_gpu_hour(
            98.32, 8, "p5.48xlarge (8x H100)", "2023-07", "; AWS announced cuts of up to 45% in 2025-06"
        ),
        Assumption(
            989e12, "FLOP/s", "NVIDIA H100 datasheet: BF16 tensor 989 TFLOPS dense (1979 sparse)", "2023"
        ),
    ),
    "gpu-rtx4090": DeviceCosts(
        "NVIDIA GeForce RTX 4090 24 GB (Ada, consumer)",
        _power("gpu-rtx4090"),
        Assumption(1599, "USD", "NVIDIA launch price (MSRP) of the RTX 4090", "2022-10"),
        None,  # not offered by the big clouds
        Assumption(
            165.2e12, "FLOP/s", "NVIDIA Ada whitepaper: RTX 4090 BF16 tensor 165.2 TFLOPS dense", "2022"
        ),
    ),
}


@dataclass(frozen=True, repr=False)
class Assumptions:
    """The cost model's inputs. Edit with .edit(...) / .with_device(...): both re-validate."""

    energy_price: Assumption = Assumption(
        0.2872,
        "EUR/kWh",
        "Eurostat (nrg_pc_204), EU average household electricity price incl. taxes; "
        "businesses pay less (nrg_pc_205), Italy differs: edit for your contract",
        "2024-H2",
    )
    usd_per_eur: Assumption = Assumption(
        1.0824, "USD/EUR", "ECB euro foreign exchange reference rate, 2024 annual average", "2024"
    )
    amortisation_years: Assumption = Assumption(
        3,
        "years",
        "illustrative refresh cycle; Italian tax depreciation for computers is 20%/year "
        "= 5 years (DM 31/12/1988)",
        "2025",
    )
    utilisation: Assumption = Assumption(
        0.25,
        "fraction of the year",
        "illustrative: busy ~8 h x 5 days a week (2080 h / 8760 h = 0.24)",
        "2025",
    )
    api_input_per_m: Assumption = Assumption(
        0.15,
        "USD/M tokens",
        "illustrative hosted API: OpenAI gpt-4o-mini input price (openai.com/api/pricing)",
        "2024-07",
    )
    api_output_per_m: Assumption = Assumption(
        0.60,
        "USD/M tokens",
        "illustrative hosted API: OpenAI gpt-4o-mini output price (openai.com/api/pricing)",
        "2024-07",
    )
    datacentre_mfu: Assumption = Assumption(
        0.40,
        "fraction of peak",
        "PaLM reports 46.2% MFU training on TPU v4 (Chowdhery et al. 2022, Table 3); "
        "~40% is a well-tuned large run",
        "2022",
    )
    devices: dict[str, DeviceCosts] = field(default_factory=lambda: dict(DEVICES))

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Assumption):
                upper = 1.0 if f.name in ("utilisation", "datacentre_mfu") else None
                value.check(f.name, upper)
        for key, dev in self.devices.items():
            for part in ("power_w", "hardware_price", "cloud_per_hour", "peak_flops"):
                a = getattr(dev, part)
                if a is not None:
                    a.check(f"devices[{key!r}].{part}")

    def __repr__(self) -> str:  # short: the full provenance is in .table()
        numbers = ", ".join(
            f"{f.name}={getattr(self, f.name).value:g} {getattr(self, f.name).unit}"
            for f in fields(self)
            if f.name != "devices"
        )
        return f"Assumptions({numbers}, devices={list(self.devices)})"

    # -- lookups -------------------------------------------------------------------------------
    def device(self, key: str) -> DeviceCosts:
        text("device key", key, f"one of {', '.join(self.devices)}")
        if key not in self.devices:
            raise KeyError(
                f"unknown device {key!r}: use one of {', '.join(self.devices)}, "
                f"or add it with assumptions.with_device({key!r}, power_w=..., hardware_price=...)"
            )
        return self.devices[key]

    def eur(self, a: Assumption) -> float:
        """In EUR (USD converted with usd_per_eur): Assumption(1.0824, "USD", ...) -> 1.0."""
        instance("a", a, Assumption, "an Assumption of this table, e.g. assumptions.energy_price")
        return a.value / self.usd_per_eur.value if a.unit.startswith("USD") else a.value

    # -- editing -------------------------------------------------------------------------------
    def edit(self, **changes: float | Assumption) -> Assumptions:
        """A copy with some numbers changed: edit(energy_price=0.35). A bare number keeps the unit and
        is labelled as edited today; pass an Assumption to give your own source."""
        known = {f.name for f in fields(self)} - {"devices"}
        new = {}
        for name, value in changes.items():
            if name not in known:
                raise KeyError(f"unknown assumption {name!r}: use one of {', '.join(sorted(known))}")
            new[name] = value if isinstance(value, Assumption) else _edited(getattr(self, name), value)
        return replace(self, **new)

    def with_device(
        self, key: str, *, description: str | None = None, **numbers: float | Assumption
    ) -> Assumptions:
        """A copy with a device added or changed: with_device("my-laptop", power_w=45, hardware_price=1500).
        A new device needs at least power_w and hardware_price (EUR)."""
        text("key", key, "name the device, e.g. 'my-laptop'")
        if description is not None:
            text("description", description, "describe the machine, or leave it None")
        base = self.devices.get(key)
        parts = {}
        for name in ("power_w", "hardware_price", "cloud_per_hour", "peak_flops"):
            old = getattr(base, name) if base else None
            value = numbers.pop(name, None)
            if value is None:
                parts[name] = old
            elif isinstance(value, Assumption):
                parts[name] = value
            else:
                unit = (
                    old.unit
                    if old
                    else {"power_w": "W", "peak_flops": "FLOP/s", "cloud_per_hour": "EUR/h"}.get(name, "EUR")
                )
                parts[name] = _edited(Assumption(value, unit, "", ""), value)
        if numbers:
            raise KeyError(
                f"unknown device fields {sorted(numbers)}: use power_w, hardware_price, cloud_per_hour, "
                "peak_flops"
            )
        if parts["power_w"] is None or parts["hardware_price"] is None:
            raise ValueError(
                f"new device {key!r} needs power_w and hardware_price: "
                f"with_device({key!r}, power_w=..., hardware_price=...)"
            )
        desc = description or (base.description if base else key)
        return replace(self, devices={**self.devices, key: DeviceCosts(desc, **parts)})

    def table(self) -> pd.DataFrame:
        """Every number with its unit, source and date, one row each."""
        rows = [(f.name, getattr(self, f.name)) for f in fields(self) if f.name != "devices"]
        for key, dev in self.devices.items():
            rows += [
                (f"{key}.{part}", getattr(dev, part))
                for part in ("power_w", "hardware_price", "cloud_per_hour", "peak_flops")
                if getattr(dev, part) is not None
            ]
        return pd.DataFrame(
            [
                {"assumption": n, "value": a.value, "unit": a.unit, "source": a.source, "date": a.date}
                for n, a in rows
            ]
        ).set_index("assumption")


def _edited(old: Assumption, value: float) -> Assumption:
    return Assumption(value, old.unit, "edited by the user", datetime.date.today().isoformat())


DEFAULT_ASSUMPTIONS = Assumptions()
