"""The notebooks' read-aloud prose quotes the committed outputs, never numbers of its own (issue 16).

A markdown cell whose metadata has `"prose"` reads a result aloud ("route B reached 84.6 % ..."): every
percentage and every "N=..." it quotes must appear, written the same way, in the text outputs of the
notebook's code cells. Re-executing a notebook without rewriting its prose makes this test fail.

Run: .venv/bin/python -m pytest tests/test_prose_numbers.py -q      (~1 s)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
QUOTED = re.compile(r"\d+(?:\.\d+)?\s?%|N\s?=\s?\d+(?:,\d{3})*")


def _outputs(nb: dict) -> str:
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "text" in out:
                parts.append("".join(out["text"]))
            for kind in ("text/plain", "text/html"):
                parts.append("".join(out.get("data", {}).get(kind, "")))
    return "\n".join(parts)


def quoted_numbers(text: str) -> list[str]:
    """'B reached 84.6 % at N=1,024' -> ['84.6 %', 'N=1,024'] (spaces normalised away)."""
    return [re.sub(r"\s", "", q) for q in QUOTED.findall(text)]


def test_quoted_numbers_are_found():
    assert quoted_numbers("B reached 84.6 % at N = 1,024, C 77%") == ["84.6%", "N=1,024", "77%"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_quotes_only_numbers_the_outputs_show(path):
    nb = json.loads(path.read_text())
    outputs = re.sub(r"\s", "", _outputs(nb))
    missing = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown" or "prose" not in cell.get("metadata", {}):
            continue
        missing += [q for q in quoted_numbers("".join(cell["source"])) if q not in outputs]
    assert not missing, f"{path.name}: prose quotes numbers no output shows: {missing} (re-read the outputs)"
