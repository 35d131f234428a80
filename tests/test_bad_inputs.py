"""Bad input at the public boundary: each row is (id, call, expected error type, a phrase of the message).

Issue 13's battery, for the entry points outside the training loop (the loop's own table is
tests/test_bad_inputs_core.py): data, measure (break-even, money, ledger, latency, assumptions, FLOPs),
instruct (examples, templates, masking, packing, scoring, LoRA and adapters, models), deploy (canary, chat,
widgets), course (profiles, artifacts, catch-ups, budgets, exercises) and the two command-line tools. In the
style of peft's test tables: each row changes one thing from a valid call, and the message must name it (the
phrase) with the error type a caller would catch. Every module's valid calls are proven to still work.

Run:  .venv/bin/python -m pytest tests/test_bad_inputs.py -q      (~60 s, 35 of them the CLI subprocesses; no network)
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import re
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tiny_llama import tiny_llama, tiny_tokenizer

from helpers.core import checks, data
from helpers.core.records import RunRecord
from helpers.course import budget, catchup
from helpers.course.artifacts import artifacts_dir
from helpers.course.exercises import check_exercise, exercises_for
from helpers.course.profiles import get_profile
from helpers.course.scale_out import per_process, world
from helpers.deploy import canary, chat, widgets
from helpers.instruct import instructions, lora, masking, models, packing, scoring, templates
from helpers.instruct.instructions import Example
from helpers.measure import breakeven, flops, latency, ledger, money
from helpers.measure.assumptions import DEFAULT_ASSUMPTIONS
from helpers.scratch.gpt import GPT, GPTConfig
from helpers.scratch.gpt_io import to_transformers

NAN = math.nan
ROOT = Path(__file__).resolve().parents[1]
GOOD_RECORD = dict(name="r", route="scratch", device="cpu", precision="fp32", steps=1, wall_seconds=10.0, tokens=10,
                   flops=60.0, flops_method="6N", achieved_flops_per_s=6.0, peak_flops_per_s=1e9, mfu=6e-9,
                   peak_memory_bytes=1, trainable_params=1, total_params=2, test_set="t", metrics={"accuracy": 0.5})


# ----------------------------------------------------------------------------- valid objects, built on demand


@functools.cache
def _inputs() -> breakeven.BreakEvenInputs:
    return breakeven.BreakEvenInputs.from_assumptions(tokens_in=200, tokens_out=100, local_tokens_per_s=20)


@functools.cache
def _result() -> breakeven.BreakEven:
    return breakeven.break_even(_inputs())


def _record(**changes) -> RunRecord:
    return RunRecord(**{**GOOD_RECORD, **changes})


def _changed(name: str, value) -> RunRecord:
    """A valid record whose field is changed *after* it was made (RunRecord checks only at construction)."""
    record = _record()
    setattr(record, name, value)
    return record


def _tok(chat_template: bool = True):
    return tiny_tokenizer(chat=chat_template)


def _example() -> Example:
    return Example("How long do I have to return an item?", "45 days.", source="test")


def _encoded() -> list[masking.Encoded]:
    return [masking.encode(_tok(), _example())]


def _rows() -> list[packing.Row]:
    return packing.pack(_encoded(), 64, 0)


def _loaded(chat_template: bool = True) -> models.LoadedModel:
    return models.LoadedModel(tiny_llama(), _tok(chat_template), None, "test", 0.0)


def _gpt2():
    """Our tiny GPT exported to transformers: a GPT2LMHeadModel, whose attention is a Conv1D."""
    torch.manual_seed(0)
    return to_transformers(GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=16)))


def _adapter(tmp: Path, damage: str | None = None) -> Path:
    """A saved tiny-Llama adapter in tmp/adapter, then damaged: 'weights', 'json', 'missing' or None."""
    folder = lora.save_adapter(lora.add_lora(tiny_llama(), ["q_proj"], r=2, alpha=4), tmp / "adapter", "tiny")
    if damage == "weights":
        (folder / lora.ADAPTER_WEIGHTS).write_bytes(b"not a safetensors file")
    elif damage == "json":
        (folder / lora.ADAPTER_CONFIG).write_text("{half")
    elif damage == "missing":
        (folder / lora.ADAPTER_WEIGHTS).unlink()
    return folder


def _load_from_cache(tmp: Path, manifest: dict):
    """load_model() with a cache in `tmp` whose manifest is `manifest` (format and source hash right)."""
    spec = models.get_spec(models.DEFAULT_MODEL)
    folder = tmp / "models" / spec.name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"format": models.CACHE_FORMAT, "source_sha256": spec.sha256,
                                                      **manifest}))
    old = os.environ.get(models.CACHE_ENV)
    os.environ[models.CACHE_ENV] = str(tmp)
    try:
        return models.load_model()
    finally:
        if old is None:
            os.environ.pop(models.CACHE_ENV)
        else:
            os.environ[models.CACHE_ENV] = old


def _other_base():
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(vocab_size=400, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2))


def _session(**config) -> chat.ChatSession:
    return chat.ChatSession(tiny_llama(), _tok(), chat.ChatConfig(**config) if config else None)


def _faq_item() -> instructions.FaqItem:
    return instructions.load_faq("heldout", 1)[0]


def _logits(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros(*x.shape, 8)  # (B, T, V): a model that knows nothing


class _Meter:
    kwh = NAN
    method = "measured: RAPL"


CANARY = canary.make_canary(0)
LEDGER = ledger.Ledger([_record(), _record(name="s", test_set="other")])

CASES = [
    # (id, call, error type, phrase in the message); a call taking `tmp` gets a fresh temporary folder
    # --- core.data (the lead's first rows)
    ("test_set negative n", lambda: data.test_set(-5), ValueError, "n=-5"),
    ("test_set float n", lambda: data.test_set(2.5), ValueError, "whole number"),
    ("test_set bool n", lambda: data.test_set(True), ValueError, "n=True"),
    ("test_set zero max_chars", lambda: data.test_set(4, max_chars=0), ValueError, "max_chars=0"),
    ("labelled_pool negative n", lambda: data.labelled_pool(-1), ValueError, "n=-1"),
    ("labelled_pool too many", lambda: data.labelled_pool(10**9), ValueError, "use n <="),
    ("pretraining_text negative", lambda: data.pretraining_text(max_chars=-10), ValueError, "max_chars=-10"),
    # --- core.checks: the one message shape every row below shares
    ("checks count of a bool", lambda: checks.count("n", True), ValueError,
     "n must be an integer >= 0 (a bool is not a count), got True"),
    ("checks number inf", lambda: checks.number("x", math.inf, 0), ValueError,
     "x must be a finite number >= 0, got inf"),
    ("checks instance public path", lambda: checks.instance("m", 1, torch.nn.Module, "fix"), TypeError,
     "m must be a torch.nn.Module, got int 1: fix"),
    ("checks non_empty of a string", lambda: checks.non_empty("xs", "abc"), TypeError, "xs must be a list"),
    ("checks token_ids of floats", lambda: checks.token_ids("ids", [1.0]), ValueError, "ids[0] must be a token id"),
    # --- measure.breakeven: volumes, cost models, inputs, the grid
    ("cheapest negative volume", lambda: _result().cheapest(-5), ValueError,
     "requests must be a finite number of requests per month >= 0, got -5.0"),
    ("cheapest NaN volume", lambda: _result().cheapest(NAN), ValueError, "got nan: a volume cannot be negative or NaN"),
    ("cheapest text volume", lambda: _result().cheapest("1e5"), TypeError, "must be a number of requests per month"),
    ("cheapest several volumes", lambda: _result().cheapest([1, 2]), TypeError, "cheapest takes one volume"),
    ("CostModel.cost negative", lambda: breakeven.CostModel("api", 0, 1.0).cost([1, -1]), ValueError, "got -1.0"),
    ("CostModel NaN price", lambda: breakeven.CostModel("x", NAN), ValueError,
     "fixed_eur_per_unit must be a finite number >= 0, got nan"),
    ("CostModel zero capacity", lambda: breakeven.CostModel("x", 1, 0, 0), ValueError, "requests_per_unit must be > 0"),
    ("CostModel bool units", lambda: breakeven.CostModel("x", min_units=True), ValueError, "a bool is not a count"),
    ("BreakEvenInputs bool tokens", lambda: replace(_inputs(), tokens_in=True), ValueError,
     "tokens_in must be a finite number > 0, got True"),
    ("BreakEvenInputs always_on text", lambda: replace(_inputs(), cloud_always_on="yes"), ValueError,
     "cloud_always_on must be True or False"),
    ("BreakEvenInputs utilisation > 1", lambda: replace(_inputs(), max_utilisation=1.5), ValueError,
     "max_utilisation must be in (0, 1]"),
    ("from_assumptions NaN speed", lambda: breakeven.BreakEvenInputs.from_assumptions(
        tokens_in=1, tokens_out=1, local_tokens_per_s=NAN), ValueError, "local_tokens_per_s must be a finite number"),
    ("from_assumptions unknown override", lambda: breakeven.BreakEvenInputs.from_assumptions(
        tokens_in=1, tokens_out=1, local_tokens_per_s=1, colour=1), TypeError, "break-even input(s) ['colour']"),
    ("from_assumptions no cloud price", lambda: breakeven.BreakEvenInputs.from_assumptions(
        tokens_in=1, tokens_out=1, local_tokens_per_s=1, cloud_device="gpu-rtx4090"), ValueError, "has no cloud price"),
    ("break_even one point", lambda: breakeven.break_even(_inputs(), points=1), ValueError,
     "points must be an integer >= 2, got 1"),
    ("break_even NaN max", lambda: breakeven.break_even(_inputs(), max_requests=NAN), ValueError,
     "max_requests must be a finite number > 0, got nan"),
    ("break_even no options", lambda: breakeven.break_even({}), ValueError, "inputs is an empty dict"),
    ("crossovers too many machines", lambda: breakeven.crossovers(
        breakeven.CostModel("a", 1, 0, 1), breakeven.CostModel("b", 0, 1.0), 1e9), ValueError,
     "lower max_requests or raise the throughput"),
    ("plot_break_even not a result", lambda: breakeven.plot_break_even(_inputs()), TypeError,
     "result must be a helpers.measure.breakeven.BreakEven"),
    # --- measure.money: no path prices NaN seconds or kWh
    ("run_cost NaN seconds", lambda: money.run_cost(_changed("wall_seconds", NAN)), ValueError,
     "wall_seconds must be a finite number >= 0, got nan"),
    ("run_cost negative kWh", lambda: money.run_cost(_changed("energy_kwh", -1.0)), ValueError,
     "energy_kwh must be a finite number >= 0, got -1.0"),
    ("run_cost not a record", lambda: money.run_cost(GOOD_RECORD), TypeError,
     "record must be a helpers.core.records.RunRecord"),
    ("run_cost unknown device", lambda: money.run_cost(_record(), device_key="tpu"), KeyError, "unknown device 'tpu'"),
    ("attach_energy NaN meter", lambda: money.attach_energy(_record(), _Meter()), ValueError,
     "meter.kwh must be a finite number >= 0, got nan"),
    ("estimated_kwh negative", lambda: money.estimated_kwh(-1, 10), ValueError, "seconds must be a finite number >= 0"),
    ("pretraining_estimate MFU > 1", lambda: money.pretraining_estimate(
        1e6, flops_per_s=1e12, utilisation=1.5, power_w=1, price_eur_per_kwh=1), ValueError,
     "utilisation (MFU) must be a finite number > 0 and <= 1, got 1.5"),
    ("pretraining_estimate bool N", lambda: money.pretraining_estimate(
        True, flops_per_s=1e12, utilisation=0.5, power_w=1, price_eur_per_kwh=1), ValueError, "n_params must be a"),
    ("reference_machines MFU 0", lambda: money.reference_machines(1e12, 0), ValueError,
     "measured_mfu must be a finite number > 0 and <= 1, got 0"),
    ("reference_machines key as text", lambda: money.reference_machines(gpu_keys="gpu-a100"), TypeError,
     "write ('gpu-a100',)"),
    ("pretraining_table no sizes", lambda: money.pretraining_table([], money.reference_machines()), ValueError,
     "n_params_list is empty"),
    # --- measure.ledger
    ("Ledger of one record", lambda: ledger.Ledger(_record()), TypeError, "write Ledger([record])"),
    ("Ledger.add a dict", lambda: ledger.Ledger().add(GOOD_RECORD), TypeError, "Ledger.add expects a RunRecord"),
    ("Ledger.table NaN seconds", lambda: ledger.Ledger([_changed("wall_seconds", NAN)]).table(), ValueError,
     "wall_seconds must be a finite number >= 0, got nan"),
    ("Ledger.table extras as text", lambda: LEDGER.table(extras="n_examples"), TypeError,
     "extras must be a list of names"),
    ("Ledger.table empty", lambda: ledger.Ledger().table(), ledger.EmptyLedgerError, "the ledger is empty"),
    ("Ledger.compare other test sets", lambda: LEDGER.compare("accuracy"), ValueError, "evaluate both on the same"),
    ("Ledger.compare unknown run", lambda: LEDGER.compare("accuracy", ["nope"]), KeyError, "no run named ['nope']"),
    ("Ledger.load_or_new a number", lambda: ledger.Ledger.load_or_new(3), TypeError, "path must be a str or"),
    ("Ledger.load half JSON", lambda tmp: ledger.Ledger.load(_write(tmp / "l.json", "{half")), ValueError,
     "l.json is not a ledger file"),
    ("Ledger.load NaN seconds", lambda tmp: ledger.Ledger.load(_write(tmp / "l.json", json.dumps(
        {"format": 1, "records": [{**GOOD_RECORD, "wall_seconds": NAN}]}))), ValueError, "l.json: record 0 ('r')"),
    # --- measure.latency and assumptions
    ("time_stream of a string", lambda: latency.time_stream("abc"), TypeError, "timed letter by letter"),
    ("measure of a used stream", lambda: latency.measure(iter([1, 2])), TypeError, "make_stream must be a function"),
    ("measure zero repeats", lambda: latency.measure(lambda: [1], repeats=0), ValueError,
     "repeats must be an integer >= 1, got 0"),
    ("cloud stats zero tokens", lambda: latency.CLOUD_ROUND_TRIP.stats(0), ValueError, "new_tokens must be an integer"),
    ("edit NaN energy price", lambda: DEFAULT_ASSUMPTIONS.edit(energy_price=NAN), ValueError,
     "assumption 'energy_price' must be > 0 EUR/kWh, got nan"),
    ("edit bool energy price", lambda: DEFAULT_ASSUMPTIONS.edit(energy_price=True), ValueError, "got True"),
    ("edit unknown assumption", lambda: DEFAULT_ASSUMPTIONS.edit(colour=1), KeyError, "unknown assumption 'colour'"),
    ("with_device incomplete", lambda: DEFAULT_ASSUMPTIONS.with_device("mine", power_w=45), ValueError,
     "needs power_w and hardware_price"),
    # --- measure.flops
    ("param_counts of a name", lambda: flops.param_counts("gpt"), TypeError, "model must be a torch.nn.Module"),
    ("training_flops seq_len 0", lambda: flops.training_flops_per_token(tiny_llama(), seq_len=0), ValueError,
     "seq_len must be an integer >= 1, got 0"),
    ("full_training_flops bool N", lambda: flops.full_training_flops(True, 10), ValueError,
     "n_params must be a positive number, got True"),
    ("FlopCount NaN", lambda: flops.FlopCount(NAN, "6N"), ValueError, "per_token must be a finite number >= 0, got"),
    ("Attention zero length", lambda: flops.Attention(2, 64, 0), ValueError, "Attention.seq_len must be an integer"),
    # --- instruct: examples, templates, masking
    ("encode_all empty list", lambda: masking.encode_all(_tok(), [], 256), ValueError,
     "examples is an empty list: there is nothing to encode"),
    ("encode_all one Example", lambda: masking.encode_all(_tok(), _example(), 256), TypeError, "write [example]"),
    ("encode_all max_length 1", lambda: masking.encode_all(_tok(), [_example()], 1), ValueError,
     "max_length must be an integer >= 2, got 1"),
    ("encode_all too_long cut", lambda: masking.encode_all(_tok(), [_example()], 64, "cut"), ValueError,
     "too_long must be one of 'drop', 'truncate'"),
    ("encode_all our BPE tokenizer", lambda: masking.encode_all("tok", [_example()], 64), TypeError,
     "tokenizer must be a transformers tokenizer"),
    ("mask_prompt empty prompt", lambda: masking.mask_prompt([], [5]), ValueError, "prompt_ids is empty"),
    ("mask_prompt negative id", lambda: masking.mask_prompt([1], [-3]), ValueError, "response_ids[0] must be a token"),
    ("Example empty prompt", lambda: Example(" ", "x"), ValueError, "Example.prompt is empty"),
    ("Example shots as list", lambda: Example("q", "a", shots=[("u", "a")]), TypeError, "shots must be a tuple"),
    ("load_faq unknown split", lambda: instructions.load_faq("dev"), ValueError, "unknown FAQ split 'dev'"),
    ("load_faq negative n", lambda: instructions.load_faq(n=-1), ValueError, "n must be an integer >= 0, got -1"),
    ("instruction_dataset negative", lambda: instructions.instruction_dataset(-2), ValueError,
     "n_sentiment must be an integer >= 0"),
    ("from_dataset empty", lambda: instructions.from_dataset([]), ValueError, "dataset is empty"),
    ("from_dataset wrong column", lambda: instructions.from_dataset([{"q": "a"}]), KeyError,
     "the dataset has no column 'instruction'"),
    ("render without template or fallback", lambda: templates.render(_tok(False), _example(), fallback=None),
     templates.TemplateError, "no chat template and no fallback"),
    ("render fallback missing key", lambda: templates.render(_tok(False), _example(), {"user": "{}"}), ValueError,
     "fallback lacks the key(s) ['system', 'assistant']"),
    # --- instruct: packing
    ("pack max_length 0", lambda: packing.pack(_encoded(), 0, 0), ValueError, "max_length must be an integer >= 1"),
    ("pack nothing", lambda: packing.pack([], 8, 0), ValueError, "encoded is an empty list"),
    ("pack too long", lambda: packing.pack(_encoded(), 3, 0), ValueError, "run encode_all first"),
    ("pack negative pad", lambda: packing.pack(_encoded(), 64, -1), ValueError, "pad_id must be an integer >= 0"),
    ("packed_batches batch 0", lambda: packing.packed_batches(_rows(), 0), ValueError,
     "batch_size must be an integer >= 1, got 0"),
    ("padding_waste nothing", lambda: packing.padding_waste([]), ValueError, "padding_waste needs a non-empty list"),
    ("segment_ids 1-D", lambda: packing.segment_ids(torch.arange(4)), ValueError, "of shape (B, T), got"),
    # --- instruct: scoring
    ("score_sentiment label 2", lambda: scoring.score_sentiment(["positive"], [2]), ValueError,
     "labels must be 0 (negative) or 1 (positive), got 2"),
    ("score_sentiment unpaired", lambda: scoring.score_sentiment(["a"], [0, 1]), ValueError, "1 generations but 2"),
    ("score_faq nothing", lambda: scoring.score_faq([], []), ValueError, "nothing to score"),
    ("score_faq not items", lambda: scoring.score_faq(["x"], ["45"]), TypeError, "items[0] must be a"),
    ("generate empty prompt", lambda: scoring.generate(tiny_llama(), _tok(), [[]]), ValueError, "prompts[0] is empty"),
    ("generate id past the vocabulary", lambda: scoring.generate(tiny_llama(), _tok(), [[1, 400]]), ValueError,
     "prompts[0] contains token id 400, outside the model's vocabulary"),
    ("text_loss id past the vocabulary", lambda: scoring.text_loss(_logits, [1, 8], 4, 3), ValueError,
     "token id 8, outside the model's vocabulary of 8"),
    ("text_scorer one-token text", lambda: canary.text_scorer(_logits, lambda t: [1] * len(t))(["ab", "a"]),
     ValueError, "'a' has fewer"),
    ("generate zero tokens", lambda: scoring.generate(tiny_llama(), _tok(), [[1, 2]], 0), ValueError,
     "max_new_tokens must be an integer >= 1, got 0"),
    ("text_loss block 1", lambda: scoring.text_loss(_logits, [1, 2, 3], 1, 3), ValueError,
     "block_size must be an integer >= 2, got 1"),
    ("text_loss zero bytes", lambda: scoring.text_loss(_logits, [1, 2, 3], 4, 0), ValueError, "n_bytes must be an"),
    ("sentiment_shots negative", lambda: scoring.sentiment_shots(-1), ValueError, "k must be an integer >= 0, got -1"),
    # --- instruct: LoRA, adapters, models
    ("add_lora on GPT-2's Conv1D", lambda: lora.add_lora(_gpt2(), ["c_attn"]), ValueError,
     "['c_attn'] of GPT2LMHeadModel exist but are transformers Conv1D layers"),
    ("add_lora target as text", lambda: lora.add_lora(tiny_llama(), "q_proj"), TypeError, "write ['q_proj']"),
    ("add_lora rank 0", lambda: lora.add_lora(tiny_llama(), ["q_proj"], r=0), ValueError,
     "LoRA r must be a positive integer, got 0"),
    ("add_lora dropout 1", lambda: lora.add_lora(tiny_llama(), ["q_proj"], dropout=1.0), ValueError,
     "LoRA dropout must be below 1"),
    ("add_lora our GPT", lambda: lora.add_lora(GPT(GPTConfig.preset("gpt-nano")), ["qkv"]), TypeError,
     "add_lora wraps a transformers causal LM"),
    ("save_adapter plain model", lambda tmp: lora.save_adapter(tiny_llama(), tmp, "tiny"), TypeError,
     "peft_model must be a peft PeftModel"),
    ("save_adapter note not JSON", lambda tmp: lora.save_adapter(lora.add_lora(tiny_llama(), ["q_proj"]), tmp, "tiny",
                                                                {"when": object()}), TypeError, "note must hold only"),
    ("load_adapter bad safetensors", lambda tmp: lora.load_adapter(tiny_llama(), _adapter(tmp, "weights")),
     lora.AdapterFileError, "adapter/adapter_model.safetensors is damaged (not a safetensors file"),
    ("load_adapter bad JSON", lambda tmp: lora.load_adapter(tiny_llama(), _adapter(tmp, "json")),
     lora.AdapterFileError, "adapter/adapter_config.json is damaged (not JSON"),
    ("load_adapter weights missing", lambda tmp: lora.load_adapter(tiny_llama(), _adapter(tmp, "missing")),
     lora.AdapterFileError, "or delete the folder adapter/ and run notebook 05 again"),
    ("load_adapter other base", lambda tmp: lora.load_adapter(_other_base(), _adapter(tmp)), lora.AdapterFileError,
     "was trained on another base model"),
    ("chat without a template", lambda: models.chat(_loaded(False), "Hi?"), ValueError,
     "helpers.instruct.scoring.generate(loaded.model"),
    ("chat empty question", lambda: models.chat(_loaded(), " "), ValueError, "question must be a non-empty string"),
    ("load_model manifest without files", lambda tmp: _load_from_cache(tmp, {}), models.HashMismatchError,
     "manifest.json is damaged (KeyError: 'files'): delete"),
    ("load_model cache file missing", lambda tmp: _load_from_cache(tmp, {"files": {"model.safetensors": "0" * 64}}),
     models.HashMismatchError, "does not match its manifest (sha256 missing"),
    ("get_spec unknown", lambda: models.get_spec("gpt-5"), KeyError, "unknown model 'gpt-5'"),
    ("get_spec number", lambda: models.get_spec(3), TypeError, "model name must be a non-empty string"),
    ("load_model dtype as text", lambda: models.load_model(dtype="float32"), TypeError, "dtype must be a torch.dtype"),
    ("tune not a LoadedModel", lambda: lora.tune(tiny_llama(), get_profile("ci").instruct), TypeError,
     "loaded must be a helpers.instruct.models.LoadedModel"),
    # --- deploy: canary
    ("make_canary no digits", lambda: canary.make_canary(pattern="347"), ValueError, "has no '#'"),
    ("make_canary no slot", lambda: canary.make_canary(template="my number"), ValueError, "needs a '{secret}' slot"),
    ("Canary secret of another format", lambda: canary.Canary("12"), ValueError, "does not fit its pattern"),
    ("candidates zero", lambda: canary.candidates(CANARY, 0), ValueError, "n_candidates must be in [1,"),
    ("plant into nothing", lambda: canary.plant([], CANARY.text, 1), ValueError, "texts is empty"),
    ("plant too often", lambda: canary.plant(["a", "b", "c"], CANARY.text, 5), ValueError, "repeats must be in [1, 3]"),
    ("exposure rank 0", lambda: canary.exposure(0, 10), ValueError, "rank must be in [1, 10]"),
    ("measure_exposure NaN scores", lambda: canary.measure_exposure(lambda texts: [NAN] * len(texts), CANARY, 9),
     ValueError, "one finite log-probability per text"),
    ("text_scorer batch 0", lambda: canary.text_scorer(_logits, lambda t: [1, 2], batch_size=0), ValueError,
     "batch_size must be an integer >= 1, got 0"),
    # --- deploy: chat and widgets
    ("ChatConfig NaN temperature", lambda: chat.ChatConfig(temperature=NAN), ValueError,
     "ChatConfig.temperature must be a finite number >= 0, got nan"),
    ("ChatConfig top_k 0", lambda: chat.ChatConfig(top_k=0), ValueError, "top_k must be None or an int >= 1"),
    ("ChatConfig bool tokens", lambda: chat.ChatConfig(max_new_tokens=True), ValueError, "max_new_tokens must be"),
    ("ChatConfig negative seed", lambda: chat.ChatConfig(seed=-1), ValueError, "ChatConfig.seed must be an integer"),
    ("stream_tokens empty prompt", lambda: chat.stream_tokens(tiny_llama(), [], 4), ValueError, "prompt_ids is empty"),
    ("stream_tokens id past the vocabulary", lambda: chat.stream_tokens(tiny_llama(), [1, 10_000], 4), ValueError,
     "prompt_ids contains token id 10000, outside the model's vocabulary (vocab_size=400)"),
    ("stream_tokens stop id as text", lambda: chat.stream_tokens(tiny_llama(), [1], 4, stop_ids="2"), TypeError,
     "stop_ids must be a list of token ids"),
    ("ChatSession without template", lambda: chat.ChatSession(tiny_llama(), _tok(False)), ValueError,
     "this tokenizer has no chat template"),
    ("ChatSession config as dict", lambda: chat.ChatSession(tiny_llama(), _tok(), {"max_new_tokens": 5}), TypeError,
     "config must be a helpers.deploy.chat.ChatConfig"),
    ("ChatSession empty message", lambda: _session().prompt_ids(""), ValueError, "the message is empty"),
    ("edit_inputs NaN tokens", lambda: widgets.edit_inputs(_inputs(), NAN), ValueError,
     "tokens_per_request must be a finite number > 0, got nan"),
    ("edit_inputs unknown field", lambda: widgets.edit_inputs(_inputs(), colour=1), TypeError,
     "unknown break-even input(s) ['colour']"),
    ("break_even_summary negative", lambda: widgets.break_even_summary(_result(), -1), ValueError,
     "requests_per_month must be a finite number of requests per month >= 0"),
    ("status_line before an answer", lambda: widgets.status_line(_session()), ValueError,
     "the session has no answer yet"),
    ("break_even_widget off the slider", lambda: widgets.break_even_widget(_inputs(), 1e9), ValueError,
     "the slider spans 1e2 to 1e8"),
    # --- course
    ("get_profile unknown", lambda: get_profile("tpu"), ValueError, "unknown course profile 'tpu'"),
    ("get_profile number", lambda: get_profile(3), TypeError, "profile name must be a string"),
    ("profile sizes negative steps", lambda: replace(get_profile("ci").pretrain, max_steps=-1), ValueError,
     "PretrainSizes.max_steps must be an integer >= 0, got -1"),
    ("profile sizes NaN rate", lambda: replace(get_profile("ci").instruct, learning_rate=NAN), ValueError,
     "InstructSizes.learning_rate must be a finite number >= 0, got nan"),
    ("profile sizes ladder as list", lambda: replace(get_profile("ci").compare, n_ladder=[4, 16]), TypeError,
     "CompareSizes.n_ladder must be a tuple"),
    ("artifacts_dir outside", lambda: artifacts_dir("../x", create=False), ValueError, "names inside artifacts/"),
    ("gpt_config vocab 0", lambda: catchup.gpt_config(get_profile("ci").pretrain, 0), ValueError,
     "vocab_size must be an integer >= 1, got 0"),
    ("course_tokenizer retrain text", lambda: catchup.course_tokenizer("ci", retrain="yes"), ValueError,
     "retrain must be True or False"),
    ("estimate_runtimes NaN peak", lambda: budget.estimate_runtimes(get_profile("ci"), NAN), ValueError,
     "peak_flops must be a positive FLOP/s figure, got nan"),
    ("notebook_key no number", lambda: budget.notebook_key("intro.ipynb"), ValueError, "start with two digits"),
    ("budget_line unknown notebook", lambda: budget.budget_line("99_extra.ipynb"), KeyError,
     "no stated budget for notebook '99'"),
    ("check_exercise unknown", lambda: check_exercise("03", 99, 1), KeyError, "no exercise 99 in notebook 03"),
    ("check_exercise number as text", lambda: check_exercise("03", "one", 1), TypeError, "number='one'"),
    ("exercises_for a dict", lambda: exercises_for({"nb": 3}), TypeError, "notebook must be a notebook number"),
    ("pretrained_tiny_gpt HF tokenizer", lambda: catchup.pretrained_tiny_gpt("ci", _tok()), TypeError,
     "tokenizer must be a helpers.scratch"),
    ("per_process uneven", lambda: per_process(get_profile("ci"), 3), ValueError, "cannot split"),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("call, error, phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(tmp_path, call, error, phrase):
    with pytest.raises(error) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft and transformers deprecation notes: not what is tested
        call(tmp_path) if call.__code__.co_argcount else call()
    assert phrase in str(info.value), f"message does not name {phrase!r}: {info.value}"


def test_the_table_is_large_enough():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


# ----------------------------------------------------------------------------- the examples, in full


def test_cheapest_refuses_negative_and_nan_volumes_but_answers_valid_ones():
    result = _result()
    for bad in (-5, -1e-9, NAN, math.inf):
        with pytest.raises(ValueError, match="a volume cannot be negative or NaN"):
            result.cheapest(bad)
    assert result.cheapest(0) in result.models and result.cheapest(1e5) in result.models
    assert all(cost >= 0 for cost in result.table()[list(result.models)].to_numpy().ravel())


def test_no_path_prices_nan_seconds():
    """Issue 13: run_cost with NaN seconds returned total_eur=nan. Every way to get NaN seconds in is refused."""
    with pytest.raises(ValueError, match="wall_seconds must be a finite number >= 0, got nan"):
        _record(wall_seconds=NAN)  # made with NaN
    with pytest.raises(ValueError, match="got nan"):
        RunRecord.from_dict({**GOOD_RECORD, "wall_seconds": NAN})  # read with NaN
    bad = _changed("wall_seconds", NAN)  # changed to NaN afterwards
    for price in (money.run_cost, money.attach_energy, lambda r: ledger.Ledger([r]).table()):
        with pytest.raises(ValueError, match="record 'r': wall_seconds must be a finite number >= 0, got nan"):
            price(bad)
    cost = money.run_cost(_record())
    assert all(math.isfinite(v) for v in (cost.kwh, cost.energy_eur, cost.hardware_eur, cost.total_eur))


def test_chat_without_a_template_recommends_functions_that_exist_and_work():
    loaded = _loaded(chat_template=False)
    with pytest.raises(ValueError) as info:
        models.chat(loaded, "How long do I have to return an item?")
    named = set(re.findall(r"helpers(?:\.\w+)+", str(info.value)))
    assert {"helpers.instruct.scoring.generate", "helpers.instruct.scoring.prompt_ids"} <= named
    for dotted in named:  # every function the message names exists
        module, _, attr = dotted.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), dotted
    # and the recommended call answers with this very model
    prompts = scoring.prompt_ids(loaded.tokenizer, [Example("How long do I have to return an item?", "")])
    answer = scoring.generate(loaded.model, loaded.tokenizer, prompts, max_new_tokens=3)
    assert len(answer) == 1 and isinstance(answer[0], str)


def test_lora_on_exported_gpt2_names_the_conv1d_and_both_fixes_work():
    from peft import LoraConfig, get_peft_model

    with pytest.raises(ValueError) as info:
        lora.add_lora(_gpt2(), ["c_attn"])
    message = str(info.value)
    assert "exist but are transformers Conv1D layers" in message and "do not exist" not in message
    assert "linear layers are named ['lm_head']" in message and "fan_in_fan_out=True" in message
    ids = torch.tensor([[1, 2, 3]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = lora.add_lora(_gpt2(), ["lm_head"])  # the linear target it names
        conv = get_peft_model(_gpt2(), LoraConfig(target_modules=["c_attn"], fan_in_fan_out=True))  # the peft fix
    assert wrapped(ids).logits.shape == conv(ids).logits.shape == (1, 3, 64)
    assert sum(p.numel() for p in conv.parameters() if p.requires_grad) > 0


def test_a_damaged_adapter_deleted_as_told_is_trained_again(tmp_path):
    """The fix the message names works: once the damaged folder is gone, a fresh save loads with stock peft."""
    folder = _adapter(tmp_path, "weights")
    with pytest.raises(lora.AdapterFileError, match="delete the folder adapter/"):
        lora.load_adapter(tiny_llama(), folder)
    _adapter(tmp_path)  # re-saved over it, as the message says
    assert type(lora.load_adapter(tiny_llama(), folder)).__name__ == "PeftModelForCausalLM"


def test_stream_tokens_checks_when_called_not_at_the_first_token():
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 1"):
        chat.stream_tokens(tiny_llama(), [1, 2], 0)  # no next(): the generator is never started


def test_scale_out_names_a_bad_rank(monkeypatch):
    monkeypatch.setenv("RANK", "first")
    with pytest.raises(ValueError, match="RANK='first' is not an integer: start the run with torchrun"):
        world()
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="RANK=2 is outside WORLD_SIZE=2"):
        world()


# ----------------------------------------------------------------------------- the command-line tools

CLI_CASES = [
    # (id, module, arguments, phrase on stderr); each must exit 2 without running anything
    ("offline unknown command", "helpers.course.offline", ["deploy"], "invalid choice: 'deploy'"),
    ("offline extra argument", "helpers.course.offline", ["check", "now"], "unrecognized arguments: now"),
    ("run_notebooks no folder", "helpers.course.run_notebooks", ["{tmp}/none"], "no folder"),
    ("run_notebooks empty folder", "helpers.course.run_notebooks", ["{tmp}"], "no notebooks named NN_name.ipynb"),
    ("run_notebooks unknown --only", "helpers.course.run_notebooks", ["{tmp}", "--only", "99"],
     "--only 99 matches no notebook"),
    ("run_notebooks timeout as text", "helpers.course.run_notebooks", ["{tmp}", "--timeout", "soon"],
     "invalid int value: 'soon'"),
]


@pytest.mark.parametrize("module, arguments, phrase", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_command_line_tools_refuse_bad_arguments(tmp_path, module, arguments, phrase):
    if "--only" in arguments:
        (tmp_path / "00_setup.ipynb").write_text("{}")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    done = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert phrase in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- valid calls still work


def _valid_measure():
    result = _result()
    assert result.cheapest(1e5) in ("local", "cloud", "api") and len(result.table()) == 400
    record = money.attach_energy(_record())
    assert money.run_cost(record).total_eur > 0
    assert money.pretraining_table([1e6], money.reference_machines(1e12, 0.5)).shape[0] == 3
    table = ledger.Ledger([record]).table(extras=("n_examples",))
    assert table.loc["r", "total_eur"] > 0 and math.isnan(table.loc["r", "n_examples"])
    assert latency.measure(lambda: iter([1, 2, 3]), repeats=1, warmup=0).new_tokens == 3
    assert DEFAULT_ASSUMPTIONS.edit(energy_price=0.35).energy_price.value == 0.35
    assert flops.training_flops_per_token(tiny_llama(), seq_len=8).per_token > 0


def _valid_instruct(tmp: Path):
    report = masking.encode_all(_tok(), [_example()], 64)
    rows = packing.pack(report.examples, 64, 0)
    assert packing.packed_batches(rows, 1)[0]["input_ids"].shape == (1, 64) and 0 <= packing.padding_waste(rows) < 1
    assert scoring.score_sentiment(["positive"], [1]).accuracy == 1.0
    assert scoring.score_faq([_faq_item().answer], [_faq_item()]).accuracy == 1.0
    assert scoring.text_loss(_logits, [1, 2, 3], 2, 3).tokens == 2
    assert models.get_spec(" SmolLM2-135M-Instruct ").name == models.DEFAULT_MODEL
    assert isinstance(models.chat(_loaded(), "Hi?", max_new_tokens=2), str)
    assert type(lora.load_adapter(tiny_llama(), _adapter(tmp))).__name__ == "PeftModelForCausalLM"


def _valid_deploy():
    c = canary.make_canary(3)
    assert canary.Canary(c.secret).secret == c.secret and len(canary.plant(["a", "b"], c.text, 2)) == 2
    assert canary.measure_exposure(lambda texts: [0.0] * len(texts), c, 9).rank == 10  # ties count against it
    assert len(list(chat.stream_tokens(tiny_llama(), [1, 2], 3))) == 3
    assert _session(max_new_tokens=3).send("Hi?") is not None
    assert "is cheapest" in widgets.break_even_summary(_result(), 1e5)
    assert widgets.edit_inputs(_inputs(), 600).tokens_per_request == pytest.approx(600)


def _valid_course():
    assert get_profile("CI").name == "ci" and budget.notebook_key("notebooks/03_x.ipynb") == "03"
    assert budget.estimate_runtimes(get_profile("ci"), 1e11).shape[0] == 8
    assert catchup.gpt_config(get_profile("ci").pretrain, 32).vocab_size == 32
    assert per_process(get_profile("ci"), 2).pretrain.batch_size == 8
    assert artifacts_dir("tokenizer", create=False).name == "tokenizer"
    assert check_exercise(3, 1, None).ok is False  # "replace None with your answer"
    assert exercises_for(3) == exercises_for("03") != [] and exercises_for("00") == []


@pytest.mark.parametrize("layer", ["measure", "instruct", "deploy", "course"])
def test_valid_calls_still_work(tmp_path, layer):
    """The table proves something only if the same entry points succeed when nothing is bad."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        {"measure": _valid_measure, "instruct": lambda: _valid_instruct(tmp_path), "deploy": _valid_deploy,
         "course": _valid_course}[layer]()
    assert len(data.test_set(4)) == 4 and list(data.test_set(4)["label"]) == [0, 1, 0, 1]
