"""The ledger: run records side by side (table, plot, JSON file), priced by `helpers.measure.money`.

- `Ledger`: add records (a name already present is replaced, so re-running a notebook updates its row),
  save/load one JSON file (atomic, `helpers.core.io`), `table()` with time, tokens, FLOPs, MFU, kWh and
  EUR per run, `plot()` one bar panel per column.
- `compare(records, metric)`: a metric side by side, refused when the runs were scored on different
  test sets.

A run whose FLOPs were not counted (flops None: its loop was given no formula) shows NaN in the FLOPs
and MFU columns and "not counted" in its method, never a zero.

Left out on purpose: merging ledgers from several machines (one ledger per course folder) and
statistics across runs (intervals live with the experiment: `helpers.experiment.report`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from helpers.core.checks import instance, text
from helpers.core.io import write_json
from helpers.core.records import RunRecord
from helpers.measure.assumptions import DEFAULT_ASSUMPTIONS, Assumptions
from helpers.measure.money import run_cost


def _number(value: float | None) -> float:
    """A measurement for a table column: None (not counted) becomes NaN, so sums and plots skip it."""
    return math.nan if value is None else float(value)


class EmptyLedgerError(ValueError):
    """Table/plot/compare asked of a ledger with no records."""


def _names(name: str, value, example: str) -> list[str]:
    """A list of names; a bare string is refused (it would be read letter by letter)."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of names, got {value!r}: write {example}")
    value = list(value)
    for v in value:
        if not isinstance(v, str):
            raise TypeError(f"{name} must hold names (strings), got {v!r} in {value!r}")
    return value


