"""Loss curves: a static plot of a finished run, and `LivePlot`, a training-loop callback that redraws one
figure in place while a run trains in Jupyter (one display handle, so the stored notebook keeps a single
image) and does nothing headless (scripts, tests, CI logs).

    record = train(model, batches, config, eval_data=val, callbacks=[LivePlot(every=10)])
    plot_losses(record)            # the same picture afterwards, from the run record

Left out: TensorBoard / W&B loggers (a callback can add them), interactive zoom widgets.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from helpers.core.loop_parts import in_notebook
from helpers.core.records import RunRecord
from helpers.core.train_run import TrainState
from helpers.core.training import Callback


def smooth(values: list[float], alpha: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction: smooth([1, 1, 1]) -> [1.0, 1.0, 1.0]."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = alpha * avg + (1 - alpha) * v
        out.append(avg / (1 - alpha**i))
    return out


def draw_losses(
    ax,
    losses: list[float],
    val_losses: list[tuple[int, float]],
    max_steps: int | None = None,
    title: str = "",
) -> None:
    """Train loss per step (raw, faint; smoothed, solid) and validation loss as points, on `ax`."""
    ax.clear()
    steps = range(1, len(losses) + 1)
    if losses:
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=1)
        ax.plot(steps, smooth(losses), color="tab:blue", label="train (smoothed)")
    if val_losses:
        ax.plot(*zip(*val_losses, strict=True), "o-", color="tab:orange", label="validation")
    if max_steps:
        ax.set_xlim(0, max_steps)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if losses or val_losses:
        ax.legend(loc="upper right")


def plot_losses(record: RunRecord, figsize: tuple[float, float] = (6, 3)) -> Figure:
    """The loss curves of a finished run, from its record."""
    fig, ax = plt.subplots(figsize=figsize)
    draw_losses(ax, record.losses, record.val_losses, title=record.name)
    fig.tight_layout()
    plt.close(fig)  # returned for display; closing stops Jupyter from showing it a second time
    return fig


class LivePlot(Callback):
    """Redraw the loss curves every `every` steps (and after each evaluation) in one Jupyter output."""

    def __init__(self, every: int = 10, figsize: tuple[float, float] = (6, 3)) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"LivePlot(every={every}): redraw at least every 1 step, e.g. every=10")
        self.every, self.figsize = every, figsize
        self.enabled = in_notebook()
        self.fig = self.ax = self.handle = None

    def on_train_begin(self, state: TrainState) -> None:
        if not self.enabled:
            return
        from IPython.display import display

        self.fig, self.ax = plt.subplots(figsize=self.figsize)
        plt.close(self.fig)  # we display it ourselves, through a handle we can update
        self._draw(state)
        self.handle = display(self.fig, display_id=True)

    def _draw(self, state: TrainState) -> None:
        draw_losses(self.ax, state.losses, state.val_losses, state.max_steps, state.name)
        self.fig.tight_layout()

    def _update(self, state: TrainState) -> None:
        if self.handle is not None:
            self._draw(state)
            self.handle.update(self.fig)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self._update(state)

    def on_eval_end(self, state: TrainState) -> None:
        self._update(state)

    def on_train_end(self, state: TrainState) -> None:
        self._update(state)
