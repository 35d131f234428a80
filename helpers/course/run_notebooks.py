"""Run notebooks headless and time them: `python -m helpers.course.run_notebooks notebooks [--inplace]`.

Executes each notebook in order with nbclient (same kernel as JupyterLab) and writes the executed copy
to artifacts/executed/ (or in place with --inplace, which is how the committed outputs are made under
COURSE_PROFILE=ci). Prints one line per notebook with its wall time and a final table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from helpers.course.artifacts import artifacts_dir


def run_notebook(path: Path, inplace: bool = False, timeout: int = 1800) -> float:
    """Execute one notebook; returns seconds. Raises nbclient's CellExecutionError on a failing cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    resources = {"metadata": {"path": str(path.parent)}}  # run with the notebook's folder as cwd, like Jupyter
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources=resources)
    client.execute()
    seconds = time.perf_counter() - start
    target = path if inplace else artifacts_dir("executed") / path.name
    nbformat.write(nb, target)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=Path("notebooks"))
    parser.add_argument("--inplace", action="store_true", help="overwrite the notebooks with their outputs")
    parser.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 00 03")
    args = parser.parse_args(argv)
    paths = sorted(p for p in args.folder.glob("[0-9][0-9]_*.ipynb")
                   if not args.only or any(p.name.startswith(o) for o in args.only))
    if not paths:
        print(f"no notebooks found in {args.folder}", file=sys.stderr)
        return 2
    times = {}
    for path in paths:
        seconds = run_notebook(path, inplace=args.inplace)
        times[path.name] = seconds
        print(f"{path.name}: {seconds:.0f} s", flush=True)
    print(f"total: {sum(times.values()) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
