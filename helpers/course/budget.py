"""Run-time estimates for every notebook, fitted to measured runs.

A notebook's time = a fixed overhead (imports, model loading, plots, Python-bound work) + a compute
part that grows with the profile's work (FLOPs from `notebook_flops`; characters for the tokenizer) and
shrinks with the machine's measured matmul peak. Both parts are *fitted* per notebook to two measured
runs on one machine (`CALIBRATION`: every notebook under `ci` and under `cpu`), so the estimate
reproduces both, and extrapolates to `gpu` or another machine. Only ratios of FLOP counts are used,
so the formulas must scale right, not be exact. Notebook 00 prints the table.

Also here: each notebook's *stated* budget per profile (`STATED_BUDGETS`, the one place those numbers
live). The test session's bookkeeping that compares measured notebook times with them is in
`tests/notebook_times.py`. FLOPs come from their one owner, `helpers.measure.flops`; step counts from the
experiment's own `helpers.experiment.routes.Recipe`; the pretrained model's size from its registry entry.

Caveats: a GPU is assumed to reach the same fraction of its peak as the CPU did (optimistic for small
models: a GPU estimate is a lower bound until measured), and a shared machine's measured peak varies
run to run (seen here: 130 to 411 GFLOP/s bf16 on the same 2 cores on different days).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from helpers.core.checks import instance
from helpers.course.profiles import Profile, get_profile
from helpers.experiment.routes import Recipe
from helpers.instruct.models import DEFAULT_MODEL, REGISTRY
from helpers.measure.flops import (
    Attention,
    count_forward_flops,
    count_training_flops,
    gpt_param_counts,
    inference_flops,
    lora_training_flops,
)

PROMPT_TOKENS = 120  # a short review + the instruction, in SmolLM2 tokens (measured on the test set)
EXAMPLES_PER_ROW = 2.7  # instruction examples per packed row of 256 tokens (measured in notebook 05)
IMDB_PROMPT_TOKENS = 150  # notebook 06: an IMDB review cut to the tiny GPT's context + instruction (SmolLM2 tokens)
IMDB_EXAMPLES_PER_ROW = 1.6  # notebook 06's examples per packed row of 256 tokens


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


# ci: each notebook's nbval time in a fresh-clone `make test` (COURSE_PROFILE=ci); cpu: the whole course run in
# order from an empty artifacts folder under COURSE_PROFILE=cpu (python -m helpers.course.run_notebooks), on 2 CPU
# cores (CI's machine size). 04 was run after 05 (its first attempt failed on a module edited mid-run).
CALIBRATION = Calibration(
    ci_seconds={"00": 13, "01": 11, "02": 8, "03": 31, "04": 42, "05": 94, "06": 113, "07": 91},
    cpu_seconds={"00": 18, "01": 18, "02": 14, "03": 255, "04": 254, "05": 903, "06": 3632, "07": 333},
    peak_flops=500.3e9,  # bf16, notebook 00's cpu run of 2026-12-01 (its ci run that day: 923 GFLOP/s)
    # (printed by notebook 00 as written; of the cpu run, 06 shared the cores with a niced make test ~33 of 61 min)
    source="ci: nbval in a fresh-clone make test, 2026-11-30 (2 shared cores); cpu: the in-order cpu run of "
           "2026-12-01 for the committed outputs (2 cores, mostly quiet): ci 6.7 min, cpu 90.5 min in all",
)


def tiny_gpt_flops(profile: Profile) -> tuple[float, float]:
    """(training, forward) FLOPs per token of the profile's tiny GPT at its block size, from its sizes."""
    p = profile.pretrain
    counts = gpt_param_counts(p.n_layer, p.n_embd, profile.tokenizer.vocab_size, p.block_size)
    attention = Attention(p.n_layer, p.n_embd, p.block_size)
    return count_training_flops(counts, attention).per_token, count_forward_flops(counts, attention).per_token


def _route_steps(recipe: Recipe, examples: float) -> int:
    """The steps `helpers.experiment.compare` takes for `examples` examples (or packed rows)."""
    return recipe.steps(math.ceil(examples / recipe.batch_size))


