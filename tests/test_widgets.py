"""The chat logic (history, chat template, streaming, stop) and the chat widget, without a browser.

    .venv/bin/python -m pytest tests/test_widgets.py -q

A tiny random Llama and a tiny tokenizer with a ChatML-style template are built in-process: no download,
no cached model, under a second.
"""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from helpers.deploy.widgets import ChatConfig, ChatSession, chat_widget, stream_tokens
from helpers.measure.latency import StreamStats, time_stream

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["hello there, when do you open on saturday? we open at ten. grazie, è così"] * 5,
                            trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|im_start|>")
    fast.chat_template = TEMPLATE
    return fast


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    m = LlamaForCausalLM(config).eval()
    # Never pick a special token, so answers run to max_new_tokens (a random model would often end at once).
    specials = [tokenizer.eos_token_id, tokenizer.bos_token_id]

    def no_specials(_module, _inputs, logits):
        logits[..., specials] = float("-inf")
        return logits

    m.lm_head.register_forward_hook(no_specials)
    return m


def _session(model, tokenizer, **config) -> ChatSession:
    return ChatSession(model, tokenizer, ChatConfig(**{"max_new_tokens": 6, **config}))


def test_stream_tokens_equals_full_recompute_greedy(model):
    prompt = [5, 17, 42, 9]
    fast = list(stream_tokens(model, prompt, 8))
    ids = list(prompt)
    for _ in range(8):  # the reference: no cache, the whole context every step
        with torch.no_grad():
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    assert fast == ids[len(prompt):]


def test_stream_tokens_stops_at_stop_id_and_on_request(model):
    tokens = list(stream_tokens(model, [5, 17], 8))
    assert list(stream_tokens(model, [5, 17], 8, stop_ids=[tokens[2]])) == tokens[:2]
    calls = []
    stopped = list(stream_tokens(model, [5, 17], 8, should_stop=lambda: len(calls.append(1) or calls) > 3))
    assert stopped == tokens[:3]


def test_sampling_is_seeded(model):
    a = list(stream_tokens(model, [5], 10, temperature=1.0, top_k=20, seed=3))
    b = list(stream_tokens(model, [5], 10, temperature=1.0, top_k=20, seed=3))
    assert a == b


def test_prompt_is_the_chat_template_of_the_history(model, tokenizer):
    s = _session(model, tokenizer, system_prompt="You answer for Zefiro Bikes.")
    first = s.send("when do you open on saturday?")
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
    assert "".join(pieces).strip() == s.history[-1]["content"]
    assert s.last.new_tokens == 6 and not s.last.stopped
    assert s.last.prompt_tokens == n_prompt
    assert 0 <= s.last.first_token_seconds <= s.last.total_seconds


def test_stop_ends_the_answer_and_keeps_the_partial_reply(model, tokenizer):
    s = _session(model, tokenizer, max_new_tokens=50)
    got = []
    for piece in s.stream("hello there"):
        got.append(piece)
        s.stop()  # as the Stop button does, from the consumer's side
    assert s.last.stopped and s.last.new_tokens < 50
    assert s.history[-1] == {"role": "assistant", "content": "".join(got).strip()}
    s.send("again")  # the flag is cleared for the next question
    assert not s.last.stopped and s.last.new_tokens == 50


def test_old_turns_are_dropped_to_fit_the_prompt(model, tokenizer):
    s = _session(model, tokenizer)
    for q in ("hello there", "when do you open?", "on saturday?"):
        s.send(q)
    limit = len(s.prompt_ids("grazie")) - 1
    s.config = ChatConfig(max_new_tokens=6, max_prompt_tokens=limit)
    assert len(s.prompt_ids("grazie")) <= limit
    assert len(s.history) in (2, 4) and s.history[0]["role"] == "user"


@pytest.mark.parametrize(
    "bad, match",
    [({"max_new_tokens": 0}, "max_new_tokens"), ({"temperature": -1.0}, "temperature"),
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
    no_template = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer)
    with pytest.raises(ValueError, match="chat template"):
        ChatSession(model, no_template)


def test_widget_send_stop_clear_without_a_browser(model, tokenizer):
    w = chat_widget(_session(model, tokenizer, max_new_tokens=4), title="Test")
    w.input.value = "hello there"  # pressing Enter submits
    w.wait(30)
    assert len(w.session.history) == 2
    assert "You:</b> hello there" in w.transcript.value and "tokens" in w.status.value
    assert not w.send_button.disabled and w.stop_button.disabled
    w.session.config = ChatConfig(max_new_tokens=4)
    w.submit("again")
    w.wait(30)
    assert len(w.session.history) == 4
    w.clear_button.click()
    assert w.session.history == [] and "No messages" in w.transcript.value
    assert "application/vnd.jupyter.widget-view+json" in w._repr_mimebundle_()


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
    from helpers.deploy.widgets import break_even_widget

    box = break_even_widget(inputs)
    sliders = [c for column in box.children[0].children for c in column.children]
    assert len(sliders) == 8
    sliders[0].value = 1e6  # moving a slider re-renders without error
