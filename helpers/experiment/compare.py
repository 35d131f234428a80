"""Train vs instruct, measured: the head-to-head that notebook 06 runs, as reusable pieces.

One task — the sentiment of held-out reviews — one fixed test set, one instruction format
(an instruction with the review in it, in ChatML; answers "positive"/"negative"), three routes:
- A  ("scratch"): our tokenizer + our tiny GPT pretrained on review text, then every weight tuned on N
  labelled examples (full fine-tuning);
- A0 ("scratch-no-pretrain"): the same GPT from random weights, tuned on the same N examples;
- B  ("instruct"): the pretrained model + LoRA (`helpers.instruct.lora.tune`) on the same N examples.
All three train through the one loop (`helpers.core.training.train`) and return its RunRecord; this module
adds the accuracy, the test set's identity and the experiment's facts (N, label noise) to it.

Fairness, decided once here:
- Same text. The tiny GPT has a short context, so reviews are cut (`Cropper`) to the tokens that fit
  it *with* the instruction and the longest answer; every route then reads the same cut text.
- Same scoring: constrained log-likelihood. For each review we compare log p("positive" | prompt) and
  log p("negative" | prompt), summed over each answer word's tokens, and predict the likelier one
  (`answer_logprobs`). No parsing, no "malformed" answers, one forward pass per review (answers of one
  token) — and an untuned model is scored the same way. A generation-based score (greedy answer, parsed
  by `helpers.instruct.scoring.score_sentiment`) is available too (`generation_accuracy`).
- Same N, same examples, same seeds; each route gets its own recipe (learning rate, batch, epochs).

Also here: `flip_labels` (label noise, exact fraction, seeded), the N ladder (`Recipe.steps`) and the
FAQ adaptability run (`faq_split`, `adapt_to_faq`). The article's table, the ledger and the plots
built from these runs' records are in `helpers.experiment.report`.

Left out on purpose: hyper-parameter search per N, several seeds per point (the notebook's exercises
ask for it), and calibration of the answer scores.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from helpers.core.data import LABEL_NAMES
from helpers.core.records import RunRecord
from helpers.instruct import instructions, lora, masking, packing, templates
from helpers.measure.flops import training_flops_per_token

EXPERIMENT = (
    "06-train-vs-instruct"  # RunRecord.extra["experiment"]: how the ledger finds this notebook's runs
)
ROUTES = {"A": "scratch", "A0": "scratch-no-pretrain", "B": "instruct"}  # key -> RunRecord.route
ROUTE_LABELS = {
    "A": "A: tiny GPT, pretrained + full tuning",
    "A0": "A0: tiny GPT, random init + full tuning",
    "B": "B: pretrained model + LoRA",
}
ANSWERS = tuple(LABEL_NAMES[i] for i in sorted(LABEL_NAMES))  # ("negative", "positive"): index = label
# The instruction every route reads (a profile may choose another: CompareSizes.instruction). Shorter than
# helpers.instruct.instructions.SENTIMENT_PROMPT: the `ci` tiny GPT has 64 tokens of context for markup + instruction +
# review + answer, and SENTIMENT_PROMPT alone takes ~45 of them with the `ci` tokenizer.
TASK_PROMPT = "Is this review positive or negative?\n\n{review}"
# ChatML, the chat format SmolLM2 uses, written with the course tokenizer's own special tokens (minus
# SmolLM2's default system prompt, which would not fit the tiny context): both routes read the same markup.
CHATML_TEMPLATE = (
    "{% for m in messages %}"
    "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def check_prompt(prompt: str) -> str:
    if not isinstance(prompt, str) or prompt.count("{review}") != 1:
        raise ValueError(
            f"the instruction {prompt!r} must contain '{{review}}' exactly once, where the review "
            "goes (see CompareSizes.instruction)"
        )
    return prompt


def task_examples(
    texts: Sequence[str], labels: Sequence[int], prompt: str = TASK_PROMPT
) -> list[instructions.Example]:
    """Reviews and labels as instructions: prompt.format(review=text) -> "positive" / "negative"."""
    check_prompt(prompt)
    return [
        instructions.Example(prompt.replace("{review}", t), ANSWERS[int(y)], source="reviews")
        for t, y in zip(texts, labels, strict=True)
    ]


def course_chat_tokenizer(bpe):
    """The course BPE tokenizer as a transformers tokenizer with the ChatML template: turns end with
    <|im_end|> (the stop token), padding is <|endoftext|>. Same ids as `bpe` on any text."""
    tok = bpe.to_transformers()
    missing = {"<|im_start|>", "<|im_end|>", "<|endoftext|>"} - set(bpe.special_tokens)
    if missing:
        raise ValueError(
            f"the tokenizer lacks the special tokens {sorted(missing)}: train it with "
            "helpers.scratch.tokenizer.DEFAULT_SPECIAL_TOKENS (course_tokenizer() does)"
        )
    tok.chat_template = CHATML_TEMPLATE
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    return tok


# ----------------------------------------------------------------------------- the test set


class Cropper:
    """Cut reviews so that instruction + review + the longest answer fit a model's context.

    Counts tokens with `tokenizer` (the tiny GPT's, the smallest context) and the same rendering the
    model trains on (`helpers.instruct.masking.encode`). A review that fits is returned unchanged; a longer one
    keeps its first tokens. Cropper(tok, 64)(["a long review ..."]) -> ["a long rev"].
    """

    def __init__(self, tokenizer, context: int, prompt: str = TASK_PROMPT):
        self.tokenizer, self.context, self.prompt = tokenizer, context, check_prompt(prompt)
        longest = max(ANSWERS, key=lambda a: len(self._ids(a)))
        self._longest = longest
        overhead = len(masking.encode(tokenizer, self._example("")))
        self.review_tokens = context - overhead  # tokens left for the review itself
        if self.review_tokens < 8:
            raise ValueError(
                f"a context of {context} tokens leaves {self.review_tokens} for the review after the "
                f"instruction and answer ({overhead} tokens): use a model with a larger block_size"
            )

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _example(self, review: str) -> instructions.Example:
        return task_examples([review], [ANSWERS.index(self._longest)], self.prompt)[0]

    def _fits(self, review: str) -> bool:
        return len(masking.encode(self.tokenizer, self._example(review))) <= self.context

    def crop(self, review: str) -> str:
        if self._fits(review):
            return review
        ids = self._ids(review)
        for keep in range(min(self.review_tokens, len(ids)), 0, -1):
            # subtle: a cut can split a multi-byte character; decode gives U+FFFD for it, which we drop
            text = self.tokenizer.decode(ids[:keep]).replace("\ufffd", "").rstrip()
            if text and self._fits(text):
                return text
        raise ValueError(f"no prefix of this review fits {self.context} tokens: {review[:60]!r}")

    def __call__(self, reviews: Sequence[str]) -> list[str]:
        return [self.crop(r) for r in reviews]

    @property
    def name(self) -> str:
        return f"cropped to fit {self.context} tokens (tokenizer of {len(self.tokenizer)} ids)"


@dataclass(frozen=True)
class SentimentTask:
    """The one test set every route is scored on. `name` identifies it (size, cropping and a hash of the
    texts and labels): records carry it, and `helpers.measure.ledger.compare` refuses to compare different ones."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    name: str
    n_cropped: int = 0  # reviews that had to be cut to fit the smallest context
    prompt: str = TASK_PROMPT  # the instruction, with {review} where the review goes

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels) or not self.texts:
            raise ValueError(
                f"a task needs as many labels as texts (and at least one): got {len(self.texts)} "
                f"texts and {len(self.labels)} labels"
            )
        bad = sorted({int(y) for y in self.labels} - set(LABEL_NAMES))
        if bad:
            raise ValueError(
                f"labels must be in {sorted(LABEL_NAMES)} (0 = negative, 1 = positive), got {bad}"
            )

    def __len__(self) -> int:
        return len(self.texts)


