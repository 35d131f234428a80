"""Train vs instruct, reported: the article's table, the ledger and the plots, from the run records
that `helpers.experiment.compare` produces (notebook 06).

- `runs_table`: one row per sentiment run (route, N, label noise, accuracy, time, tokens, FLOPs and how
  they were counted, money at the editable `helpers.measure.assumptions` via `helpers.measure.money.run_cost`);
  refuses runs scored on different test sets.
- `examples_to_reach` / `article_table` / `article_view`: the article's table rebuilt from measurements
  (examples needed for a target accuracy, compute, time, money, adaptability).
- `inherited_compute` / `own_pretraining_compute`: what each route spent (or inherited) before tuning.
  FLOPs counted by different methods are never added: a route's own compute (pretraining we ran +
  tuning) is a sum only when both were counted the same way, and compute inherited from a model card
  (another party's run, estimated from its card) always stays in a column of its own.
- `points_table`: the runs pooled per (route, N, noise) over seeds, each accuracy with its Wilson 95 %
  interval on all the predictions pooled, and the seeds' range.
- `reach` / `needs_more` / `interval_order` / `claims_table`: the article's claims judged from intervals —
  *supported*, *contradicted* or *inconclusive* — never True/False from point values.
- `update_ledger` and the plots: accuracy vs N (with error bars), accuracy vs compute (log axes), label noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.core.records import RunRecord
from helpers.experiment.compare import EXPERIMENT
from helpers.experiment.routes import ROUTE_LABELS, ROUTES
from helpers.measure import flops as flop_counts
from helpers.measure.assumptions import DEFAULT_ASSUMPTIONS
from helpers.measure.intervals import wilson_interval
from helpers.measure.ledger import EmptyLedgerError, Ledger, compare
from helpers.measure.money import run_cost

# ----------------------------------------------------------------------------- pretraining compute


@dataclass(frozen=True)
class PretrainCompute:
    """What a route spent (or inherited) before tuning: FLOPs, wall time if measured, and the source."""

    flops: float | None  # None: the run did not count its FLOPs
    seconds: float | None  # None: not measured (inherited, or estimated from a config)
    source: str
    method: str | None = None  # how `flops` were counted (a record's flops_method); None: see source
    inherited: bool = False  # another party's compute (a model card): shown apart, never added to ours


def inherited_compute(spec) -> PretrainCompute:
    """Route B: the model card's 6 x parameters x tokens (helpers.measure.flops.inherited_pretraining_flops)."""
    inherited = flop_counts.inherited_pretraining_flops(spec)
    return PretrainCompute(inherited.flops, None, "inherited, not measured: " + inherited.source,
                           method=inherited.source, inherited=True)


def own_pretraining_compute(record: RunRecord | None = None, model=None, sizes=None) -> PretrainCompute:
    """Route A: the pretraining run's record if we have it, else the model's training FLOPs per token
    (helpers.measure.flops, attention at block_size) x D = max_steps x batch_size x block_size."""
    if record is not None:
        return PretrainCompute(
            record.flops,
            record.wall_seconds,
            f"measured: pretraining run record ({record.steps} steps, {record.tokens:,} tokens)",
            method=record.flops_method,
        )
    if model is None or sizes is None:
        raise ValueError("pass the pretraining RunRecord, or both the model and its PretrainSizes")
    d = sizes.max_steps * sizes.batch_size * sizes.block_size
    count = flop_counts.training_flops_per_token(model, seq_len=sizes.block_size)
    return PretrainCompute(count.times(d), None, f"estimated: {d:,} tokens (profile's pretraining config)",
                           method=count.method)


def same_method_sum(parts: Sequence[tuple[float | None, str | None]]) -> float:
    """The sum of FLOP counts that were counted the same way; NaN if any was not counted or two
    methods differ (adding a 6N count to a 4N + 2N_lora one, or to a model card's estimate, would
    mix definitions). same_method_sum([(1e9, "6N"), (2e9, "6N")]) -> 3e9; [(1e9, "6N"), (2e9, "4N")] -> nan."""
    counted = [(f, m) for f, m in parts if f != 0]
    if any(f is None or pd.isna(f) for f, _ in counted) or len({m for _, m in counted}) > 1:
        return float("nan")
    return float(sum(f for f, _ in counted))


