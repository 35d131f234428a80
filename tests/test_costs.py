"""helpers.measure.money, ledger and assumptions: money on hand-checked inputs, the ledger, sourced numbers.
(FLOP and parameter counts: tests/test_flops.py.)

Run:  COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_costs.py -q
"""

from __future__ import annotations

import json
import math

import matplotlib
import pytest
import torch
import torch.nn as nn

from helpers.core.records import RunRecord
from helpers.measure.assumptions import DEFAULT_ASSUMPTIONS, Assumption, Assumptions
from helpers.measure.ledger import EmptyLedgerError, Ledger, compare
from helpers.measure.money import (
    attach_energy,
    pretraining_estimate,
    pretraining_table,
    reference_machines,
    run_cost,
)

matplotlib.use("Agg")


# ---------------------------------------------------------------------------------------------
# Assumptions
# ---------------------------------------------------------------------------------------------
def test_every_assumption_has_unit_source_and_date():
    table = DEFAULT_ASSUMPTIONS.table()
    assert len(table) > 20
    for col in ("unit", "source", "date"):
        assert (table[col].str.len() > 0).all(), col
    assert (table["value"] > 0).all()


@pytest.mark.parametrize(
    "field", ["energy_price", "api_input_per_m", "api_output_per_m", "amortisation_years"]
)
@pytest.mark.parametrize("bad", [0, -0.1, float("nan")])
def test_bad_prices_name_the_field(field, bad):
    with pytest.raises(ValueError, match=field):
        DEFAULT_ASSUMPTIONS.edit(**{field: bad})


def test_utilisation_above_one_is_refused():
    with pytest.raises(ValueError, match="utilisation"):
        DEFAULT_ASSUMPTIONS.edit(utilisation=1.5)


def test_bad_device_power_names_the_device():
    with pytest.raises(ValueError, match=r"devices\['mine'\]\.power_w"):
        DEFAULT_ASSUMPTIONS.with_device("mine", power_w=-5, hardware_price=1000)


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(KeyError, match="cpu-laptop"):
        DEFAULT_ASSUMPTIONS.device("toaster")
    with pytest.raises(ValueError, match="needs power_w and hardware_price"):
        DEFAULT_ASSUMPTIONS.with_device("toaster", power_w=10)


def test_edit_returns_a_copy_and_labels_the_change():
    edited = DEFAULT_ASSUMPTIONS.edit(energy_price=0.35)
    assert edited.energy_price.value == 0.35 and "edited" in edited.energy_price.source
    assert DEFAULT_ASSUMPTIONS.energy_price.value != 0.35
    own = Assumption(0.2, "EUR/kWh", "my contract", "2025-01")
    assert DEFAULT_ASSUMPTIONS.edit(energy_price=own).energy_price is own
    with pytest.raises(KeyError, match="unknown assumption"):
        DEFAULT_ASSUMPTIONS.edit(electricity=0.3)


def test_usd_is_converted_with_the_stated_rate():
    a = DEFAULT_ASSUMPTIONS.edit(usd_per_eur=2.0)
    assert a.eur(Assumption(10, "USD/h", "x", "y")) == 5.0
    assert a.eur(Assumption(10, "EUR/h", "x", "y")) == 10.0


# ---------------------------------------------------------------------------------------------
# Money of one run
# ---------------------------------------------------------------------------------------------
def make_record(name="run", seconds=3600.0, test_set="test-40", accuracy=0.8, **kw) -> RunRecord:
    base = dict(
        name=name,
        route="scratch",
        device="cpu",
        precision="fp32",
        steps=10,
        wall_seconds=seconds,
        tokens=1000,
        flops=6e9,
        flops_method="6ND",
        achieved_flops_per_s=6e9 / seconds,
        peak_flops_per_s=1e11,
        mfu=0.01,
        peak_memory_bytes=10**8,
        trainable_params=10**6,
        total_params=10**6,
        metrics={"accuracy": accuracy},
        test_set=test_set,
    )
    base.update(kw)
    return RunRecord(**base)


@pytest.fixture
def simple() -> Assumptions:
    """Round numbers: 100 W, 0.5 EUR/kWh, 8760 EUR over 1 year at 100% use = 1 EUR/h, cloud 2 EUR/h."""
    a = DEFAULT_ASSUMPTIONS.edit(energy_price=0.5, amortisation_years=1, utilisation=1.0)
    return a.with_device("box", power_w=100, hardware_price=8760, cloud_per_hour=2.0)