def _digest(texts: Sequence[str], labels: Sequence[int], prompt: str) -> str:
    h = hashlib.sha1(prompt.encode())
    for t, y in zip(texts, labels, strict=True):
        h.update(f"{int(y)}\t{t}\n".encode())
    return h.hexdigest()[:10]


def sentiment_task(n: int, crop: Cropper | None = None, prompt: str | None = None) -> SentimentTask:
    """The first n reviews of the fixed held-out test set (`helpers.core.data.test_set`), cut by `crop`, asked
    with `prompt` (default: the cropper's, else TASK_PROMPT)."""
    from helpers.core.data import test_set

    prompt = check_prompt(prompt or (crop.prompt if crop is not None else TASK_PROMPT))
    if crop is not None and crop.prompt != prompt:
        raise ValueError("the cropper was built for another instruction: pass the same prompt to both")
    df = test_set(n)
    texts = list(df["text"])
    cut = crop(texts) if crop is not None else texts
    labels = [int(y) for y in df["label"]]
    name = f"reviews-test n={len(cut)} {crop.name if crop else 'uncut'} sha1={_digest(cut, labels, prompt)}"
    n_cut = sum(a != b for a, b in zip(texts, cut, strict=True))
    return SentimentTask(tuple(cut), tuple(labels), name, n_cut, prompt)


