"""helpers.scratch.gpt, generation and gpt_io against trusted references: hand-written attention, transformers' GPT-2.

Run:  cd /work/main && COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_gpt.py -q
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from helpers.scratch import generation, gpt_io
from helpers.scratch import gpt as G
from helpers.scratch.gpt import GPT, GPTConfig

NANO = GPTConfig.preset("gpt-nano", vocab_size=97, block_size=24)
ODD = GPTConfig(vocab_size=50, block_size=9, n_layer=1, n_head=4, n_embd=20)  # head_size 5, 1 layer
CONFIGS = {"nano": NANO, "odd": ODD}


def make_model(config: GPTConfig = NANO, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(config).eval()
    # Biases and LayerNorms start at 0 / 1; randomise them so a swapped or dropped one would show.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.normal_(mean=1.0 if name.endswith("weight") else 0.0, std=0.1)  # 1-D weights: LN gains
    return model


def tokens(config: GPTConfig, batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


# ---- attention --------------------------------------------------------------------------------------
def attention_by_hand(attn: G.CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(hs) + causal mask) v, one head at a time, no fused kernels."""
    B, T, C = x.shape
    hs = C // attn.n_head
    q, k, v = attn.c_attn(x).split(C, dim=2)
    heads = []
    for h in range(attn.n_head):
        sl = slice(h * hs, (h + 1) * hs)
        scores = q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(hs)  # (B, T, T)
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        heads.append(scores.softmax(dim=-1) @ v[..., sl])  # (B, T, hs)
    return attn.c_proj(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("length", [1, 2, 9])
def test_attention_equals_hand_written(name, length):
    config = CONFIGS[name]
    attn = make_model(config).transformer.h[0].attn
    x = torch.randn(3, length, config.n_embd, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(attn(x), attention_by_hand(attn, x), atol=1e-6, rtol=1e-5)


def test_cached_chunks_equal_one_pass():
    """Prefill 5 tokens, then 3 at once (the explicit-mask path), then 1: same logits as one pass."""
    model = make_model()
    idx = tokens(NANO, 2, 9)
    full = model(idx)
    cache = generation.KVCache(NANO, 2, torch.device("cpu"), torch.float32)
    parts = [model(idx[:, :5], cache=cache), model(idx[:, 5:8], cache=cache), model(idx[:, 8:], cache=cache)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 9


# ---- the model against transformers ----------------------------------------------------------------
@pytest.mark.parametrize("name", CONFIGS)
def test_transformers_export_has_identical_logits(name):
    config = CONFIGS[name]
    model = make_model(config)
    hf = gpt_io.to_transformers(model)
    idx = tokens(config, 2, config.block_size)
    with torch.no_grad():
        diff = (model(idx) - hf(idx).logits).abs().max().item()
    assert diff <= 1e-5
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()  # still tied


def test_transformers_generate_matches_ours():
    model = make_model()
    hf = gpt_io.to_transformers(model, eos_token_id=0)
    prompt = tokens(NANO, 1, 4)
    ours = model.generate(prompt, 12, temperature=0)
    theirs = hf.generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False,
                         attention_mask=torch.ones_like(prompt))
    assert torch.equal(ours, theirs)


# ---- generation -------------------------------------------------------------------------------------
@pytest.mark.parametrize("new_tokens", [1, 10, 40])  # 40 > block_size - prompt: the window slides
def test_kv_cache_greedy_equals_no_cache(new_tokens):
    model = make_model()
    prompt = tokens(NANO, 2, 6)
    with_cache = model.generate(prompt, new_tokens, temperature=0, use_cache=True)
    without = model.generate(prompt, new_tokens, temperature=0, use_cache=False)
    assert with_cache.shape == (2, 6 + new_tokens)
    assert torch.equal(with_cache, without)


def test_kv_cache_sampling_equals_no_cache_with_same_seed():
    model = make_model()
    prompt = tokens(NANO, 1, 3)
    kwargs = dict(temperature=1.3, top_k=20, top_p=0.9, seed=7)
    with_cache = model.generate(prompt, 15, **kwargs)
    assert torch.equal(with_cache, model.generate(prompt, 15, use_cache=False, **kwargs))


def test_seeded_sampling_is_repeatable_and_restores_training_mode():
    model = make_model().train()
    prompt = tokens(NANO, 1, 3)
    a, b = model.generate(prompt, 10, seed=3), model.generate(prompt, 10, seed=3)
    assert torch.equal(a, b)
    assert model.training


def test_top_p_hand_worked_example():
    # probabilities 0.5, 0.3, 0.15, 0.05: top_p=0.7 keeps {0, 1} (0.5 < 0.7, 0.5+0.3 >= 0.7).
    logits = torch.log(torch.tensor([[0.15, 0.5, 0.05, 0.3]]))
    gen = torch.Generator().manual_seed(0)
    seen = {int(generation.sample_next_token(logits, top_p=0.7, generator=gen)) for _ in range(300)}
    assert seen == {1, 3}
    seen = {int(generation.sample_next_token(logits, top_p=0.5, generator=gen)) for _ in range(100)}
    assert seen == {1}  # the most likely token alone already has mass 0.5


def test_top_k_and_temperature():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0, -1.0]])
    gen = torch.Generator().manual_seed(0)
    assert {int(generation.sample_next_token(logits, top_k=2, generator=gen)) for _ in range(300)} == {1, 2}
    assert int(generation.sample_next_token(logits, top_k=1, generator=gen)) == 1
    assert int(generation.sample_next_token(logits, temperature=0)) == 1
    # A low temperature concentrates the samples on the argmax; a high one spreads them.
    cold = [int(generation.sample_next_token(logits, temperature=0.05, generator=gen)) for _ in range(200)]
    hot = {int(generation.sample_next_token(logits, temperature=50.0, generator=gen)) for _ in range(300)}
    assert set(cold) == {1} and hot == {0, 1, 2, 3, 4}