def test_run_cost_hand_checked(simple):
    c = run_cost(make_record(seconds=3600), simple, "box")
    assert c.kwh == pytest.approx(0.1) and c.kwh_method.startswith("estimated")
    assert c.energy_eur == pytest.approx(0.05)
    assert c.hardware_eur == pytest.approx(1.0)
    assert c.cloud_eur == pytest.approx(2.0)
    assert c.total_eur == pytest.approx(1.05)


def test_run_cost_uses_measured_energy_when_present(simple):
    record = make_record(energy_kwh=0.3, energy_method="measured: RAPL")
    c = run_cost(record, simple, "box")
    assert c.kwh == 0.3 and c.kwh_method == "measured: RAPL" and c.energy_eur == pytest.approx(0.15)


class FakeMeter:
    def __init__(self, kwh, method):
        self.kwh, self.method = kwh, method


def test_attach_energy_measured_or_estimated(simple):
    measured = attach_energy(make_record(), FakeMeter(0.2, "measured: NVML"), simple, "box")
    assert (measured.energy_kwh, measured.energy_method) == (0.2, "measured: NVML")
    estimated = attach_energy(make_record(), FakeMeter(None, "unavailable: no RAPL"), simple, "box")
    assert estimated.energy_kwh == pytest.approx(0.1)
    assert estimated.energy_method.startswith("estimated: 100 W") and "no RAPL" in estimated.energy_method


def test_attach_energy_keeps_the_loops_value_unless_a_device_row_is_named(simple):
    loop = "estimated: 7.5 W = 2 core(s) x 3.75 W per core x 3600.0 s; figure: cpu-server ..."
    kept = attach_energy(make_record(energy_kwh=0.0075, energy_method=loop), None, simple)
    assert (kept.energy_kwh, kept.energy_method) == (0.0075, loop)
    mine = attach_energy(make_record(energy_kwh=0.0075, energy_method=loop), None, simple, "box")
    assert mine.energy_kwh == pytest.approx(0.1) and mine.energy_method.startswith("estimated: 100 W (box TDP)")


def test_unmeasured_record_says_why_it_was_estimated(simple):
    record = make_record(energy_method="unavailable: no RAPL here")  # what the training loop leaves
    c = run_cost(record, simple, "box")
    assert c.kwh_method == "estimated: 100 W (box TDP) x 3600.0 s; not measured because no RAPL here"


def test_device_without_cloud_price_gives_none():
    c = run_cost(make_record(), DEFAULT_ASSUMPTIONS, "gpu-rtx4090")
    assert c.cloud_eur is None and c.total_eur > 0


# ---------------------------------------------------------------------------------------------
# Extrapolation
# ---------------------------------------------------------------------------------------------
def test_pretraining_estimate_hand_checked():
    e = pretraining_estimate(
        1e6,
        1e6,
        flops_per_s=6e12,
        utilisation=0.5,
        power_w=3600,
        price_eur_per_kwh=2.0,
        cloud_eur_per_hour=3600.0,
    )
    assert e.flops == 6e12
    assert e.hours == pytest.approx(2 / 3600)  # 6e12 / (6e12 · 0.5) = 2 s
    assert e.kwh == pytest.approx(0.002) and e.energy_eur == pytest.approx(0.004)
    assert e.cloud_eur == pytest.approx(2.0)


def test_pretraining_default_tokens_is_chinchilla():
    e = pretraining_estimate(1e6, flops_per_s=1e12, utilisation=1, power_w=1, price_eur_per_kwh=1)
    assert e.tokens == 20e6


@pytest.mark.parametrize(
    "kw,field",
    [
        ({"utilisation": 0}, "utilisation"),
        ({"utilisation": 1.2}, "utilisation"),
        ({"power_w": -1}, "power_w"),
        ({"price_eur_per_kwh": 0}, "price_eur_per_kwh"),
    ],
)
def test_pretraining_estimate_bad_inputs(kw, field):
    args = dict(flops_per_s=1e12, utilisation=0.5, power_w=100, price_eur_per_kwh=0.3) | kw
    with pytest.raises(ValueError, match=field):
        pretraining_estimate(1e6, **args)


