"""helpers.course.run_notebooks: a broken notebook is named with its cell, the rest still run, the exit
status says so and a summary table lists every notebook.

    .venv/bin/python -m pytest tests/test_run_notebooks.py -q

Tiny notebooks written into tmp_path (two real kernel starts, ~10 s in all).
"""

from __future__ import annotations

import nbformat
import pytest

from helpers.course import run_notebooks as rn


def _notebook(folder, name: str, *sources: str):
    path = folder / name
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    return tmp_path / "artifacts"


def test_a_broken_notebook_is_named_and_the_rest_still_run(tmp_path, artifacts, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder, "00_broken.ipynb", "x = 1", "raise ValueError('the data file is missing')", "y = 2")
    (folder / "01_not_json.ipynb").write_text("{ half a notebook", encoding="utf-8")
    after = _notebook(folder, "02_after.ipynb", "print(6 * 7)")
    before = after.read_text(encoding="utf-8")

    status = rn.main([str(folder), "--inplace"])
    out = capsys.readouterr().out

    assert status == 1
    assert "00_broken.ipynb: " in out and "FAILED at cell 2: ValueError: the data file is missing" in out
    table = out[out.index("notebook  "):]
    rows = {line.split()[0]: line for line in table.splitlines()[2:-1]}
    assert list(rows) == ["00_broken.ipynb", "01_not_json.ipynb", "02_after.ipynb"]
    assert "FAILED" in rows["00_broken.ipynb"] and "cell 2: ValueError" in rows["00_broken.ipynb"]
    assert "FAILED" in rows["01_not_json.ipynb"] and "not a readable notebook" in rows["01_not_json.ipynb"]
    assert " ok " in rows["02_after.ipynb"]
    assert table.splitlines()[-1].endswith("2 of 3 failed: 00_broken.ipynb, 01_not_json.ipynb")
    # The notebook after the failures ran (in place); the broken one kept its source, its run went aside.
    ran = nbformat.read(after, as_version=4)
    assert after.read_text(encoding="utf-8") != before and ran.cells[0].outputs[0]["text"] == "42\n"
    broken = nbformat.read(folder / "00_broken.ipynb", as_version=4)
    assert all(not c.outputs for c in broken.cells)
    partial = nbformat.read(artifacts / "executed" / "00_broken.ipynb", as_version=4)
    assert partial.cells[1].outputs[0]["ename"] == "ValueError" and not partial.cells[2].outputs


def test_run_notebook_raises_naming_the_notebook_and_cell(tmp_path, artifacts):
    path = _notebook(tmp_path, "05_x.ipynb", "1 + 1", "import no_such_module_xyz")
    with pytest.raises(rn.NotebookFailed, match=r"05_x.ipynb failed at cell 2: ModuleNotFoundError") as info:
        rn.run_notebook(path)
    assert info.value.executed == artifacts / "executed" / "05_x.ipynb"


def test_all_good_exits_zero_with_a_table():
    results = [rn.NotebookResult("00_setup.ipynb", 12.0), rn.NotebookResult("01_tokenizer.ipynb", 48.0)]
    table = rn.summary(results)
    assert table.splitlines()[-1] == "total: 1.0 min; all 2 ran"
    assert table.splitlines()[2].split() == ["00_setup.ipynb", "ok", "12", "s"]


@pytest.mark.parametrize("args, message", [
    (["missing_folder"], "no folder"),
    (["{tmp}", "--only", "09"], "--only 09 matches no notebook"),
    (["{tmp}"], "no notebooks named"),
])
def test_bad_arguments_exit_2_and_say_why(tmp_path, capsys, args, message):
    assert rn.main([a.format(tmp=tmp_path) for a in args]) == 2
    assert message in capsys.readouterr().err
