"""The three routes of notebook 06, each able to tune on N examples and score itself on the task.

- A  ("scratch"): our tokenizer + our tiny GPT pretrained on review text, then every weight tuned on N
  labelled examples (full fine-tuning) — `ScratchRoute("A", ..., base=pretrained_gpt)`;
- A0 ("scratch-no-pretrain"): the same GPT from random weights, tuned on the same N examples —
  `ScratchRoute("A0", ...)`;
- B  ("instruct"): the pretrained model + LoRA (`helpers.instruct.lora.tune`) on the same N examples —
  `LoraRoute`.
- C  ("classical"): no language model at all — TF-IDF features + logistic regression (scikit-learn) on the
  same N labelled texts — `ClassicalRoute`: do you need a language model for this task?
A, A0 and B train through the one loop (`helpers.core.training.train`) and return its RunRecord; each gets
its own `Recipe` (learning rate, batch, epochs, step limits). For the sentiment ladder every route offers
`fit(data, name) -> (model, record)` on `sentiment.Labelled` texts and `predict(model, task) -> Scored`;
A and A0 classify with a head on our GPT (`ClassifierRoute`, `helpers.scratch.classifier`), B answers in
words (LoRA on instructions, scored by the likelier answer word). `ScratchRoute` tunes our GPT to *answer*
(language-model loss on instructions): the FAQ adaptation run uses it.

Left out on purpose: hyper-parameter search per N, other adapters than LoRA, and tuning our GPT with LoRA.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from helpers.core.batches import ListBatches
from helpers.core.records import RunRecord
from helpers.core.training import TrainConfig, train
from helpers.experiment.answer_scoring import Scored, score_task
from helpers.experiment.sentiment import Labelled, SentimentTask, task_examples
from helpers.instruct import instructions, lora, masking, packing
from helpers.instruct.models import load_model
from helpers.instruct.scoring import generate
from helpers.measure.flops import training_flops_per_token
from helpers.scratch.classifier import GPTClassifier, class_batches, class_logits, close_ids
from helpers.scratch.gpt import GPT, lm_loss

ROUTES = {"A": "scratch", "A0": "scratch-no-pretrain", "B": "instruct", "C": "classical"}  # key -> RunRecord.route
ROUTE_LABELS = {
    "A": "A: tiny GPT, pretrained + full tuning",
    "A0": "A0: tiny GPT, random init + full tuning",
    "B": "B: pretrained model + LoRA",
    "C": "C: TF-IDF + logistic regression",
}


@dataclass(frozen=True)
class Recipe:
    """How a route tunes on N examples. steps = ceil(epochs x batches per epoch), kept in [min, max]:
    Recipe(1e-3, 8, 2.0, 4, 100).steps(batches_per_epoch=10) -> 20."""

    lr: float
    batch_size: int  # examples (route A) or packed rows (route B) per step
    epochs: float  # passes over the N examples, before the step limits
    min_steps: int  # small N still gets a few updates
    max_steps: int  # large N is cut off: the budget a profile can afford

    def __post_init__(self) -> None:
        if not (
            self.lr > 0 and self.batch_size >= 1 and self.epochs > 0 and 1 <= self.min_steps <= self.max_steps
        ):
            raise ValueError(
                f"bad Recipe {self}: need lr > 0, batch_size >= 1, epochs > 0, 1 <= min_steps <= max_steps"
            )

    def steps(self, batches_per_epoch: int) -> int:
        return int(min(self.max_steps, max(self.min_steps, math.ceil(self.epochs * batches_per_epoch))))


def gpt_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loop's loss for our GPT on padded batches: right padding needs no mask in a causal model
    (labels are -100 there), and our GPT takes no attention_mask argument."""
    return lm_loss(model(batch["input_ids"]), batch["labels"])