# ----------------------------------------------------------------------------- tables


def runs_table(records: Sequence[RunRecord], assumptions=DEFAULT_ASSUMPTIONS) -> pd.DataFrame:
    """One row per sentiment run: route, N, noise, accuracy, time, tokens, FLOPs (NaN: not counted) and
    their method, EUR (own machine and cloud). Refuses records scored on different test sets
    (helpers.measure.ledger.compare)."""
    chosen = [r for r in records if "accuracy" in r.metrics]
    if not chosen:
        raise EmptyLedgerError("no sentiment runs (records with an 'accuracy' metric) to tabulate")
    compare(chosen, "accuracy")  # the same-test-set guard
    rows = []
    for r in chosen:
        c = run_cost(r, assumptions)
        rows.append(
            {
                "name": r.name,
                "route_key": r.extra.get("route_key", r.route),
                "route": r.route,
                "n": int(r.extra.get("n_examples", -1)),
                "noise": float(r.extra.get("label_noise", 0.0)),
                "seed": int(r.extra.get("seed", 0)),
                "accuracy": r.metrics["accuracy"],
                "correct": int(r.metrics.get("correct", -1)),
                "n_test": int(r.extra.get("n_test", -1)),
                "says_positive": r.metrics.get("says_positive"),
                "accuracy_generated": r.metrics.get("accuracy_generated"),
                "steps": r.steps,
                "seconds": r.wall_seconds,
                "tokens": r.tokens,
                "flops": float("nan") if r.flops is None else r.flops,
                "flops_method": r.flops_method,
                "eur": c.total_eur,
                "cloud_eur": c.cloud_eur,
                "kwh_method": c.kwh_method.split(":")[0],
                "test_set": r.test_set,
            }
        )
    order = {key: i for i, key in enumerate(ROUTES)}
    table = pd.DataFrame(rows)
    table = table.sort_values(
        ["route_key", "noise", "n", "seed"], key=lambda c: c.map(order) if c.name == "route_key" else c,
        kind="stable",
    )
    return table.reset_index(drop=True)


def points_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (route, N, noise): the seeds' predictions pooled (accuracy = all correct / all
    predictions) with its Wilson 95 % interval, the number of seeds and their range; time, FLOPs and money
    are the mean per run. Needs runs_table rows with `correct` and `n_test` (from compare.ladder_point)."""
    if (runs["correct"] < 0).any() or (runs["n_test"] < 1).any():
        raise ValueError("points_table needs every run's count right and test size: make the runs with "
                         "helpers.experiment.compare.ladder_point")
    rows = []
    for (key, n, noise), g in runs.groupby(["route_key", "n", "noise"], sort=False):
        correct, total = int(g["correct"].sum()), int(g["n_test"].sum())
        ci = wilson_interval(correct, total)
        first = g.iloc[0]
        rows.append({
            "route_key": key, "route": first["route"], "n": int(n), "noise": float(noise), "seeds": len(g),
            "accuracy": correct / total, "low": ci.low, "high": ci.high, "correct": correct, "predictions": total,
            "seed_min": g["accuracy"].min(), "seed_max": g["accuracy"].max(),
            "says_positive": g["says_positive"].mean(),
            "seconds": g["seconds"].mean(), "tokens": g["tokens"].mean(), "flops": g["flops"].mean(),
            "flops_method": first["flops_method"], "eur": g["eur"].mean(), "cloud_eur": g["cloud_eur"].mean(),
            "test_set": first["test_set"],
        })
    return pd.DataFrame(rows)


def interval_order(a: tuple[float, float], b: tuple[float, float]) -> str:
    """'higher' if interval a lies wholly above b, 'lower' if wholly below, else 'overlap'."""
    if a[0] > b[1]:
        return "higher"
    if a[1] < b[0]:
        return "lower"
    return "overlap"


@dataclass(frozen=True)
class Reach:
    """Whether a route reached a target accuracy, judged from intervals, and its cost there.

    reached True: from `n` on, every measured N has its interval's low end at or above the target;
    False: no measured N has its high end at or above it (at `n`, the largest N, it still fell short);
    None: the intervals straddle the target — not decided at this test size. `cost` is the cost at `n`."""

    reached: bool | None
    n: int
    cost: float


def reach(points: pd.DataFrame, target: float, cost: str = "n") -> Reach:
    """A route's Reach from its clean points (columns n, low, high and `cost`)."""
    g = points.sort_values("n")
    if g.empty:
        raise ValueError("no points to judge: pass one route's rows of points_table")
    rows = list(g.itertuples(index=False))
    for i, r in enumerate(rows):
        if all(x.low >= target for x in rows[i:]):
            return Reach(True, int(r.n), float(getattr(r, cost)))
    last = rows[-1]
    if all(x.high < target for x in rows):
        return Reach(False, int(last.n), float(getattr(last, cost)))
    return Reach(None, int(last.n), float(getattr(last, cost)))


