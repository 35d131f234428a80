"""The README's repository map shows the package as it is: every module of helpers/, in its layer's table.

Run:  .venv/bin/python -m pytest tests/test_readme.py -q
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("core", "scratch", "instruct", "measure", "deploy", "experiment", "course")


def _layer_tables() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tables: dict[str, set[str]] = {}
    for layer, body in re.findall(r"\*\*`helpers/(\w+)/`\*\*(.*?)(?=\*\*`helpers/|\*\*Elsewhere|\Z)", text, re.S):
        tables[layer] = set(re.findall(r"^\| `(\w+)/?` \|", body, re.M))
    return tables


@pytest.mark.parametrize("layer", LAYERS)
def test_every_module_is_in_its_layers_table(layer):
    tables = _layer_tables()
    assert layer in tables, f"README.md has no table for helpers/{layer}/"
    on_disk = {p.stem for p in (ROOT / "helpers" / layer).glob("*.py") if p.name != "__init__.py"}
    on_disk |= {p.name for p in (ROOT / "helpers" / layer).iterdir() if (p / "__init__.py").exists()}
    assert tables[layer] == on_disk, (
        f"README.md's helpers/{layer}/ table differs from the folder: missing {sorted(on_disk - tables[layer])}, "
        f"gone {sorted(tables[layer] - on_disk)}"
    )


def test_the_layers_are_the_folders():
    folders = {p.name for p in (ROOT / "helpers").iterdir() if (p / "__init__.py").exists()}
    assert folders == set(LAYERS)
