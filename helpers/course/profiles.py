"""One switch sizes every notebook: COURSE_PROFILE = ci | cpu | gpu.

- ci:  what tests and nbval run — the whole course in <= 15 min on 2 CPU cores.
- cpu: meaningful results on a laptop CPU in <= 20 min per notebook.
- gpu: the real thing on a CUDA GPU (default when CUDA is present).

Each notebook asks for its own section (`get_profile().pretrain`) and prints it. Sizes are
frozen dataclasses with a reason next to each number; nothing else in the course hard-codes a size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from helpers.core.checks import count, number, text

PROFILE_NAMES = ("ci", "cpu", "gpu")


class _Sizes:
    """A profile section checks its sizes when made: every count an integer >= 0, every amount a finite number
    >= 0 (tuples of them too), so `replace(profile.pretrain, max_steps=-1)` fails here, naming the field."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value, where = getattr(self, f.name), f"{type(self).__name__}.{f.name}"
            if f.type == "str":
                text(where, value)
                continue
            items = value if f.type.startswith("tuple") else (value,)
            if f.type.startswith("tuple") and not isinstance(value, tuple):
                raise TypeError(f"{where} must be a tuple, got {value!r}: e.g. (4, 16)")
            for i, item in enumerate(items):
                name = f"{where}[{i}]" if f.type.startswith("tuple") else where
                if "float" in f.type:
                    number(name, item, 0)
                else:
                    count(name, item, 0)


@dataclass(frozen=True)
class SetupSizes(_Sizes):
    """Notebook 00."""

    matmul_size: int = 1024  # big enough to reach a CPU's sustained FLOP/s, small enough for 1 s
    matmul_seconds: float = 1.0  # time spent measuring each dtype


@dataclass(frozen=True)
class TokenizerSizes(_Sizes):
    """Notebook 01."""

    train_chars: int = 200_000  # review text the tokenizer learns from
    vocab_size: int = 1024  # the course tokenizer (also used by the tiny GPT)
    vocab_ladder: tuple[int, ...] = (300, 512, 1024)  # for the compression-vs-vocabulary curve
    compare_reviews: int = 200  # reviews tokenized by every tokenizer in the comparison


@dataclass(frozen=True)
class PretrainSizes(_Sizes):
    """Notebooks 02-03: the tiny GPT and its pretraining."""

    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    block_size: int = 64  # context length in tokens
    batch_size: int = 16  # 1,024 tokens per step at block 64
    max_steps: int = 400  # ~30-50 s on 2 busy cores; val loss ~5.1 (from 6.9), text with real words
    learning_rate: float = 3e-3  # tiny models tolerate a high rate
    eval_interval: int = 50
    train_chars: int = 600_000  # review text used for pretraining (~220k tokens: ~2 passes in 400 steps)


@dataclass(frozen=True)
class InstructSizes(_Sizes):
    """Notebooks 04-05: the pretrained model and LoRA instruction-tuning."""

    eval_reviews: int = 20  # held-out reviews scored before/after (and the perplexity text in nb04)
    eval_faq: int = 8  # held-out FAQ questions scored (a prefix: 8 facts, English and Italian mixed)
    few_shot: int = 2  # labelled reviews shown in nb04's few-shot prompt (each adds ~90 tokens per prompt)
    max_new_tokens: int = 32  # FAQ answers are one sentence (~25 tokens): room to say it, not to ramble
    train_sentiment: int = 32  # sentiment instructions in the tuning set (+ all 600 FAQ rows)
    max_length: int = 256  # tokens per packed row: the longest example (~140) fits, ~2.7 examples per row
    batch_size: int = 4  # rows per step: 4 x 256 tokens, ~4 s per step on 2 quiet cores (bf16)
    max_steps: int = 8  # ci: the loss falls and the answer format is learned; the facts need `cpu`
    learning_rate: float = 2e-3  # LoRA tolerates ~10x full fine-tuning's rate (Hu et al. 2021)
    lora_r: int = 8  # 0.92 M trainable weights on q/k/v/o of SmolLM2-135M: 0.7 % of the model
    lora_alpha: int = 16  # scale alpha/r = 2, the common choice
    lora_dropout: float = 0.05


# = helpers.instruct.instructions.SENTIMENT_PROMPT (not imported: profiles stay free of heavy imports)
COURSE_INSTRUCTION = (
    "Classify the sentiment of this review as positive or negative. Answer with one word.\n\nReview: {review}"
)