def needs_more(x: Reach, y: Reach) -> str:
    """Verdict on "route x needs more <cost> than route y to reach the target":
    supported if y reached it and x either reached it at a higher cost or fell short after spending at
    least y's cost; contradicted in the mirror case; inconclusive otherwise (e.g. neither reached it)."""
    def more(a: Reach, b: Reach) -> bool:  # a needs more than b, b having reached the target
        return b.reached is True and ((a.reached is True and a.cost > b.cost)
                                      or (a.reached is False and a.cost >= b.cost))
    if more(x, y):
        return "supported"
    if more(y, x):
        return "contradicted"
    return "inconclusive"


def better(a: tuple[float, float], b: tuple[float, float]) -> str:
    """Verdict on "a is better than b" from two intervals: supported / contradicted / inconclusive."""
    return {"higher": "supported", "lower": "contradicted", "overlap": "inconclusive"}[interval_order(a, b)]


def examples_to_reach(
    ns: Sequence[int], accuracies: Sequence[float], target: float, sustained: bool = True
) -> int | None:
    """The smallest N whose accuracy reaches `target`; None if none does.

    sustained=True also asks every larger measured N to stay at or above the target, so one lucky
    small run does not count: ns (4, 16, 64), accuracies (0.8, 0.6, 0.9), target 0.75 -> 64
    (sustained) or 4 (not sustained).
    """
    if len(ns) != len(accuracies):
        raise ValueError(f"{len(ns)} values of N but {len(accuracies)} accuracies: they must pair up")
    points = sorted(zip(ns, accuracies, strict=True))
    if len({n for n, _ in points}) != len(points):
        raise ValueError("each N must appear once: average repeated runs first")
    for i, (n, acc) in enumerate(points):
        if acc >= target and (not sustained or all(a >= target for _, a in points[i:])):
            return int(n)
    return None


def article_table(
    runs: pd.DataFrame,
    target: float,
    pretraining: dict[str, PretrainCompute],
    adaptation: dict[str, RunRecord] | None = None,
) -> pd.DataFrame:
    """The article's comparison, one row per route, from measurements only (runs without label noise).

    at_n = the examples needed to reach `target` if reached, else the largest N measured; the tuning
    time, FLOPs and money are those of the run at at_n. Pretraining is split: own_pretraining_* (a run
    we made: measured or estimated) and inherited_pretraining_* (a model card's estimate). own_flops =
    tuning + own pretraining, NaN where the two were counted by different methods (`same_method_sum`);
    inherited compute is never added to anything. Adaptability = the FAQ run."""
    clean = runs[runs["noise"] == 0]
    if clean.empty:
        raise ValueError("no runs without label noise: the article's table compares clean runs")
    if clean["test_set"].nunique() != 1:
        raise ValueError(
            f"runs were scored on different test sets {sorted(clean['test_set'].unique())}: "
            "rebuild them on one test set"
        )
    groups = clean.groupby("route_key", sort=False)
    rows = [_route_row(key, g.sort_values("n"), target, pretraining, adaptation) for key, g in groups]
    return pd.DataFrame(rows).set_index("route_key")