# ----------------------------------------------------------------------------- label noise


def flip_labels(labels: Sequence[int], fraction: float, seed: int = 0) -> np.ndarray:
    """Flip exactly round(fraction * n) binary labels, chosen by a seeded permutation.

    flip_labels([0, 1, 0, 1, 0], 0.4, seed=0) flips 2 of the 5. The same seed always flips the same
    positions, and a larger fraction flips a superset of a smaller one (same permutation, longer prefix).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1] (0.2 flips 20 % of the labels), got {fraction!r}")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"flip_labels needs binary labels 0/1, got {sorted(set(labels.tolist()))}")
    k = int(round(fraction * labels.size))
    order = np.random.default_rng(seed).permutation(labels.size)
    out = labels.copy()
    out[order[:k]] = 1 - out[order[:k]]
    return out


def training_examples(
    n: int, noise: float = 0.0, crop: Cropper | None = None, seed: int = 0, prompt: str = TASK_PROMPT
) -> list[instructions.Example]:
    """The first n labelled pool reviews (balanced, disjoint from the test set) as sentiment instructions,
    cut like the test set, with a `noise` fraction of their labels flipped."""
    from helpers.core.data import labelled_pool

    pool = labelled_pool(n)
    texts = list(pool["text"])
    texts = crop(texts) if crop is not None else texts
    return task_examples(texts, flip_labels(pool["label"], noise, seed), prompt)


# ----------------------------------------------------------------------------- scoring


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    out = model(ids)
    return out.logits if hasattr(out, "logits") else out  # transformers object, or our GPT's tensor


@torch.no_grad()
def answer_logprobs(
    model, prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]], batch_size: int = 8
) -> torch.Tensor:
    """log p(answer | prompt) summed over the answer's tokens, for every prompt and answer: (P, A).

    Sequences are right-padded, which needs no attention mask in a causal model: a real position never
    attends to the padding after it. When every answer is one token, one forward pass per prompt reads
    all of them at the prompt's last position.
    """
    if not answers or any(len(a) == 0 for a in answers):
        raise ValueError("every answer needs at least one token")
    one_token = all(len(a) == 1 for a in answers)
    jobs = (
        [(p, None) for p in range(len(prompts))]
        if one_token
        else [(p, a) for p in range(len(prompts)) for a in range(len(answers))]
    )
    seqs = [list(prompts[p]) + ([] if a is None else list(answers[a])) for p, a in jobs]
    out = torch.zeros(len(prompts), len(answers), dtype=torch.float64)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(jobs)), key=lambda j: len(seqs[j]))  # similar lengths share a batch
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        T = max(len(seqs[j]) for j in chunk)
        x = torch.zeros(len(chunk), T, dtype=torch.long)
        for row, j in enumerate(chunk):
            x[row, : len(seqs[j])] = torch.tensor(seqs[j])
        logp = torch.log_softmax(_logits(model, x.to(device)).float(), dim=-1).cpu()  # (B, T, V)
        for row, j in enumerate(chunk):
            p, a = jobs[j]
            n_prompt = len(prompts[p])
            if a is None:  # every answer is one token: read them all after the prompt's last token
                out[p] = logp[row, n_prompt - 1, [ans[0] for ans in answers]].double()
            else:
                targets = torch.tensor(answers[a])  # (n,)
                picked = logp[row, n_prompt - 1 : n_prompt - 1 + len(targets)].gather(-1, targets[:, None])
                out[p, a] = float(picked.sum())
    model.train(was_training)
    return out


def answer_ids(tokenizer) -> list[list[int]]:
    """Token ids of each answer word, in label order, checked to be how a training response begins."""
    ids = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in ANSWERS]
    for answer, a_ids in zip(ANSWERS, ids, strict=True):
        rendered = templates.render(tokenizer, task_examples(["x"], [ANSWERS.index(answer)])[0])
        response = tokenizer(rendered.response, add_special_tokens=False)["input_ids"]
        if response[: len(a_ids)] != a_ids:
            raise ValueError(
                f"the answer {answer!r} tokenizes as {a_ids} alone but the training response starts "
                f"{response[: len(a_ids)]}: scoring would not match training (check the template)"
            )
    return ids


@dataclass
class Scored:
    """Constrained scoring of a task: accuracy, and each review's log-probability margin."""

    accuracy: float
    predictions: np.ndarray  # predicted label per review
    margins: np.ndarray  # log p(positive) - log p(negative)
    seconds: float


