"""helpers.measure.breakeven: crossovers on hand-checkable inputs, steps, and bad inputs.

Run:  .venv/bin/python -m pytest tests/test_breakeven.py -q
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from helpers.measure.assumptions import DEFAULT_ASSUMPTIONS
from helpers.measure.breakeven import (
    HOURS_PER_MONTH,
    BreakEvenInputs,
    CostModel,
    break_even,
    cost_models,
    crossovers,
    plot_break_even,
)

matplotlib.use("Agg")


def test_api_vs_fixed_local_crosses_at_100m_tokens():
    """API EUR 1 per M tokens vs a local box at a fixed EUR 100/month -> equal at 100 M tokens/month."""
    api = CostModel("api", eur_per_request=1e-6)  # one token per "request"
    local = CostModel("local", fixed_eur_per_unit=100, min_units=1)
    [c] = crossovers(api, local, max_requests=1e9)
    assert c.requests == pytest.approx(1e8) and c.kind == "crossing"
    assert (c.cheaper_below, c.cheaper_above) == ("api", "local")


def test_same_example_through_break_even_inputs():
    """Built from inputs: 1000-token requests, EUR 1/M tokens, EUR 1200 over 1 year = 100/month, no energy
    cost worth speaking of -> crossover at 100k requests (= 100 M tokens) per month."""
    x = BreakEvenInputs(
        tokens_in=500,
        tokens_out=500,
        local_tokens_per_s=1e9,
        local_power_w=1e-9,
        local_hardware_eur=1200,
        amortisation_years=1,
        energy_eur_per_kwh=1e-9,
        cloud_eur_per_hour=1e6,
        cloud_tokens_per_s=1e9,
        api_eur_per_m_in=1,
        api_eur_per_m_out=1,
    )
    result = break_even(x, max_requests=1e7)
    local_api = [c for c in result.crossovers if {c.cheaper_below, c.cheaper_above} == {"api", "local"}]
    assert len(local_api) == 1
    assert local_api[0].requests == pytest.approx(1e5, rel=1e-6)
    assert local_api[0].tokens == pytest.approx(1e8, rel=1e-6)
    assert result.cheapest(1e4) == "api" and result.cheapest(1e6) == "local"


@pytest.mark.parametrize("seed", range(5))
def test_crossovers_agree_with_a_dense_grid(seed):
    """Property: the cheaper option, evaluated on a fine grid, changes exactly at the reported volumes."""
    rng = np.random.default_rng(seed)
    a = CostModel(
        "a", fixed_eur_per_unit=rng.uniform(5, 20), requests_per_unit=rng.uniform(50, 150), min_units=1
    )
    b = CostModel(
        "b",
        fixed_eur_per_unit=rng.uniform(0, 5),
        eur_per_request=rng.uniform(0.05, 0.2),
        requests_per_unit=rng.uniform(200, 400),
        min_units=int(rng.integers(0, 2)),
    )
    found = crossovers(a, b, max_requests=1000)
    grid = np.linspace(0.01, 1000, 400_001)
    a_wins = a.cost(grid) < b.cost(grid)
    flips = grid[1:][a_wins[1:] != a_wins[:-1]]
    assert len(flips) == len(found)
    assert np.allclose(flips, [c.requests for c in found], atol=2 * (grid[1] - grid[0]))


def test_step_crossover_is_reported():
    """API at 0.12/request vs machines of 100 requests for EUR 10: local wins from 83.3, loses right after
    the step at 100 (cost jumps to 20 while api = 12), wins again from 166.7."""
    local = CostModel("local", fixed_eur_per_unit=10, requests_per_unit=100, min_units=1)
    found = crossovers(CostModel("api", eur_per_request=0.12), local, max_requests=199)
    summary = [(round(c.requests, 1), c.kind, c.cheaper_below, c.cheaper_above) for c in found]
    assert summary == [
        (83.3, "crossing", "api", "local"),
        (100.0, "step", "local", "api"),
        (166.7, "crossing", "api", "local"),
    ]


def test_cost_models_from_inputs_are_hand_checkable():
    x = BreakEvenInputs(
        tokens_in=100,
        tokens_out=100,
        local_tokens_per_s=10,
        local_power_w=36,
        local_hardware_eur=3600,
        amortisation_years=1,
        energy_eur_per_kwh=1.0,
        cloud_eur_per_hour=2.0,
        cloud_tokens_per_s=200,
        api_eur_per_m_in=1,
        api_eur_per_m_out=3,
        max_utilisation=0.5,
    )
    m = cost_models(x)
    # local: 20 s per request (prompt counted at generation speed), 36 W x 20 s = 720 J = 0.0002 kWh
    assert m["local"].fixed_eur_per_unit == pytest.approx(300)
    assert m["local"].eur_per_request == pytest.approx(0.0002)
    assert m["local"].requests_per_unit == pytest.approx(HOURS_PER_MONTH * 3600 * 0.5 / 20)
    # cloud always on: 2 EUR/h x 730 h per machine
    assert m["cloud"].fixed_eur_per_unit == pytest.approx(2 * HOURS_PER_MONTH)
    assert m["api"].eur_per_request == pytest.approx((100 * 1 + 100 * 3) / 1e6)
    batch = cost_models(BreakEvenInputs(**{**x.__dict__, "cloud_always_on": False}))
    assert batch["cloud"].eur_per_request == pytest.approx(2.0 * 1 / 3600)  # 200 tokens at 200 tok/s = 1 s


def test_prefill_speed_shortens_local_time():
    base = dict(
        tokens_in=1000,
        tokens_out=100,
        local_tokens_per_s=10,
        local_power_w=30,
        local_hardware_eur=1000,
        amortisation_years=3,
        energy_eur_per_kwh=0.3,
        cloud_eur_per_hour=1,
        cloud_tokens_per_s=50,
        api_eur_per_m_in=0.1,
        api_eur_per_m_out=0.4,
    )
    slow = cost_models(BreakEvenInputs(**base))["local"]
    fast = cost_models(BreakEvenInputs(**base, local_prefill_tokens_per_s=1000))["local"]
    assert fast.requests_per_unit / slow.requests_per_unit == pytest.approx(110 / 11)


@pytest.mark.parametrize(
    "field",
    [
        "api_eur_per_m_in",
        "cloud_eur_per_hour",
        "local_tokens_per_s",
        "energy_eur_per_kwh",
        "local_hardware_eur",
    ],
)
@pytest.mark.parametrize("bad", [0, -1.0])
def test_bad_inputs_name_the_field(field, bad):
    with pytest.raises(ValueError, match=field):
        BreakEvenInputs.from_assumptions(
            **{"tokens_in": 100, "tokens_out": 100, "local_tokens_per_s": 10, field: bad}
        )


def test_from_assumptions_uses_the_table():
    x = BreakEvenInputs.from_assumptions(tokens_in=200, tokens_out=100, local_tokens_per_s=20)
    a = DEFAULT_ASSUMPTIONS
    assert x.energy_eur_per_kwh == a.energy_price.value
    assert x.api_eur_per_m_out == pytest.approx(a.api_output_per_m.value / a.usd_per_eur.value)
    assert x.cloud_tokens_per_s == 20
    with pytest.raises(ValueError, match="no cloud price"):
        BreakEvenInputs.from_assumptions(
            tokens_in=1, tokens_out=1, local_tokens_per_s=1, cloud_device="gpu-rtx4090"
        )


def test_curves_table_and_plot():
    x = BreakEvenInputs.from_assumptions(tokens_in=200, tokens_out=100, local_tokens_per_s=20)
    result = break_even(x, max_requests=1e7, points=50)
    table = result.table()
    assert len(table) == 50 and set(table.cheapest) <= {"local", "cloud", "api"}
    assert np.all(np.diff(result.costs["api"]) > 0)
    fig = plot_break_even(result)
    assert isinstance(fig, matplotlib.figure.Figure)


def test_too_many_machines_is_refused():
    tiny = CostModel("local", fixed_eur_per_unit=1, requests_per_unit=1, min_units=1)
    with pytest.raises(ValueError, match="lower max_requests"):
        crossovers(tiny, CostModel("api", eur_per_request=1), max_requests=1e9)


def test_bad_range():
    with pytest.raises(ValueError, match="min_requests"):
        break_even({"api": CostModel("api", eur_per_request=1)}, max_requests=10, min_requests=100)