def test_top_k_one_equals_greedy_generation():
    model = make_model()
    prompt = tokens(NANO, 2, 4)
    assert torch.equal(model.generate(prompt, 8, top_k=1, seed=0), model.generate(prompt, 8, temperature=0))


def test_stop_tokens_end_generation_and_pad_finished_rows():
    model = make_model()
    prompt = tokens(NANO, 2, 4)
    free = model.generate(prompt, 12, temperature=0)
    stop = int(free[0, 6])  # a token row 0 produces at its 3rd step under greedy decoding
    other = min(set(range(NANO.vocab_size)) - set(free.flatten().tolist()))  # a stop id never produced
    out = model.generate(prompt, 12, temperature=0, stop_tokens=[other, stop])
    row0 = out[0, 4:].tolist()
    first = row0.index(stop)
    assert row0[: first + 1] == free[0, 4 : 4 + first + 1].tolist()
    assert all(t == stop for t in row0[first:])  # kept, then padded
    if stop not in free[1, 4:].tolist():
        assert out.shape[1] == free.shape[1]  # row 1 never stopped: ran to the end
    streamed = list(model.stream(prompt[0].tolist(), 12, temperature=0, stop_tokens=[stop]))
    assert streamed == row0[:first]  # stream stops before the stop token


def test_stream_equals_generate():
    model = make_model()
    prompt = tokens(NANO, 1, 5)
    out = model.generate(prompt, 9, temperature=0.8, top_k=10, seed=4)
    assert list(model.stream(prompt[0], 9, temperature=0.8, top_k=10, seed=4)) == out[0, 5:].tolist()