def score_task(model, tokenizer, task: SentimentTask, batch_size: int = 8) -> Scored:
    """Accuracy of `model` on `task` by constrained log-likelihood (see the module docstring)."""
    from helpers.instruct.scoring import prompt_ids

    start = time.perf_counter()
    examples = task_examples(task.texts, task.labels, task.prompt)
    lp = answer_logprobs(model, prompt_ids(tokenizer, examples), answer_ids(tokenizer), batch_size)  # (P, 2)
    pred = lp.argmax(dim=1).numpy()
    acc = float((pred == np.asarray(task.labels)).mean())
    return Scored(acc, pred, (lp[:, 1] - lp[:, 0]).numpy(), time.perf_counter() - start)


# ----------------------------------------------------------------------------- routes


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
    from helpers.scratch.gpt import lm_loss

    return lm_loss(model(batch["input_ids"]), batch["labels"])


def _untrained_record(name: str, route: str, model) -> RunRecord:
    """A record for N = 0: the model as it is, no training (zero time, tokens, FLOPs and money)."""
    n = sum(p.numel() for p in model.parameters())
    return RunRecord(
        name=name,
        route=route,
        device=next(model.parameters()).device.type,
        precision="fp32",
        steps=0,
        wall_seconds=0.0,
        tokens=0,
        flops=0.0,
        flops_method="no training (N = 0)",
        achieved_flops_per_s=0.0,
        peak_flops_per_s=0.0,
        mfu=0.0,
        peak_memory_bytes=0,
        trainable_params=0,
        total_params=n,
        energy_kwh=0.0,
        energy_method="no training",
    )


class ScratchRoute:
    """Routes A and A0: our tokenizer and GPT, every weight trained through the loop.

    `tokenizer` is the course tokenizer as a transformers tokenizer with the ChatML template
    (`course_chat_tokenizer`), so examples are rendered by `helpers.instruct.templates` exactly as for route B.
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
        from helpers.scratch.gpt import GPT

        if self.base is not None:
            return copy.deepcopy(self.base).train()
        torch.manual_seed(self.seed)
        return GPT(self.config)

    def tune(self, examples: Sequence[instructions.Example], name: str, steps: int | None = None, model=None):
        """Full fine-tuning on `examples` -> (model in eval mode, RunRecord). An example longer than the
        context keeps its prompt and loses the end of its answer (counted in extra["examples_truncated"])."""
        from helpers.core.batches import ListBatches
        from helpers.core.training import TrainConfig, train

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the counts go into the record
            report = masking.encode_all(self.tokenizer, examples, self.context, too_long="truncate")
        batches = packing.pad_batches(report.examples, self.recipe.batch_size, self.pad_id, seed=self.seed)
        steps = steps or self.recipe.steps(len(batches))
        model = model if model is not None else self.fresh_model()
        # counted as pretraining counts (attention at the full context), so route A's own compute adds up
        flops = training_flops_per_token(model, seq_len=self.context)
        config = TrainConfig(
            max_steps=steps,
            lr=self.recipe.lr,
            warmup_steps=max(1, steps // 10),
            name=name,
            route=self.route,
            seed=self.seed,
            progress=False,
            flops_per_token=flops.per_token,
            flops_method=flops.method,
        )
        record = train(model, ListBatches(batches, shuffle=True, seed=self.seed), config, loss_fn=gpt_loss)
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
        from helpers.instruct.models import load_model

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

    def score(self, model, task: SentimentTask, batch_size: int = 8) -> Scored:
        return score_task(model, self.tokenizer, task, batch_size)

    def generate(self, model, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[str]:
        from helpers.instruct.scoring import generate

        return generate(model, self.tokenizer, prompts, max_new_tokens)


def generation_accuracy(route, model, task: SentimentTask, max_new_tokens: int = 4):
    """The other way to score: greedy answers parsed by `helpers.instruct.scoring.score_sentiment`
    (an answer with neither word is malformed, and wrong)."""
    from helpers.instruct.scoring import prompt_ids, score_sentiment

    examples = task_examples(task.texts, task.labels, task.prompt)
    return score_sentiment(
        route.generate(model, prompt_ids(route.tokenizer, examples), max_new_tokens), list(task.labels)
    )


def run_point(
    route,
    task: SentimentTask,
    n: int,
    noise: float = 0.0,
    crop: Cropper | None = None,
    seed: int = 0,
    batch_size: int = 8,
    generation: bool = False,
) -> RunRecord:
    """Tune `route` on the first n pool examples (a `noise` fraction of labels flipped), score it on
    `task`, and return the loop's RunRecord with accuracy, test set and the experiment's facts added.
    n = 0 scores the model as it is (no training)."""
    if n < 0:
        raise ValueError(f"n (labelled examples) must be >= 0, got {n}")
    name = f"{route.key} N={n}" + (f" noise={noise:.0%}" if noise else "")
    if n == 0:
        model = route.untuned()
        record = _untrained_record(name, route.route, model)
    else:
        model, record = route.tune(training_examples(n, noise, crop, seed, task.prompt), name)
    scored = route.score(model, task, batch_size)
    record.metrics["accuracy"] = scored.accuracy
    record.test_set = task.name
    record.extra.update(
        {
            "experiment": EXPERIMENT,
            "route_key": route.key,
            "n_examples": n,
            "label_noise": noise,
            "score_seconds": round(scored.seconds, 3),
            "scoring": "constrained log-likelihood of 'positive' vs 'negative' after the prompt",
        }
    )
    if generation:
        gen = generation_accuracy(route, model, task)
        record.metrics["accuracy_generated"] = gen.accuracy
        record.metrics["malformed_generated"] = gen.malformed / gen.n
    return record


# ----------------------------------------------------------------------------- adaptability: the FAQ


def faq_split(train_rows: int, eval_rows: int):
    """(the first `train_rows` FAQ training rows, up to `eval_rows` held-out questions about the same facts).

    A short adaptation run can only learn the facts it sees, so it is scored only on paraphrased
    questions about those facts. The training file lists each fact's 4 rows together, so 8 rows = 2 facts."""
    if train_rows < 1 or eval_rows < 1:
        raise ValueError(f"train_rows and eval_rows must be >= 1, got {train_rows} and {eval_rows}")
    train = instructions.load_faq("train", train_rows)
    facts = {i.fact for i in train}
    held = [i for i in instructions.load_faq("heldout") if i.fact in facts][:eval_rows]
    return train, held


