"""Pretraining the course's tiny GPT on review text: the data, the run, and the catch-up for later notebooks.

Notebook 03 walks through these steps one cell at a time; `pretrain_tiny_gpt` is the same recipe in
one call, and `pretrained_tiny_gpt` is what notebook 06 (and anyone who skipped 03) asks for: the model
saved in artifacts/tiny_gpt if it is there and was made with this profile's sizes and this tokenizer,
otherwise pretrained now under the profile and saved.

The data: `helpers.core.data.pretraining_text`, one review after another with the end-of-text token between
them, encoded with the course tokenizer; the last `VAL_FRACTION` of the stream is held out for the
validation loss (the reviews come in hash order, so the tail is a fair sample).

Left out: data deduplication beyond `helpers.core.data`'s, curriculum, and multi-epoch bookkeeping.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import torch

from helpers.core.batches import TokenBatches
from helpers.core.records import RunRecord
from helpers.core.training import Callback, TrainConfig, train
from helpers.measure.flops import training_flops_per_token
from helpers.course.artifacts import artifacts_dir
from helpers.scratch.gpt import COURSE_GPT_DIR, GPT, GPTConfig, load_gpt, save_gpt

VAL_FRACTION = 0.1  # share of the token stream held out for validation
SEED = 1337  # model init, batch order and the loop's RNG: the ci run is repeatable
RUN_FILE = "pretrain_run.json"  # beside the weights: the run record and what the model was made from


@dataclass(frozen=True)
class PretrainData:
    """The encoded corpus, split into a training stream and a held-out validation stream."""

    train: torch.Tensor  # (N_train,) token ids
    val: torch.Tensor  # (N_val,) token ids
    chars: int  # characters of review text encoded

    @property
    def chars_per_token(self) -> float:
        return self.chars / (len(self.train) + len(self.val))


def pretraining_data(tokenizer, train_chars: int) -> PretrainData:
    """Encode `train_chars` characters of reviews (end-of-text between reviews) and split off validation."""
    from helpers.core.data import pretraining_text
    from helpers.scratch.tokenizer import EOT

    text = pretraining_text(train_chars, separator=EOT)
    ids = torch.tensor(tokenizer.encode(text, allowed_special={EOT}), dtype=torch.long)
    cut = int(len(ids) * (1 - VAL_FRACTION))
    return PretrainData(train=ids[:cut], val=ids[cut:], chars=len(text))


def model_config(sizes, tokenizer) -> GPTConfig:
    """The tiny GPT for a profile's pretrain section and the course tokenizer."""
    return GPTConfig.from_profile(sizes, tokenizer.vocab_size)


def train_config(sizes, model: GPT, **overrides) -> TrainConfig:
    """The loop settings for a profile's pretrain section (warm-up = 10 % of the steps)."""
    flops = training_flops_per_token(model, seq_len=sizes.block_size)  # 6N + 12*L*C*T: helpers.measure.flops
    values = dict(
        max_steps=sizes.max_steps,
        lr=sizes.learning_rate,
        warmup_steps=max(1, sizes.max_steps // 10),
        eval_interval=sizes.eval_interval,
        eval_batches=8,
        seed=SEED,
        name="pretrain tiny GPT",
        route="scratch",
        flops_per_token=flops.per_token,
        flops_method=flops.method,
    )
    return TrainConfig(**{**values, **overrides})


def pretrain_tiny_gpt(
    profile=None, tokenizer=None, callbacks: tuple[Callback, ...] = (), **config_overrides
) -> tuple[GPT, RunRecord]:
    """Build the profile's tiny GPT and pretrain it on review text; returns (model, run record)."""
    from helpers.course.profiles import get_profile
    from helpers.scratch.tokenizer import course_tokenizer

    profile = profile or get_profile()
    sizes = profile.pretrain
    tokenizer = tokenizer or course_tokenizer(profile)
    data = pretraining_data(tokenizer, sizes.train_chars)
    torch.manual_seed(SEED)
    model = GPT(model_config(sizes, tokenizer))
    batches = TokenBatches(data.train, sizes.batch_size, sizes.block_size, seed=SEED)
    val = TokenBatches(data.val, sizes.batch_size, sizes.block_size, seed=SEED + 1)
    record = train(
        model, batches, train_config(sizes, model, **config_overrides), eval_data=val, callbacks=callbacks
    )
    record.extra.update(profile=profile.name, train_tokens_available=len(data.train), chars=data.chars)
    return model, record


def tokenizer_fingerprint(tokenizer) -> str:
    """Short sha256 of the merges and special tokens: tells whether a saved model fits this tokenizer."""
    text = json.dumps([list(map(list, tokenizer.merges)), sorted(tokenizer.special_tokens.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _made_from(profile, tokenizer) -> dict:
    return {
        "profile": profile.name,
        "pretrain": asdict(profile.pretrain),
        "tokenizer": tokenizer_fingerprint(tokenizer),
    }


def save_pretrained(model: GPT, record: RunRecord, tokenizer, profile, folder=None):
    """Save the model (helpers.scratch.gpt.save_gpt) and, beside it, its run record and what it was made from."""
    folder = folder or artifacts_dir(COURSE_GPT_DIR)
    save_gpt(model, folder)
    facts = {**_made_from(profile, tokenizer), "record": record.to_dict()}
    tmp = folder / (RUN_FILE + ".tmp")
    tmp.write_text(json.dumps(facts, indent=2))
    tmp.replace(folder / RUN_FILE)  # atomic
    return folder


def pretrained_tiny_gpt(profile=None, tokenizer=None) -> tuple[GPT, RunRecord]:
    """The pretrained tiny GPT and its run record: loaded from artifacts/tiny_gpt when it was made for this
    profile and tokenizer, else pretrained now (a few minutes at most under `ci`) and saved there."""
    from helpers.course.profiles import get_profile
    from helpers.scratch.tokenizer import course_tokenizer

    profile = profile or get_profile()
    tokenizer = tokenizer or course_tokenizer(profile)
    folder = artifacts_dir(COURSE_GPT_DIR, create=False)
    try:
        facts = json.loads((folder / RUN_FILE).read_text())
        made_from = _made_from(profile, tokenizer)
        if all(facts.get(k) == v for k, v in made_from.items()):
            model = load_gpt(folder)
            if model.config == model_config(profile.pretrain, tokenizer):
                return model, RunRecord.from_dict(facts["record"])
    except (OSError, ValueError, KeyError):
        pass  # missing, damaged or made for something else: pretrain again (the profile determines it)
    model, record = pretrain_tiny_gpt(profile, tokenizer, progress=False)
    save_pretrained(model, record, tokenizer, profile)
    return model, record