@dataclass(frozen=True)
class CompareSizes(_Sizes):
    """Notebook 06: train vs instruct (helpers.experiment.compare): routes A/A0 = tiny GPT, route B = LoRA."""

    # The instruction every route reads ({review} = where the review goes). ci: short, because ci's tiny GPT
    # has a 64-token context; cpu/gpu: the course's instruction (helpers.instruct.instructions.SENTIMENT_PROMPT).
    instruction: str = "Is this review positive or negative?\n\n{review}"
    # The task: IMDB reviews cut to the tiny GPT's context (block_size - 1 tokens + the closing token).
    n_ladder: tuple[int, ...] = (16,)  # labelled examples per run, every route (route B also at N = 0)
    scratch_extra_n: tuple[int, ...] = (64,)  # larger N for routes A, A0 and C only: they are cheap
    test_reviews: int = 24  # a prefix of the 1,440 balanced IMDB test reviews; SmolLM2 scores ~8/s on 2 cores
    target_accuracy: float = 0.7  # "examples needed to reach" this in the article's table
    seeds: int = 2  # runs (seeds 0, 1, ...) at each N of seed_n: the verdicts' points
    seed_n: tuple[int, ...] = (16,)  # N repeated over seeds: route B at the first, A and A0 at the last, C at each
    label_noise: tuple[float, ...] = (0.0, 0.2, 0.4)  # share of each class's training labels flipped
    noise_n: int = 16  # N of the label-noise runs (on the ladder, so the 0 % run is reused)
    clf_lr: float = 3e-3  # routes A/A0 as classifiers (class head, every weight trained)
    clf_lr_random: float = 3e-3  # route A0 (random start) tolerates a higher rate
    clf_batch_size: int = 8
    clf_epochs: float = 2.0
    clf_min_steps: int = 8
    clf_max_steps: int = 16
    scratch_lr: float = 3e-3  # tiny GPT, full tuning: 3e-3 beat 1e-3 at N=256 (cpu sizes)
    scratch_batch_size: int = 8
    scratch_epochs: float = 8.0  # at 2 epochs the cpu tiny GPT stayed at chance
    scratch_min_steps: int = 8
    scratch_max_steps: int = 40
    lora_lr: float = 2e-3  # LoRA tolerates ~10x the full-tuning rate (Hu et al. 2021 use 2e-4..2e-3)
    lora_batch_size: int = 4  # packed rows of InstructSizes.max_length tokens per step
    lora_epochs: float = 2.0
    lora_min_steps: int = 2
    lora_max_steps: int = 2  # ~3-10 s per step on 2 busy cores: the ci budget
    faq_train_rows: int = 4  # FAQ rows in the adaptability run: a prefix of faq_train.jsonl, 4 rows per fact
    faq_eval_rows: int = 2  # held-out questions about those facts, scored after it (2 per fact: en, it)
    faq_steps: int = 2
    faq_max_new_tokens: int = 24
    score_batch_size: int = 8  # reviews per forward pass when scoring
    seed: int = 0


@dataclass(frozen=True)
class DeploySizes(_Sizes):
    """Notebook 07: latency and privacy."""

    latency_tokens: int = 32  # new tokens per latency measurement (enough for a steady tokens/s)
    latency_repeats: int = 2  # median of this many runs, after one warm-up run
    canary_repeats: int = 8  # copies of the planted secret among the 30 customer messages
    canary_steps: int = 100  # tiny-GPT fine-tuning steps (~14 passes over the messages): ~5 s, 2 cores
    serve_reviews: int = 8  # held-out reviews answered per served GGUF format (accuracy and its interval)
    serve_clients: int = 4  # concurrent clients of the served model's load test
    serve_requests: int = 8  # short requests in that load test (all clients together)


@dataclass(frozen=True)
class Profile:
    name: str
    setup: SetupSizes = field(default_factory=SetupSizes)
    tokenizer: TokenizerSizes = field(default_factory=TokenizerSizes)
    pretrain: PretrainSizes = field(default_factory=PretrainSizes)
    instruct: InstructSizes = field(default_factory=InstructSizes)
    compare: CompareSizes = field(default_factory=CompareSizes)
    deploy: DeploySizes = field(default_factory=DeploySizes)


