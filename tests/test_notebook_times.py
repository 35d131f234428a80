"""The per-notebook time table (tests/notebook_times.py): stated budgets, summing nbval cell times, the
LOUD over-budget line; and the run-time estimates of helpers.course.budget against the FLOP owner and
the measured runs.

Run: COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_notebook_times.py
"""

from __future__ import annotations

import pytest

from helpers.course import budget
from helpers.course.budget import CALIBRATION, STATED_BUDGETS, budget_line, estimate_runtimes, notebook_key
from helpers.course.profiles import get_profile
from tests.notebook_times import NotebookTimer, time_table, times_record


def test_every_notebook_has_a_stated_ci_budget():
    assert sorted(STATED_BUDGETS) == [f"{i:02d}" for i in range(8)]
    assert all(b.ci > 0 for b in STATED_BUDGETS.values())
    # helpers.course.profiles promises the whole course under ci in <= 15 min on 2 CPU cores
    assert sum(b.ci for b in STATED_BUDGETS.values()) <= 15


def timer_with(cells: dict[str, list[float]]) -> NotebookTimer:
    timer = NotebookTimer()
    for name, durations in cells.items():
        timer.add(f"notebooks/{name}::Cell 0", "setup", 3.0, failed=False)  # kernel start counts
        for i, d in enumerate(durations):
            timer.add(f"notebooks/{name}::Cell {i}", "call", d, failed=False)
    timer.add("tests/test_gpt.py::test_x", "call", 99.0, failed=False)  # not a notebook: ignored
    return timer


def test_cell_times_are_summed_per_notebook_with_kernel_start():
    rows = timer_with({"02_tiny_gpt.ipynb": [10.0, 20.0], "01_tokenizer.ipynb": [1.0]}).results("ci")
    assert [(r.notebook, r.seconds, r.cells) for r in rows] == [("01_tokenizer.ipynb", 4.0, 1),
                                                                 ("02_tiny_gpt.ipynb", 33.0, 2)]
    assert rows[1].budget_minutes == 1.0 and rows[1].ratio == pytest.approx(0.55)


def test_more_than_twice_the_budget_is_reported_loudly():
    # 2.2x the stated ci budget is loud; 1.9x is over, not loud (3 s of kernel start included).
    b02, b03 = STATED_BUDGETS["02"].ci * 60, STATED_BUDGETS["03"].ci * 60
    rows = timer_with({"02_tiny_gpt.ipynb": [2.2 * b02 - 3], "03_pretraining.ipynb": [1.9 * b03 - 3]}).results("ci")
    lines = time_table(rows, "ci")
    loud = [line for line in lines if line.startswith("!!!")]
    assert len(loud) == 1
    assert "02_tiny_gpt.ipynb" in loud[0] and "2.2x" in loud[0] and "STATED_BUDGETS" in loud[0]
    assert any("03_pretraining.ipynb" in line and line.rstrip().endswith("over") for line in lines)


def test_failed_cells_and_unknown_notebooks_are_shown():
    timer = timer_with({"99_extra.ipynb": [5.0]})
    timer.add("notebooks/99_extra.ipynb::Cell 1", "call", 1.0, failed=True)
    (row,) = timer.results("ci")
    assert row.failed == 1 and row.budget_minutes is None
    assert "no stated budget, 1 failed cell(s)" in time_table([row], "ci")[1]


def test_profiles_without_a_measured_budget_have_no_ratio():
    (row,) = timer_with({"05_instruction_tuning.ipynb": [600.0]}).results("gpu")
    assert row.budget_minutes is None and row.ratio is None and not row.over_budget


def test_the_record_keeps_notebooks_not_run_this_time():
    previous = {"notebooks": {"05_instruct.ipynb": {"seconds": 200.0}, "02_tiny_gpt.ipynb": {"seconds": 1.0}}}
    rows = timer_with({"02_tiny_gpt.ipynb": [30.0]}).results("ci")
    record = times_record(rows, "ci", previous)
    assert record["notebooks"]["05_instruct.ipynb"] == {"seconds": 200.0}
    assert record["notebooks"]["02_tiny_gpt.ipynb"]["seconds"] == 33.0
    assert record["notebooks"]["02_tiny_gpt.ipynb"]["stated_minutes"] == 1.0


