"""The chat logic (helpers.deploy.chat: streaming, stop, history) and the chat widget, without a browser.

    .venv/bin/python -m pytest tests/test_widgets.py -q

The transformers path runs on tests/tiny_llama.py's tiny Llama and ChatML tokenizer (built in-process: no
download, under a second); the duck-typed path on a tiny helpers.scratch.gpt.GPT.
"""

from __future__ import annotations

import html
import re

import pytest
import torch

from helpers.deploy.chat import ChatConfig, ChatSession, Reply, stream_tokens
from helpers.deploy.widgets import chat_widget, status_line
from helpers.measure.latency import StreamStats, time_stream
from helpers.scratch.gpt import GPT, GPTConfig
from tests.tiny_llama import tiny_llama, tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    m = tiny_llama(len(tokenizer))
    # subtle: with random weights and a head tied to the embedding, greedy decoding repeats the prompt's
    # last token whatever came before; an untied random head makes answers depend on the whole context,
    # which the history tests need (a stale history must be able to change the answer).
    g = torch.Generator().manual_seed(0)
    m.lm_head.weight = torch.nn.Parameter(torch.randn(m.lm_head.weight.shape, generator=g))
    # Never pick a special token, so answers run to max_new_tokens (a random model could end at once).
    specials = sorted({tokenizer.eos_token_id, tokenizer.bos_token_id, *tokenizer.all_special_ids})

    def no_specials(_module, _inputs, logits):
        logits[..., specials] = float("-inf")
        return logits

    m.lm_head.register_forward_hook(no_specials)
    return m


class PressStopDuring:
    """A forward pre-hook that calls `press()` during the n-th forward pass of generation (the prompt's pass
    makes token 1): a Stop click that lands while token n is being computed, with no race in the test."""

    def __init__(self, model, n: int, press):
        self.n, self.press, self.calls = n, press, 0
        self.handle = model.register_forward_pre_hook(self)

    def __call__(self, _module, _args):
        self.calls += 1
        if self.calls == self.n:
            self.press()

    def remove(self):
        self.handle.remove()


def _session(model, tokenizer, **config) -> ChatSession:
    return ChatSession(model, tokenizer, ChatConfig(**{"max_new_tokens": 6, **config}))


def _greedy_reference(model, prompt, n):
    ids = list(prompt)
    for _ in range(n):  # no cache, the whole context every step
        with torch.no_grad():
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt):]


# ----------------------------------------------------------------------------- stream_tokens


def test_stream_tokens_equals_full_recompute_greedy(model):
    prompt = [5, 17, 42, 9]
    assert list(stream_tokens(model, prompt, 8)) == _greedy_reference(model, prompt, 8)


def test_stream_tokens_stops_at_a_stop_id_and_on_request(model):
    tokens = list(stream_tokens(model, [5, 17], 8))
    k = next(i for i in range(1, 8) if tokens[i] not in tokens[:i])
    assert list(stream_tokens(model, [5, 17], 8, stop_ids=[tokens[k]])) == tokens[:k]
    calls = []  # should_stop is asked after every new token: true from the 4th on -> 4 tokens
    stopped = list(stream_tokens(model, [5, 17], 8, should_stop=lambda: len(calls.append(1) or calls) >= 4))
    assert stopped == tokens[:4]


def test_no_stop_ids_means_no_stop_even_at_the_models_own_end_token(tokenizer):
    """stop_ids=() generates exactly max_new_tokens (latency runs), although the model's generation_config
    names an end token (subtle: generate() falls back to it when told eos_token_id=None)."""
    m = tiny_llama(len(tokenizer))
    eos = m.generation_config.eos_token_id
    handle = m.lm_head.register_forward_hook(lambda _m, _i, out: out.index_fill(-1, torch.tensor([eos]), 1e4))
    try:
        assert list(stream_tokens(m, [5, 17], 5)) == [eos] * 5
        assert list(stream_tokens(m, [5, 17], 5, stop_ids=[eos])) == []
    finally:
        handle.remove()


