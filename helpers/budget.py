"""Run-time estimates for every notebook, from its compute and this machine's measured speed.

An estimate is compute / (measured peak FLOP/s x an assumed utilisation) + a fixed overhead
(imports, model loading, plotting). Both assumptions are stated in `BudgetAssumptions` and printed by
notebook 00; CI's measured run times (see the notebooks' first cells) are the ground truth that
these estimates are refined against.

Also here: each notebook's *stated* budget per profile (`STATED_BUDGETS`, the one place those numbers
live) and the bookkeeping the test session uses to compare measured notebook times with them.

Left out: tokenizer training and data loading are not FLOP-bound; they are counted in the overhead.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field

import pandas as pd

from helpers.profiles import Profile

SMOLLM2_PARAMS = 134_515_008  # helpers.models.REGISTRY["smollm2-135m-instruct"].parameters
PROMPT_TOKENS = 120  # a short review + the instruction, in SmolLM2 tokens (measured on the test set)


@dataclass(frozen=True)
class BudgetAssumptions:
    training_utilisation: float = 0.25  # small models reach 20-35 % of matmul peak on CPU (notebook 03 measures it)
    inference_utilisation: float = 0.10  # batch-1 generation is memory-bound: far below peak
    overhead_seconds: dict[str, float] | None = None  # fixed costs per notebook (imports, loading, plots)

    def overhead(self, notebook: str) -> float:
        default = {"00": 15, "01": 30, "02": 10, "03": 15, "04": 15, "05": 20, "06": 30, "07": 20}
        return (self.overhead_seconds or default).get(notebook, 10)


def tiny_gpt_params(profile: Profile, vocab_size: int | None = None) -> int:
    """12*L*d^2 (attention + MLP) + vocab*d (tied embeddings) + block*d (positions)."""
    p = profile.pretrain
    vocab = vocab_size or profile.tokenizer.vocab_size
    return 12 * p.n_layer * p.n_embd**2 + vocab * p.n_embd + p.block_size * p.n_embd


def notebook_flops(profile: Profile) -> dict[str, tuple[float, str]]:
    """Training/inference FLOPs per notebook with the formula used: {'03': (flops, 'why'), ...}."""
    p, ins, cmp_, dep = profile.pretrain, profile.instruct, profile.compare, profile.deploy
    n_tiny = tiny_gpt_params(profile)
    pre_tokens = p.max_steps * p.batch_size * p.block_size
    lora_tokens = ins.max_steps * ins.batch_size * ins.max_length
    eval_tokens = ins.eval_reviews * PROMPT_TOKENS
    ladder_tokens = sum(cmp_.n_ladder) * PROMPT_TOKENS * 3  # ~3 epochs over each N
    return {
        "00": (2 * SMOLLM2_PARAMS * 40, "one chat answer: 2*N*tokens"),
        "01": (0.0, "tokenizer training is not FLOP-bound (overhead only)"),
        "02": (2 * n_tiny * p.block_size * 8, "a few forward passes: 2*N*tokens"),
        "03": (6 * n_tiny * pre_tokens, "pretraining: 6*N*D"),
        "04": (2 * SMOLLM2_PARAMS * eval_tokens * 3, "zero-shot + few-shot (~2x longer) scoring: 2*N*tokens"),
        "05": (4 * SMOLLM2_PARAMS * lora_tokens + 2 * 2 * SMOLLM2_PARAMS * eval_tokens,
               "LoRA: ~4*N*D (frozen weights need no weight gradients) + before/after evaluation"),
        "06": (4 * SMOLLM2_PARAMS * ladder_tokens * (1 + len(cmp_.label_noise)) + 6 * n_tiny * ladder_tokens * 2,
               "route B LoRA ladder + noise runs, routes A/A0 on the tiny GPT"),
        "07": (2 * SMOLLM2_PARAMS * dep.latency_tokens * dep.latency_repeats * 2
               + 4 * SMOLLM2_PARAMS * dep.canary_steps * 2 * 4 * 128,
               "latency generations + canary tuning (with and without redaction)"),
    }


def estimate_runtimes(
    profile: Profile, peak_flops: float, assumptions: BudgetAssumptions | None = None
) -> pd.DataFrame:
    """One row per notebook: compute, estimated minutes on a machine with `peak_flops` (measured)."""
    if peak_flops <= 0:
        raise ValueError("peak_flops must be a positive FLOP/s figure: measure it with helpers.device.hardware_card()")
    a = assumptions or BudgetAssumptions()
    rows = []
    for nb, (flops, how) in notebook_flops(profile).items():
        util = a.inference_utilisation if nb in ("00", "04") else a.training_utilisation
        seconds = flops / (peak_flops * util) + a.overhead(nb)
        rows.append({"notebook": nb, "GFLOPs": round(flops / 1e9, 1), "estimated min": round(seconds / 60, 1),
                     "how the compute is counted": how})
    return pd.DataFrame(rows).set_index("notebook")


# --- Stated budgets and measured times -------------------------------------------------------------
# The single source of truth for each notebook's stated run time: the test run's time table, the
# notebooks' first cells and docs/instructor.md quote these numbers. `ci` is the budget on 2 CPU cores
# (the test run measures it: artifacts/notebook_times.json); `cpu` stays None until measured on a
# laptop CPU; `gpu` stays None until measured on a GPU (until then, quote `estimate_runtimes`).
OVER_BUDGET_FACTOR = 2.0  # a notebook this many times over its stated budget is reported loudly
GPU_BUDGET_SOURCE = "estimated from FLOPs (helpers.budget.estimate_runtimes) until measured on a GPU"


@dataclass(frozen=True)
class StatedBudget:
    ci: float  # minutes on 2 CPU cores under COURSE_PROFILE=ci (CI's machine size)
    cpu: float | None = None  # minutes on a laptop CPU under COURSE_PROFILE=cpu; None = not measured yet
    gpu: float | None = None  # minutes on a CUDA GPU under COURSE_PROFILE=gpu; None = FLOP estimate only

    def minutes(self, profile: str) -> float | None:
        if profile not in ("ci", "cpu", "gpu"):
            raise ValueError(f"profile must be 'ci', 'cpu' or 'gpu', got {profile!r} (COURSE_PROFILE)")
        return getattr(self, profile)


STATED_BUDGETS: dict[str, StatedBudget] = {  # key: the notebook's number, "00" .. "07"
    "00": StatedBudget(ci=0.5),
    "01": StatedBudget(ci=1.5),
    "02": StatedBudget(ci=1.0, cpu=0.5),  # cpu: 10 s measured (2 shared cores, 2026-11-25; nb01 ran first)
    "03": StatedBudget(ci=3.0, cpu=7.5),  # cpu: 7.1 min measured (2 shared cores, load ~7, 2026-11-25)
    "04": StatedBudget(ci=2.0),
    "05": StatedBudget(ci=4.0),
    "06": StatedBudget(ci=4.0),
    "07": StatedBudget(ci=2.0),
}


def notebook_key(name: str) -> str:
    """'notebooks/03_pretraining.ipynb' -> '03' (the key of STATED_BUDGETS)."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1]
    if len(stem) < 3 or not stem[:2].isdigit() or stem[2] != "_":
        raise ValueError(f"notebook names start with two digits and '_' (03_pretraining.ipynb), got {name!r}")
    return stem[:2]