def _route_row(
    key: str, g: pd.DataFrame, target: float, pretraining: dict[str, PretrainCompute],
    adaptation: dict[str, RunRecord] | None,
) -> dict:
    """One route's row of `article_table`, from its clean runs `g` sorted by N."""
    needed = examples_to_reach(list(g["n"]), list(g["accuracy"]), target)
    at_n = needed if needed is not None else int(g["n"].max())
    at = g[g["n"] == at_n].iloc[0]
    best = g.loc[g["accuracy"].idxmax()]
    pre = pretraining.get(key, PretrainCompute(0.0, 0.0, "none"))
    own = PretrainCompute(0.0, 0.0, "none") if pre.inherited else pre
    inherited = pre if pre.inherited else PretrainCompute(0.0, None, "none", inherited=True)
    row = {
        "route_key": key,
        "route": ROUTE_LABELS.get(key, key),
        "target_accuracy": target,
        "reached": needed is not None,
        "examples_needed": float("nan") if needed is None else needed,
        "at_n": at_n,
        "accuracy_at_n": at["accuracy"],
        "best_accuracy": best["accuracy"],
        "best_n": int(best["n"]),
        "largest_n": int(g["n"].max()),
        "tuning_seconds": at["seconds"],
        "tuning_flops": at["flops"],
        "tuning_eur": at["eur"],
        "tuning_cloud_eur": at["cloud_eur"],
        "tuning_flops_method": at["flops_method"],
        "own_pretraining_flops": float("nan") if own.flops is None else own.flops,
        "own_pretraining_seconds": own.seconds,
        "own_pretraining_source": own.source,
        "own_flops": same_method_sum([(at["flops"], at["flops_method"]), (own.flops, own.method)]),
        "inherited_pretraining_flops": inherited.flops,
        "inherited_pretraining_source": inherited.source,
        "ladder_seconds": g["seconds"].sum(),
        "ladder_flops": same_method_sum(list(zip(g["flops"], g["flops_method"], strict=True))),
    }
    faq = (adaptation or {}).get(key)
    row["faq_adapt_seconds"] = faq.wall_seconds if faq is not None else float("nan")
    row["faq_accuracy"] = faq.metrics.get("faq_accuracy", float("nan")) if faq is not None else float("nan")
    return row


def euros(x: float | None) -> str:
    """Money as a person reads it, two significant digits for small sums: 3.6e-05 -> '€0.000036',
    0.00037 -> '€0.00037', 1.5 -> '€1.50', 1234.5 -> '€1,234', None or NaN -> 'n/a'."""
    if x is None or pd.isna(x):
        return "n/a"
    if x == 0 or abs(x) >= 10:
        return f"€{x:,.0f}"
    digits = max(2, 1 - math.floor(math.log10(abs(x))))
    return f"€{x:.{digits}f}"


def _sci(x: float | None) -> str:
    return "not counted" if x is None or pd.isna(x) else "0" if x == 0 else f"{x:.2g}"


def _compute_words(r: pd.Series) -> str:
    """'2.1e+12 tuning at N=64; own pretraining 3.4e+13 (own total 3.6e+13)', with inherited compute apart."""
    words = f"{_sci(r['tuning_flops'])} tuning at N={int(r['at_n'])}"
    if r["own_pretraining_flops"] != 0:
        total = r["own_flops"]
        words += f"; own pretraining {_sci(r['own_pretraining_flops'])} " + (
            f"(own total {_sci(total)})" if not pd.isna(total) else "(not added: counted differently)")
    if r["inherited_pretraining_flops"]:
        words += f"; inherited pretraining {_sci(r['inherited_pretraining_flops'])} (model card, not ours)"
    return words