PROFILES: dict[str, Profile] = {
    "ci": Profile("ci"),
    "cpu": Profile(
        "cpu",
        setup=SetupSizes(matmul_size=2048, matmul_seconds=2.0),
        tokenizer=TokenizerSizes(
            train_chars=2_000_000, vocab_size=2048, vocab_ladder=(300, 512, 1024, 2048, 4096),
            compare_reviews=500,  # the test split holds 552 short balanced reviews
        ),
        pretrain=PretrainSizes(
            n_layer=4, n_head=4, n_embd=128, block_size=128, batch_size=16, max_steps=800,
            learning_rate=1e-3, eval_interval=100, train_chars=5_000_000,
        ),
        # measured, held-out FAQ accuracy (training phrasing 1 in brackets): 240 FAQ rows 0 -> 0.30-0.37 (0.97);
        # 600 rows (10 phrasings per fact and language), one thread: 0.33 [0.23, 0.46] (0.80 [0.68, 0.88])
        instruct=InstructSizes(
            eval_reviews=200, eval_faq=60, few_shot=4, max_new_tokens=40, train_sentiment=128, max_length=256,
            batch_size=6, max_steps=160, learning_rate=2e-3, lora_r=16, lora_alpha=32,
        ),
        compare=CompareSizes(  # measured plans: docs/research/issue12-recipes.md; budget <= 45 min on 2 cores
            instruction=COURSE_INSTRUCTION, n_ladder=(64, 256, 1024), scratch_extra_n=(4096, 10000),
            test_reviews=500, target_accuracy=0.8, seeds=3, seed_n=(64, 256), noise_n=256,
            clf_lr=5e-4, clf_lr_random=1e-3, clf_batch_size=32, clf_epochs=4.0, clf_min_steps=60,
            clf_max_steps=200, scratch_batch_size=8, scratch_epochs=8.0, scratch_min_steps=24,
            scratch_max_steps=160, lora_lr=1e-3, lora_batch_size=8, lora_epochs=1.0, lora_min_steps=4,
            lora_max_steps=200, faq_train_rows=16, faq_eval_rows=8, faq_steps=16, faq_max_new_tokens=40,
        ),
        deploy=DeploySizes(latency_tokens=128, latency_repeats=3, canary_repeats=16, canary_steps=300,
                           serve_reviews=60, serve_clients=8, serve_requests=48),
    ),
    "gpu": Profile(
        "gpu",
        setup=SetupSizes(matmul_size=8192, matmul_seconds=2.0),
        tokenizer=TokenizerSizes(
            train_chars=5_000_000, vocab_size=4096, vocab_ladder=(300, 1024, 2048, 4096, 8192),
            compare_reviews=552,  # all of the test split's short balanced reviews
        ),
        pretrain=PretrainSizes(
            n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, max_steps=5000,
            learning_rate=6e-4, eval_interval=250, train_chars=40_000_000,
        ),
        instruct=InstructSizes(
            eval_reviews=552, eval_faq=60, few_shot=8, max_new_tokens=40, train_sentiment=2000, max_length=512,
            batch_size=16, max_steps=600, learning_rate=5e-4, lora_r=16, lora_alpha=32,
        ),
        compare=CompareSizes(
            instruction=COURSE_INSTRUCTION, n_ladder=(64, 256, 1024, 4096), scratch_extra_n=(10000, 20000),
            test_reviews=1440,  # every balanced IMDB test review (helpers.core.data.imdb_test)
            target_accuracy=0.85, seeds=3, seed_n=(64, 256), noise_n=1024, clf_lr=5e-4, clf_lr_random=1e-3,
            clf_batch_size=64, clf_epochs=2.0, clf_min_steps=100, clf_max_steps=1000, scratch_batch_size=32,
            scratch_epochs=4.0,
            scratch_min_steps=50, scratch_max_steps=3000, lora_lr=5e-4, lora_batch_size=16, lora_epochs=2.0,
            lora_min_steps=10, lora_max_steps=600, faq_train_rows=120, faq_eval_rows=60, faq_steps=100,
            faq_max_new_tokens=48, score_batch_size=32,
        ),
        deploy=DeploySizes(latency_tokens=256, latency_repeats=5, canary_repeats=16, canary_steps=600,
                           serve_reviews=552, serve_clients=8, serve_requests=200),
    ),
}


def default_profile_name() -> str:
    """`gpu` when CUDA is present, otherwise `cpu` (imports torch only to ask)."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def get_profile(name: str | None = None) -> Profile:
    """The profile named by `name`, else $COURSE_PROFILE, else the default for this machine.

    >>> get_profile("ci").pretrain.n_layer
    2
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"profile name must be a string such as 'ci', got {type(name).__name__} {name!r}: one of "
                        f"{', '.join(PROFILE_NAMES)}, or None for COURSE_PROFILE")
    chosen = name if name is not None else os.environ.get("COURSE_PROFILE") or default_profile_name()
    key = chosen.strip().lower()
    if key not in PROFILES:
        raise ValueError(
            f"unknown course profile {chosen!r}: COURSE_PROFILE must be one of {', '.join(PROFILE_NAMES)} "
            "(e.g. `export COURSE_PROFILE=cpu`, or unset it to get the default for this machine)"
        )
    return PROFILES[key]
