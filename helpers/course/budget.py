"""Run-time estimates for every notebook, fitted to measured runs.

A notebook's time = a fixed overhead (imports, model loading, plots, Python-bound work) + a compute
part that grows with the profile's work (FLOPs from `notebook_flops`; characters for the tokenizer) and
shrinks with the machine's measured matmul peak. Both parts are *fitted* per notebook to two measured
runs on one machine (`CALIBRATION`: every notebook under `ci` and under `cpu`), so the estimate
reproduces both, and extrapolates to `gpu` or another machine. Only ratios of FLOP counts are used,
so the formulas must scale right, not be exact. Notebook 00 prints the table.

Also here: each notebook's *stated* budget per profile (`STATED_BUDGETS`, the one place those numbers
live) and the bookkeeping the test session uses to compare measured notebook times with them.

Caveats: a GPU is assumed to reach the same fraction of its peak as the CPU did (optimistic for small
models: a GPU estimate is a lower bound until measured), and a shared machine's measured peak varies
run to run (seen here: 130 to 411 GFLOP/s bf16 on the same 2 cores on different days).
"""

from __future__ import annotations

import datetime
import math
import os
from dataclasses import dataclass, field

import pandas as pd

from helpers.course.profiles import Profile, get_profile

SMOLLM2_PARAMS = 134_515_008  # helpers.instruct.models.REGISTRY["smollm2-135m-instruct"].parameters
PROMPT_TOKENS = 120  # a short review + the instruction, in SmolLM2 tokens (measured on the test set)
EXAMPLES_PER_ROW = 2.7  # instruction examples per packed row of 256 tokens (measured in notebook 05)


@dataclass(frozen=True)
class Calibration:
    """Every notebook measured under `ci` and under `cpu` on one machine: what the estimates are fitted to."""

    ci_seconds: dict[str, float]  # wall time per notebook, "00".."07"
    cpu_seconds: dict[str, float]
    peak_flops: float  # that machine's matmul peak at the training precision (notebook 00, ci run)
    source: str

    def split(self, notebook: str) -> tuple[float, float]:
        """(overhead, compute part under ci) in seconds, solving t_ci = o + c and t_cpu = o + c * r, where
        r = the cpu profile's work / the ci profile's work. A notebook whose cpu run was no slower than
        its ci run (r ~ 1, or noise) is all overhead."""
        t_ci, t_cpu = self.ci_seconds[notebook], self.cpu_seconds[notebook]
        r = _work(get_profile("cpu"))[notebook] / _work(get_profile("ci"))[notebook]
        compute = max((t_cpu - t_ci) / (r - 1), 0.0) if r > 1.05 else 0.0
        compute = min(compute, t_ci)
        return t_ci - compute, compute


# Notebooks executed in order from an empty artifacts folder (python -m helpers.course.run_notebooks), first all
# under COURSE_PROFILE=ci, then all under cpu, on 2 CPU cores (CI's machine size), quiet machine.
CALIBRATION = Calibration(
    ci_seconds={"00": 11, "01": 11, "02": 8, "03": 28, "04": 30, "05": 90, "06": 63, "07": 29},
    cpu_seconds={"00": 13, "01": 12, "02": 7, "03": 150, "04": 229, "05": 952, "06": 390, "07": 133},
    peak_flops=411.2e9,
    source="measured 2026-11-25 on 2 CPU cores (AMD EPYC), quiet machine: ci 4.5 min, cpu 31.4 min in all",
)


def tiny_gpt_params(profile: Profile, vocab_size: int | None = None) -> int:
    """12*L*d^2 (attention + MLP) + vocab*d (tied embeddings) + block*d (positions)."""
    p = profile.pretrain
    vocab = vocab_size or profile.tokenizer.vocab_size
    return 12 * p.n_layer * p.n_embd**2 + vocab * p.n_embd + p.block_size * p.n_embd


def _steps(examples: float, batch: int, epochs: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, math.ceil(epochs * examples / batch))))  # = helpers.experiment.compare.Recipe.steps


