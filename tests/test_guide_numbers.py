"""One source for every number: the instructor guide's measured numbers are the committed notebook outputs,
and the guide, the design doc and the READMEs name only files that are in the repository.

Run: .venv/bin/python -m pytest tests/test_guide_numbers.py -q
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from helpers.course import guide_numbers
from helpers.course.guide_numbers import BEGIN, END, GUIDE, QUOTED, Quoted, block_in, read_profile, read_row, table

ROOT = Path(__file__).resolve().parent.parent


def test_the_guides_numbers_are_the_committed_outputs():
    assert block_in(GUIDE.read_text()) == table(), (
        "docs/instructor.md's generated table differs from the committed notebook outputs (a notebook was "
        "re-executed): run `python -m helpers.course.guide_numbers --write` and commit the guide with it")


def test_every_quoted_number_names_a_notebook_that_exists():
    for quoted in QUOTED:
        assert len(list((ROOT / "notebooks").glob(f"{quoted.notebook}_*.ipynb"))) == 1, quoted


def _notebook(tmp_path: Path, outputs: list[str], name: str = "03_demo.ipynb") -> Path:
    cells = [nbformat.v4.new_code_cell("print('profile: cpu')", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="Python 3.11\nprofile: cpu | device: cpu\n")])]
    for text in outputs:
        cells.append(nbformat.v4.new_code_cell("pd.Series(rows)  # the run", outputs=[
            nbformat.v4.new_output("execute_result", data={"text/plain": text}, execution_count=1)]))
    nb = nbformat.v4.new_notebook(cells=cells)
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


SERIES = "                    run\nwall time (s)      12.5\nMFU                3.1%\nenergy method    estimated: 7.5 W"


def test_a_row_is_read_from_a_printed_series(tmp_path):
    nb = nbformat.read(_notebook(tmp_path, [SERIES]), as_version=4)
    assert read_profile(nb, "demo") == "cpu"
    assert read_row(nb, Quoted("t", "03", "# the run", "wall time (s)"), "demo") == "12.5"
    assert read_row(nb, Quoted("m", "03", "# the run", "MFU"), "demo") == "3.1%"
    assert read_row(nb, Quoted("e", "03", "# the run", "energy method"), "demo") == "estimated: 7.5 W"


@pytest.mark.parametrize(("outputs", "quoted", "match"), [
    ([SERIES], Quoted("x", "03", "# the run", "peak memory (MiB)"), "prints no row 'peak memory"),
    ([SERIES, SERIES], Quoted("x", "03", "# the run", "MFU"), "2 code cells contain"),
    ([SERIES], Quoted("x", "03", "hardware_card(", "MFU"), "0 code cells contain 'hardware_card\\('"),
])
def test_a_missing_or_ambiguous_number_is_named(tmp_path, outputs, quoted, match):
    nb = nbformat.read(_notebook(tmp_path, outputs), as_version=4)
    with pytest.raises(ValueError, match=match):
        read_row(nb, quoted, "03_demo.ipynb")


def test_a_notebook_without_its_profile_printout_is_refused(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    with pytest.raises(ValueError, match="no cell prints 'profile: <name>'"):
        read_profile(nb, "03_demo.ipynb")


def test_write_replaces_only_the_block(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder, [SERIES])
    monkeypatch.setattr(guide_numbers, "QUOTED", (Quoted("run time (s)", "03", "# the run", "wall time (s)"),))
    guide = tmp_path / "guide.md"
    guide.write_text(f"# Guide\nbefore\n{BEGIN}\n| old | table |\n{END}\nafter\n")
    assert guide_numbers.write(guide, folder) is True
    text = guide.read_text()
    assert text.startswith("# Guide\nbefore\n") and text.endswith(f"{END}\nafter\n")
    assert "| run time (s) | 12.5 | `03_demo` | `cpu` |" in block_in(text) and "old" not in text
    assert guide_numbers.write(guide, folder) is False  # already up to date


def test_a_guide_without_markers_is_refused():
    with pytest.raises(ValueError, match="expected one"):
        block_in("no markers here")


# ----------------------------------------------------------------------------- files the docs point at
LINK = re.compile(r"\]\(([^)#\s]+)")  # markdown link targets
PATH = re.compile(r"`((?:helpers|tests|docs|notebooks|scripts|data|benchmarks|shared|\.ci)/[\w./-]*)`")
GENERATED = ("artifacts/", "wheelhouse/", ".venv/")  # made by the course, not committed


@pytest.mark.parametrize("doc", ["docs/instructor.md", "docs/design.md", "README.md", "notebooks/solutions/README.md"])
def test_the_docs_point_only_at_files_in_the_repository(doc):
    path = ROOT / doc
    text = path.read_text()
    targets = [(path.parent / t).resolve() for t in LINK.findall(text) if "://" not in t]
    targets += [ROOT / p.rstrip(".") for p in PATH.findall(text) if not p.startswith(GENERATED)]
    missing = sorted({str(t.relative_to(ROOT)) for t in targets if not t.exists()})
    assert not missing, f"{doc} names files that are not in the repository: {missing}"
