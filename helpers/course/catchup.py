"""Catch-ups: what a notebook asks for when an earlier notebook's artifact may be missing, and the profile's
sizes turned into the library's explicit arguments.

A learner may open any notebook first. Each catch-up loads the artifact an earlier notebook saved under
`artifacts/` (`helpers.course.artifacts`) when it was made for this profile, and otherwise rebuilds it now
with the profile's sizes and saves it there:
- `course_tokenizer(profile)`: notebook 01's BPE tokenizer (artifacts/tokenizer/course.bpe);
- `pretrained_tiny_gpt(profile, tokenizer)`: notebook 03's tiny GPT and its run record (artifacts/tiny_gpt);
  `course_gpt()` only loads it;
- `tuned_model(profile)`: notebook 05's LoRA adapter on the pretrained model (artifacts/adapter).
The mapping from a profile to sizes lives here too (`gpt_config`, `train_config`, `pretrain_tiny_gpt`): the
library modules (`helpers.scratch`, `helpers.instruct`) take explicit sizes and paths and never read
COURSE_PROFILE or `artifacts/`.

Left out on purpose: versioning artifacts across helpers releases (a saved artifact is reused when what it
was made from matches, otherwise rebuilt: each is fully determined by the profile), and locking between
notebooks run at the same time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

from helpers.core.batches import TokenBatches
from helpers.core.checks import count, flag, instance
from helpers.core.data import pretraining_text
from helpers.core.io import write_json
from helpers.core.records import RunRecord
from helpers.core.training import Callback, TrainConfig, train
from helpers.course.artifacts import artifacts_dir
from helpers.course.profiles import PretrainSizes, Profile, get_profile
from helpers.instruct.lora import load_adapter, save_adapter, tune
from helpers.instruct.models import LoadedModel, load_model
from helpers.scratch.gpt import GPT, GPTConfig
from helpers.scratch.gpt_io import CONFIG_FILE, load_gpt, save_gpt
from helpers.scratch.pretrain import SEED, pretrain_config, pretraining_data
from helpers.scratch.tokenizer import COURSE_FILE, DEFAULT_SPECIAL_TOKENS, GPT4_SPLIT_PATTERN, BPETokenizer
from helpers.scratch.tokenizer_file import TokenizerFileError

TOKENIZER_DIR = "tokenizer"  # artifacts/tokenizer: notebook 01's course tokenizer
GPT_DIR = "tiny_gpt"  # artifacts/tiny_gpt: where notebook 03 saves the pretrained model
ADAPTER_DIR = "adapter"  # artifacts/adapter: what notebook 05 saves and notebook 07 loads
RUN_FILE = "pretrain_run.json"  # beside the tiny GPT's weights: its run record and what it was made from


def _profile(profile: Profile | str | None) -> Profile:
    if profile is None or isinstance(profile, str):
        return get_profile(profile)
    return instance("profile", profile, Profile, "a profile name such as 'ci', get_profile(), or None")


def _check_tokenizer(tokenizer) -> None:
    if tokenizer is not None:
        instance("tokenizer", tokenizer, BPETokenizer, "the course tokenizer (course_tokenizer()), or None for it")


def _folder(folder) -> Path | None:
    if folder is None:
        return None
    return Path(instance("folder", folder, (str, os.PathLike), "a folder path, or None for artifacts/"))


# ----------------------------------------------------------------------------- notebook 01: the tokenizer


def course_tokenizer(profile: Profile | str | None = None, retrain: bool = False) -> BPETokenizer:
    """The course tokenizer: loaded from artifacts/tokenizer/ if it is there, valid and made for this
    profile (and not `retrain`); otherwise trained on `pretraining_text(profile.tokenizer.train_chars)`
    with `profile.tokenizer.vocab_size` and saved there.

    Deterministic (same text, same rules, same merges) and about a second under the `ci` profile.
    """
    sizes = _profile(profile).tokenizer
    flag("retrain", retrain)
    meta = {
        "corpus": "helpers.core.data.pretraining_text",
        "train_chars": sizes.train_chars,
        "requested_vocab_size": sizes.vocab_size,
    }
    path = artifacts_dir(TOKENIZER_DIR) / COURSE_FILE
    if path.is_file() and not retrain:
        try:
            tok = BPETokenizer.load(path)
            if (
                tok.meta == meta
                and tok.pattern == GPT4_SPLIT_PATTERN
                and list(tok.special_tokens) == DEFAULT_SPECIAL_TOKENS
            ):
                return tok
        except (TokenizerFileError, OSError):
            pass  # damaged or from another profile: rebuild it (it is fully determined by the profile)
    tok = BPETokenizer.train(pretraining_text(sizes.train_chars), sizes.vocab_size, meta=meta)
    tok.save(path)
    return tok


# ----------------------------------------------------------------------------- notebooks 02-03: the tiny GPT


def gpt_config(sizes: PretrainSizes, vocab_size: int, **overrides) -> GPTConfig:
    """The tiny GPT of a profile's pretrain section: gpt_config(get_profile().pretrain, tokenizer.vocab_size)."""
    instance("sizes", sizes, PretrainSizes, "a profile's pretrain section: get_profile().pretrain")
    count("vocab_size", vocab_size, 1, "the tokenizer's vocab_size")
    picked = {f: getattr(sizes, f) for f in ("n_layer", "n_head", "n_embd", "block_size")}
    return GPTConfig(vocab_size=vocab_size, **{**picked, **overrides})


