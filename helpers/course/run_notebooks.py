"""Run notebooks headless and time them: `python -m helpers.course.run_notebooks notebooks [--inplace]`.

Executes each notebook in order with nbclient (same kernel as JupyterLab) and writes the executed copy
to artifacts/executed/ (or in place with --inplace, which is how the committed outputs are made). A
notebook that fails is named with its failing cell and error, and the run goes on with the next one:
later notebooks rebuild what they need through the catch-ups, so one failure does not hide the others.
At the end a table gives every notebook's status and time; the exit status is 1 if any failed.

A failing notebook is never written in place (the stored outputs stay those of its last good run); its
partly executed copy goes to artifacts/executed/ so the traceback can be read there.

Left out on purpose: running notebooks in parallel (they share artifacts/ and the CPU), retries.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from helpers.course.artifacts import artifacts_dir, display_path

CELL_TIMEOUT = 1800  # seconds per cell: the slowest cpu-profile cell takes a few minutes; a hang still ends


@dataclass(frozen=True)
class NotebookResult:
    """How one notebook ran."""

    name: str
    seconds: float
    error: str | None = None  # None: every cell ran; else "cell 12: ValueError: ..." (or why it did not load)

    @property
    def ok(self) -> bool:
        return self.error is None


def _failing_cell(nb) -> str:
    """'cell 12' for the first code cell with an error output (cells counted from 1, as Jupyter shows them)."""
    for i, cell in enumerate(nb.cells, start=1):
        if cell.cell_type == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return f"cell {i}"
    return "before any cell finished"


def _error_line(err: BaseException) -> str:
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    text = f"{ename}: {evalue}" if ename else f"{type(err).__name__}: {err}"
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


class NotebookFailed(RuntimeError):
    """A notebook did not run to the end: names it, the failing cell and the error."""

    def __init__(self, name: str, error: str, seconds: float = 0.0, executed: Path | None = None):
        where = f" (executed copy: {display_path(executed)})" if executed is not None else ""
        super().__init__(f"{name} failed at {error}{where}")
        self.name, self.error, self.seconds, self.executed = name, error, seconds, executed


def run_notebook(path: Path, inplace: bool = False, timeout: int = CELL_TIMEOUT) -> float:
    """Execute one notebook; returns seconds. Raises NotebookFailed naming the notebook and its failing cell."""
    path = Path(path)
    start = time.perf_counter()
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - JSON, schema or I/O: any of them means "cannot be loaded"
        raise NotebookFailed(path.name, f"loading: not a readable notebook ({type(err).__name__}: {err}); "
                                        f"restore it with `git checkout -- {display_path(path)}`") from err
    resources = {"metadata": {"path": str(path.parent)}}  # run with the notebook's folder as cwd, like Jupyter
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources=resources)
    try:
        client.execute()
    except Exception as err:  # noqa: BLE001 - a cell error, a timeout or a dead kernel: all name the notebook
        target = artifacts_dir("executed") / path.name
        nbformat.write(nb, target)
        error = f"{_failing_cell(nb)}: {_error_line(err)}"
        raise NotebookFailed(path.name, error, time.perf_counter() - start, target) from err
    seconds = time.perf_counter() - start
    nbformat.write(nb, path if inplace else artifacts_dir("executed") / path.name)
    return seconds


def run_all(paths: Sequence[Path], inplace: bool = False, timeout: int = CELL_TIMEOUT,
            on_result: Callable[[NotebookResult], None] | None = None) -> list[NotebookResult]:
    """Run every notebook in order, whatever happens to the ones before; `on_result` sees each as it ends."""
    results = []
    for path in paths:
        try:
            result = NotebookResult(Path(path).name, run_notebook(path, inplace=inplace, timeout=timeout))
        except NotebookFailed as failed:
            result = NotebookResult(failed.name, failed.seconds, failed.error)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def summary(results: Sequence[NotebookResult]) -> str:
    """A table, one row per notebook, and a last line naming the failures."""
    width = max([len("notebook"), *(len(r.name) for r in results)])
    rows = [f"{'notebook':<{width}}  status  time     error", f"{'-' * width}  ------  -------  -----"]
    for r in results:
        rows.append(f"{r.name:<{width}}  {'ok' if r.ok else 'FAILED':<6}  {r.seconds:5.0f} s  {r.error or ''}")
    failed = [r.name for r in results if not r.ok]
    total = f"total: {sum(r.seconds for r in results) / 60:.1f} min"
    rows.append(f"{total}; {len(failed)} of {len(results)} failed: {', '.join(failed)}" if failed
                else f"{total}; all {len(results)} ran")
    return "\n".join(rows)


def select(folder: Path, only: Sequence[str] | None = None) -> list[Path]:
    """The course notebooks (NN_name.ipynb) in `folder`, in order; `only`: name prefixes such as 00 03."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}: pass the notebooks folder, e.g. `notebooks`")
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        unknown = [o for o in only if not any(p.name.startswith(o) for p in paths)]
        if unknown:
            names = ", ".join(p.name for p in paths) or "none"
            raise ValueError(f"--only {' '.join(unknown)} matches no notebook in {folder} (there: {names})")
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    if not paths:
        raise FileNotFoundError(f"no notebooks named NN_name.ipynb in {folder}")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=Path("notebooks"))
    parser.add_argument("--inplace", action="store_true", help="overwrite the notebooks with their outputs")
    parser.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 00 03")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell")
    args = parser.parse_args(argv)
    try:
        paths = select(args.folder, args.only)
    except (FileNotFoundError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2

    def progress(r: NotebookResult) -> None:
        print(f"{r.name}: {r.seconds:.0f} s" + ("" if r.ok else f"  FAILED at {r.error}"), flush=True)

    results = run_all(paths, inplace=args.inplace, timeout=args.timeout, on_result=progress)
    print("\n" + summary(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