def budget_line(notebook: str) -> str:
    """For a notebook's first cell: budget_line('03') -> 'stated run time: ci 3 min (2 CPU cores...'."""
    b = STATED_BUDGETS[notebook if notebook in STATED_BUDGETS else notebook_key(notebook)]
    cpu = f"cpu {b.cpu:g} min" if b.cpu is not None else "cpu not measured yet"
    gpu = f"gpu {b.gpu:g} min" if b.gpu is not None else "gpu: see the FLOP estimate in notebook 00"
    return f"stated run time: ci {b.ci:g} min (2 CPU cores, measured by CI) | {cpu} | {gpu}"


@dataclass(frozen=True)
class NotebookTime:
    notebook: str  # file name, e.g. '03_pretraining.ipynb'
    seconds: float  # summed cell times (kernel start included) as the test run measured them
    cells: int  # code cells run
    failed: int  # cells that failed: a notebook with failures may have stopped early
    budget_minutes: float | None  # stated budget for the profile it ran under; None = no stated budget

    @property
    def ratio(self) -> float | None:
        return None if not self.budget_minutes else self.seconds / 60 / self.budget_minutes

    @property
    def over_budget(self) -> bool:
        return self.ratio is not None and self.ratio > OVER_BUDGET_FACTOR


@dataclass
class NotebookTimer:
    """Sums per-cell test durations per notebook; used by the test session (conftest.py) under nbval.

    timer.add('notebooks/03_x.ipynb::Cell 4', 'call', 2.5, failed=False); timer.results('ci')
    """

    seconds: dict[str, float] = field(default_factory=dict)
    cells: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)

    def add(self, nodeid: str, when: str, duration: float, failed: bool) -> None:
        path = nodeid.split("::", 1)[0]
        if not path.endswith(".ipynb"):
            return
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        self.seconds[name] = self.seconds.get(name, 0.0) + duration  # setup (kernel start) counts too
        if when == "call":
            self.cells[name] = self.cells.get(name, 0) + 1
        if failed:
            self.failed[name] = self.failed.get(name, 0) + 1

    def results(self, profile: str) -> list[NotebookTime]:
        rows = []
        for name in sorted(self.seconds):
            try:
                stated = STATED_BUDGETS.get(notebook_key(name))
            except ValueError:
                stated = None
            budget = stated.minutes(profile) if stated else None
            rows.append(NotebookTime(name, self.seconds[name], self.cells.get(name, 0),
                                     self.failed.get(name, 0), budget))
        return rows


