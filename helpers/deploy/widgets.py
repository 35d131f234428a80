"""The notebook widgets of local deployment: a chat box and break-even sliders (ipywidgets faces only).

`chat_widget(session)` puts a `helpers.deploy.chat.ChatSession` (the logic: history, streaming, stop) behind
a transcript, a text box and Send / Stop / Clear buttons. The answer streams in a background thread so the
kernel still receives the Stop click. The transcript shows the newest reply at the bottom and stays
scrolled there with no JavaScript: its box is `display: flex; flex-direction: column-reverse; overflow:
auto`, and a column-reverse box starts scrolled to its end. Stopped and cut answers carry the session's
marks ("… [stopped]", "… [cut at N tokens]").

`break_even_widget(inputs)` puts sliders (monthly requests, tokens per request, hardware price, power,
energy price, cloud GPU price, API prices) on `helpers.measure.breakeven`; its logic is the pure functions
`edit_inputs` and `break_even_summary`.

Left out on purpose: Markdown rendering of answers, several chats sharing one model.
"""

from __future__ import annotations

import html
import io
import threading
from dataclasses import fields, replace

import ipywidgets as w

from helpers.core.checks import instance, number, text
from helpers.deploy.chat import ChatSession
from helpers.measure.breakeven import BreakEven, BreakEvenInputs, break_even, plot_break_even, volumes

TRANSCRIPT_HEIGHT = "320px"  # about 15 lines: the input box stays in view on a laptop screen