def test_pretraining_table_one_row_per_size_and_machine():
    machines = reference_machines(measured_flops_per_s=1e11, measured_mfu=0.2)
    assert [m.mfu for m in machines] == [0.2, 0.4, 0.4]
    table = pretraining_table([1e8, 1e9], machines)
    assert len(table) == 6
    # 10x the parameters at 20 tokens/param = 100x the compute
    cpu = table[table.machine == "this machine (measured)"]
    assert cpu.device_hours.iloc[1] / cpu.device_hours.iloc[0] == pytest.approx(100)


# ---------------------------------------------------------------------------------------------
# The ledger
# ---------------------------------------------------------------------------------------------
def test_ledger_round_trip_is_exact(tmp_path):
    ledger = Ledger([make_record("a"), make_record("b", seconds=10, val_losses=[(1, 2.5)], extra={"n": 16})])
    path = ledger.save(tmp_path / "sub" / "ledger.json")
    loaded = Ledger.load(path)
    assert [r.to_dict() for r in loaded] == [r.to_dict() for r in ledger]
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp file left behind
    assert json.loads(path.read_text())["format"] == 1


def test_ledger_save_keeps_the_old_file_if_writing_fails(tmp_path, monkeypatch):
    path = Ledger([make_record("old")]).save(tmp_path / "ledger.json")
    bad = Ledger([make_record("new", extra={"oops": object()})])  # not JSON-serialisable
    with pytest.raises(TypeError):
        bad.save(path)
    assert [r.name for r in Ledger.load(path)] == ["old"]
    assert len(list(tmp_path.iterdir())) == 1


def test_ledger_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Ledger()"):
        Ledger.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a ledger"):
        Ledger.load(tmp_path / "bad.json")


def test_ledger_table_and_plot(simple):
    ledger = Ledger()
    ledger.add(make_record("a", seconds=3600))
    ledger.add(make_record("b", seconds=1800, energy_kwh=0.01, energy_method="measured: RAPL"))
    table = ledger.table(simple, "box")
    for col in (
        "seconds",
        "tokens",
        "flops",
        "mfu",
        "kwh",
        "energy_eur",
        "hardware_eur",
        "cloud_eur",
        "total_eur",
        "accuracy",
    ):
        assert col in table.columns
    assert list(table.kwh_method) == ["estimated", "measured"]
    assert table.loc["a", "total_eur"] == pytest.approx(1.05)
    fig = ledger.plot(simple, "box")
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 4


@pytest.mark.parametrize("action", ["table", "plot", "compare"])
def test_empty_ledger_is_a_clear_error(action):
    call = {
        "table": lambda l: l.table(),
        "plot": lambda l: l.plot(),
        "compare": lambda l: l.compare("accuracy"),
    }
    with pytest.raises(EmptyLedgerError, match="ledger.add"):
        call[action](Ledger())


def test_compare_refuses_different_test_sets():
    a, b = make_record("a", test_set="test-40"), make_record("b", test_set="test-200")
    with pytest.raises(ValueError, match="test-40") as err:
        compare([a, b], "accuracy")
    assert "test-200" in str(err.value)
    same = compare([a, make_record("c", accuracy=0.9)], "accuracy")
    assert list(same.accuracy) == [0.8, 0.9]
    with pytest.raises(KeyError, match="f1"):
        compare([a], "f1")


def test_ledger_add_rejects_non_records():
    with pytest.raises(TypeError, match="RunRecord"):
        Ledger().add({"name": "x"})


def test_amortisation_formula_matches_the_docstring():
    a = DEFAULT_ASSUMPTIONS
    c = run_cost(make_record(seconds=7200), a, "cpu-laptop")
    per_hour = 1200 / (a.amortisation_years.value * 8760 * a.utilisation.value)
    assert c.hardware_eur == pytest.approx(2 * per_hour)
    assert math.isclose(c.kwh, 28 * 7200 / 3.6e6)


def test_adding_a_run_with_the_same_name_replaces_it(tmp_path):
    ledger = Ledger([make_record("a", accuracy=0.5), make_record("b")])
    ledger.add(make_record("a", accuracy=0.9))  # a re-run of the same notebook cell
    assert [r.name for r in ledger] == ["a", "b"] and ledger["a"].metrics["accuracy"] == 0.9
    with pytest.raises(KeyError, match="no run named 'c'"):
        ledger["c"]


def test_load_or_new(tmp_path):
    assert len(Ledger.load_or_new(tmp_path / "ledger.json")) == 0
    Ledger([make_record("a")]).save(tmp_path / "ledger.json")
    assert [r.name for r in Ledger.load_or_new(tmp_path / "ledger.json")] == ["a"]


