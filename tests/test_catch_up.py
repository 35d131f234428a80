"""Catch-ups (helpers.course.catchup): every notebook runs on its own from an EMPTY artifacts folder.

Run: COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_catch_up.py -q        (the catch-up functions, ~1 min)
     COURSE_CATCHUP=1 COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_catch_up.py -v   (+ every notebook alone)

The functions: the course tokenizer, the pretrained tiny GPT and the LoRA adapter are each loaded from
artifacts/ when they were made for this profile, rebuilt (and saved) when missing, damaged or made for other
sizes; the profile's sizes reach the library as explicit arguments (`gpt_config`, `train_config`).

The notebooks: a learner must be able to open any notebook first: each notebook asks helpers for the earlier
notebooks' artifacts (tokenizer, pretrained tiny GPT, adapter, ledger), which build what is missing under the
current profile. `make test` already runs the notebooks *in order* from a fresh clone's empty artifacts/
(nbval); this test runs each one *alone*, with its own empty COURSE_ARTIFACTS_DIR, so it also rebuilds
every prerequisite. Measured alone on 2 shared cores (2026-11-25): 01 29 s, 02 19 s, 03 48 s, 04 79 s,
05 135 s, 06 124 s, 07 110 s (07 rebuilds the tokenizer, the tiny GPT and the LoRA adapter): ~9 min.
`make test` (and so CI) sets COURSE_CATCHUP=1; a bare `pytest` skips those unless you set it.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from helpers.core.data import pretraining_text
from helpers.course import catchup
from helpers.course.artifacts import REPO_ROOT
from helpers.course.profiles import PretrainSizes, Profile, TokenizerSizes, get_profile
from helpers.scratch.gpt import GPT
from helpers.scratch.gpt_io import save_gpt
from helpers.scratch.tokenizer import COURSE_FILE, BPETokenizer

NOTEBOOKS = sorted(p.name for p in (REPO_ROOT / "notebooks").glob("0[1-7]_*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_from_an_empty_artifacts_folder(name, tmp_path, monkeypatch):
    if os.environ.get("COURSE_CATCHUP") != "1":
        pytest.skip("opt-in (each notebook rebuilds its prerequisites): set COURSE_CATCHUP=1")
    from helpers.course.run_notebooks import run_notebook

    artifacts = tmp_path / "artifacts"
    monkeypatch.setenv("COURSE_ARTIFACTS_DIR", str(artifacts))  # the kernel inherits it
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    monkeypatch.setenv("COURSE_BLOCK_NETWORK", "1")
    seconds = run_notebook(REPO_ROOT / "notebooks" / name, inplace=False, timeout=1800)
    executed = artifacts / "executed" / name
    assert executed.is_file(), f"{name} ran but its executed copy is missing"
    print(f"{name}: {seconds:.0f} s from an empty artifacts folder")


# ----------------------------------------------------------------------------- the catch-up functions

TINY = Profile(
    "ci",
    tokenizer=TokenizerSizes(train_chars=20_000, vocab_size=300),
    pretrain=PretrainSizes(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_steps=4,
                           eval_interval=2, train_chars=20_000),
)


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_ARTIFACTS_DIR", str(tmp_path))
    return tmp_path


def test_course_tokenizer_trains_saves_reloads_and_repairs(artifacts):
    profile = Profile("ci", tokenizer=TokenizerSizes(train_chars=20_000, vocab_size=320))
    first = catchup.course_tokenizer(profile)
    path = artifacts / catchup.TOKENIZER_DIR / COURSE_FILE
    assert path.is_file() and first.vocab_size == 320
    assert first == BPETokenizer.train(pretraining_text(20_000), 320)  # deterministic
    stamp = path.stat().st_mtime_ns
    assert catchup.course_tokenizer(profile) == first and path.stat().st_mtime_ns == stamp  # loaded, not retrained
    path.write_text(path.read_text(encoding="utf-8")[:100], encoding="utf-8")  # damaged: rebuilt
    assert catchup.course_tokenizer(profile) == first
    other = Profile("ci", tokenizer=TokenizerSizes(train_chars=20_000, vocab_size=300))
    assert catchup.course_tokenizer(other).vocab_size == 300  # another profile's file is not reused


def test_gpt_config_takes_the_profile_sizes():
    sizes = get_profile("ci").pretrain
    config = catchup.gpt_config(sizes, vocab_size=300)
    assert (config.n_layer, config.n_head, config.n_embd, config.block_size, config.vocab_size) == (
        sizes.n_layer, sizes.n_head, sizes.n_embd, sizes.block_size, 300)
    assert catchup.gpt_config(sizes, 300, n_layer=1).n_layer == 1


def test_train_config_takes_the_profile_sizes():
    sizes = TINY.pretrain
    model = GPT(catchup.gpt_config(sizes, 300))
    config = catchup.train_config(sizes, model, progress=False)
    assert (config.max_steps, config.lr, config.eval_interval, config.warmup_steps) == (4, sizes.learning_rate, 2, 1)
    assert config.route == "scratch" and config.flops_per_token > 0 and not config.progress


def test_pretrained_tiny_gpt_trains_once_then_loads(artifacts, monkeypatch):
    model, record = catchup.pretrained_tiny_gpt(TINY)
    assert (artifacts / catchup.GPT_DIR / catchup.RUN_FILE).is_file()
    assert record.steps == 4 and record.route == "scratch" and len(record.val_losses) == 2

    def no_training(*args, **kwargs):
        raise AssertionError("the saved model should have been loaded, not trained again")

    monkeypatch.setattr(catchup, "pretrain_tiny_gpt", no_training)
    again, same_record = catchup.pretrained_tiny_gpt(TINY)
    assert same_record == record
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_other_sizes_or_damage_trigger_a_rebuild(artifacts):
    catchup.pretrained_tiny_gpt(TINY)
    longer = dataclasses.replace(TINY, pretrain=dataclasses.replace(TINY.pretrain, max_steps=6))
    _, record = catchup.pretrained_tiny_gpt(longer)
    assert record.steps == 6
    (artifacts / catchup.GPT_DIR / catchup.RUN_FILE).write_text("{not json")
    _, record = catchup.pretrained_tiny_gpt(longer)
    assert record.steps == 6


def test_course_gpt_loads_what_is_saved_or_says_none(artifacts):
    assert catchup.course_gpt() is None
    model = GPT(catchup.gpt_config(TINY.pretrain, 300))
    save_gpt(model, artifacts / catchup.GPT_DIR)
    loaded = catchup.course_gpt()
    assert loaded is not None and loaded.config == model.config


def test_tuned_model_loads_the_saved_adapter(tmp_path):
    """The catch-up for notebook 07: the real base model + an adapter folder (here an untrained one)."""
    from helpers.instruct.lora import add_lora, save_adapter
    from helpers.instruct.models import load_model

    base = load_model()
    adapter = add_lora(base.model, base.spec.lora_target_modules, r=2, alpha=4)
    save_adapter(adapter, tmp_path / "adapter", base.spec.name, {"steps": 0})
    loaded = catchup.tuned_model("ci", folder=tmp_path / "adapter")
    assert type(loaded.model).__name__ == "PeftModelForCausalLM" and "adapter loaded" in loaded.notes[-1]
    assert loaded.model.peft_config["default"].r == 2