class ChatWidget:
    """The ipywidgets face of a ChatSession: transcript, input box, Send / Stop / Clear, status line."""

    def __init__(self, session: ChatSession, title: str = "Local chat"):
        instance("session", session, ChatSession, "ChatSession(loaded.model, loaded.tokenizer)")
        text("title", title)
        self.session = session
        self.title = w.HTML(f"<b>{html.escape(title)}</b>")
        self.transcript = w.HTML(layout=w.Layout(width="100%"))
        self.input = w.Text(placeholder="Ask something and press Enter or Send", layout=w.Layout(width="60%"))
        self.send_button = w.Button(description="Send", button_style="primary")
        self.stop_button = w.Button(description="Stop", disabled=True)
        self.clear_button = w.Button(description="Clear")
        self.status = w.HTML()
        buttons = w.HBox([self.input, self.send_button, self.stop_button, self.clear_button])
        self.view = w.VBox([self.title, self.transcript, buttons, self.status])
        self._thread: threading.Thread | None = None
        self.send_button.on_click(lambda _: self.submit())
        self.stop_button.on_click(lambda _: self.session.stop())
        self.clear_button.on_click(lambda _: self.clear())
        self.input.continuous_update = False
        self.input.observe(self._on_enter, names="value")
        self._render()

    def _on_enter(self, change) -> None:
        if change["new"].strip() and not self.busy:
            self.submit()

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _render(self, question: str | None = None, partial: str | None = None) -> None:
        """The transcript oldest-first, plus the exchange in progress (not in the transcript yet)."""
        turns = list(self.session.transcript)
        if question is not None:
            turns.append({"role": "user", "content": question})
        rows = [f"<p style='margin:2px 0'><b>{'You' if m['role'] == 'user' else 'Model'}:</b> "
                f"{html.escape(m['content'])}</p>" for m in turns]
        if partial is not None:
            rows.append(f"<p style='margin:2px 0'><b>Model:</b> {html.escape(partial)}▌</p>")
        body = "".join(rows) or "<i>No messages yet.</i>"
        # subtle: one child inside a column-reverse box: it starts (and stays) scrolled to the bottom.
        self.transcript.value = (
            f"<div class='chat-transcript' style='display:flex;flex-direction:column-reverse;overflow:auto;"
            f"max-height:{TRANSCRIPT_HEIGHT};border:1px solid #ddd;padding:4px'><div>{body}</div></div>"
        )

    def submit(self, message: str | None = None) -> None:
        """Send the input box's text (or `message`) and stream the answer in a background thread."""
        text = (message if message is not None else self.input.value).strip()
        if not text or self.busy:
            return
        self.input.value = ""
        self.send_button.disabled, self.stop_button.disabled = True, False
        self._thread = threading.Thread(target=self._answer, args=(text,), daemon=True)
        self._thread.start()

    def _answer(self, text: str) -> None:
        shown = ""
        try:
            self._render(text, "")
            for piece in self.session.stream(text):
                shown += piece
                self._render(text, shown)
            self.status.value = html.escape(status_line(self.session))
        except Exception as err:  # noqa: BLE001 - shown to the user instead of dying silently in a thread
            message = html.escape(f"{type(err).__name__}: {err}")
            self.status.value = f"<span style='color:#b00'>{message}</span>"
        finally:
            self._render()
            self.send_button.disabled, self.stop_button.disabled = False, True

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current answer is finished (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def clear(self) -> None:
        self.session.stop()
        self.wait(5)
        self.session.reset()
        self.status.value = ""
        self._render()

    def _repr_mimebundle_(self, **kwargs):
        return self.view._repr_mimebundle_(**kwargs)


def status_line(session: ChatSession) -> str:
    """'12 tokens · first token after 0.41 s · 9.8 tokens/s', plus what a stop or a cut means for the chat."""
    instance("session", session, ChatSession)
    s, reply = session.last, session.last_reply
    if s is None or reply is None:
        raise ValueError("the session has no answer yet: send a message first (session.send or the chat box)")
    line = (f"{s.new_tokens} tokens · first token after {s.first_token_seconds:.2f} s · "
            f"{s.tokens_per_second:.1f} tokens/s")
    if reply.ending == "stopped":
        line += " · stopped: this exchange is left out of the model's memory"
    elif reply.ending == "cut":
        line += (f" · cut at max_new_tokens={session.config.max_new_tokens}: left out of the model's memory; "
                 "ask for a shorter answer or raise ChatConfig.max_new_tokens")
    return line


def chat_widget(session: ChatSession, title: str = "Local chat") -> ChatWidget:
    """A chat box over `session`; display it by leaving it last in a cell."""
    return ChatWidget(session, title)


# ----------------------------------------------------------------------------- break-even sliders


def edit_inputs(inputs, tokens_per_request: float | None = None, **changes: float):
    """A copy of a helpers.measure.breakeven.BreakEvenInputs with fields changed; `tokens_per_request` keeps the
    prompt/answer split: 300 tokens as 200 in + 100 out, asked for 600 -> 400 in + 200 out."""
    instance("inputs", inputs, BreakEvenInputs, "build one with BreakEvenInputs.from_assumptions(...)")
    unknown = sorted(set(changes) - {f.name for f in fields(BreakEvenInputs)})
    if unknown:
        raise TypeError(f"unknown break-even input(s) {unknown}: change some of "
                        f"{[f.name for f in fields(BreakEvenInputs)]}")
    if tokens_per_request is not None:
        number("tokens_per_request", tokens_per_request, 0, above_minimum=True, fix="e.g. 300")
        tokens_in = tokens_per_request * inputs.tokens_in / inputs.tokens_per_request
        changes = {"tokens_in": tokens_in, "tokens_out": tokens_per_request - tokens_in, **changes}
    return replace(inputs, **changes)


def break_even_summary(result, requests_per_month: float) -> str:
    """'At 100,000 requests/month: local 45 EUR, cloud 270 EUR, api 12 EUR -> api is cheapest.'"""
    instance("result", result, BreakEven, "pass what helpers.measure.breakeven.break_even returned")
    volumes(requests_per_month, "requests_per_month")
    costs = {name: float(model.cost(requests_per_month)) for name, model in result.models.items()}
    parts = ", ".join(f"{name} {cost:,.0f} EUR" for name, cost in costs.items())
    return (f"At {requests_per_month:,.0f} requests/month: {parts} -> "
            f"{result.cheapest(requests_per_month)} is cheapest.")


# (slider, field of BreakEvenInputs, min, max, step or None for a log slider (min/max are exponents),
#  readout in d3-format, as ipywidgets writes it: ",.0f" 1,200 | ".2f" 0.29 | ".2r" 0.14)
_BREAK_EVEN_SLIDERS = (
    ("hardware price (EUR)", "local_hardware_eur", 200, 20_000, 100, ",.0f"),
    ("power (W)", "local_power_w", 5, 1_000, 5, ",.0f"),
    ("energy (EUR/kWh)", "energy_eur_per_kwh", 0.05, 0.8, 0.01, ".2f"),
    ("cloud GPU (EUR/h)", "cloud_eur_per_hour", 0.1, 10.0, 0.05, ".2f"),
    ("API in (EUR/M tok)", "api_eur_per_m_in", -2, 1.5, None, ".2r"),
    ("API out (EUR/M tok)", "api_eur_per_m_out", -2, 2, None, ".2r"),
)


def _figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def break_even_widget(inputs, requests_per_month: float = 1e5, max_requests: float = 1e8):
    """Sliders over a BreakEvenInputs; the plot and the summary line update when a slider is let go.

    Subtle, for JupyterLab: the plot is a PNG in an Image widget and the summary an HTML widget, both set
    from the slider callback. Nothing is printed or displayed from a callback, so nothing lands in the Log
    Console and no figure copy is left behind; inputs the model refuses (e.g. more machines than it will
    count) show as a red line, never a traceback. The sliders wrap into as many columns as fit the window
    (two at 1280 px with the file browser open), so no readout is clipped and no column scrolls sideways."""
    instance("inputs", inputs, BreakEvenInputs, "build one with BreakEvenInputs.from_assumptions(...)")
    number("requests_per_month", requests_per_month, 1e2, 1e8, fix="the slider spans 1e2 to 1e8")
    number("max_requests", max_requests, 0, above_minimum=True, fix="e.g. 1e8")
    common = dict(style={"description_width": "140px"}, layout=w.Layout(width="380px", margin="2px 12px 2px 0"),
                  continuous_update=False)  # one redraw when the slider is let go, not one per pixel dragged
    sliders = {
        "requests": w.FloatLogSlider(value=requests_per_month, base=10, min=2, max=8, step=0.1,
                                     description="requests / month", readout_format=".2s", **common),
        "tokens": w.IntSlider(value=int(inputs.tokens_per_request), min=50, max=4_000, step=50,
                              description="tokens / request", **common),
    }
    for label, name, lo, hi, step, readout in _BREAK_EVEN_SLIDERS:
        value = getattr(inputs, name)
        if step is None:
            sliders[name] = w.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=0.05, description=label,
                                             readout_format=readout, **common)
        else:
            sliders[name] = w.FloatSlider(value=min(max(value, lo), hi), min=lo, max=hi, step=step,
                                          description=label, readout_format=readout, **common)
    summary = w.HTML()
    image = w.Image(format="png", layout=w.Layout(width="100%", max_width="700px"))

    def update(_change=None) -> None:
        values = {name: slider.value for name, slider in sliders.items()}
        requests, tokens = values.pop("requests"), values.pop("tokens")
        try:
            result = break_even(edit_inputs(inputs, tokens, **values), max_requests=max_requests)
        except ValueError as err:  # the model refuses these inputs: say why where the summary goes
            summary.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            return
        fig = plot_break_even(result, title="Monthly cost vs volume (your sliders)")
        fig.axes[0].axvline(requests, color="grey", ls=":")
        image.value = _figure_png(fig)
        summary.value = html.escape(break_even_summary(result, requests))

    for slider in sliders.values():
        slider.observe(update, names="value")
    update()
    controls = w.Box(list(sliders.values()), layout=w.Layout(display="flex", flex_flow="row wrap", width="100%"))
    return w.VBox([controls, summary, image], layout=w.Layout(width="100%"))