def notebook_flops(profile: Profile) -> dict[str, tuple[float, str]]:
    """Training/inference FLOPs per notebook with the formula used: {'03': (flops, 'why'), ...}.
    Training a model costs 6*N*tokens, LoRA ~4*N*tokens (no weight gradients for frozen weights),
    a forward pass 2*N*tokens (scoring, generation with a KV cache)."""
    p, ins, c, dep = profile.pretrain, profile.instruct, profile.compare, profile.deploy
    big, tiny = SMOLLM2_PARAMS, tiny_gpt_params(profile)
    fwd, lora, full = 2 * big, 4 * big, 6 * tiny

    score_reviews = ins.eval_reviews * PROMPT_TOKENS * fwd  # one pass over the held-out reviews
    faq_answers = ins.eval_faq * (PROMPT_TOKENS + ins.max_new_tokens) * fwd
    lora_train = ins.max_steps * ins.batch_size * ins.max_length * lora

    rows_for = lambda n: n / EXAMPLES_PER_ROW  # noqa: E731 - packed rows for n examples
    b_steps = lambda n: _steps(rows_for(n), c.lora_batch_size, c.lora_epochs, c.lora_min_steps, c.lora_max_steps)  # noqa: E731
    a_steps = lambda n: _steps(n, c.scratch_batch_size, c.scratch_epochs, c.scratch_min_steps, c.scratch_max_steps)  # noqa: E731
    b_runs = list(c.n_ladder) + [c.noise_n] * (len([f for f in c.label_noise if f > 0]))
    b_train = sum(b_steps(n) for n in b_runs) * c.lora_batch_size * ins.max_length * lora
    b_score = (len(b_runs) + 1) * c.test_reviews * PROMPT_TOKENS * fwd  # + the untuned N = 0
    faq_adapt = c.faq_steps * c.lora_batch_size * ins.max_length * lora \
        + c.faq_eval_rows * (PROMPT_TOKENS + c.faq_max_new_tokens) * fwd
    a_ns = list(c.n_ladder) + list(c.scratch_extra_n)
    a_train = 2 * sum(a_steps(n) for n in a_ns) * c.scratch_batch_size * p.block_size * full  # routes A, A0

    canary = 2 * dep.canary_steps * 8 * p.block_size * full  # raw + redacted, batch 8 (notebook 07)
    latency = (dep.latency_repeats + 1) * dep.latency_tokens * fwd  # + one warm-up run
    return {
        "00": (40 * fwd, "one chat answer: 2*N*tokens"),
        "01": (0.0, "not FLOP-bound: scaled by characters trained on x tokenizers trained"),
        "02": (2 * tiny * p.block_size * 8, "a few forward passes: 2*N*tokens"),
        "03": (full * p.max_steps * p.batch_size * p.block_size, "pretraining: 6*N*D"),
        "04": (3 * score_reviews + faq_answers, "zero-shot + few-shot (~2x longer) scoring, FAQ answers: 2*N*tokens"),
        "05": (lora_train + 2 * (score_reviews + 2 * faq_answers),
               "LoRA: ~4*N*D (frozen weights need no weight gradients) + before/after evaluation"),
        "06": (b_train + b_score + faq_adapt + a_train, "route B LoRA ladder + noise runs + scoring, routes A/A0"),
        "07": (canary + latency, "canary tuning of the tiny GPT (raw, redacted) + latency generations"),
    }


def _work(profile: Profile) -> dict[str, float]:
    """What each notebook's compute part scales with: FLOPs, except the tokenizer notebook."""
    work = {nb: flops for nb, (flops, _) in notebook_flops(profile).items()}
    work["01"] = profile.tokenizer.train_chars * len(profile.tokenizer.vocab_ladder)
    return work