def time_table(rows: list[NotebookTime], profile: str) -> list[str]:
    """Lines of the table the test session prints, then one LOUD line per notebook over budget."""
    lines = [f"{'notebook':<34} {'measured':>9} {'stated ' + profile:>10} {'ratio':>6}  status"]
    for r in rows:
        budget = f"{r.budget_minutes:g} min" if r.budget_minutes else "-"
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        if r.ratio is None:
            status = "no stated budget"
        else:
            status = "OVER 2x" if r.over_budget else "over" if r.ratio > 1 else "ok"
        if r.failed:
            status += f", {r.failed} failed cell(s)"
        lines.append(f"{r.notebook:<34} {r.seconds / 60:>5.2f} min {budget:>10} {ratio:>6}  {status}")
    total = sum(r.seconds for r in rows) / 60
    lines.append(f"{'total':<34} {total:>5.2f} min")
    for r in rows:
        if r.over_budget:
            lines.append(f"!!! {r.notebook} TOOK {r.seconds / 60:.1f} min = {r.ratio:.1f}x ITS STATED "
                         f"{profile} BUDGET OF {r.budget_minutes:g} min (limit {OVER_BUDGET_FACTOR:g}x): "
                         "shrink its profile section or restate it in helpers/budget.py STATED_BUDGETS !!!")
    return lines


def times_record(rows: list[NotebookTime], profile: str, previous: dict | None = None) -> dict:
    """The JSON written to artifacts/notebook_times.json: earlier entries kept, measured ones replaced."""
    record = {"written_by": "the test session (conftest.py), from nbval cell durations", "notebooks": {}}
    if previous and isinstance(previous.get("notebooks"), dict):
        record["notebooks"].update(previous["notebooks"])
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    for r in rows:
        record["notebooks"][r.notebook] = {
            "profile": profile, "seconds": round(r.seconds, 1), "code_cells": r.cells,
            "failed_cells": r.failed, "stated_minutes": r.budget_minutes,
            "ratio": None if r.ratio is None else round(r.ratio, 2),
            "over_budget": r.over_budget, "cpu_count": os.cpu_count(), "measured_at": now,
        }
    return record
