"""`%%needs NAME`: a notebook cell that runs only when an optional part of the course is there.

A section that needs something the course can do without (llama.cpp for notebook 07's serving section)
sets a variable to None when it is missing, and each of its cells starts with `%%needs` and that variable:

    %load_ext helpers.course.cells
    runtime = None                       # e.g. check_runtime() failed; its message said how to install it
    %%needs runtime
    export = export_gguf(...)            # not run: prints "skipped: needs `runtime` ..."

So "Run All" (and nbval) goes on past the section, and the rest of the notebook runs. When the variable is
set, the cell runs exactly as it would without the line, in the notebook's namespace; its errors are raised.
"""

from __future__ import annotations


def needs(line: str, cell: str) -> None:
    from IPython import get_ipython
    from IPython.core.error import UsageError

    names = line.split()
    if not names:
        raise UsageError("%%needs takes the variable(s) the cell needs, e.g. `%%needs runtime`")
    shell = get_ipython()
    missing = [name for name in names if shell.user_ns.get(name) is None]
    if missing:
        print(f"skipped: this cell needs `{'`, `'.join(missing)}`, which is not set here "
              "(the cell that sets it says why and how to fix it)")
        return
    result = shell.run_cell(cell, store_history=False)
    result.raise_error()


def load_ipython_extension(shell) -> None:
    """`%load_ext helpers.course.cells` registers `%%needs`."""
    shell.register_magic_function(needs, magic_kind="cell", magic_name="needs")