def train_gpt(model, batches, steps: int, lr: float, warmup: int, name: str, route: str, seed: int, context: int,
              method_note: str = ""):
    """Train our GPT (or its classifier) on ready batch dicts through the one loop, FLOPs counted at `context`
    (attention at the full context, as pretraining counts them) -> the loop's RunRecord."""
    flops = training_flops_per_token(model, seq_len=context)
    config = TrainConfig(
        max_steps=steps,
        lr=lr,
        warmup_steps=max(1, warmup),
        name=name,
        route=route,
        seed=seed,
        progress=False,
        flops_per_token=flops.per_token,
        flops_method=flops.method + method_note,
    )
    return train(model, ListBatches(batches, shuffle=True, seed=seed), config, loss_fn=gpt_loss)


class ScratchRoute:
    """Routes A and A0: our tokenizer and GPT, every weight trained through the loop.

    `tokenizer` is the course tokenizer as a transformers tokenizer with the ChatML template
    (`sentiment.course_chat_tokenizer`), so examples are rendered by `helpers.instruct.templates` as for route B.
    `base` = the pretrained GPT (route A) or None (route A0: fresh weights of `config`, seeded).
    """

    def __init__(self, key: str, tokenizer, config, recipe: Recipe, base=None, seed: int = 0):
        if key not in ("A", "A0"):
            raise ValueError(f"ScratchRoute key must be 'A' or 'A0', got {key!r}")
        if base is not None and base.config != config:
            raise ValueError("base.config differs from config: pass config=base.config")
        self.key, self.route, self.tokenizer, self.config = key, ROUTES[key], tokenizer, config
        self.recipe, self.base, self.seed = recipe, base, seed
        self.pad_id, self.stop_id = tokenizer.pad_token_id, tokenizer.eos_token_id
        self.context = config.block_size

    def fresh_model(self):
        if self.base is not None:
            return copy.deepcopy(self.base).train()
        torch.manual_seed(self.seed)
        return GPT(self.config)

    def tune(self, examples: Sequence[instructions.Example], name: str, steps: int | None = None, model=None):
        """Full fine-tuning on `examples` -> (model in eval mode, RunRecord). An example longer than the
        context keeps its prompt and loses the end of its answer (counted in extra["examples_truncated"])."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the counts go into the record
            report = masking.encode_all(self.tokenizer, examples, self.context, too_long="truncate")
        batches = packing.pad_batches(report.examples, self.recipe.batch_size, self.pad_id, seed=self.seed)
        steps = steps or self.recipe.steps(len(batches))
        model = model if model is not None else self.fresh_model()
        # counted as pretraining counts (attention at the full context), so route A's own compute adds up
        record = train_gpt(model, batches, steps, self.recipe.lr, steps // 10, name, self.route, self.seed,
                           self.context)
        record.extra.update(
            {
                "examples_used": len(report.examples),
                "examples_dropped": report.n_dropped,
                "examples_truncated": report.n_truncated,
                "batches_per_epoch": len(batches),
            }
        )
        return model.eval(), record

    def untuned(self):
        return self.fresh_model().eval()

    def score(self, model, task: SentimentTask, batch_size: int = 8) -> Scored:
        return score_task(model, self.tokenizer, task, batch_size)

    @torch.no_grad()
    def generate(self, model, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[str]:
        """Greedy answers, one prompt at a time (stop at the end-of-turn token); a prompt that leaves no
        room in the context gets "" (scored as malformed)."""
        out = []
        for ids in prompts:
            room = min(max_new_tokens, self.context - len(ids))
            if room < 1:
                out.append("")
                continue
            x = torch.tensor([list(ids)])
            y = model.generate(x, room, temperature=0.0, stop_tokens=[self.stop_id])[0, len(ids) :]
            out.append(self.tokenizer.decode(y.tolist(), skip_special_tokens=True).strip())
        return out


class LoraRoute:
    """Route B: a pretrained model (fresh from `load_fn` for every run) + LoRA via `helpers.instruct.lora.tune`.

    `sizes` is the profile's InstructSizes (LoRA rank, alpha, dropout, max_length); `recipe` replaces its
    learning rate, batch size and steps for this experiment.
    """

    key, route = "B", ROUTES["B"]

    def __init__(self, sizes, recipe: Recipe, load_fn: Callable | None = None, seed: int = 0):
        self.sizes, self.recipe, self.seed = sizes, recipe, seed
        self.load_fn = load_fn or load_model

    def _load(self):
        loaded = self.load_fn()
        self.tokenizer, self.spec = loaded.tokenizer, loaded.spec
        return loaded

    def steps_for(self, examples: Sequence[instructions.Example]) -> int:
        """Steps for these examples: packed rows (as `tune` will pack them) -> batches per epoch."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = masking.encode_all(self.tokenizer, examples, self.sizes.max_length)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        rows = packing.pack(report.examples, self.sizes.max_length, pad)
        return self.recipe.steps(math.ceil(len(rows) / self.recipe.batch_size))

    def tune(self, examples: Sequence[instructions.Example], name: str, steps: int | None = None):
        loaded = self._load()
        steps = steps or self.steps_for(examples)
        sizes = replace(
            self.sizes, max_steps=steps, learning_rate=self.recipe.lr, batch_size=self.recipe.batch_size
        )
        result = lora.tune(
            loaded, sizes, list(examples), seed=self.seed, name=name, route=self.route, progress=False
        )
        result.record.extra["padding_waste"] = round(result.padding_waste, 4)
        return result.model.eval(), result.record

    def untuned(self):
        return self._load().model.eval()

    def fit(self, data: Labelled, name: str, prompt: str):
        """LoRA on the labelled texts as instructions (`prompt` with the review, the label word as answer),
        with the data's seed for the adapter's initialisation and the batch order."""
        route = LoraRoute(self.sizes, self.recipe, self.load_fn, seed=data.seed)
        model, record = route.tune(task_examples(data.texts, data.labels, prompt), name)
        self.tokenizer, self.spec = route.tokenizer, route.spec
        return model, record

    def predict(self, model, task: SentimentTask, batch_size: int = 16) -> Scored:
        return self.score(model, task, batch_size)

    def score(self, model, task: SentimentTask, batch_size: int = 8) -> Scored:
        return score_task(model, self.tokenizer, task, batch_size)

    def generate(self, model, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[str]:
        return generate(model, self.tokenizer, prompts, max_new_tokens)


def _seconds_since(start: float) -> float:
    return time.perf_counter() - start


class ClassifierRoute:
    """Routes A and A0 for the sentiment ladder: our GPT + a class head on the review's closing token
    (`helpers.scratch.classifier`), every weight trained through the loop.

    `bpe` = the course tokenizer; `base` = the pretrained GPT (route A, copied for every run) or None
    (route A0: fresh weights of `config`, seeded by the data's seed). Reviews are the task's cut texts,
    encoded and closed with <|endoftext|> (block_size tokens at most)."""

    def __init__(self, key: str, bpe, config, recipe: Recipe, base=None):
        if key not in ("A", "A0"):
            raise ValueError(f"ClassifierRoute key must be 'A' or 'A0', got {key!r}")
        if (key == "A") != (base is not None):
            raise ValueError("route A starts from the pretrained GPT (base=...), route A0 from none (base=None)")
        if base is not None and base.config != config:
            raise ValueError("base.config differs from config: pass config=base.config")
        self.key, self.route, self.bpe, self.config = key, ROUTES[key], bpe, config
        self.recipe, self.base = recipe, base
        self.eot = bpe.special_tokens["<|endoftext|>"]

    def ids(self, texts) -> list[list[int]]:
        return [close_ids(self.bpe.encode(t), self.eot, self.config.block_size) for t in texts]

    def fresh_model(self, seed: int) -> GPTClassifier:
        torch.manual_seed(seed)  # the head's initialisation (and A0's GPT) depend on the seed
        gpt = copy.deepcopy(self.base) if self.base is not None else GPT(self.config)
        return GPTClassifier(gpt.train())

    def fit(self, data: Labelled, name: str, prompt: str | None = None):
        """Full fine-tuning with the class head on `data` -> (model in eval mode, RunRecord). `prompt` is
        unused: a classifier reads the review alone."""
        batches = class_batches(self.ids(data.texts), data.labels, self.eot, self.recipe.batch_size, data.seed)
        steps = self.recipe.steps(len(batches))
        model = self.fresh_model(data.seed)
        record = train_gpt(model, batches, steps, self.recipe.lr, steps // 20, name, self.route, data.seed,
                           self.config.block_size, " (class head; the unused LM head left out)")
        record.extra["batches_per_epoch"] = len(batches)
        return model.eval(), record

    def predict(self, model, task: SentimentTask, batch_size: int = 64) -> Scored:
        start = time.perf_counter()
        logits = class_logits(model, self.ids(task.texts), batch_size)
        margins = (logits[:, 1] - logits[:, 0]).numpy().astype(np.float64)
        pred = (margins > 0).astype(np.int64)
        acc = float((pred == np.asarray(task.labels)).mean())
        return Scored(acc, pred, margins, _seconds_since(start))


class ClassicalRoute:
    """Route C: TF-IDF of word 1- and 2-grams + logistic regression (scikit-learn), the baseline every
    engineer tries first. Measured on IMDB cut to 73 words: 79.6 % at N = 10,000 in ~4 s of fitting
    (docs/research/issue12-recipes.md). No tokens, no FLOPs counted (sparse arithmetic; the record says so):
    its cost is its seconds, energy and money, like every other route's."""

    key, route = "C", ROUTES["C"]

    def __init__(self, c: float = 1.0, max_features: int = 200_000):
        if not (isinstance(c, (int, float)) and math.isfinite(c) and c > 0):
            raise ValueError(f"c (inverse regularisation strength) must be a number > 0, got {c!r}")
        self.c, self.max_features = float(c), max_features

    def pipeline(self, n: int):
        from sklearn.feature_extraction.text import TfidfVectorizer  # heavy: imported when the route runs
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        return make_pipeline(
            # a bigram seen once in a large set is mostly noise: keep terms from 2 documents up from N = 1,000
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1 if n < 1000 else 2,
                            max_features=self.max_features),
            LogisticRegression(C=self.c, max_iter=2000),
        )

    def fit(self, data: Labelled, name: str, prompt: str | None = None):
        """Fit on `data` -> (fitted pipeline, RunRecord); wall time = vectorising + fitting."""
        from helpers.core.power import energy_of

        if len(set(data.labels)) < 2:
            raise ValueError(f"route C needs both labels among its {len(data)} examples: use N >= 2 (balanced)")
        model = self.pipeline(len(data))
        start = time.perf_counter()
        model.fit(list(data.texts), list(data.labels))
        wall = _seconds_since(start)
        lr = model[-1]
        n_weights = int(lr.coef_.size + lr.intercept_.size)
        kwh, how = energy_of(None, "cpu", wall, 1)
        record = RunRecord(
            name=name, route=self.route, device="cpu", precision="fp64", steps=int(lr.n_iter_.max()),
            wall_seconds=wall, tokens=0,
            flops=None, flops_method="not counted: sparse TF-IDF + logistic regression (its cost is its time)",
            achieved_flops_per_s=None, peak_flops_per_s=0.0, mfu=None, peak_memory_bytes=0,
            trainable_params=n_weights, total_params=n_weights, energy_kwh=kwh, energy_method=how,
            extra={"vocabulary": len(model[0].vocabulary_), "seed": data.seed},
        )
        return model, record

    def predict(self, model, task: SentimentTask, batch_size: int | None = None) -> Scored:
        start = time.perf_counter()
        margins = np.asarray(model.decision_function(list(task.texts)), dtype=np.float64)
        pred = (margins > 0).astype(np.int64)
        acc = float((pred == np.asarray(task.labels)).mean())
        return Scored(acc, pred, margins, _seconds_since(start))