def article_view(table: pd.DataFrame) -> pd.DataFrame:
    """The article's rows (data, compute, time, money, adaptability) in words, one column per route."""
    out = {}
    for _, r in table.iterrows():
        data = (
            f"{int(r['examples_needed'])} labelled examples reach {r['target_accuracy']:.0%}"
            if r["reached"]
            else f"{r['target_accuracy']:.0%} not reached with up to {int(r['largest_n'])} "
            f"(best {r['best_accuracy']:.0%} at N={int(r['best_n'])})"
        )
        own_seconds = r["own_pretraining_seconds"]
        pre_time = "" if pd.isna(own_seconds) or not own_seconds else f" + {own_seconds:.0f} s pretraining"
        if r["own_pretraining_flops"] and pd.isna(own_seconds):
            pre_time = " + pretraining time not stated"
        if r["inherited_pretraining_flops"]:
            pre_time += " (the inherited pretraining's time is not stated)"
        out[r["route"]] = {
            "Dataset": data,
            "Compute (FLOPs)": _compute_words(r),
            "Time": f"{r['tuning_seconds']:.1f} s tuning{pre_time}",
            "Money (tuning, own machine)": f"{euros(r['tuning_eur'])} (cloud equivalent "
            f"{euros(r['tuning_cloud_eur'])})",
            "Adaptability (FAQ)": "not measured"
            if pd.isna(r["faq_adapt_seconds"])
            else f"{r['faq_adapt_seconds']:.1f} s to adapt, {r['faq_accuracy']:.0%} of held-out facts right",
        }
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- the ledger


def update_ledger(records: Sequence[RunRecord], path: str | Path) -> Ledger:
    """Put this experiment's records in the shared ledger file, replacing its earlier ones (other
    notebooks' records stay), and save it atomically."""
    ledger = Ledger.load_or_new(Path(path))
    ledger.records = [r for r in ledger.records if r.extra.get("experiment") != EXPERIMENT]
    for r in records:
        ledger.add(r)
    ledger.save(Path(path))
    return ledger


# ----------------------------------------------------------------------------- plots


def _route_style(key: str) -> dict:
    """Each route its colour and marker; A0's squares are hollow and larger, so a marker drawn over
    them (route B and A0 often score the same at N = 0) still shows their outline."""
    return {
        "A": dict(color="tab:blue", marker="o", markersize=6),
        "A0": dict(color="tab:gray", marker="s", linestyle="--", markersize=8, markerfacecolor="none",
                   markeredgewidth=1.5),
        "B": dict(color="tab:orange", marker="^", markersize=6),
        "C": dict(color="tab:green", marker="D", linestyle="-.", markersize=5),
    }.get(key, {})


def _nudge(lines, key: str) -> None:
    """Shift a route's plotted lines a few points sideways (A left, B right), so routes with the same
    value at the same x stay visible side by side. Done after plotting: the axis limits were already
    taken from the unshifted data, so log axes autoscale as usual."""
    from matplotlib.transforms import ScaledTranslation  # heavy: imported only when a plot is asked for

    inches = {"A": -4, "A0": 0, "B": 4, "C": 2}.get(key, 0) / 72
    for line in lines:
        line.set_transform(line.get_transform() + ScaledTranslation(inches, 0, line.figure.dpi_scale_trans))