@pytest.mark.parametrize("kwargs, field", [
    (dict(temperature=-1.0), "temperature"), (dict(top_k=0), "top_k"), (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"),
])
def test_bad_sampling_settings_are_named(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_model().generate(tokens(NANO, 1, 2), 3, **kwargs)


# ---- configuration errors ---------------------------------------------------------------------------
def test_n_embd_not_divisible_by_n_head():
    with pytest.raises(ValueError, match=r"n_embd=50 is not divisible by n_head=4.*n_embd=48 or 52"):
        GPTConfig(n_embd=50, n_head=4)


@pytest.mark.parametrize("field", ["vocab_size", "block_size", "n_layer", "n_head", "n_embd"])
def test_non_positive_sizes_are_named(field):
    with pytest.raises(ValueError, match=f"GPTConfig.{field}"):
        GPTConfig(**{field: 0})


def test_input_longer_than_block_size_names_block_size():
    model = make_model()
    with pytest.raises(ValueError, match=r"25 tokens exceeds block_size=24.*crop"):
        model(tokens(NANO, 1, 25))
    with pytest.raises(ValueError, match="batch dimension"):
        model(tokens(NANO, 1, 5)[0])


def test_presets():  # a profile's sizes: tests/test_catch_up.py (helpers.course.catchup.gpt_config)
    assert GPTConfig.preset("gpt-micro").n_embd == 128
    with pytest.raises(ValueError, match="gpt-nano"):
        GPTConfig.preset("gpt-huge")


# ---- counts (parameter and FLOP counts: tests/test_flops.py) ----------------------------------------
def test_optimizer_groups():
    model = make_model()
    decay, no_decay = model.configure_optimizer_groups(0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"])
    ids = [id(p) for p in decay["params"] + no_decay["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))  # each parameter exactly once
    assert id(model.transformer.wte.weight) in {id(p) for p in no_decay["params"]}
    assert len(decay["params"]) == 4 * NANO.n_layer  # c_attn, attn.c_proj, c_fc, mlp.c_proj
    torch.optim.AdamW(model.configure_optimizer_groups(0.1), lr=1e-3)  # accepted as is


def test_initial_loss_is_near_uniform():
    model = GPT(NANO)
    idx, targets = tokens(NANO, 4, NANO.block_size), tokens(NANO, 4, NANO.block_size, seed=2)
    loss = G.lm_loss(model(idx), targets).item()
    assert abs(loss - math.log(NANO.vocab_size)) < 0.1  # small init: every token about equally likely
    masked = targets.clone()
    masked[:, ::2] = -100
    assert torch.isfinite(G.lm_loss(model(idx), masked))


# ---- save / load --------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    model = make_model()
    gpt_io.save_gpt(model, tmp_path / "m")
    loaded = gpt_io.load_gpt(tmp_path / "m")
    assert loaded.config == model.config
    idx = tokens(NANO, 2, 10)
    assert torch.equal(loaded.eval()(idx), model(idx))
    assert loaded.lm_head.weight is loaded.transformer.wte.weight  # tied again
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [gpt_io.CONFIG_FILE, gpt_io.WEIGHTS_FILE]


def test_save_refuses_other_models(tmp_path):
    with pytest.raises(TypeError, match="save_pretrained"):
        gpt_io.save_gpt(torch.nn.Linear(2, 2), tmp_path)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json.*save_gpt"):
        gpt_io.load_gpt(tmp_path)
    gpt_io.save_gpt(make_model(), tmp_path)
    (tmp_path / gpt_io.WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        gpt_io.load_gpt(tmp_path)


def test_truncated_weights_are_detected(tmp_path):
    gpt_io.save_gpt(make_model(), tmp_path)
    path = tmp_path / gpt_io.WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="does not match"):
        gpt_io.load_gpt(tmp_path)
    # Without the checksum, safetensors itself refuses the half-written file.
    meta = json.loads((tmp_path / gpt_io.CONFIG_FILE).read_text())
    del meta["weights_sha256"]
    (tmp_path / gpt_io.CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="corrupt or half-written"):
        gpt_io.load_gpt(tmp_path)


@pytest.mark.parametrize("text, match", [
    ("{not json", "not a save_gpt config"),
    (json.dumps({"format_version": 99, "config": {}}), "format_version=99"),
    (json.dumps({"format_version": 1, "config": {"n_embd": 64, "colour": "red"}}), "colour"),
])
def test_bad_config_file(tmp_path, text, match):
    gpt_io.save_gpt(make_model(), tmp_path)
    (tmp_path / gpt_io.CONFIG_FILE).write_text(text)
    with pytest.raises(ValueError, match=match):
        gpt_io.load_gpt(tmp_path)


def test_config_that_does_not_fit_the_weights(tmp_path):
    gpt_io.save_gpt(make_model(), tmp_path)
    meta = json.loads((tmp_path / gpt_io.CONFIG_FILE).read_text())
    meta["config"]["vocab_size"] = 98
    (tmp_path / gpt_io.CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"do not fit.*transformer.wte.weight.*vocab_size"):
        gpt_io.load_gpt(tmp_path)


def test_failed_save_keeps_the_previous_files(tmp_path, monkeypatch):
    gpt_io.save_gpt(make_model(seed=0), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        gpt_io.save_gpt(make_model(seed=1), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # and no temp files left


# ---- the notebook builds the same model ----------------------------------------------------------------
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_tiny_gpt.ipynb"


@pytest.mark.skipif(not NOTEBOOK.exists(), reason="notebook 02 not written yet")
@pytest.mark.parametrize("name", CONFIGS)
def test_notebook_gpt_equals_helpers(name):
    from notebook_defs import load_definitions

    nb = load_definitions(NOTEBOOK)
    c = CONFIGS[name]
    ours = make_model(c)
    theirs = nb.GPT(nb.GPTConfig(vocab_size=c.vocab_size, block_size=c.block_size, n_layer=c.n_layer,
                                 n_head=c.n_head, n_embd=c.n_embd)).eval()
    theirs.load_state_dict(ours.state_dict())  # same parameter names and shapes, strictly
    idx = tokens(c, 2, c.block_size)
    torch.testing.assert_close(theirs(idx), ours(idx), atol=0, rtol=0)
    # The notebook's hand-written attention equals its SDPA version, like helpers' does.
    x = torch.randn(2, 7, c.n_embd)
    attn = theirs.transformer.h[0].attn
    assert F.mse_loss(attn(x), attention_by_hand(attn, x)).item() < 1e-12


def test_export_works_with_pipeline_and_peft():
    """The issue's promise: the learner's own model works with transformers' pipelines and peft."""
    from peft import LoraConfig, get_peft_model
    from transformers import pipeline

    from helpers.scratch.tokenizer import BPETokenizer

    tok = BPETokenizer.train("the film was good. the film was bad. " * 20, vocab_size=280)
    model = make_model(GPTConfig.preset("gpt-nano", vocab_size=tok.vocab_size, block_size=32))
    hf = gpt_io.to_transformers(model, eos_token_id=tok.eot_id)
    generator = pipeline("text-generation", model=hf, tokenizer=tok.to_transformers(), device="cpu")
    text = generator("the film", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    prompt = torch.tensor([tok.encode("the film")])
    assert text == tok.decode(model.generate(prompt, 5, temperature=0)[0].tolist())

    lora = get_peft_model(hf, LoraConfig(r=4, target_modules=["c_attn"], fan_in_fan_out=True))
    C = model.config.n_embd  # r x (C in + 3C out) adapter weights on each layer's c_attn
    assert lora.get_nb_trainable_parameters()[0] == model.config.n_layer * 4 * (C + 3 * C)
    with torch.no_grad():  # LoRA's B starts at zero: the wrapped model still equals ours
        torch.testing.assert_close(lora(prompt).logits, model(prompt), atol=1e-5, rtol=0)
