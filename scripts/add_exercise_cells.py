"""Append the self-checking exercise cells (helpers.course.exercises) to the end of notebooks 01-07.

    .venv/bin/python scripts/add_exercise_cells.py notebooks/03_pretraining.ipynb [...]

Idempotent: cells it added before (tagged "self-check") are replaced, nothing else is touched, and the
other cells keep their outputs (so do its own cells whose text did not change). Changed or new cells
have no outputs until the notebook is executed again
(nbval-lax runs them either way; their outputs are not compared). The tasks come from the exercise
registry, so the notebook and the checks never disagree. Run it again after regenerating a notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from helpers.course.exercises import Exercise, exercises_for

TAG = "self-check"

STARTERS = {  # what the learner starts from: a function skeleton (a value to fill in by default)
    ("01", 1): """
def my_count_pairs(ids):
    counts = {}
    # your code: count every pair of consecutive ids
    return counts

check_exercise("01", 1, my_count_pairs)""",
    ("01", 2): """
def my_merge(ids, pair, new_id):
    out = list(ids)
    # your code: replace each occurrence of pair, left to right
    return out

check_exercise("01", 2, my_merge)""",
    ("02", 1): """
def my_n_params(n_layer, n_embd, vocab_size, block_size):
    # your code: the formula
    return 0

check_exercise("02", 1, my_n_params)""",
    ("02", 2): """
import torch

def my_causal_mask(T):
    # your code: True where query i may attend to key j
    return torch.zeros(T, T, dtype=torch.bool)

check_exercise("02", 2, my_causal_mask)""",
    ("03", 2): """
def my_lr_multiplier(step, warmup_steps, max_steps, min_ratio):
    # your code: linear warm-up, then cosine decay
    return 1.0

check_exercise("03", 2, my_lr_multiplier)""",
    ("05", 1): """
def my_mask(prompt_ids, response_ids):
    ids = list(prompt_ids) + list(response_ids)
    labels = list(ids)  # your code: -100 where nothing is learned, shifted targets elsewhere
    return ids, labels

check_exercise("05", 1, my_mask)""",
    ("06", 1): """
def my_needed(ns, accuracies, target):
    # your code: the smallest N that reaches the target and keeps it
    return None

check_exercise("06", 1, my_needed)""",
    ("06", 2): """
import numpy as np

def my_flip(labels, fraction, seed):
    labels = np.asarray(labels)
    # your code: flip exactly round(fraction * n) labels, chosen with seed
    return labels

check_exercise("06", 2, my_flip)""",
    ("07", 1): """
def my_decode_speed(first_token_seconds, total_seconds, new_tokens):
    # your code
    return 0.0

check_exercise("07", 1, my_decode_speed)""",
    ("07", 3): """
def my_luhn_ok(number):
    # your code: the Luhn checksum of the digits in number
    return False

check_exercise("07", 3, my_luhn_ok)""",
}


def starter(ex: Exercise) -> str:
    default = f'answer = None  # your answer\n\ncheck_exercise("{ex.notebook}", {ex.number}, answer)'
    return STARTERS.get((ex.notebook, ex.number), default).strip()


def exercise_cells(notebook: str) -> list:
    exercises = exercises_for(notebook)
    if not exercises:
        raise ValueError(f"no self-checking exercises for notebook {notebook}: add some to helpers.course.exercises")
    intro = ("## Exercises that check themselves\n\n"
             "Write your answer in the cell and run it: `check_exercise` says what is right, or gives a "
             "hint that points at the mistake. Solutions: `notebooks/solutions/`.")
    cells = [nbformat.v4.new_markdown_cell(intro),
             nbformat.v4.new_code_cell("from helpers.course.exercises import check_exercise")]
    for ex in exercises:
        cells.append(nbformat.v4.new_markdown_cell(f"**Exercise {ex.number}: {ex.title}.** {ex.task}"))
        cells.append(nbformat.v4.new_code_cell(starter(ex)))
    for k, cell in enumerate(cells):
        cell.metadata["tags"] = [TAG]
        cell.id = f"{TAG}-{notebook}-{k}"  # stable ids: re-running the script gives no diff
    return cells


def add_to(path: Path) -> int:
    """Replace the notebook's self-check cells; a cell whose text did not change keeps its outputs."""
    nb = nbformat.read(path, as_version=4)
    key = path.name[:2]
    old = {c.get("id"): c for c in nb.cells if TAG in c.get("metadata", {}).get("tags", [])}
    nb.cells = [c for c in nb.cells if TAG not in c.get("metadata", {}).get("tags", [])]
    new = [old[c.id] if c.id in old and old[c.id].source == c.source else c for c in exercise_cells(key)]
    nb.cells.extend(new)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return len(new)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    for arg in argv:
        print(f"{Path(arg).name}: {add_to(Path(arg))} self-check cells")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