def plot_accuracy_vs_n(runs: pd.DataFrame, target: float | None = None, ax=None):
    """Accuracy vs labelled examples per route (runs without label noise); N = 0 is the untuned model.
    Rows of points_table (with `low`/`high`) get their 95 % intervals as error bars."""
    import matplotlib.pyplot as plt  # heavy: imported only when a plot is asked for

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.8))
    clean = runs[runs["noise"] == 0]
    for key, g in clean.groupby("route_key", sort=False):
        g = g.sort_values("n")
        style = _route_style(key)
        if "low" in g:
            bars = ax.errorbar(g["n"], g["accuracy"], yerr=[g["accuracy"] - g["low"], g["high"] - g["accuracy"]],
                               label=ROUTE_LABELS.get(key, key), capsize=3, elinewidth=1, **style)
            _nudge([bars.lines[0], *bars.lines[1], *bars.lines[2]], key)
        else:
            _nudge(ax.plot(g["n"], g["accuracy"], label=ROUTE_LABELS.get(key, key), **style), key)
    if target is not None:
        ax.axhline(target, color="k", linewidth=0.8, linestyle=":", label=f"target {target:.0%}")
    ax.axhline(0.5, color="tab:red", linewidth=0.6, alpha=0.5)
    ns = sorted(clean["n"].unique())
    ax.set_xscale("symlog", linthresh=1)  # log axis that still shows N = 0
    ax.set_xlim(-0.3, max(ns) * 1.5)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set(
        xlabel="labelled examples N",
        ylabel="test accuracy",
        ylim=(0.3, 1.0),
        title="Accuracy vs labelled examples",
    )
    ax.legend(fontsize=7)
    plt.close(fig)
    return fig


def plot_accuracy_vs_compute(runs: pd.DataFrame, pretraining: dict[str, PretrainCompute]):
    """Two panels, log x: accuracy vs tuning FLOPs, and vs own FLOPs (tuning + the pretraining we ran,
    where both were counted the same way). Inherited compute is not added: it is listed under the plot."""
    import matplotlib.pyplot as plt  # heavy: imported only when a plot is asked for

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    clean = runs[runs["noise"] == 0]
    for key, g in clean.groupby("route_key", sort=False):
        g = g.sort_values("n")
        pre = pretraining.get(key, PretrainCompute(0.0, 0.0, "none"))
        ours = [] if pre.inherited else [(pre.flops, pre.method)]
        own_x = pd.Series([same_method_sum([(f, m), *ours]) for f, m in zip(g["flops"], g["flops_method"],
                                                                            strict=True)], index=g.index)
        for ax, x in ((axes[0], g["flops"]), (axes[1], own_x)):
            keep = x > 0  # a log axis has no place for zero compute (route A0 untuned) or NaN (not counted)
            lines = ax.plot(x[keep], g["accuracy"][keep], label=ROUTE_LABELS.get(key, key), **_route_style(key))
            _nudge(lines, key)
    axes[0].set(
        xscale="log",
        xlabel="tuning FLOPs",
        ylabel="test accuracy",
        title="Tuning compute only",
        ylim=(0.3, 1.0),
    )
    axes[1].set(xscale="log", xlabel="own FLOPs: tuning + pretraining we ran", title="Own compute")
    axes[0].legend(fontsize=7)
    notes = [f"{k}: {'inherited, not added' if p.inherited else 'own'}: {_sci(p.flops)} FLOPs, {p.source}"
             for k, p in pretraining.items() if p.flops]
    fig.text(0.01, -0.02, "\n".join(notes), fontsize=6.5, va="top", wrap=True)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_label_noise(runs: pd.DataFrame, n: int, ax=None):
    """Accuracy vs fraction of flipped training labels, at N = n, per route."""
    import matplotlib.pyplot as plt  # heavy: imported only when a plot is asked for

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.4))
    at = runs[runs["n"] == n]
    for key, g in at.groupby("route_key", sort=False):
        g = g.sort_values("noise")
        if g["noise"].nunique() > 1:
            lines = ax.plot(g["noise"] * 100, g["accuracy"], label=ROUTE_LABELS.get(key, key), **_route_style(key))
            _nudge(lines, key)
    ax.axhline(0.5, color="tab:red", linewidth=0.6, alpha=0.5)
    ax.set(
        xlabel="training labels flipped (%)",
        ylabel="test accuracy",
        ylim=(0.3, 1.0),
        title=f"Label noise at N = {n}",
    )
    ax.legend(fontsize=7)
    plt.close(fig)
    return fig