class Ledger:
    """Run records side by side. Saved as one JSON file (written atomically: temp file + rename).

    A run's name identifies it: adding a record whose name is already in the ledger replaces the old
    one in place, so re-running a notebook updates its rows instead of piling up duplicates."""

    def __init__(self, records: Iterable[RunRecord] = ()):
        if isinstance(records, RunRecord) or not isinstance(records, Iterable):
            raise TypeError(f"Ledger takes a list of RunRecords, got {type(records).__name__}: "
                            "write Ledger([record]) or Ledger() then ledger.add(record)")
        self.records: list[RunRecord] = []
        for r in records:
            self.add(r)

    def add(self, record: RunRecord) -> RunRecord:
        if not isinstance(record, RunRecord):
            raise TypeError(f"Ledger.add expects a RunRecord, got {type(record).__name__}")
        names = [r.name for r in self.records]
        if record.name in names:
            self.records[names.index(record.name)] = record
        else:
            self.records.append(record)
        return record

    def __getitem__(self, name: str) -> RunRecord:
        for r in self.records:
            if r.name == name:
                return r
        text("name", name)
        raise KeyError(f"no run named {name!r} in the ledger (it has {[r.name for r in self.records]})")

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the ledger to `path` atomically: a reader sees the old ledger or the new one, never half."""
        instance("path", path, (str, os.PathLike), "a file path such as 'artifacts/ledger.json'")
        return write_json(Path(path), {"format": 1, "records": [r.to_dict() for r in self.records]}, indent=1)

    @classmethod
    def load_or_new(cls, path: str | os.PathLike) -> Ledger:
        """The ledger saved at `path`, or an empty one if there is none yet (first notebook to write)."""
        instance("path", path, (str, os.PathLike), "a file path such as 'artifacts/ledger.json'")
        return cls.load(path) if Path(path).exists() else cls()

    @classmethod
    def load(cls, path: str | os.PathLike) -> Ledger:
        instance("path", path, (str, os.PathLike), "a file path such as 'artifacts/ledger.json'")
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"no ledger at {path.name}: run the notebook that writes it, or start Ledger()"
            )
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            records = payload["records"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path.name} is not a ledger file ({type(err).__name__}: {err}): delete it and "
                             "re-run the notebooks that write it") from err
        if not isinstance(records, list):
            raise ValueError(f"{path.name}: 'records' holds a {type(records).__name__}, not a list: delete the "
                             "file and re-run the notebooks that write it")
        loaded = []
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                raise ValueError(f"{path.name}: record {i} is a {type(r).__name__}, not a run record: delete "
                                 "the file and re-run the notebooks that write it")
            try:
                loaded.append(RunRecord.from_dict(r))
            except ValueError as err:
                raise ValueError(f"{path.name}: record {i} ({r.get('name')!r}): {err}") from err
        return cls(loaded)

    def _require_records(self, what: str) -> None:
        if not self.records:
            raise EmptyLedgerError(f"the ledger is empty: add a run with ledger.add(record) before {what}")

    def table(
        self,
        assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
        device_key: str | None = None,
        extras: Sequence[str] = (),
    ) -> pd.DataFrame:
        """One row per run: time, tokens, FLOPs, MFU, kWh (and how), EUR, every metric, and the
        record.extra entries named in `extras` (e.g. ("n_examples", "label_noise"); missing -> NaN)."""
        extras = _names("extras", extras, '("n_examples",)')
        instance("assumptions", assumptions, Assumptions, "edit DEFAULT_ASSUMPTIONS with .edit(...)")
        self._require_records("asking for a table")
        rows = []
        for r in self.records:
            c = run_cost(r, assumptions, device_key)
            row = {
                "name": r.name,
                "route": r.route,
                "seconds": r.wall_seconds,
                "tokens": r.tokens,
                "flops": _number(r.flops),  # NaN: not counted (never 0)
                "mfu": _number(r.mfu),
                "kwh": c.kwh,
                "kwh_method": c.kwh_method.split(":")[0],
                "energy_eur": c.energy_eur,
                "hardware_eur": c.hardware_eur,
                "total_eur": c.total_eur,
                "cloud_eur": c.cloud_eur,
                "test_set": r.test_set,
            }
            row.update(r.metrics)
            row.update({k: r.extra.get(k, math.nan) for k in extras})
            rows.append(row)
        return pd.DataFrame(rows).set_index("name")

    def plot(
        self,
        assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
        device_key: str | None = None,
        columns: Sequence[str] = ("seconds", "flops", "kwh", "total_eur"),
    ):
        """Bar charts, one panel per column, runs side by side (log scale). Returns the Figure."""
        import matplotlib.pyplot as plt  # heavy: imported only when a plot is asked for

        columns = _names("columns", columns, '("seconds", "total_eur")')
        if not columns:
            raise ValueError("columns is empty: name at least one column, e.g. ('seconds', 'total_eur')")

        table = self.table(assumptions, device_key)
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise KeyError(f"unknown ledger columns {missing}: use some of {list(table.columns)}")
        fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.2), squeeze=False)
        for ax, col in zip(axes[0], columns, strict=True):
            values = table[col].astype(float)
            ax.bar(range(len(values)), values.fillna(0), color=[f"C{i % 10}" for i in range(len(values))])
            ax.set_xticks(range(len(values)), table.index, rotation=45, ha="right", fontsize=7)
            for i in [i for i, v in enumerate(values) if math.isnan(v)]:  # a missing bar is not a zero
                ax.text(i, 0, "not counted", rotation=90, ha="center", va="bottom", fontsize=7)
            if (values.dropna() > 0).all() and values.notna().any():
                ax.set_yscale("log")
            ax.set_title(col)
        fig.tight_layout()
        plt.close(fig)  # the caller displays it; no double rendering in notebooks
        return fig

    def compare(self, metric: str, names: Sequence[str] | None = None) -> pd.DataFrame:
        text("metric", metric, "a metric name such as 'accuracy'")
        if names is not None:
            names = _names("names", names, '["run a", "run b"]')
            unknown = [n for n in names if n not in {r.name for r in self.records}]
            if unknown:
                raise KeyError(f"no run named {unknown} in the ledger (it has {[r.name for r in self.records]})")
        self._require_records("comparing")
        chosen = [r for r in self.records if names is None or r.name in names]
        return compare(chosen, metric)


def compare(records: Sequence[RunRecord], metric: str) -> pd.DataFrame:
    """`metric` of several runs side by side — only if they were measured on the same test set."""
    text("metric", metric, "a metric name such as 'accuracy'")
    if isinstance(records, RunRecord) or not isinstance(records, Sequence):
        raise TypeError(f"records must be a list of RunRecords, got {type(records).__name__}: write [record]")
    for i, r in enumerate(records):
        instance(f"records[{i}]", r, RunRecord)
    if not records:
        raise EmptyLedgerError("nothing to compare: pass at least one RunRecord")
    for r in records:
        if metric not in r.metrics:
            raise KeyError(f"run {r.name!r} has no metric {metric!r} (it has {sorted(r.metrics)})")
    first = records[0]
    for r in records[1:]:
        if r.test_set != first.test_set:
            raise ValueError(
                f"cannot compare {metric!r}: run {first.name!r} was measured on test set {first.test_set!r} "
                f"but run {r.name!r} on {r.test_set!r}; evaluate both on the same test set"
            )
    return pd.DataFrame(
        [
            {
                "name": r.name,
                "route": r.route,
                metric: r.metrics[metric],
                "test_set": r.test_set,
                "flops": _number(r.flops),
                "seconds": r.wall_seconds,
            }
            for r in records
        ]
    ).set_index("name")
