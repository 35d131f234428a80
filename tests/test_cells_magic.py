"""`%%needs` (helpers.course.cells): skips a cell whose variable is None, else runs it in the namespace."""

import pytest

IPython = pytest.importorskip("IPython")
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402


@pytest.fixture
def shell():
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "helpers.course.cells")
    yield sh
    InteractiveShell.clear_instance()


def test_runs_the_cell_when_the_variable_is_set(shell):
    shell.user_ns["runtime"] = "llama.cpp 0.3.36"
    shell.run_cell_magic("needs", "runtime", "made = runtime.split()[0]\n")
    assert shell.user_ns["made"] == "llama.cpp"


def test_skips_and_says_why_when_the_variable_is_none(shell, capsys):
    shell.user_ns["runtime"] = None
    shell.run_cell_magic("needs", "runtime", "made = 1\n")
    assert "made" not in shell.user_ns
    assert "skipped: this cell needs `runtime`" in capsys.readouterr().out


def test_an_unset_variable_counts_as_missing(shell, capsys):
    shell.user_ns.pop("export", None)
    shell.run_cell_magic("needs", "export", "made = 1\n")
    assert "made" not in shell.user_ns and "`export`" in capsys.readouterr().out


def test_errors_inside_a_running_cell_are_raised(shell):
    shell.user_ns["runtime"] = object()
    with pytest.raises(ZeroDivisionError):
        shell.run_cell_magic("needs", "runtime", "1 / 0\n")


def test_no_name_is_a_usage_error(shell):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="%%needs takes the variable"):
        shell.run_cell_magic("needs", "", "x = 1\n")


def test_notebook_07_serving_section_skips_itself_without_llama_cpp():
    """Every code cell of section 7 (after `check_runtime`, before the summary) starts with `%%needs runtime`,
    so a machine without llama.cpp runs the rest of notebook 07 (the issue: a missing runtime must not stop it)."""
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parent.parent / "notebooks" / "07_local_deployment.ipynb").read_text())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    start = next(i for i, s in enumerate(sources) if "runtime = check_runtime()" in s)
    assert "except RuntimeMissingError" in sources[start] and "runtime = None" in sources[start]
    end = next(i for i, s in enumerate(sources) if s.startswith("## Summary"))
    section = [i for i in range(start + 1, end) if nb["cells"][i]["cell_type"] == "code"]
    assert len(section) >= 5
    assert all(sources[i].startswith("%%needs runtime\n") for i in section), section
    later = [sources[i] for i in range(end, len(sources)) if nb["cells"][i]["cell_type"] == "code"]
    uses = [s for s in later if "served_factor" in s or "speedup" in s]
    assert uses and all("if runtime:" in s for s in uses)