def test_chosen_extras_become_columns():
    ledger = Ledger(
        [make_record("a", extra={"n_examples": 16, "label_noise": 0.2, "lr": 1e-3}), make_record("b")]
    )
    table = ledger.table(extras=("n_examples", "label_noise"))
    assert table.loc["a", "n_examples"] == 16 and table.loc["a", "label_noise"] == 0.2
    assert math.isnan(table.loc["b", "n_examples"]) and "lr" not in table.columns


def test_a_real_training_record_flows_into_the_ledger(tmp_path):
    """The loop's record (energy measured or 'unavailable: ...') gets kWh and EUR either way."""
    from helpers.core.training import TrainConfig, train

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.head = nn.Embedding(32, 16), nn.Linear(16, 32)

        def forward(self, ids):  # (B, T) -> (B, T, V)
            return self.head(self.emb(ids))

    def batches():
        g = torch.Generator().manual_seed(0)
        while True:
            x = torch.randint(0, 32, (2, 8), generator=g)
            yield {"input_ids": x, "labels": x}

    torch.manual_seed(0)
    config = TrainConfig(
        max_steps=2, peak_flops=1e10, progress=False, device="cpu", name="tiny", warmup_steps=0
    )
    record = train(Tiny(), batches(), config)  # no flops_per_token given: FLOPs not counted
    ledger = Ledger([record])
    row = Ledger.load(ledger.save(tmp_path / "l.json")).table().loc["tiny"]
    assert row.kwh > 0 and row.total_eur > 0 and row.kwh_method in ("measured", "estimated")
    assert row.tokens == 2 * 2 * 8
    assert record.flops is None and math.isnan(row.flops) and math.isnan(row.mfu)


def test_a_run_without_flops_is_shown_as_not_counted_never_zero(simple):
    uncounted = make_record("b", flops=None, mfu=None, achieved_flops_per_s=None, flops_method="not counted")
    ledger = Ledger([make_record("a"), uncounted])
    table = ledger.table(simple, "box")
    assert table.loc["a", "flops"] == 6e9 and math.isnan(table.loc["b", "flops"]) and math.isnan(table.loc["b", "mfu"])
    assert table["flops"].sum() == 6e9  # pandas skips NaN: an uncounted run adds nothing, not a made-up zero
    fig = ledger.plot(simple, "box", columns=("flops",))
    assert "not counted" in [t.get_text() for t in fig.axes[0].texts]
    assert math.isnan(compare([make_record("a"), uncounted], "accuracy").loc["b", "flops"])


def test_this_machine_is_priced_as_what_it_is(monkeypatch):
    """Issue 16: 2 cores of a server were priced with a laptop's 28 W. By default 'this machine' takes its
    CPU class's share for its cores (the loop's energy figure) and the rent of as many vCPUs."""
    from helpers.core import power
    from helpers.measure import money
    from helpers.measure.assumptions import CLOUD_PER_VCPU_HOUR, DEFAULT_ASSUMPTIONS

    monkeypatch.setattr(money, "this_cpu_name", lambda: "AMD EPYC 9654 96-Core Processor")
    monkeypatch.setattr(money, "this_machine_has_battery", lambda: False)
    here = reference_machines(measured_flops_per_s=1e11, measured_mfu=0.2, cores=2)[0]
    per_core = power.POWER_FIGURES["cpu-server"].watts / power.POWER_FIGURES["cpu-server"].cores
    assert here.power_w == pytest.approx(2 * per_core)  # 7.5 W, not 28 W
    assert here.cloud_eur_per_hour == pytest.approx(2 * DEFAULT_ASSUMPTIONS.eur(CLOUD_PER_VCPU_HOUR))
    assert "cpu-server" in here.source and "2 vCPU" in here.source
    # energy per device-hour agrees with the training loop's estimate for the same cores
    kwh, _ = power.estimate_energy("cpu", 3600, cores=2, cpu_name="AMD EPYC 9654 96-Core Processor")
    assert kwh * 1000 == pytest.approx(here.power_w)
    # an explicit device row still wins
    laptop = reference_machines(1e11, 0.2, local_key="cpu-laptop")[0]
    assert laptop.power_w == power.POWER_FIGURES["cpu-laptop"].watts
    with pytest.raises(ValueError, match="cores must be a whole number >= 1, got 0"):
        reference_machines(1e11, 0.2, cores=0)
