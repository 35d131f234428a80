"""Own it, rent it, or pay per token? Monthly cost vs monthly request volume, with the crossovers.

Three ways to answer R requests a month (each `tokens_in` prompt + `tokens_out` generated tokens):
- local:  buy machines; each costs its price / (amortisation years · 12) a month, serves as many
          requests as its *measured* throughput allows while busy `max_utilisation` of the month, and
          draws its stated power only while busy (idle power left out);
- cloud:  rent GPU machines by the hour; `always_on=True` (an endpoint that must answer at any time)
          pays every hour of the month per machine, `always_on=False` (batch jobs) only the busy hours;
- api:    pay a hosted API per million input and output tokens; no fixed cost.

Each option is a `CostModel`: cost(R) = units(R) · fixed_per_unit + eur_per_request · R with
units(R) = max(min_units, ceil(R / requests_per_unit)) — a straight line with steps where another
machine is needed. Crossovers are solved exactly on each step, not read off a grid.

    break_even(BreakEvenInputs(...)).crossovers   # e.g. [Crossover(api -> local at 1.2e6 requests/month)]

Left out on purpose: batching several requests on one machine (use a throughput measured with
batching if you do it), staff time, networking, discounts for reserved capacity, price tiers.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from helpers.core.checks import count, flag, instance, number, text
from helpers.measure.assumptions import DEFAULT_ASSUMPTIONS, Assumptions

HOURS_PER_MONTH = 24 * 365 / 12  # 730 h: a calendar month on average
MAX_STEPS = 200_000  # crossovers are searched step by step: refuse ranges needing more machines than this


@dataclass(frozen=True)
class CostModel:
    """cost(R) = units(R)·fixed_eur_per_unit + eur_per_request·R;
    units(R) = max(min_units, ceil(R / requests_per_unit))."""

    name: str
    fixed_eur_per_unit: float = 0.0  # EUR per machine per month (amortisation, or rent if always on)
    eur_per_request: float = 0.0  # EUR that grows with every request (energy, pay-per-use, API)
    requests_per_unit: float = math.inf  # monthly capacity of one machine
    min_units: int = 0  # 1 for something you must own/keep running even at zero traffic

    def __post_init__(self) -> None:
        text("CostModel.name", self.name, "name the option, e.g. 'local'")
        for f in ("fixed_eur_per_unit", "eur_per_request"):
            number(f"CostModel {self.name!r}: {f}", getattr(self, f), minimum=0, fix="EUR, e.g. 0.0")
        rpu = self.requests_per_unit
        if isinstance(rpu, bool) or not isinstance(rpu, numbers.Real) or not rpu > 0:  # inf = no limit
            raise ValueError(f"CostModel {self.name!r}: requests_per_unit must be > 0 (math.inf = one machine "
                             f"serves any volume), got {rpu!r}")
        count(f"CostModel {self.name!r}: min_units", self.min_units, fix="1 for a machine you must keep")

    def units(self, requests):
        r = volumes(requests)
        needed = (
            np.zeros_like(r) if math.isinf(self.requests_per_unit) else np.ceil(r / self.requests_per_unit)
        )
        return np.maximum(self.min_units, needed)

    def cost(self, requests):
        """EUR per month at `requests` per month (scalar or array)."""
        r = volumes(requests)
        return self.units(r) * self.fixed_eur_per_unit + self.eur_per_request * r


def volumes(requests, name: str = "requests") -> np.ndarray:
    """Monthly request volumes as floats, refusing what would answer with negative or NaN money:
    volumes([0, 1e3]) -> array([0., 1000.]); volumes(-5) -> ValueError naming the value."""
    if isinstance(requests, (str, bytes, bool)) or requests is None:
        raise TypeError(f"{name} must be a number of requests per month (or an array of them), got {requests!r}")
    try:
        r = np.asarray(requests, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a number of requests per month (or an array of them), "
                        f"got {requests!r} ({err})") from err
    bad = r[~(np.isfinite(r) & (r >= 0))]
    if bad.size:
        raise ValueError(f"{name} must be a finite number of requests per month >= 0, got {float(bad.flat[0])!r}: "
                         "a volume cannot be negative or NaN (e.g. 1e5)")
    return r


@dataclass(frozen=True)
class Crossover:
    """Where the cheaper of two options changes: below `requests`, `cheaper_below` wins."""

    requests: float  # per month
    tokens: float  # per month (requests × tokens per request)
    cheaper_below: str
    cheaper_above: str
    kind: str  # "crossing" (the lines cross) or "step" (one option buys another machine)

    def __str__(self) -> str:
        where = f"{self.requests:.3g} requests/month"
        return f"{self.cheaper_below} -> {self.cheaper_above} at {where} ({self.kind})"


def crossovers(
    a: CostModel, b: CostModel, max_requests: float, tokens_per_request: float = 1.0
) -> list[Crossover]:
    """Every volume in (0, max_requests] where the cheaper of `a` and `b` changes, solved exactly.

    On each interval where neither needs another machine both costs are straight lines, so their
    difference d(R) = d0 + (va - vb)·R has at most one root there; at a step the sign of d can also flip."""
    instance("a", a, CostModel)
    instance("b", b, CostModel)
    max_requests = number("max_requests", max_requests, 0, above_minimum=True, fix="requests per month, e.g. 1e8")
    number("tokens_per_request", tokens_per_request, 0, above_minimum=True)
    edges = {0.0, float(max_requests)}
    for m in (a, b):
        if not math.isinf(m.requests_per_unit):
            n = int(max_requests // m.requests_per_unit)
            if n > MAX_STEPS:
                raise ValueError(
                    f"{m.name!r} would need {n:,} machines at {max_requests:.3g} requests/month: "
                    "lower max_requests or raise the throughput"
                )
            edges.update(k * m.requests_per_unit for k in range(1, n + 1))
    edges = sorted(e for e in edges if e <= max_requests)
    found: list[Crossover] = []

    def add(r: float, d_before: float, kind: str) -> None:
        below, above = (a.name, b.name) if d_before < 0 else (b.name, a.name)
        found.append(Crossover(r, r * tokens_per_request, below, above, kind))

    slope = a.eur_per_request - b.eur_per_request
    prev_end = None  # d at the end of the previous interval
    for lo, hi in zip(edges, edges[1:], strict=False):
        # units are constant on (lo, hi]: evaluate them at hi
        offset = float(a.units(hi) * a.fixed_eur_per_unit - b.units(hi) * b.fixed_eur_per_unit)
        d_lo, d_hi = offset + slope * lo, offset + slope * hi
        if prev_end is not None and prev_end != 0 and np.sign(prev_end) != np.sign(d_lo) and d_lo != 0:
            add(lo, prev_end, "step")
        if d_lo * d_hi < 0 or (d_hi == 0 and d_lo != 0):
            add(-offset / slope, d_lo, "crossing")
        prev_end = d_hi if d_hi != 0 else d_lo
    return found


@dataclass(frozen=True)
class BreakEvenInputs:
    """Everything the comparison depends on; prices in EUR. Build it from the assumptions table with
    `BreakEvenInputs.from_assumptions(...)` and your measured throughput."""

    tokens_in: float  # prompt tokens per request
    tokens_out: float  # generated tokens per request
    local_tokens_per_s: float  # measured generation speed on your machine (tokens/s)
    local_power_w: float
    local_hardware_eur: float
    amortisation_years: float
    energy_eur_per_kwh: float
    cloud_eur_per_hour: float
    cloud_tokens_per_s: float  # generation speed on the rented machine
    api_eur_per_m_in: float
    api_eur_per_m_out: float
    local_prefill_tokens_per_s: float | None = None  # None: prompt tokens counted at the generation speed
    max_utilisation: float = 0.5  # traffic comes in peaks: a machine sized for them is busy ~half the month
    cloud_always_on: bool = True  # an endpoint answers at any hour; False = rent only busy hours (batch)

    def __post_init__(self) -> None:
        flag("BreakEvenInputs.cloud_always_on", self.cloud_always_on,
             "True = an endpoint paid every hour, False = rented only while busy")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "cloud_always_on" or (value is None and f.name == "local_prefill_tokens_per_s"):
                continue
            number(f"break-even input {f.name}", value, 0, above_minimum=True, fix="give a positive number")
        if self.max_utilisation > 1:
            raise ValueError(f"max_utilisation must be in (0, 1], got {self.max_utilisation}: e.g. 0.5")

    @property
    def tokens_per_request(self) -> float:
        return self.tokens_in + self.tokens_out

    @classmethod
    def from_assumptions(
        cls,
        *,
        tokens_in: float,
        tokens_out: float,
        local_tokens_per_s: float,
        local_device: str = "cpu-laptop",
        cloud_device: str = "gpu-t4",
        cloud_tokens_per_s: float | None = None,
        assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
        **overrides,
    ) -> BreakEvenInputs:
        """Prices and power from the assumptions table. cloud_tokens_per_s defaults to the local speed:
        measure it on the rented machine if you can (generation is limited by memory bandwidth, so
        peak FLOP/s ratios are a poor guide)."""
        instance("assumptions", assumptions, Assumptions, "edit DEFAULT_ASSUMPTIONS with .edit(...)")
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unknown break-even input(s) {unknown}: override some of "
                            f"{[f.name for f in fields(cls)]}")
        a, local, cloud = assumptions, assumptions.device(local_device), assumptions.device(cloud_device)
        if cloud.cloud_per_hour is None:
            raise ValueError(
                f"device {cloud_device!r} has no cloud price: pick one with cloud_per_hour (e.g. gpu-t4)"
            )
        number("local_tokens_per_s", local_tokens_per_s, 0, above_minimum=True,
               fix="the generation speed you measured (helpers.measure.latency.measure)")
        if cloud_tokens_per_s is None:
            both = local.peak_flops is not None and cloud.peak_flops is not None
            cloud_tokens_per_s = local_tokens_per_s * (
                cloud.peak_flops.value / local.peak_flops.value if both else 1
            )
        values = dict(
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            local_tokens_per_s=local_tokens_per_s,
            local_power_w=local.power_w.value,
            local_hardware_eur=a.eur(local.hardware_price),
            amortisation_years=a.amortisation_years.value,
            energy_eur_per_kwh=a.eur(a.energy_price),
            cloud_eur_per_hour=a.eur(cloud.cloud_per_hour),
            cloud_tokens_per_s=cloud_tokens_per_s,
            api_eur_per_m_in=a.eur(a.api_input_per_m),
            api_eur_per_m_out=a.eur(a.api_output_per_m),
        )
        values.update(overrides)  # anything measured or negotiated beats the table
        return cls(**values)


def cost_models(x: BreakEvenInputs) -> dict[str, CostModel]:
    """The three options as CostModels (see the module docstring for what each includes)."""
    instance("inputs", x, BreakEvenInputs, "build one with BreakEvenInputs.from_assumptions(...)")
    prefill = x.local_prefill_tokens_per_s or x.local_tokens_per_s
    local_s = x.tokens_out / x.local_tokens_per_s + x.tokens_in / prefill  # busy seconds per request
    busy_s_per_month = HOURS_PER_MONTH * 3600 * x.max_utilisation
    local = CostModel(
        "local",
        fixed_eur_per_unit=x.local_hardware_eur / (x.amortisation_years * 12),
        eur_per_request=x.local_power_w * local_s / 3.6e6 * x.energy_eur_per_kwh,
        requests_per_unit=busy_s_per_month / local_s,
        min_units=1,
    )
    cloud_s = x.tokens_per_request / x.cloud_tokens_per_s
    if x.cloud_always_on:
        cloud = CostModel("cloud", x.cloud_eur_per_hour * HOURS_PER_MONTH, 0.0, busy_s_per_month / cloud_s, 1)
    else:
        cloud = CostModel("cloud", 0.0, x.cloud_eur_per_hour * cloud_s / 3600)
    api = CostModel(
        "api", eur_per_request=(x.tokens_in * x.api_eur_per_m_in + x.tokens_out * x.api_eur_per_m_out) / 1e6
    )
    return {"local": local, "cloud": cloud, "api": api}


@dataclass(frozen=True)
class BreakEven:
    requests: np.ndarray  # (P,) log-spaced monthly volumes
    costs: dict[str, np.ndarray]  # name -> (P,) EUR per month
    models: dict[str, CostModel]
    crossovers: list[Crossover]
    tokens_per_request: float

    def table(self) -> pd.DataFrame:
        """Monthly EUR per option at each volume, and which is cheapest."""
        df = pd.DataFrame({"requests_per_month": self.requests, **self.costs})
        df["cheapest"] = df[list(self.costs)].idxmin(axis=1)
        return df

    def cheapest(self, requests: float) -> str:
        """The option with the lowest monthly cost at `requests` per month (one finite volume >= 0)."""
        r = volumes(requests)
        if r.ndim:
            raise TypeError(f"cheapest takes one volume, got {r.size} values: call it once per volume, "
                            "or read BreakEven.table()")
        return min(self.models, key=lambda n: float(self.models[n].cost(float(r))))


def break_even(
    inputs: BreakEvenInputs | dict[str, CostModel],
    max_requests: float = 1e8,
    min_requests: float = 1e2,
    points: int = 400,
    tokens_per_request: float | None = None,
) -> BreakEven:
    """Cost curves of every option on a log grid of monthly volumes, and every crossover between each
    pair in (0, max_requests]. `inputs` is a BreakEvenInputs or ready-made CostModels by name."""
    number("min_requests", min_requests, 0, above_minimum=True, fix="requests per month, e.g. 1e2")
    number("max_requests", max_requests, 0, above_minimum=True, fix="requests per month, e.g. 1e8")
    if not min_requests < max_requests:
        raise ValueError(f"need 0 < min_requests < max_requests, got {min_requests}, {max_requests}")
    count("points", points, 2, "points on the plotted grid, e.g. 400")
    if isinstance(inputs, BreakEvenInputs):
        models, tpr = cost_models(inputs), inputs.tokens_per_request
    else:
        instance("inputs", inputs, (BreakEvenInputs, dict), "a BreakEvenInputs or {name: CostModel}")
        if not inputs:
            raise ValueError("inputs is an empty dict: give at least one {name: CostModel}")
        for name, model in inputs.items():
            instance(f"inputs[{name!r}]", model, CostModel)
        if tokens_per_request is not None:
            number("tokens_per_request", tokens_per_request, 0, above_minimum=True)
        models, tpr = dict(inputs), tokens_per_request or 1.0
    grid = np.geomspace(min_requests, max_requests, points)
    names = list(models)
    found = [
        c
        for i, n in enumerate(names)
        for m in names[i + 1 :]
        for c in crossovers(models[n], models[m], max_requests, tpr)
    ]
    found.sort(key=lambda c: c.requests)
    return BreakEven(grid, {n: models[n].cost(grid) for n in names}, models, found, tpr)


def plot_break_even(result: BreakEven, ax=None, title: str = "Monthly cost vs volume"):
    """Log-log cost curves with the crossovers marked. Returns the Figure.

    Subtle, for notebooks and widgets: the figure is a bare `matplotlib.figure.Figure`, never registered
    with pyplot, so Jupyter's inline backend never shows a second copy of it (nor an empty
    `<Figure size 700x400 with 0 Axes>`) at the end of a cell or after a widget callback; Jupyter still
    displays it when it is a cell's value. Its margins are fixed (no tight_layout, which measures every
    text and failed mid-draw in JupyterLab), and our own texts are plain text (`parse_math=False`), so a
    `$` in a name is never read as mathtext."""
    from matplotlib.figure import Figure  # heavy: imported only when a plot is asked for

    instance("result", result, BreakEven, "pass what break_even(...) returned")
    if ax is None:
        fig = Figure(figsize=(7, 4))
        fig.subplots_adjust(left=0.11, right=0.98, bottom=0.13, top=0.92)
        ax = fig.add_subplot()
    plain = {"parse_math": False}
    for i, (name, cost) in enumerate(result.costs.items()):
        ax.plot(result.requests, np.maximum(cost, 1e-6), label=name, color=f"C{i}")
    lo, hi = result.requests[0], result.requests[-1]
    for c in result.crossovers:
        if lo <= c.requests <= hi:
            y = float(result.models[c.cheaper_below].cost(c.requests))
            ax.plot([c.requests], [max(y, 1e-6)], "ko", ms=4)
            ax.annotate(
                f"{c.cheaper_below}→{c.cheaper_above}\n{c.requests:.2g}",
                (c.requests, max(y, 1e-6)),
                textcoords="offset points",
                xytext=(4, -18),
                fontsize=7,
                **plain,
            )
    ax.set(xscale="log", yscale="log")
    ax.set_xlabel(f"requests per month ({result.tokens_per_request:g} tokens each)", **plain)
    ax.set_ylabel("EUR per month", **plain)
    ax.set_title(title, **plain)
    for label in ax.legend().get_texts():
        label.set_parse_math(False)
    return ax.figure