def test_budget_line_for_a_first_cell():
    assert budget_line("03") == budget_line("03_pretraining.ipynb")
    assert budget_line("03").startswith(f"stated run time: ci {STATED_BUDGETS['03'].ci:g} min")


@pytest.mark.parametrize("bad", ["pretraining.ipynb", "3_x.ipynb", "ab_x.ipynb"])
def test_bad_notebook_names_say_the_expected_form(bad):
    with pytest.raises(ValueError, match="two digits"):
        notebook_key(bad)


def test_an_unknown_profile_names_the_variable():
    with pytest.raises(ValueError, match="COURSE_PROFILE"):
        budget.STATED_BUDGETS["00"].minutes("tpu")


# --- estimate_runtimes: fitted to measured ci and cpu runs -------------------------------------------
@pytest.mark.parametrize("nb", [nb for nb in CALIBRATION.ci_seconds if nb not in ("00", "01")])
def test_measured_times_grow_no_faster_than_the_counted_work(nb):
    """The FLOP model against the two measured runs: going from ci to cpu, a notebook's time can grow at
    most as much as its work (a fixed overhead only dilutes the growth). A notebook whose time grew faster
    than notebook_flops says its work did has FLOPs missing from the model (a step count, a run, a pass).
    (00 does the same work under every profile; 01 scales with characters, not FLOPs.)"""
    work = {name: budget._work(get_profile(name))[nb] for name in ("ci", "cpu")}
    time_ratio = CALIBRATION.cpu_seconds[nb] / CALIBRATION.ci_seconds[nb]
    assert time_ratio <= work["cpu"] / work["ci"], (nb, time_ratio, work["cpu"] / work["ci"])


def test_lora_training_is_a_real_compute_part():
    assert CALIBRATION.split("05")[1] > 10  # seconds under ci: not all overhead


@pytest.mark.parametrize("name", ["ci", "cpu", "gpu"])
def test_the_tiny_gpt_flops_are_those_of_the_built_model(name):
    """budget counts from sizes (no model built); the FLOP owner counts the real module tree."""
    from helpers.course.catchup import gpt_config
    from helpers.measure.flops import forward_flops_per_token, training_flops_per_token
    from helpers.scratch.gpt import GPT

    profile = get_profile(name)
    model = GPT(gpt_config(profile.pretrain, vocab_size=profile.tokenizer.vocab_size))
    T = profile.pretrain.block_size
    assert budget.tiny_gpt_flops(profile) == (training_flops_per_token(model, T).per_token,
                                              forward_flops_per_token(model, T).per_token)
    tokens = profile.pretrain.max_steps * profile.pretrain.batch_size * T
    assert budget.notebook_flops(profile)["03"][0] == training_flops_per_token(model, T).times(tokens)


def test_a_faster_machine_shrinks_only_the_compute_part():
    cpu = get_profile("cpu")
    here = estimate_runtimes(cpu, CALIBRATION.peak_flops)["estimated min"]
    fast = estimate_runtimes(cpu, CALIBRATION.peak_flops * 1e6)["estimated min"]
    for nb in CALIBRATION.ci_seconds:
        assert fast[nb] <= here[nb]
        if nb != "01":  # tokenizer training is Python: a faster matmul does not help it
            assert fast[nb] == pytest.approx(CALIBRATION.split(nb)[0] / 60, abs=0.051), nb


def test_bigger_profiles_cost_more_on_the_same_machine():
    peak = CALIBRATION.peak_flops
    t_ci, t_cpu, t_gpu = (estimate_runtimes(get_profile(n), peak)["estimated min"] for n in ("ci", "cpu", "gpu"))
    assert (t_cpu >= t_ci).all() and (t_gpu >= t_cpu).all()


@pytest.mark.parametrize("nb", [nb for nb, b in STATED_BUDGETS.items() if b.cpu is not None])
def test_stated_cpu_budgets_cover_the_measured_cpu_run(nb):
    measured = CALIBRATION.cpu_seconds[nb] / 60
    assert measured <= STATED_BUDGETS[nb].cpu <= 2 * measured + 0.5, (nb, measured, STATED_BUDGETS[nb].cpu)


def test_peak_must_be_positive():
    with pytest.raises(ValueError, match="hardware_card"):
        estimate_runtimes(get_profile("ci"), 0)