def notebook_flops(profile: Profile) -> dict[str, tuple[float, str]]:
    """Training/inference FLOPs per notebook with the formula used: {'03': (flops, 'why'), ...}.
    Tiny GPT: 6N + 12*L*C*T per token (N = matmul weights); the pretrained model: N = its model card's
    parameters, a forward pass 2N per token (scoring, generation with a KV cache), LoRA 4N per token
    (the adapters' own 2N_lora, under 1 % of N, left out)."""
    p, ins, c, dep = profile.pretrain, profile.instruct, profile.compare, profile.deploy
    big = REGISTRY[DEFAULT_MODEL].parameters
    fwd, lora = inference_flops(big, 1), lora_training_flops(big, 0, 1)
    full, tiny_fwd = tiny_gpt_flops(profile)

    score_reviews = ins.eval_reviews * PROMPT_TOKENS * fwd  # one pass over the held-out reviews
    faq_answers = ins.eval_faq * (PROMPT_TOKENS + ins.max_new_tokens) * fwd
    lora_train = ins.max_steps * ins.batch_size * ins.max_length * lora

    b_recipe = Recipe(c.lora_lr, c.lora_batch_size, c.lora_epochs, c.lora_min_steps, c.lora_max_steps)
    clf = Recipe(c.clf_lr, c.clf_batch_size, c.clf_epochs, c.clf_min_steps, c.clf_max_steps)
    # notebook 06's plan: the ladder, the extra seeds at seed_n (route B at the first only), the noise runs
    extra_seeds = [n for n in c.seed_n for _ in range(c.seeds - 1)]
    b_runs = list(c.n_ladder) + extra_seeds[: c.seeds - 1] + [c.noise_n]
    b_steps = sum(_route_steps(b_recipe, n / IMDB_EXAMPLES_PER_ROW) for n in b_runs)  # packed rows per run
    b_train = b_steps * c.lora_batch_size * ins.max_length * lora
    b_score = (len(b_runs) + 1) * c.test_reviews * IMDB_PROMPT_TOKENS * fwd  # + the untuned N = 0
    faq_adapt = c.faq_steps * c.lora_batch_size * ins.max_length * lora \
        + c.faq_eval_rows * (PROMPT_TOKENS + c.faq_max_new_tokens) * fwd
    a_runs = list(c.n_ladder) + list(c.scratch_extra_n) + extra_seeds
    a_steps = 2 * sum(_route_steps(clf, n) for n in a_runs) \
        + _route_steps(clf, c.noise_n) * (len(c.label_noise) - 1)  # routes A and A0; A's noise runs
    a_train = a_steps * c.clf_batch_size * p.block_size * full

    canary = 2 * dep.canary_steps * 8 * p.block_size * full  # raw + redacted, batch 8 (notebook 07)
    latency = (dep.latency_repeats + 1) * dep.latency_tokens * fwd  # + one warm-up run
    return {
        "00": (40 * fwd, "one chat answer: 2*N*tokens"),
        "01": (0.0, "not FLOP-bound: scaled by characters trained on x tokenizers trained"),
        "02": (tiny_fwd * p.block_size * 8, "a few forward passes: (2*N + 4*L*C*T) x tokens"),
        "03": (full * p.max_steps * p.batch_size * p.block_size, "pretraining: (6*N + 12*L*C*T) x D"),
        "04": (3 * score_reviews + faq_answers, "zero-shot + few-shot (~2x longer) scoring, FAQ answers: 2*N*tokens"),
        "05": (lora_train + 2 * (score_reviews + 2 * faq_answers),
               "LoRA: ~4*N*D (frozen weights need no weight gradients) + before/after evaluation"),
        "06": (b_train + b_score + faq_adapt + a_train,
               "route B LoRA ladder + seeds + noise run + scoring, routes A/A0 (class head); route C is seconds"),
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
    instance("profile", profile, Profile, "e.g. get_profile('cpu')")
    if isinstance(peak_flops, bool) or not isinstance(peak_flops, (int, float)) or not 0 < peak_flops < math.inf:
        raise ValueError(
            f"peak_flops must be a positive FLOP/s figure, got {peak_flops!r}: measure it with "
            "helpers.core.device.hardware_card()"
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
# 0.40 min from a fresh clone, 2026-11-25; up to 2.1 min for 06 on a loaded machine): 12 min in all, 12.5 since
# 06's rebuild (3.5 min).
STATED_BUDGETS: dict[str, StatedBudget] = {  # key: the notebook's number, "00" .. "07"
    # cpu: the measured cpu run (CALIBRATION.cpu_seconds, 2 quiet cores) rounded up with ~20 % headroom
    "00": StatedBudget(ci=0.5, cpu=0.5),
    "01": StatedBudget(ci=0.5, cpu=0.5),
    "02": StatedBudget(ci=1.0, cpu=0.5),
    "03": StatedBudget(ci=1.0, cpu=5.0),
    "04": StatedBudget(ci=1.5, cpu=4.5),
    "05": StatedBudget(ci=3.0, cpu=19.0),
    # 06 (four routes on IMDB, 500 test reviews, seeds): 60.5 min in the in-order cpu run of 2026-12-01, 33 min
    # of it beside a niced make test; over issue 12's 45-min goal (route B's LoRA runs are most of it)
    "06": StatedBudget(ci=3.5, cpu=65.0),
    "07": StatedBudget(ci=2.0, cpu=6.5),
}


def notebook_key(name: str) -> str:
    """'notebooks/03_pretraining.ipynb' -> '03' (the key of STATED_BUDGETS)."""
    instance("name", name, str, "a notebook's file name, e.g. '03_pretraining.ipynb'")
    stem = name.replace("\\", "/").rsplit("/", 1)[-1]
    if len(stem) < 3 or not stem[:2].isdigit() or stem[2] != "_":
        raise ValueError(f"notebook names start with two digits and '_' (03_pretraining.ipynb), got {name!r}")
    return stem[:2]


def budget_line(notebook: str) -> str:
    """For a notebook's first cell: budget_line('03') -> 'stated run time: ci 3 min (2 CPU cores...'."""
    key = notebook if notebook in STATED_BUDGETS else notebook_key(notebook)
    if key not in STATED_BUDGETS:
        raise KeyError(f"no stated budget for notebook {key!r}: the course has {', '.join(STATED_BUDGETS)}")
    b = STATED_BUDGETS[key]
    cpu = f"cpu {b.cpu:g} min" if b.cpu is not None else "cpu not measured yet"
    if b.gpu is not None:
        gpu = f"gpu {b.gpu:g} min"
    else:
        key = notebook if notebook in STATED_BUDGETS else notebook_key(notebook)
        est = estimate_runtimes(get_profile("gpu"), GPU_REFERENCE_PEAK)["estimated min"][key]
        tflops = GPU_REFERENCE_PEAK / 1e12
        gpu = f"gpu ~{max(est, 0.1):.1f} min (not measured: FLOP estimate for a {tflops:g}-TFLOP/s GPU)"
    return f"stated run time: ci {b.ci:g} min (2 CPU cores, measured by CI) | {cpu} | {gpu}"
