"""Tests for helpers.core.plots: the smoothing maths, the static plot, and LivePlot staying silent headless.

Run: .venv/bin/python -m pytest tests/test_plots.py -q
"""

from __future__ import annotations

import pytest
from training_worker import BLOCK, make_model, make_tokens

from helpers.core.batches import TokenBatches
from helpers.core.plots import LivePlot, plot_losses, smooth
from helpers.core.training import TrainConfig, train


def test_smooth_is_bias_corrected():
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    assert smooth([0.0, 10.0], alpha=0.5) == pytest.approx([0.0, 5.0 / 0.75])


def test_live_plot_is_silent_headless_and_the_record_plots(capsys):
    live = LivePlot(every=1)
    config = TrainConfig(
        max_steps=3, warmup_steps=1, precision="fp32", device="cpu", peak_flops=1e9, progress=False
    )
    data = TokenBatches(make_tokens(), batch_size=4, block_size=BLOCK, seed=0)
    record = train(
        make_model(), data, config, eval_data=TokenBatches(make_tokens(), 4, BLOCK, seed=2), callbacks=[live]
    )
    assert live.handle is None and capsys.readouterr() == ("", "")
    fig = plot_losses(record)
    assert len(fig.axes[0].lines) == 3  # raw, smoothed, validation


def test_live_plot_refuses_zero_interval():
    with pytest.raises(ValueError, match="every=0"):
        LivePlot(every=0)
