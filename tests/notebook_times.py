"""The test session's notebook time table: nbval runs each notebook cell as a test item; this sums the
cell durations per notebook and compares them with the stated budgets (`helpers.course.budget.STATED_BUDGETS`).

Used by the repository's `conftest.py` (it prints the table at the end of the session, loudly for a
notebook more than OVER_BUDGET_FACTOR over, and writes artifacts/notebook_times.json) and tested by
tests/test_notebook_times.py. It lives with the tests because only a pytest session produces these times.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field

from helpers.course.budget import STATED_BUDGETS, notebook_key

OVER_BUDGET_FACTOR = 2.0  # a notebook this many times over its stated budget is reported loudly


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
