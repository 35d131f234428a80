"""Self-checking exercises: every solution passes its check, and a typical wrong answer fails with a hint.

Run: COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_exercises.py
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.course.exercises import EXERCISES, check_exercise, exercises_for

SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"


def solution(notebook: str, number: int):
    (path,) = SOLUTIONS.glob(f"{notebook}_*.py")
    spec = importlib.util.spec_from_file_location(f"solution_{notebook}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, f"exercise_{number}")()


@pytest.mark.parametrize("notebook", [f"{i:02d}" for i in range(1, 8)])
def test_every_notebook_has_at_least_two_exercises_and_a_solution_file(notebook):
    assert len(exercises_for(notebook)) >= 2
    assert len(list(SOLUTIONS.glob(f"{notebook}_*.py"))) == 1


@pytest.mark.parametrize("key", sorted(EXERCISES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_the_solution_passes(key):
    feedback = check_exercise(*key, solution(*key))
    assert feedback.ok, feedback.message


# A typical mistake per exercise, and a piece of the hint it must get (the hint names the mistake).
def _pairs_no_overlap(ids):
    counts, i = {}, 0
    while i + 1 < len(ids):
        counts[(ids[i], ids[i + 1])] = counts.get((ids[i], ids[i + 1]), 0) + 1
        i += 2 if ids[i] == ids[i + 1] else 1
    return counts


def _merge_without_skipping(ids, pair, new):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new)  # the mistake: the pair's second id is not skipped
        else:
            out.append(ids[i])
        i += 1
    return out


def _n_params_untied(L, C, V, T):
    return solution("02", 1)(L, C, V, T) + V * C


def _mask_unshifted(prompt, response):
    return list(prompt) + list(response), [-100] * len(prompt) + list(response)


def _needed_not_sustained(ns, accs, target):
    return next((n for n, a in sorted(zip(ns, accs, strict=True)) if a >= target), None)


def _flip_unseeded(labels, fraction, seed):
    labels = np.asarray(labels)
    out = labels.copy()
    for c in (0, 1):
        where = np.flatnonzero(labels == c)
        idx = where[np.random.default_rng().permutation(where.size)[: round(fraction * where.size)]]
        out[idx] = 1 - c
    return out


def _luhn_from_left(number):
    digits = [int(c) for c in number if c.isdigit()]
    total = sum(
        d * 2 - 9 if i % 2 == 0 and d * 2 > 9 else d * 2 if i % 2 == 0 else d for i, d in enumerate(digits)
    )
    return total % 10 == 0


WRONG = {
    ("01", 1): (_pairs_no_overlap, "pairs overlap"),
    ("01", 2): (_merge_without_skipping, "continue after both"),
    ("01", 3): ((32, 32), "not one byte each"),
    ("02", 1): (_n_params_untied, "tied"),
    ("02", 2): (lambda T: torch.triu(torch.ones(T, T, dtype=torch.bool)), "rows are queries"),
    ("02", 3): (6 * 1e6, "too"),  # an unrelated number gets the general hint, high or low
    ("03", 1): ("wrong", "expected a number"),
    ("03", 2): (lambda step, w, m, r: step / w if step < w else r, "at step 0"),
    ("03", 3): (math.log2(1024), "natural logarithm"),
    ("04", 1): (solution("04", 1) / 3, "6, not 2"),
    ("04", 2): (math.exp(10.0), "average the losses"),
    ("05", 1): (_mask_unshifted, "shifted"),
    ("05", 2): (solution("05", 2) / 30, "all 30"),
    ("06", 1): (_needed_not_sustained, "lucky small N"),
    ("06", 2): (_flip_unseeded, "same seed"),
    ("07", 1): (lambda first, total, n: n / total, "leave the first token out"),
    ("07", 2): (300 / 0.002, "energy per request"),
    ("07", 3): (_luhn_from_left, "count from the right"),
}


def test_every_exercise_has_a_wrong_answer_here():
    assert set(WRONG) == set(EXERCISES)


@pytest.mark.parametrize("key", sorted(WRONG), ids=lambda k: f"{k[0]}-{k[1]}")
def test_a_wrong_answer_fails_with_a_hint_that_does_not_give_the_answer(key):
    wrong, hint = WRONG[key]
    feedback = check_exercise(*key, wrong)
    assert not feedback.ok
    assert hint in feedback.message, feedback.message
    answer = solution(*key)
    if isinstance(answer, (int, float)):  # a numeric answer is never printed in a hint
        for shown in (f"{answer:g}", f"{answer:,}", f"{answer:.3g}", str(answer)):
            assert shown not in feedback.message


def _gpt_counts(notebook):
    from helpers.course.catchup import gpt_config
    from helpers.course.profiles import get_profile
    from helpers.measure.flops import param_counts
    from helpers.scratch.gpt import GPT, GPTConfig

    if notebook == "02":
        return param_counts(GPT(GPTConfig.preset("gpt-micro", vocab_size=1024))), 1
    sizes = get_profile("ci").pretrain
    tokens = sizes.max_steps * sizes.batch_size * sizes.block_size
    return param_counts(GPT(gpt_config(sizes, vocab_size=1024))), tokens


@pytest.mark.parametrize("notebook, number, per_token", [("02", 3, 2), ("03", 1, 6)])
@pytest.mark.parametrize("wrong_n, hint", [("non_embedding", "tied LM head"), ("total", "embedding lookup")])
def test_flop_exercises_name_the_wrong_parameter_count(notebook, number, per_token, wrong_n, hint):
    """The one matmul N of helpers.measure.flops is the answer; the other named counts get their own hint."""
    counts, tokens = _gpt_counts(notebook)
    assert check_exercise(notebook, number, per_token * counts.matmul * tokens).ok
    feedback = check_exercise(notebook, number, per_token * getattr(counts, wrong_n) * tokens)
    assert not feedback.ok and hint in feedback.message, feedback.message


def test_each_notebook_module_registers_only_its_own_exercises():
    for (notebook, _), ex in EXERCISES.items():
        assert ex.check.__module__.startswith(f"helpers.course.exercises.nb{notebook}_"), (notebook, ex.title)


def test_no_answer_yet_and_a_crashing_function_are_feedback_not_errors():
    assert check_exercise("01", 1, None).message.startswith("replace `None`")
    crashed = check_exercise(1, 1, lambda ids: ids[99])
    assert not crashed.ok and "IndexError" in crashed.message
    called = check_exercise(1, 1, solution("01", 1)([1, 2]))  # the result instead of the function
    assert "pass the function itself" in called.message
    assert repr(check_exercise("01", 3, solution("01", 3))).startswith("Correct:")


def test_an_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError, match="01/1"):
        check_exercise("01", 99, 1)


def _cell_script():
    path = SOLUTIONS.parent.parent / "scripts" / "add_exercise_cells.py"
    spec = importlib.util.spec_from_file_location("add_exercise_cells", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("key", sorted(EXERCISES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_the_starter_cell_runs_and_says_not_yet(key):
    code = _cell_script().starter(EXERCISES[key])
    *body, last = code.split("\n")
    namespace = {"check_exercise": check_exercise}
    exec("\n".join(body), namespace)  # noqa: S102 - the course's own starter code
    feedback = eval(last, namespace)  # noqa: S307
    assert not feedback.ok and feedback.message


def test_adding_the_cells_twice_keeps_one_copy_and_the_other_cells(tmp_path):
    import nbformat

    path = tmp_path / "03_pretraining.ipynb"
    original = [nbformat.v4.new_markdown_cell("# 03"), nbformat.v4.new_code_cell("1 + 1")]
    nbformat.write(nbformat.v4.new_notebook(cells=original), path)
    script = _cell_script()
    script.add_to(path)
    once = nbformat.read(path, as_version=4).cells
    script.add_to(path)
    twice = nbformat.read(path, as_version=4).cells
    assert [c.source for c in once] == [c.source for c in twice]
    assert [c.source for c in twice[:2]] == ["# 03", "1 + 1"]
    assert len(twice) == 2 + 2 + 2 * len(exercises_for("03"))
    nb = nbformat.read(path, as_version=4)  # an executed exercise cell keeps its output when nothing changed
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="Not yet: ...")]
    nb.cells[-3].source += "  # edited"  # and a cell whose text changed is replaced by the registry's
    nbformat.write(nb, path)
    script.add_to(path)
    again = nbformat.read(path, as_version=4).cells
    assert again[-1].outputs[0]["text"] == "Not yet: ..." and again[-3].source == twice[-3].source


def _top_level_names(source: str) -> set[str]:
    """Names a cell binds at top level: functions, classes, assignments and imports."""
    import ast

    source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


@pytest.mark.parametrize("notebook", sorted({k[0] for k in EXERCISES}))
def test_exercise_starters_never_shadow_the_notebooks_own_names(notebook):
    """A starter named like a notebook function (say `merge`) would replace it in the learner's kernel
    (re-running an earlier cell then uses the unfinished stub) and in tests that load the notebook's
    definitions: that once made a test loop forever. Starters are named `my_...` and `answer`."""
    import json

    path = next((SOLUTIONS.parent).glob(f"{notebook}_*.ipynb"))
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in cells if "self-check" in c.get("metadata", {}).get("tags", [])]
    assert tagged, f"{path.name} has no exercise cells: run scripts/add_exercise_cells.py on it"
    own = set().union(*(_top_level_names("".join(c["source"])) for c in cells if c not in tagged))
    starters = set().union(*(_top_level_names("".join(c["source"])) for c in tagged))
    assert not (starters & own), f"{path.name}: exercise cells rebind {sorted(starters & own)}"