def train_config(sizes: PretrainSizes, model: GPT, **overrides) -> TrainConfig:
    """The loop settings for a profile's pretrain section (helpers.scratch.pretrain.pretrain_config);
    `overrides` set any TrainConfig field, the profile's own included: train_config(sizes, model, lr=3e-2)."""
    instance("sizes", sizes, PretrainSizes, "a profile's pretrain section: get_profile().pretrain")
    instance("model", model, GPT, "the tiny GPT built with gpt_config(...)")
    own = {"max_steps": sizes.max_steps, "lr": sizes.learning_rate, "eval_interval": sizes.eval_interval}
    own.update({k: overrides.pop(k) for k in list(own) if k in overrides})  # an override wins over the profile
    return pretrain_config(model, own["max_steps"], own["lr"], own["eval_interval"], sizes.block_size, **overrides)


def pretrain_tiny_gpt(
    profile: Profile | str | None = None, tokenizer: BPETokenizer | None = None,
    callbacks: tuple[Callback, ...] = (), **config_overrides
) -> tuple[GPT, RunRecord]:
    """Build the profile's tiny GPT and pretrain it on review text; returns (model, run record)."""
    profile = _profile(profile)
    sizes = profile.pretrain
    _check_tokenizer(tokenizer)
    tokenizer = tokenizer or course_tokenizer(profile)
    data = pretraining_data(tokenizer, sizes.train_chars)
    torch.manual_seed(SEED)
    model = GPT(gpt_config(sizes, tokenizer.vocab_size))
    batches = TokenBatches(data.train, sizes.batch_size, sizes.block_size, seed=SEED)
    val = TokenBatches(data.val, sizes.batch_size, sizes.block_size, seed=SEED + 1)
    record = train(
        model, batches, train_config(sizes, model, **config_overrides), eval_data=val, callbacks=callbacks
    )
    record.extra.update(profile=profile.name, train_tokens_available=len(data.train), chars=data.chars)
    return model, record