def adapt_to_faq(route, train_items, eval_items, steps: int, max_new_tokens: int = 40) -> RunRecord:
    """Time to adapt `route` to the customer-support FAQ: a short tuning run on `train_items` through the
    same loop, then fact accuracy on `eval_items` (held-out paraphrases) with `helpers.instruct.scoring.score_faq`.

    Route B asks with the shop's system prompt (as notebook 05 does); our tiny GPT gets the questions
    without it, because it would not fit its context. The record's wall time is the tuning only;
    extra["eval_seconds_faq"] is the scoring."""
    from helpers.instruct.scoring import prompt_ids, score_faq

    if isinstance(route, LoraRoute):
        examples = instructions.faq_examples(train_items)
        asked = instructions.faq_examples(eval_items)
    else:
        examples = [instructions.Example(i.question, i.answer, source=f"faq:{i.id}") for i in train_items]
        asked = [instructions.Example(i.question, i.answer, source=f"faq:{i.id}") for i in eval_items]
    model, record = route.tune(examples, f"{route.key} FAQ adaptation", steps=steps)
    start = time.perf_counter()
    score = score_faq(
        route.generate(model, prompt_ids(route.tokenizer, asked), max_new_tokens), list(eval_items)
    )
    record.metrics["faq_accuracy"] = score.accuracy
    record.test_set = f"faq-heldout n={len(eval_items)}"
    record.extra.update(
        {
            "experiment": EXPERIMENT,
            "route_key": route.key,
            "task": "faq",
            "faq_train_rows": len(train_items),
            "faq_malformed": score.malformed,
            "eval_seconds_faq": round(time.perf_counter() - start, 3),
        }
    )
    return record


__all__ = [
    "ANSWERS",
    "EXPERIMENT",
    "ROUTES",
    "ROUTE_LABELS",
    "Cropper",
    "LoraRoute",
    "Recipe",
    "ScratchRoute",
    "Scored",
    "SentimentTask",
    "adapt_to_faq",
    "answer_ids",
    "answer_logprobs",
    "flip_labels",
    "generation_accuracy",
    "gpt_loss",
    "run_point",
    "score_task",
    "sentiment_task",
    "training_examples",
]
