"""The per-notebook time table: stated budgets, summing nbval cell times, the LOUD over-budget line.

Run: COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_notebook_times.py
"""

from __future__ import annotations

import pytest

from helpers.course import budget
from helpers.course.budget import STATED_BUDGETS, NotebookTimer, budget_line, notebook_key, time_table, times_record


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
from helpers.course.budget import CALIBRATION, estimate_runtimes  # noqa: E402
from helpers.course.profiles import get_profile  # noqa: E402


@pytest.mark.parametrize("profile", ["ci", "cpu"])
def test_the_calibration_machine_reproduces_both_measured_runs(profile):
    minutes = estimate_runtimes(get_profile(profile), CALIBRATION.peak_flops)["estimated min"]
    measured = CALIBRATION.ci_seconds if profile == "ci" else CALIBRATION.cpu_seconds
    for nb, seconds in measured.items():
        # exact where the fit has room; notebooks that are all overhead (00, 02) stay within seconds
        assert minutes[nb] == pytest.approx(seconds / 60, abs=0.06), nb


def test_the_fit_splits_each_notebook_into_non_negative_parts():
    for nb, t_ci in CALIBRATION.ci_seconds.items():
        overhead, compute = CALIBRATION.split(nb)
        assert overhead >= 0 and compute >= 0 and overhead + compute == pytest.approx(t_ci), nb
    assert CALIBRATION.split("05")[1] > 10  # LoRA training is a real compute part, not all overhead


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


def test_the_step_formula_is_the_one_compare_uses():
    """budget._steps restates experiment.compare.Recipe.steps (budget stays free of torch imports): keep them equal."""
    from helpers.course.budget import _steps
    from helpers.experiment.compare import Recipe

    for batches in (1, 3, 10, 100, 1000):
        for epochs, lo, hi in ((1.0, 2, 6), (2.0, 1, 600), (8.0, 8, 40), (0.5, 1, 3)):
            assert _steps(batches * 4, 4, epochs, lo, hi) == Recipe(1e-3, 4, epochs, lo, hi).steps(batches)