def estimate_runtimes(profile: Profile, peak_flops: float, calibration: Calibration = CALIBRATION) -> pd.DataFrame:
    """One row per notebook: compute and estimated minutes on a machine with `peak_flops` (measured),
    from the overhead + compute split fitted to `calibration` (see the module docstring)."""
    if peak_flops <= 0:
        raise ValueError(
            "peak_flops must be a positive FLOP/s figure: measure it with helpers.core.device.hardware_card()"
        )
    ci_work, work = _work(get_profile("ci")), _work(profile)
    rows = []
    for nb, (flops, how) in notebook_flops(profile).items():
        overhead, compute_ci = calibration.split(nb)
        scale = work[nb] / ci_work[nb]
        speed = 1.0 if nb == "01" else calibration.peak_flops / peak_flops  # 01 runs Python, not matmuls
        seconds = overhead + compute_ci * scale * speed
        rows.append({"notebook": nb, "GFLOPs": round(flops / 1e9, 1), "x ci": round(scale, 1),
                     "estimated min": round(seconds / 60, 1), "how the compute is counted": how})
    return pd.DataFrame(rows).set_index("notebook")


# --- Stated budgets and measured times -------------------------------------------------------------
# The single source of truth for each notebook's stated run time: the test run's time table, the
# notebooks' first cells and docs/instructor.md quote these numbers. `ci` is the budget on 2 CPU cores
# (the test run measures it: artifacts/notebook_times.json); `cpu` was measured on the same 2 cores under
# COURSE_PROFILE=cpu; `gpu` stays None until measured on a GPU (until then, quote `estimate_runtimes`).
OVER_BUDGET_FACTOR = 2.0  # a notebook this many times over its stated budget is reported loudly
GPU_REFERENCE_PEAK = 50e12  # bf16 matmul FLOP/s assumed for the stated gpu estimate (a mid-range CUDA GPU)


@dataclass(frozen=True)
class StatedBudget:
    ci: float  # minutes on 2 CPU cores under COURSE_PROFILE=ci (CI's machine size)
    cpu: float | None = None  # minutes under COURSE_PROFILE=cpu (measured on 2 cores); None = not measured yet
    gpu: float | None = None  # minutes on a CUDA GPU under COURSE_PROFILE=gpu; None = FLOP estimate only

    def minutes(self, profile: str) -> float | None:
        if profile not in ("ci", "cpu", "gpu"):
            raise ValueError(f"profile must be 'ci', 'cpu' or 'gpu', got {profile!r} (COURSE_PROFILE)")
        return getattr(self, profile)


# ci: about 2x the times measured under nbval on CI's machine size (0.13/0.12/0.08/0.34/0.42/1.21/0.82/
# 0.40 min from a fresh clone, 2026-11-25; up to 2.1 min for 06 on a loaded machine): 12 min in all.
STATED_BUDGETS: dict[str, StatedBudget] = {  # key: the notebook's number, "00" .. "07"
    # cpu: the measured cpu run (CALIBRATION.cpu_seconds, 2 quiet cores) rounded up with ~20 % headroom
    "00": StatedBudget(ci=0.5, cpu=0.5),
    "01": StatedBudget(ci=0.5, cpu=0.5),
    "02": StatedBudget(ci=1.0, cpu=0.5),
    "03": StatedBudget(ci=1.0, cpu=3.0),
    "04": StatedBudget(ci=1.5, cpu=4.5),
    "05": StatedBudget(ci=3.0, cpu=19.0),
    "06": StatedBudget(ci=3.0, cpu=8.0),
    "07": StatedBudget(ci=1.5, cpu=3.0),
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
    if b.gpu is not None:
        gpu = f"gpu {b.gpu:g} min"
    else:
        key = notebook if notebook in STATED_BUDGETS else notebook_key(notebook)
        est = estimate_runtimes(get_profile("gpu"), GPU_REFERENCE_PEAK)["estimated min"][key]
        tflops = GPU_REFERENCE_PEAK / 1e12
        gpu = f"gpu ~{max(est, 0.1):.1f} min (not measured: FLOP estimate for a {tflops:g}-TFLOP/s GPU)"
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
                         "shrink its profile section or restate it in helpers/course/budget.py STATED_BUDGETS !!!")
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