def tokenizer_fingerprint(tokenizer: BPETokenizer) -> str:
    """Short sha256 of the merges and special tokens: tells whether a saved model fits this tokenizer."""
    instance("tokenizer", tokenizer, BPETokenizer, "the course tokenizer: course_tokenizer()")
    text = json.dumps([list(map(list, tokenizer.merges)), sorted(tokenizer.special_tokens.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _made_from(profile: Profile, tokenizer: BPETokenizer) -> dict:
    return {
        "profile": profile.name,
        "pretrain": asdict(profile.pretrain),
        "tokenizer": tokenizer_fingerprint(tokenizer),
    }


def save_pretrained(model: GPT, record: RunRecord, tokenizer: BPETokenizer, profile: Profile | str | None,
                    folder: str | os.PathLike | None = None) -> Path:
    """Save the model (helpers.scratch.gpt_io.save_gpt) and, beside it, its run record and what it was made from.

    The record is written after the model: a save interrupted between the two leaves no RUN_FILE, so the
    catch-up pretrains again rather than trusting a model it cannot vouch for.
    """
    profile = _profile(profile)
    instance("model", model, GPT, "the pretrained tiny GPT")
    instance("record", record, RunRecord, "the RunRecord that training returned")
    instance("tokenizer", tokenizer, BPETokenizer, "the course tokenizer it was trained with: course_tokenizer()")
    folder = _folder(folder) or artifacts_dir(GPT_DIR)
    save_gpt(model, folder)
    write_json(folder / RUN_FILE, {**_made_from(profile, tokenizer), "record": record.to_dict()})
    return folder


def pretrained_tiny_gpt(profile: Profile | str | None = None,
                        tokenizer: BPETokenizer | None = None) -> tuple[GPT, RunRecord]:
    """The pretrained tiny GPT and its run record: loaded from artifacts/tiny_gpt when it was made for this
    profile and tokenizer, else pretrained now (a few minutes at most under `ci`) and saved there."""
    profile = _profile(profile)
    _check_tokenizer(tokenizer)
    tokenizer = tokenizer or course_tokenizer(profile)
    folder = artifacts_dir(GPT_DIR, create=False)
    try:
        facts = json.loads((folder / RUN_FILE).read_text())
        made_from = _made_from(profile, tokenizer)
        if all(facts.get(k) == v for k, v in made_from.items()):
            model = load_gpt(folder)
            if model.config == gpt_config(profile.pretrain, tokenizer.vocab_size):
                return model, RunRecord.from_dict(facts["record"])
    except (OSError, ValueError, KeyError):
        pass  # missing, damaged or made for something else: pretrain again (the profile determines it)
    model, record = pretrain_tiny_gpt(profile, tokenizer, progress=False)
    save_pretrained(model, record, tokenizer, profile)
    return model, record


def course_gpt(device: str | torch.device = "cpu") -> GPT | None:
    """The pretrained tiny GPT that notebook 03 saves in artifacts/tiny_gpt, or None if it is not there.

    Loading only, whatever it was trained with; `pretrained_tiny_gpt(profile)` is the catch-up that checks.
    """
    folder = artifacts_dir(GPT_DIR, create=False)
    if not (folder / CONFIG_FILE).is_file():
        return None
    return load_gpt(folder, device=device)


# ----------------------------------------------------------------------------- notebook 05: the adapter


def tuned_model(profile: Profile | str | None = None, folder: str | os.PathLike | None = None) -> LoadedModel:
    """The base model with notebook 05's adapter (artifacts/adapter), or, if it is missing, one trained now
    with the profile's instruct sizes (`helpers.instruct.lora.tune`) and saved there.

    Returns a helpers.instruct.models.LoadedModel whose `.model` is the PeftModel (eval mode).
    """
    profile = _profile(profile)
    folder = _folder(folder) or artifacts_dir(ADAPTER_DIR, create=False)
    loaded = load_model()
    if (folder / "adapter_config.json").is_file():
        loaded.model = load_adapter(loaded.model, folder)
        loaded.notes.append(f"adapter loaded from {folder.name}/")
    else:
        result = tune(loaded, profile.instruct)
        steps = result.record.steps
        save_adapter(result.model, folder, loaded.spec.name,
                     {"profile": profile.name, "steps": steps, "made_by": "helpers.course.catchup.tuned_model"})
        loaded.model = result.model
        loaded.notes.append(f"adapter trained now ({steps} steps, profile {profile.name}) and saved")
    return loaded
