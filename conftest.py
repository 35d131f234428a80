"""Test-session set-up: the network is blocked for the whole session (loopback allowed).

Run everything:  make test        (or: COURSE_PROFILE=ci pytest --nbval-lax)
"""

from __future__ import annotations

import os

os.environ.setdefault("COURSE_PROFILE", "ci")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from helpers.core.netguard import block_network  # noqa: E402

block_network()


# --- Per-notebook time table (nbval runs each cell as a test item) ---------------------------------
# Sums the cell durations per notebook (tests/notebook_times.py), prints them against the stated budgets
# (helpers.course.budget STATED_BUDGETS) at the end of the session, loudly for a notebook more than 2x over,
# and writes artifacts/notebook_times.json (entries for notebooks not run this time are kept).
from tests.notebook_times import NotebookTimer, time_table, times_record  # noqa: E402

_NOTEBOOK_TIMER = NotebookTimer()


def pytest_runtest_logreport(report):
    _NOTEBOOK_TIMER.add(report.nodeid, report.when, report.duration, failed=report.failed)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    import json

    from helpers.core.io import write_json
    from helpers.course.artifacts import artifacts_dir, display_path

    profile = os.environ.get("COURSE_PROFILE", "ci").lower()
    rows = _NOTEBOOK_TIMER.results(profile)
    if not rows:
        return
    terminalreporter.write_sep("=", f"notebook run times vs stated {profile} budgets (helpers/course/budget.py)")
    for line in time_table(rows, profile):
        loud = line.startswith("!!!")
        terminalreporter.write_line(line, red=loud, bold=loud)
    path = artifacts_dir() / "notebook_times.json"
    try:
        previous = json.loads(path.read_text()) if path.exists() else None
    except (OSError, ValueError):
        previous = None  # a damaged file is replaced, not fatal
    write_json(path, times_record(rows, profile, previous))  # atomic: a killed session never leaves half a file
    terminalreporter.write_line(f"written: {display_path(path)}")
