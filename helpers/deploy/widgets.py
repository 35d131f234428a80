"""A chat with a local model inside the notebook: the logic (`ChatSession`) and its ipywidgets face.

`ChatSession` is plain Python, testable without a browser: it keeps the conversation history, builds
each prompt with the tokenizer's own chat template, generates token by token with the KV cache
(`stream_tokens`) and checks a stop flag between tokens, so a Stop button takes effect at once.

    session = ChatSession(loaded.model, loaded.tokenizer)
    for piece in session.stream("When do you open on Saturday?"):
        print(piece, end="")
    session.history      # [{'role': 'user', ...}, {'role': 'assistant', ...}]

`chat_widget(session)` wraps it in a text box with Send / Stop / Clear buttons; generation runs in a
background thread so the kernel can still receive the Stop click while tokens stream in.

`break_even_widget(inputs)` puts sliders (monthly requests, tokens per request, hardware price, power,
energy price, cloud GPU price, API prices) on `helpers.measure.breakeven`; its logic is the pure functions
`edit_inputs` and `break_even_summary`.

Left out on purpose: batching several users, beam search, tool calls, rendering Markdown.
"""

from __future__ import annotations

import html
import inspect
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch

from helpers.measure.latency import StreamStats


@dataclass(frozen=True)
class ChatConfig:
    max_new_tokens: int = 200  # a few sentences; most answers end earlier at the end-of-turn token
    temperature: float = 0.0  # 0 = greedy: the same question gives the same answer (workshops, tests)
    top_k: int | None = 50  # with temperature > 0, sample among the 50 likeliest tokens only
    system_prompt: str | None = None  # None: whatever the model's chat template puts by default
    max_prompt_tokens: int = 1536  # oldest turns are dropped past this: keeps CPU latency in check
    seed: int = 0  # for sampling (temperature > 0)

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"ChatConfig.max_new_tokens must be an int >= 1, got {self.max_new_tokens!r}")
        if self.temperature < 0:
            raise ValueError(f"ChatConfig.temperature must be >= 0 (0 = greedy), got {self.temperature!r}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"ChatConfig.top_k must be None or >= 1, got {self.top_k!r}")
        if self.max_prompt_tokens < 8:
            raise ValueError(f"ChatConfig.max_prompt_tokens must be >= 8, got {self.max_prompt_tokens}")


def _cache_keyword(model: torch.nn.Module) -> str:
    """transformers 5.2x calls the KV cache argument `cache`; earlier releases `past_key_values`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft wrappers
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


@torch.no_grad()
def stream_tokens(
    model: torch.nn.Module,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    stop_ids: Sequence[int] = (),
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[int]:
    """Yield new token ids of a transformers causal LM one by one, reusing the KV cache.

    Ends before a stop id, after max_new_tokens, or as soon as should_stop() is true (checked before
    every step). [1, 2, 3] -> 17, 5, ... (batch 1: the case of one person chatting).
    """
    if len(prompt_ids) == 0:
        raise ValueError("stream_tokens needs a prompt of at least one token")
    device = next(model.parameters()).device
    keyword = _cache_keyword(model)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    stops = set(stop_ids)
    ids = torch.tensor([list(prompt_ids)], device=device)  # (1, T) on the first step, then (1, 1)
    cache = None
    for _ in range(max_new_tokens):
        if should_stop():
            return
        out = model(input_ids=ids, use_cache=True, **({keyword: cache} if cache is not None else {}))
        cache = out[keyword] if keyword in out else out["past_key_values"]
        logits = out.logits[0, -1].float()  # (vocab,)
        if temperature == 0:
            token = int(logits.argmax())
        else:
            logits = logits / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            token = int(torch.multinomial(torch.softmax(logits, -1).cpu(), 1, generator=generator))
        if token in stops:
            return
        yield token
        ids = torch.tensor([[token]], device=device)


class ChatSession:
    """A conversation with a chat model: history, chat template, streaming, stop."""

    def __init__(self, model: torch.nn.Module, tokenizer, config: ChatConfig | None = None,
                 stop_token_ids: Sequence[int] | None = None):
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "this tokenizer has no chat template: set tokenizer.chat_template (a Jinja string) or use a "
                "chat/instruct model such as helpers.instruct.models.load_model('smollm2-135m-instruct')"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or ChatConfig()
        if stop_token_ids is None:
            stop_token_ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.stop_token_ids = list(stop_token_ids)
        self.history: list[dict[str, str]] = []
        self.last: StreamStats | None = None  # timing of the latest answer
        self._stop = threading.Event()

    # -- prompt ---------------------------------------------------------------------------------------
    def messages(self, user_message: str) -> list[dict[str, str]]:
        """System prompt (if any) + history + the new user message, as the chat template expects."""
        prompt = self.config.system_prompt
        system = [{"role": "system", "content": prompt}] if prompt else []
        return system + self.history + [{"role": "user", "content": user_message}]

    def _encode(self, messages: list[dict[str, str]]) -> list[int]:
        out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = out["input_ids"] if hasattr(out, "keys") else out  # transformers 5 returns a BatchEncoding
        return list(ids)

    def prompt_ids(self, user_message: str) -> list[int]:
        """Token ids of the next prompt; the oldest exchanges are dropped if it exceeds max_prompt_tokens."""
        if not isinstance(user_message, str) or not user_message.strip():
            raise ValueError("the message is empty: type a question first")
        while True:
            ids = self._encode(self.messages(user_message))
            if len(ids) <= self.config.max_prompt_tokens:
                return ids
            if len(self.history) < 2:
                raise ValueError(
                    f"the message alone takes {len(ids)} tokens, more than max_prompt_tokens="
                    f"{self.config.max_prompt_tokens}: shorten it or raise ChatConfig.max_prompt_tokens"
                )
            del self.history[:2]  # forget the oldest user/assistant exchange

    # -- generation -----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the running answer to stop after the current token (safe to call from another thread)."""
        self._stop.set()

    def reset(self) -> None:
        """Forget the conversation."""
        self.history.clear()
        self.last = None

    def stream(self, user_message: str) -> Iterator[str]:
        """Yield the answer piece by piece; the exchange is added to the history when it ends or stops."""
        ids = self.prompt_ids(user_message)
        self._stop.clear()
        c = self.config
        tokens: list[int] = []
        text = ""
        start = time.perf_counter()
        first = None
        try:
            for token in stream_tokens(self.model, ids, c.max_new_tokens, stop_ids=self.stop_token_ids,
                                       temperature=c.temperature, top_k=c.top_k, seed=c.seed,
                                       should_stop=self._stop.is_set):
                if first is None:
                    first = time.perf_counter() - start
                tokens.append(token)
                decoded = self.tokenizer.decode(tokens, skip_special_tokens=True)
                # subtle: a token can end inside a UTF-8 character (decoded as U+FFFD): wait for the rest.
                if decoded.endswith("\ufffd"):
                    continue
                piece, text = decoded[len(text):], decoded
                if piece:
                    yield piece
            tail = self.tokenizer.decode(tokens, skip_special_tokens=True)[len(text):]
            if tail:  # whatever was held back waiting for the rest of a character
                yield tail
        finally:
            total = time.perf_counter() - start
            self.last = StreamStats(len(tokens), first if first is not None else total, total, len(ids),
                                    stopped=self._stop.is_set())
            reply = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
            self.history += [{"role": "user", "content": user_message},
                             {"role": "assistant", "content": reply}]

    def send(self, user_message: str) -> str:
        """The whole answer at once."""
        return "".join(self.stream(user_message)).strip()


class ChatWidget:
    """The ipywidgets face of a ChatSession: transcript, input box, Send / Stop / Clear, status line."""

    def __init__(self, session: ChatSession, title: str = "Local chat"):
        import ipywidgets as w

        self.session = session
        self.title = w.HTML(f"<b>{html.escape(title)}</b>")
        self.transcript = w.HTML(layout=w.Layout(max_height="320px", overflow="auto", border="1px solid #ddd",
                                                  padding="4px"))
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
        turns = list(self.session.history)
        if question is not None:  # the exchange in progress is not in the history yet
            turns.append({"role": "user", "content": question})
        rows = [f"<p><b>{'You' if m['role'] == 'user' else 'Model'}:</b> {html.escape(m['content'])}</p>"
                for m in turns]
        if partial is not None:
            rows.append(f"<p><b>Model:</b> {html.escape(partial)}▌</p>")
        self.transcript.value = "".join(rows) or "<i>No messages yet.</i>"

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
            s = self.session.last
            note = " (stopped)" if s.stopped else ""
            self.status.value = (f"{s.new_tokens} tokens{note} · first token after "
                                 f"{s.first_token_seconds:.2f} s · {s.tokens_per_second:.1f} tokens/s")
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


def chat_widget(session: ChatSession, title: str = "Local chat") -> ChatWidget:
    """A chat box over `session`; display it by leaving it last in a cell."""
    return ChatWidget(session, title)


# ----------------------------------------------------------------------------- break-even sliders


def edit_inputs(inputs, tokens_per_request: float | None = None, **changes: float):
    """A copy of a helpers.measure.breakeven.BreakEvenInputs with fields changed; `tokens_per_request` keeps the
    prompt/answer split: 300 tokens as 200 in + 100 out, asked for 600 -> 400 in + 200 out."""
    if tokens_per_request is not None:
        if tokens_per_request <= 0:
            raise ValueError(f"tokens_per_request must be > 0, got {tokens_per_request!r}")
        tokens_in = tokens_per_request * inputs.tokens_in / inputs.tokens_per_request
        changes = {"tokens_in": tokens_in, "tokens_out": tokens_per_request - tokens_in, **changes}
    return replace(inputs, **changes)


def break_even_summary(result, requests_per_month: float) -> str:
    """'At 100,000 requests/month: local 45 EUR, cloud 270 EUR, api 12 EUR -> api is cheapest.'"""
    costs = {name: float(model.cost(requests_per_month)) for name, model in result.models.items()}
    parts = ", ".join(f"{name} {cost:,.0f} EUR" for name, cost in costs.items())
    return (f"At {requests_per_month:,.0f} requests/month: {parts} -> "
            f"{result.cheapest(requests_per_month)} is cheapest.")


# (slider, field of BreakEvenInputs, min, max, step or None for a log slider (min/max are exponents))
_BREAK_EVEN_SLIDERS = (
    ("hardware price (EUR)", "local_hardware_eur", 200, 20_000, 100),
    ("power (W)", "local_power_w", 5, 1_000, 5),
    ("energy (EUR/kWh)", "energy_eur_per_kwh", 0.05, 0.8, 0.01),
    ("cloud GPU (EUR/h)", "cloud_eur_per_hour", 0.1, 10.0, 0.05),
    ("API in (EUR/M tok)", "api_eur_per_m_in", -2, 1.5, None),
    ("API out (EUR/M tok)", "api_eur_per_m_out", -2, 2, None),
)


def break_even_widget(inputs, requests_per_month: float = 1e5, max_requests: float = 1e8):
    """Sliders over a BreakEvenInputs; the plot and the summary line update as they move."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    from helpers.measure.breakeven import break_even, plot_break_even

    style = {"description_width": "150px"}
    layout = w.Layout(width="460px")
    sliders = {
        "requests": w.FloatLogSlider(value=requests_per_month, base=10, min=2, max=8, step=0.1,
                                     description="requests / month", style=style, layout=layout),
        "tokens": w.IntSlider(value=int(inputs.tokens_per_request), min=50, max=4_000, step=50,
                              description="tokens / request", style=style, layout=layout),
    }
    for label, name, lo, hi, step in _BREAK_EVEN_SLIDERS:
        value = getattr(inputs, name)
        if step is None:
            sliders[name] = w.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=0.05,
                                             description=label, style=style, layout=layout)
        else:
            sliders[name] = w.FloatSlider(value=min(max(value, lo), hi), min=lo, max=hi, step=step,
                                          description=label, style=style, layout=layout)

    def update(requests: float, tokens: int, **prices: float) -> None:
        result = break_even(edit_inputs(inputs, tokens, **prices), max_requests=max_requests)
        fig = plot_break_even(result, title="Monthly cost vs volume (your sliders)")
        fig.axes[0].axvline(requests, color="grey", ls=":")
        display(fig)
        plt.close(fig)
        print(break_even_summary(result, requests))

    out = w.interactive_output(update, sliders)
    return w.VBox([w.HBox([w.VBox(list(sliders.values())[:4]), w.VBox(list(sliders.values())[4:])]), out])