def test_sampling_is_seeded(model):
    a = list(stream_tokens(model, [5], 10, temperature=1.0, top_k=20, seed=3))
    b = list(stream_tokens(model, [5], 10, temperature=1.0, top_k=20, seed=3))
    c = list(stream_tokens(model, [5], 10, temperature=1.0, top_k=20, seed=4))
    assert a == b and a != c
    assert a != list(stream_tokens(model, [5], 10))  # really sampled, not greedy


def test_our_gpt_streams_through_its_own_method():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()
    want = list(gpt.stream([1, 2, 3], 10, temperature=0))
    assert list(stream_tokens(gpt, [1, 2, 3], 10)) == want
    assert list(stream_tokens(gpt, [1, 2, 3], 10, should_stop=lambda: True)) == want[:1]
    with pytest.raises(TypeError, match="stream"):
        list(stream_tokens(torch.nn.Linear(2, 2), [1], 3))


@pytest.mark.parametrize("prompt, n, match", [([], 3, "prompt_ids is empty"), ([1], 0, "max_new_tokens")])
def test_stream_tokens_bad_arguments(model, prompt, n, match):
    with pytest.raises(ValueError, match=match):
        list(stream_tokens(model, prompt, n))


def test_an_error_in_the_generation_thread_reaches_the_caller(model, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("broken forward")

    monkeypatch.setattr(model, "forward", broken)  # fails inside generate(), in the background thread
    with pytest.raises(RuntimeError, match="broken forward"):
        list(stream_tokens(model, [1, 2], 3))


# ----------------------------------------------------------------------------- ChatSession


def test_prompt_is_the_chat_template_of_the_history(model, tokenizer):
    s = ChatSession(model, tokenizer, ChatConfig(max_new_tokens=6, system_prompt="You answer for Zefiro Bikes."))
    first = s.send("when do you open on saturday?")
    k = next(i for i in range(1, 6) if s.last_reply.token_ids[i] not in s.last_reply.token_ids[:i])
    s = ChatSession(model, tokenizer, ChatConfig(max_new_tokens=6, system_prompt="You answer for Zefiro Bikes."),
                    stop_token_ids=[s.last_reply.token_ids[k]])  # the answer now ends after k tokens
    first = s.send("when do you open on saturday?")
    assert s.last_reply.ending == "end" and len(s.last_reply.token_ids) == k
    assert s.history == [{"role": "user", "content": "when do you open on saturday?"},
                         {"role": "assistant", "content": first}]
    expected = tokenizer.apply_chat_template(
        [{"role": "system", "content": "You answer for Zefiro Bikes."}, *s.history,
         {"role": "user", "content": "grazie"}], add_generation_prompt=True, tokenize=False)
    assert tokenizer.decode(s.prompt_ids("grazie")) == expected
    assert expected.endswith("<|im_start|>assistant\n")


def test_stream_pieces_join_to_the_reply_and_are_timed(model, tokenizer):
    s = _session(model, tokenizer)
    n_prompt = len(s.prompt_ids("hello there"))
    pieces = list(s.stream("hello there"))
    assert "".join(pieces).strip() == s.last_reply.text
    assert s.last_reply.text == tokenizer.decode(list(s.last_reply.token_ids), skip_special_tokens=True).strip()
    assert list(s.last_reply.token_ids) == _greedy_reference(model, s.prompt_ids("hello there"), 6)
    assert s.last.new_tokens == 6 and not s.last.stopped and s.last.prompt_tokens == n_prompt
    assert 0 <= s.last.first_token_seconds <= s.last.total_seconds


def test_an_answer_at_the_token_limit_is_marked_cut_and_not_remembered(model, tokenizer):
    s = _session(model, tokenizer, max_new_tokens=5)
    text = s.send("hello there")
    assert s.last_reply == Reply(text, "cut", s.last_reply.token_ids) and len(s.last_reply.token_ids) == 5
    assert s.transcript[-1] == {"role": "assistant", "content": f"{text} … [cut at 5 tokens]"}
    assert s.history == []
    assert "cut at max_new_tokens=5" in status_line(s)


def test_stop_keeps_the_fragment_on_screen_and_the_next_answer_is_new(model, tokenizer):
    """Issue 15: after Stop, every later answer was the stopped fragment again (it was fed back as a
    finished turn). Now the next answer is what a fresh conversation answers."""
    s = _session(model, tokenizer, max_new_tokens=40)
    press = PressStopDuring(model, 3, s.stop)
    try:
        pieces = list(s.stream("hello there"))
    finally:
        press.remove()
    fragment = s.last_reply.text
    assert s.last_reply.ending == "stopped" and len(s.last_reply.token_ids) == 3 and s.last.stopped
    assert "".join(pieces).strip() == fragment
    assert s.transcript == [{"role": "user", "content": "hello there"},
                            {"role": "assistant", "content": f"{fragment} … [stopped]"}]
    assert s.history == []  # the stopped exchange is not in the model's memory
    fresh = _session(model, tokenizer, max_new_tokens=40)
    assert s.prompt_ids("when do you open?") == fresh.prompt_ids("when do you open?")  # no fragment in it
    again = s.send("when do you open on saturday?")
    assert again == fresh.send("when do you open on saturday?")
    assert not s.last.stopped and len(s.last_reply.token_ids) == 40


def test_leaving_the_stream_early_counts_as_a_stop(model, tokenizer):
    s = _session(model, tokenizer, max_new_tokens=40)
    stream = s.stream("hello there")
    next(stream)
    stream.close()  # the reader went away: the generation thread ends, the exchange is recorded
    assert s.last_reply.ending == "stopped" and s.transcript[-1]["content"].endswith("[stopped]")


def test_old_turns_are_dropped_to_fit_the_prompt(model, tokenizer):
    s = _session(model, tokenizer)
    s.history = [{"role": r, "content": f"{r} {i}"} for i in range(3) for r in ("user", "assistant")]
    limit = len(s.prompt_ids("grazie")) - 1
    s.config = ChatConfig(max_new_tokens=6, max_prompt_tokens=limit)
    assert len(s.prompt_ids("grazie")) <= limit
    assert s.history[0] == {"role": "user", "content": "user 1"} and len(s.history) == 4


@pytest.mark.parametrize(
    "bad, match",
    [({"max_new_tokens": 0}, "max_new_tokens"), ({"max_new_tokens": True}, "max_new_tokens"),
     ({"temperature": -1.0}, "temperature"), ({"temperature": float("nan")}, "temperature"),
     ({"top_k": 0}, "top_k"), ({"max_prompt_tokens": 2}, "max_prompt_tokens")],
)
def test_bad_config_names_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        ChatConfig(**bad)


def test_bad_inputs_name_the_fix(model, tokenizer):
    s = _session(model, tokenizer, max_prompt_tokens=8)
    with pytest.raises(ValueError, match="empty"):
        s.prompt_ids("  ")
    with pytest.raises(ValueError, match="max_prompt_tokens"):
        s.prompt_ids("hello there, when do you open on saturday?")
    with pytest.raises(ValueError, match="chat template"):
        ChatSession(model, tiny_tokenizer(chat=False))
    with pytest.raises(TypeError, match="stream_tokens"):
        ChatSession(GPT(GPTConfig(vocab_size=64, block_size=8, n_layer=1, n_head=1, n_embd=8)), tokenizer)


# ----------------------------------------------------------------------------- the widget


def _transcript_rows(widget) -> list[str]:
    return [html.unescape(re.sub("<[^>]+>", "", row)) for row in re.findall(r"<p[^>]*>.*?</p>",
                                                                            widget.transcript.value)]


def test_widget_send_stop_send_clear_without_a_browser(model, tokenizer):
    w = chat_widget(_session(model, tokenizer, max_new_tokens=4), title="Test")
    w.input.value = "hello there"  # pressing Enter submits
    w.wait(30)
    assert _transcript_rows(w)[0] == "You: hello there"
    assert _transcript_rows(w)[1].endswith("[cut at 4 tokens]") and "4 tokens" in w.status.value
    assert not w.send_button.disabled and w.stop_button.disabled
    w.session.config = ChatConfig(max_new_tokens=40)
    press = PressStopDuring(model, 2, w.stop_button.click)  # the Stop button, clicked during token 2
    try:
        w.submit("when do you open?")
        w.wait(30)
    finally:
        press.remove()
    assert _transcript_rows(w)[-1].endswith("[stopped]") and "stopped" in w.status.value
    w.submit("grazie")
    w.wait(30)
    fresh = _session(model, tokenizer, max_new_tokens=40).send("grazie")
    assert _transcript_rows(w)[-2:] == ["You: grazie", f"Model: {fresh} … [cut at 40 tokens]"]
    assert len(_transcript_rows(w)) == 6
    w.clear_button.click()
    assert w.session.transcript == [] and "No messages" in w.transcript.value
    assert "application/vnd.jupyter.widget-view+json" in w._repr_mimebundle_()


def test_the_transcript_box_keeps_the_newest_reply_in_view(model, tokenizer):
    """Newest last inside one child of a `column-reverse` box with overflow: browsers start such a box
    scrolled to its end, so a long transcript shows the latest answer (tests/test_browser.py sees it)."""
    w = chat_widget(_session(model, tokenizer, max_new_tokens=2))
    for q in ("one", "two", "three"):
        w.submit(q)
        w.wait(30)
    style = re.search(r"<div class='chat-transcript' style='([^']*)'><div>", w.transcript.value).group(1)
    assert "flex-direction:column-reverse" in style and "overflow:auto" in style and "max-height" in style
    assert [r.split(":")[0] for r in _transcript_rows(w)] == ["You", "Model"] * 3
    assert _transcript_rows(w)[-2] == "You: three"


def test_time_stream_counts_and_orders():
    s = time_stream(iter(range(5)), prompt_tokens=3)
    assert isinstance(s, StreamStats) and s.new_tokens == 5 and s.prompt_tokens == 3
    assert s.first_token_seconds <= s.total_seconds


# ----------------------------------------------------------------------------- break-even sliders


@pytest.fixture
def inputs():
    from helpers.measure.breakeven import BreakEvenInputs

    return BreakEvenInputs(tokens_in=200, tokens_out=100, local_tokens_per_s=20, local_power_w=30,
                           local_hardware_eur=1200, amortisation_years=3, energy_eur_per_kwh=0.3,
                           cloud_eur_per_hour=0.5, cloud_tokens_per_s=200, api_eur_per_m_in=0.15,
                           api_eur_per_m_out=0.6)


def test_edit_inputs_keeps_the_split_and_checks(inputs):
    from helpers.deploy.widgets import edit_inputs

    edited = edit_inputs(inputs, 600, energy_eur_per_kwh=0.5)
    assert (edited.tokens_in, edited.tokens_out, edited.energy_eur_per_kwh) == (400, 200, 0.5)
    assert inputs.tokens_in == 200  # the original is unchanged
    with pytest.raises(ValueError, match="tokens_per_request"):
        edit_inputs(inputs, 0)
    with pytest.raises(ValueError, match="local_power_w"):
        edit_inputs(inputs, local_power_w=-1)


def test_break_even_summary_names_the_cheapest(inputs):
    from helpers.deploy.widgets import break_even_summary
    from helpers.measure.breakeven import break_even

    result = break_even(inputs)
    line = break_even_summary(result, 1_000)
    # 1,000 requests cost the API 1000 * (200 * 0.15 + 100 * 0.6) / 1e6 = 0.09 EUR: far below a machine.
    assert line.startswith("At 1,000 requests/month:") and line.endswith("api is cheapest.")


def test_break_even_widget_builds_without_a_browser(inputs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.deploy.widgets import break_even_widget

    box = break_even_widget(inputs)
    controls, summary, image = box.children
    sliders = list(controls.children)
    assert len(sliders) == 8 and bytes(image.value).startswith(b"\x89PNG")
    before = (summary.value, image.value)
    sliders[0].value = 1e6  # moving a slider redraws the plot and rewrites the summary
    assert summary.value.startswith("At 1,000,000 requests/month") and bytes(image.value) != bytes(before[1])
    assert plt.get_fignums() == [], "a figure was left registered with pyplot (a copy Jupyter would show)"
    slow = break_even_widget(edit_inputs_for_slow(inputs))
    slow.children[0].children[1].value = 4_000  # inputs the model refuses: a red line, no traceback
    assert "color:#b00" in slow.children[1].value and "lower max_requests" in slow.children[1].value


def edit_inputs_for_slow(inputs):
    from dataclasses import replace

    return replace(inputs, local_tokens_per_s=0.5)  # 0.5 tokens/s: 1e8 requests would need ~600k machines
