"""Load the definitions a notebook builds, so a test can prove they equal `helpers/`.

Only top-level imports, functions, classes and UPPER_CASE constants are executed; cells that train,
plot or print are skipped, so loading is fast and has no side effects. The learner's exercise cells
(tagged "self-check") are skipped too: their unfinished starters must never stand in for the
notebook's own definitions.

    defs = load_definitions("notebooks/01_tokenizer.ipynb")
    defs.train_bpe_slow(...)   # the notebook's own version
"""

from __future__ import annotations

import ast
import json
import types
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXERCISE_TAG = "self-check"  # scripts/add_exercise_cells.py tags the cells it adds


def _keep(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return all(isinstance(t, ast.Name) and t.id.isupper() for t in targets)
    return False


def load_definitions(notebook: str | Path) -> types.ModuleType:
    """A module holding the notebook's top-level definitions (later cells override earlier ones)."""
    path = Path(notebook)
    if not path.is_absolute() and not path.exists():
        path = NOTEBOOKS / path
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    module = types.ModuleType(f"notebook_{path.stem}")
    module.__file__ = str(path)
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code" or EXERCISE_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        # IPython magics and shell escapes are not Python: drop those lines.
        source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError as err:
            raise SyntaxError(f"{path.name} cell {index} does not parse: {err}") from err
        kept = ast.Module(body=[n for n in tree.body if _keep(n)], type_ignores=[])
        if kept.body:
            # dont_inherit: this file's `from __future__ import annotations` must not leak into the
            # notebook's code (it turns annotations into strings, which breaks its @dataclass classes).
            code = compile(kept, f"{path.name}[cell {index}]", "exec", dont_inherit=True)
            exec(code, module.__dict__)  # noqa: S102
    return module
