"""Exercises that check themselves: `check_exercise("01", 2, answer)` says what is right, or gives a
hint that points at the mistake without giving the solution away.

Each exercise is registered with its notebook, number, title and task (the notebooks show the task),
and a check that compares the learner's answer with the course's own reference (`helpers`), on
inputs chosen to expose the usual mistakes: a known mistake gets its own hint, anything else a
general one. Answers are values or functions; a function is called on several inputs, and if it
raises, the feedback says on which input.

Solutions live in notebooks/solutions/NN_name.py (one `exercise_N()` per exercise, returning the
answer); tests/test_exercises.py runs each through its check and proves each check rejects a wrong one.
Left out: open-ended exercises (the notebooks' own "Exercises" lists) are not graded here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Feedback:
    ok: bool
    message: str

    def __repr__(self) -> str:  # what a notebook cell shows
        return f"{'Correct' if self.ok else 'Not yet'}: {self.message}"


@dataclass(frozen=True)
class Exercise:
    notebook: str  # "01" .. "07"
    number: int
    title: str
    task: str  # what the learner is asked, in one paragraph (shown in the notebook)
    check: Callable[[Any], Feedback]


EXERCISES: dict[tuple[str, int], Exercise] = {}


def exercise(notebook: str, number: int, title: str, task: str):
    """Register a check function as exercise `number` of `notebook`."""

    def register(check: Callable[[Any], Feedback]) -> Callable[[Any], Feedback]:
        EXERCISES[(notebook, number)] = Exercise(notebook, number, title, task, check)
        return check

    return register


def exercises_for(notebook: str) -> list[Exercise]:
    return [e for (nb, _), e in sorted(EXERCISES.items()) if nb == notebook]


def check_exercise(notebook: str | int, number: int, answer: Any) -> Feedback:
    """Grade `answer` for exercise `number` of `notebook` ("01" or 1)."""
    key = (f"{int(notebook):02d}" if str(notebook).isdigit() else str(notebook), int(number))
    if key not in EXERCISES:
        known = ", ".join(f"{nb}/{n}" for nb, n in sorted(EXERCISES))
        raise KeyError(f"no exercise {key[1]} in notebook {key[0]}: the exercises are {known}")
    if answer is None or answer is ...:
        return Feedback(False, "replace `None` with your answer, then run the cell again.")
    try:
        return EXERCISES[key].check(answer)
    except _Raised as err:
        return Feedback(False, str(err))


# --- small tools for the checks --------------------------------------------------------------------
class _Raised(Exception):
    """The learner's function raised: turned into feedback, never into a traceback."""


def _call(fn: Any, *args: Any) -> Any:
    if not callable(fn):
        raise _Raised(f"expected a function, got {type(fn).__name__}: pass the function itself, without ()")
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 - any error in learner code becomes a hint
        shown = ", ".join(repr(a) for a in args)
        raise _Raised(f"your function raised {type(err).__name__}: {err} (called with {shown})") from None


def _number(answer: Any) -> float:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise _Raised(f"expected a number, got {type(answer).__name__} {answer!r}") from None
    if not math.isfinite(value):
        raise _Raised(f"expected a finite number, got {value}")
    return value


def _close(a: float, b: float, rel: float = 1e-3) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def _numeric(
    answer: Any,
    expected: float,
    mistakes: Sequence[tuple[float, str]],
    general: str,
    ok: str,
    rel: float = 1e-3,
) -> Feedback:
    """Compare a number with `expected`; a known wrong value (mistakes) gets its own hint."""
    value = _number(answer)
    if _close(value, expected, rel):
        return Feedback(True, ok)
    for wrong, hint in mistakes:
        if _close(value, wrong, rel):
            return Feedback(False, hint)
    return Feedback(False, f"{general} (your value is too {'high' if value > expected else 'low'}).")


# --- 01 tokenizer ----------------------------------------------------------------------------------
@exercise(
    "01",
    1,
    "Count pairs",
    "Write `my_count_pairs(ids)` returning a dict {(a, b): count} of every pair of "
    "consecutive ids, e.g. for [1, 2, 3, 1, 2]. Pass the function itself: "
    "`check_exercise('01', 1, my_count_pairs)`.",
)
def _ex01_1(fn: Any) -> Feedback:
    cases = [[1, 2, 3, 1, 2], [7, 7, 7], [5], [], [0, 255, 0, 255, 0]]
    for ids in cases:
        got, want = _call(fn, list(ids)), _pairs(ids)
        if not isinstance(got, dict):
            return Feedback(False, f"return a dict {{pair: count}}, not a {type(got).__name__}.")
        if dict(got) != want:
            if ids == [7, 7, 7]:
                return Feedback(
                    False,
                    "check a run of equal ids such as [7, 7, 7]: pairs overlap, and every "
                    "position starts one.",
                )
            if sum(got.values()) == max(len(ids) - 2, 0):
                return Feedback(False, "one pair is missing: a list of n ids has n - 1 consecutive pairs.")
            return Feedback(False, f"wrong counts for {ids}: look at how you pair each id with the next one.")
    return Feedback(True, "pairs counted, overlapping runs and short lists included.")


def _pairs(ids: Sequence[int]) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:], strict=False):  # ids[1:] is one shorter: the last id starts no pair
        counts[pair] = counts.get(pair, 0) + 1
    return counts


@exercise(
    "01",
    2,
    "One merge",
    "Write `my_merge(ids, pair, new_id)` returning a new list in which every "
    "occurrence of `pair` (left to right, not overlapping) is replaced by `new_id`.",
)
def _ex01_2(fn: Any) -> Feedback:
    cases = [
        ([3, 4, 1, 2, 5], (1, 2), 256),
        ([1, 2], (1, 2), 9),
        ([7, 7, 7], (7, 7), 256),
        ([1], (1, 2), 9),
        ([3, 1, 2, 1, 2, 2], (1, 2), 300),
    ]
    for ids, pair, new in cases:
        original = list(ids)
        got = list(_call(fn, original, pair, new))
        want = _merge(ids, pair, new)
        if original != ids:
            return Feedback(
                False, "your function changed the list it was given: build and return a new list."
            )
        if got == want:
            continue
        if ids == [1, 2]:
            return Feedback(
                False, "a pair at the very end of the list is not merged: check the loop's last index."
            )
        if ids == [7, 7, 7] or (new in got and len(got) > len(want)):
            return Feedback(
                False,
                "pairs must not overlap: after replacing a pair, continue after both of its "
                "ids ([7, 7, 7] holds the pair (7, 7) once).",
            )
        return Feedback(False, f"wrong result for {ids} with pair {pair}.")
    return Feedback(True, "merges left to right without overlap, including at the end of the list.")


def _merge(ids: Sequence[int], pair: tuple[int, int], new: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


ITALIAN_SAMPLE = "Perché il reso costa così tanto?"


@exercise(
    "01",
    3,
    "Bytes vs characters",
    f"How many characters and how many UTF-8 bytes does the text "
    f"{ITALIAN_SAMPLE!r} have? Answer a tuple `(characters, bytes)`.",
)
def _ex01_3(answer: Any) -> Feedback:
    chars, n_bytes = len(ITALIAN_SAMPLE), len(ITALIAN_SAMPLE.encode("utf-8"))
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        return Feedback(False, "answer a tuple of two numbers: (characters, bytes).")
    c, b = (_number(x) for x in answer)
    if (c, b) == (chars, n_bytes):
        return Feedback(
            True,
            "each accented letter is one character but more than one byte: byte-level BPE "
            "starts from the bytes.",
        )
    if (c, b) == (n_bytes, chars):
        return Feedback(False, "the two numbers are swapped: the answer is (characters, bytes).")
    if c == chars and b == chars:
        return Feedback(False, "characters right; bytes: in UTF-8, 'é' and 'ì' are not one byte each.")
    return Feedback(
        False, "count with Python rather than by eye: len() of the text, and of the text encoded as UTF-8."
    )


# --- 02 tiny GPT -----------------------------------------------------------------------------------
GPT_SIZES = [
    dict(n_layer=2, n_head=2, n_embd=64, vocab_size=1024, block_size=64),
    dict(n_layer=3, n_head=3, n_embd=48, vocab_size=300, block_size=32),
    dict(n_layer=1, n_head=4, n_embd=128, vocab_size=512, block_size=128),
]


@exercise(
    "02",
    1,
    "Count the parameters",
    "Write `my_n_params(n_layer, n_embd, vocab_size, block_size)` "
    "returning the number of parameters of the course GPT (helpers.scratch.gpt: biases in every Linear, "
    "LayerNorms with bias, LM head tied to the token embedding) from the sizes alone, without building it.",
)
def _ex02_1(fn: Any) -> Feedback:
    import torch.nn as nn

    from helpers.scratch.gpt import GPT, GPTConfig

    for sizes in GPT_SIZES:
        model = GPT(GPTConfig(**sizes))
        want = sum(p.numel() for p in model.parameters())
        L, C, V, T = sizes["n_layer"], sizes["n_embd"], sizes["vocab_size"], sizes["block_size"]
        got = _number(_call(fn, L, C, V, T))
        if got == want:
            continue
        # The usual omissions, measured on the model itself so the hints follow helpers.scratch.gpt's layout.
        norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
        linear_biases = sum(
            m.bias.numel() for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None
        )
        hints = {
            V * C: "the LM head is tied: it reuses the token-embedding matrix, so it adds no weights.",
            -T * C: "the position embeddings (one vector per position) are missing.",
            -sum(m.weight.numel() + m.bias.numel() for m in norms): "the LayerNorms are missing: each has a "
            "weight and a bias of size C.",
            -sum(m.bias.numel() for m in norms): "each LayerNorm has a bias as well as a weight.",
            -linear_biases: "the biases of the Linear layers are missing.",
            -V * C: "the token embedding (vocab x C) is missing.",
        }
        diff = got - want
        return Feedback(
            False,
            hints.get(
                diff,
                f"not the count for {sizes}: list the modules of one block, "
                "then what sits outside the blocks.",
            ),
        )
    return Feedback(True, "your formula matches the model's parameter count on three sizes.")


@exercise(
    "02",
    2,
    "The causal mask",
    "Write `my_causal_mask(T)` returning a (T, T) bool tensor that is True "
    "where query position i may attend to key position j.",
)
def _ex02_2(fn: Any) -> Feedback:
    import torch

    for T in (4, 1, 7):  # 4 first: at T=1 an all-False mask looks like "diagonal missing"
        got = _call(fn, T)
        if not isinstance(got, torch.Tensor):
            return Feedback(False, f"return a torch tensor, not {type(got).__name__}.")
        if got.dtype != torch.bool:
            return Feedback(False, f"return a bool tensor (True = may attend), not {got.dtype}.")
        if tuple(got.shape) != (T, T):
            return Feedback(False, f"causal_mask({T}) should have shape ({T}, {T}), got {tuple(got.shape)}.")
        want = torch.tril(torch.ones(T, T, dtype=torch.bool))
        if torch.equal(got, want):
            continue
        if torch.equal(got, want.T):
            return Feedback(
                False, "rows are queries, columns keys: a query may look back at earlier keys, not ahead."
            )
        if torch.equal(got, want & ~torch.eye(T, dtype=torch.bool)):
            return Feedback(False, "a position may attend to itself: the diagonal is allowed.")
        if torch.equal(got, ~want):
            return Feedback(False, "True must mean *may attend*: your mask marks the forbidden positions.")
        return Feedback(False, f"causal_mask({T}) is not causal: row i may use columns 0..i only.")
    return Feedback(True, "the mask lets each position see itself and the past, never the future.")


@exercise(
    "02",
    3,
    "Forward FLOPs per token",
    "Using `helpers.measure.flops.matmul_params`, how many FLOPs does one "
    "forward pass of `GPT(GPTConfig.preset('gpt-micro', vocab_size=1024))` cost per token (ignore "
    "attention's T-dependent part)?",
)
def _ex02_3(answer: Any) -> Feedback:
    from helpers.measure.flops import matmul_params
    from helpers.scratch.gpt import GPT, GPTConfig

    model = GPT(GPTConfig.preset("gpt-micro", vocab_size=1024))
    n = matmul_params(model)
    all_params = sum(p.numel() for p in model.parameters())
    return _numeric(
        answer,
        2 * n,
        [
            (
                6 * n,
                "6 per weight is training (forward + backward): a forward pass "
                "costs a multiply and an add per weight.",
            ),
            (n, "each weight costs two FLOPs per token: a multiply and an add."),
            (
                2 * all_params,
                "count only weights that take part in a matrix multiply: an embedding lookup costs no FLOPs.",
            ),
        ],
        "count the matmul weights, then FLOPs per weight per token",
        "2 FLOPs per matmul weight per token, the embedding lookup free.",
        rel=1e-6,
    )


# --- 03 pretraining ---------------------------------------------------------------------------------
def _ci_tiny_gpt():
    from helpers.course.catchup import gpt_config
    from helpers.course.profiles import get_profile
    from helpers.scratch.gpt import GPT

    sizes = get_profile("ci").pretrain
    return GPT(gpt_config(sizes, vocab_size=get_profile("ci").tokenizer.vocab_size)), sizes


@exercise(
    "03",
    1,
    "What the ci run cost",
    "With 6·N·D, how many FLOPs does pretraining the tiny GPT of the "
    "`ci` profile cost? N = `matmul_params(model)` of `GPT(gpt_config(get_profile('ci')."
    "pretrain, vocab_size=1024))` (gpt_config: helpers.course.catchup), D = tokens seen in `max_steps` "
    "steps of `batch_size` rows of `block_size` tokens.",
)
def _ex03_1(answer: Any) -> Feedback:
    from helpers.measure.flops import full_training_flops, matmul_params

    model, s = _ci_tiny_gpt()
    n, d = matmul_params(model), s.max_steps * s.batch_size * s.block_size
    all_params = sum(p.numel() for p in model.parameters())
    return _numeric(
        answer,
        full_training_flops(n, d),
        [
            (
                2 * n * d,
                "2·N·D is one forward pass; training also runs the backward pass (about twice the forward).",
            ),
            (
                6 * n * s.max_steps,
                "D counts tokens, not steps: each step sees batch_size rows of block_size tokens.",
            ),
            (
                6 * n * s.max_steps * s.batch_size,
                "D counts tokens, not rows: each row holds block_size tokens.",
            ),
            (
                6 * all_params * d,
                "N counts matmul weights only (matmul_params): the embedding lookup costs no FLOPs.",
            ),
        ],
        "check N and D separately",
        "6 x matmul weights x tokens seen.",
        rel=1e-6,
    )


@exercise(
    "03",
    2,
    "The learning-rate schedule",
    "Write `my_lr_multiplier(step, warmup_steps, max_steps, "
    "min_ratio)` (step is 0-based): a linear warm-up reaching 1.0 at step warmup_steps - 1, then a cosine "
    "decay reaching min_ratio at the last step, max_steps - 1.",
)
def _ex03_2(fn: Any) -> Feedback:
    from helpers.core.training import TrainConfig, lr_factor

    for warmup, steps, ratio in ((2, 10, 0.1), (5, 50, 0.0), (1, 7, 0.25)):
        config = TrainConfig(max_steps=steps, warmup_steps=warmup, min_lr_ratio=ratio)
        for step in range(steps):
            got, want = _number(_call(fn, step, warmup, steps, ratio)), lr_factor(step, config)
            if _close(got, want, 1e-6):
                continue
            if step == 0 and got == 0:
                return Feedback(
                    False,
                    "at step 0 the rate is already 1/warmup_steps of the peak: a zero first "
                    "step would waste it.",
                )
            if step == steps - 1:
                return Feedback(
                    False,
                    "at the last step (max_steps - 1) the multiplier must have reached min_ratio exactly.",
                )
            phase = "warm-up" if step < warmup else "cosine decay"
            return Feedback(False, f"wrong during the {phase} (step {step} of {steps}, warm-up {warmup}).")
    return Feedback(True, "the same schedule as helpers.core.training.lr_factor at every step of three configs.")


@exercise(
    "03",
    3,
    "The loss of knowing nothing",
    "What cross-entropy loss does a model get that gives every "
    "token of the `ci` tokenizer's vocabulary (1024 tokens) the same probability?",
)
def _ex03_3(answer: Any) -> Feedback:
    from helpers.course.profiles import get_profile

    v = get_profile("ci").tokenizer.vocab_size
    return _numeric(
        answer,
        math.log(v),
        [
            (math.log2(v), "cross-entropy in PyTorch uses the natural logarithm, not log base 2."),
            (1 / v, "that is the probability of the right token; the loss is minus its logarithm."),
            (-math.log(v), "the loss is minus the log-probability: it is positive."),
        ],
        "loss = -log(probability of the right token)",
        "a fresh model should start near this loss: notebook 03's first loss is close to it.",
        rel=1e-4,
    )


# --- 04 pretrained model -------------------------------------------------------------------------------
@exercise(
    "04",
    1,
    "Inherited compute",
    "How many FLOPs of pretraining does SmolLM2-135M-Instruct carry into "
    "the instruct route? Use 6 x parameters x training tokens with the registry's "
    "`helpers.instruct.models.get_spec('smollm2-135m-instruct')`.",
)
def _ex04_1(answer: Any) -> Feedback:
    from helpers.instruct.models import get_spec

    spec = get_spec("smollm2-135m-instruct")
    want = 6 * spec.parameters * spec.training_tokens
    return _numeric(
        answer,
        want,
        [
            (
                2 * spec.parameters * spec.training_tokens,
                "training costs forward + backward: 6, not 2, per parameter per token.",
            ),
            (want / 1e9, "the answer is in FLOPs, not GFLOPs."),
            (want / 1e12, "the answer is in FLOPs, not TFLOPs."),
            (6 * spec.parameters, "multiply by the number of training tokens as well."),
        ],
        "6 x parameters x tokens from the spec",
        "that is the compute the instruct route gets for free.",
        rel=1e-3,
    )


LOSSES = (2.0, 3.0, 4.0, 1.0)


@exercise(
    "04",
    2,
    "Perplexity",
    f"A model's per-token losses (natural log) on a text are {list(LOSSES)}. "
    "What is its perplexity on that text?",
)
def _ex04_2(answer: Any) -> Feedback:
    mean = sum(LOSSES) / len(LOSSES)
    return _numeric(
        answer,
        math.exp(mean),
        [
            (math.exp(sum(LOSSES)), "average the losses over tokens before exponentiating."),
            (sum(math.exp(x) for x in LOSSES) / len(LOSSES), "exponentiate the mean loss, not each loss."),
            (2**mean, "the losses are natural logarithms: use e, not 2."),
            (mean, "perplexity is e to the loss."),
        ],
        "perplexity = e ** (mean loss per token)",
        "a perplexity of k is as unsure as a fair choice among k tokens.",
        rel=1e-4,
    )


# --- 05 instruction tuning -------------------------------------------------------------------------------
@exercise(
    "05",
    1,
    "Prompt masking",
    "Write `my_mask(prompt_ids, response_ids)` returning `(input_ids, labels)`: "
    "the ids joined, and labels already shifted (labels[t] is the target of position t, i.e. ids[t+1]) "
    "on response tokens only, -100 everywhere else.",
)
def _ex05_1(fn: Any) -> Feedback:
    from helpers.core.batches import IGNORE_INDEX
    from helpers.instruct.masking import mask_prompt

    for prompt, response in (([5, 6], [7, 8]), ([1, 2, 3], [4]), ([9], [10, 11, 12])):
        got = _call(fn, list(prompt), list(response))
        if isinstance(got, dict):
            got = (got.get("input_ids"), got.get("labels"))
        if hasattr(got, "labels"):
            got = (got.input_ids, got.labels)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            return Feedback(False, "return a pair (input_ids, labels).")
        ids, labels = got
        want = mask_prompt(prompt, response)
        if list(ids) != want.input_ids:
            return Feedback(False, "input_ids must be the prompt followed by the response.")
        labels = list(labels)
        if labels == want.labels:
            continue
        if labels == want.input_ids:
            return Feedback(False, "the prompt must not be learned: its positions get -100.")
        if labels == [IGNORE_INDEX] * len(prompt) + list(response):
            return Feedback(
                False, "labels are shifted here: the position *before* a response token predicts it."
            )
        if labels[:-1] == want.labels[:-1]:
            return Feedback(False, "the last position has nothing left to predict in this example.")
        return Feedback(False, f"wrong labels for prompt {prompt} and response {response}.")
    return Feedback(True, "only response tokens are learned, each from the position before it.")


@exercise(
    "05",
    2,
    "LoRA's trainable weights",
    "SmolLM2-135M has 30 layers of width 576; q and o map "
    "576 -> 576, k and v map 576 -> 192 (3 key/value heads of 64). How many trainable weights does LoRA "
    "with r = 8 on q, k, v and o add?",
)
def _ex05_2(answer: Any) -> Feedback:
    shapes = [(576, 576), (576, 192), (576, 192), (576, 576)]  # (in, out) of q, k, v, o
    r, layers = 8, 30
    want = layers * sum(r * (i + o) for i, o in shapes)
    return _numeric(
        answer,
        want,
        [
            (
                layers * sum(r * i * o for i, o in shapes),
                "LoRA adds two thin matrices per weight, A (r x in) and "
                "B (out x r), not r copies of the full matrix.",
            ),
            (want / layers, "that is one layer: the adapters sit in all 30."),
            (layers * 4 * r * (576 + 576), "k and v are narrower (576 -> 192) than q and o."),
            (layers * sum(r * i for i, _ in shapes), "B (out x r) has weights too, not only A (r x in)."),
        ],
        "per adapted matrix: r x (in + out)",
        "under 1 % of the model's weights learn the task.",
        rel=1e-9,
    )


# --- 06 train vs instruct -----------------------------------------------------------------------------
@exercise(
    "06",
    1,
    "Examples to reach a target",
    "Write `my_needed(ns, accuracies, target)` returning the smallest "
    "N whose accuracy reaches the target *and* stays there for every larger N measured, or None.",
)
def _ex06_1(fn: Any) -> Feedback:
    from helpers.experiment.report import examples_to_reach

    cases = [
        ((4, 16, 64), (0.55, 0.72, 0.81), 0.7),
        ((4, 16, 64), (0.8, 0.6, 0.9), 0.75),
        ((4, 16), (0.5, 0.6), 0.7),
        ((64, 4, 16), (0.9, 0.5, 0.7), 0.7),
        ((1, 2), (0.7, 0.7), 0.7),
    ]
    for ns, accs, target in cases:
        got, want = _call(fn, list(ns), list(accs), target), examples_to_reach(ns, accs, target)
        if got == want:
            continue
        if accs == (0.8, 0.6, 0.9):
            return Feedback(
                False, "a lucky small N does not count: every larger N must stay at the target too."
            )
        if want is None:
            return Feedback(False, "when no N reaches the target, say so with None.")
        if isinstance(got, float) and got in accs:
            return Feedback(False, "return the number of examples N, not the accuracy.")
        if ns == (64, 4, 16):
            return Feedback(False, "the measurements may come in any order: sort them by N first.")
        if accs == (0.7, 0.7):
            return Feedback(False, "an accuracy equal to the target reaches it.")
        return Feedback(False, f"wrong for N={ns}, accuracies={accs}, target={target}.")
    return Feedback(True, "the same answers as helpers.experiment.report.examples_to_reach, lucky runs excluded.")


@exercise(
    "06",
    2,
    "Label noise",
    "Write `my_flip(labels, fraction, seed)` for 0/1 labels: flip exactly "
    "round(fraction * n) of them, chosen at random with `seed`, so the same seed flips the same ones and "
    "a larger fraction flips a superset of a smaller one (every point of the noise curve then differs "
    "only in the extra flips).",
)
def _ex06_2(fn: Any) -> Feedback:
    import numpy as np

    labels = [0, 1] * 10
    for fraction in (0.0, 0.2, 0.4, 1.0):
        got = np.asarray(_call(fn, list(labels), fraction, 0))
        if got.shape != (len(labels),) or not np.isin(got, (0, 1)).all():
            return Feedback(False, "return one 0/1 label per input label.")
        flipped = int((got != np.asarray(labels)).sum())
        if flipped != round(fraction * len(labels)):
            return Feedback(
                False,
                f"fraction {fraction} of {len(labels)} labels should flip exactly "
                f"round(fraction * n) of them; yours flipped {flipped}.",
            )
    first, second = (np.asarray(_call(fn, list(labels), 0.4, 0)) for _ in range(2))
    if not np.array_equal(first, second):
        return Feedback(False, "the same seed must flip the same labels: seed your own random generator.")
    small = np.asarray(_call(fn, list(labels), 0.2, 0)) != np.asarray(labels)
    large = np.asarray(_call(fn, list(labels), 0.4, 0)) != np.asarray(labels)
    if not np.all(large[small]):
        return Feedback(
            False,
            "a larger fraction should flip a superset of a smaller one: draw one order of "
            "positions per seed and flip a longer prefix of it.",
        )
    other = np.asarray(_call(fn, list(labels), 0.4, 1)) != np.asarray(labels)
    if np.array_equal(other, large):
        return Feedback(False, "a different seed should (almost always) pick different labels.")
    return Feedback(True, "exact counts, repeatable, nested: each noise level adds flips to the one before.")


# --- 07 local deployment -------------------------------------------------------------------------------
@exercise(
    "07",
    1,
    "Decode speed",
    "Write `my_decode_speed(first_token_seconds, total_seconds, new_tokens)` "
    "returning the tokens per second of decoding: the pace after the first token, which also paid for "
    "reading the prompt.",
)
def _ex07_1(fn: Any) -> Feedback:
    from helpers.measure.latency import StreamStats

    for first, total, n in ((0.5, 2.5, 41), (0.2, 1.2, 11), (1.0, 1.5, 2)):
        got, want = _number(_call(fn, first, total, n)), StreamStats(n, first, total).tokens_per_second
        if _close(got, want, 1e-6):
            continue
        if _close(got, n / total, 1e-6):
            return Feedback(
                False, "leave the first token out: its time includes processing the whole prompt."
            )
        if _close(got, n / (total - first), 1e-6):
            return Feedback(False, "after the first token, n - 1 tokens were decoded in that time.")
        if _close(got, (n - 1) / total, 1e-6):
            return Feedback(False, "use the time after the first token only.")
        return Feedback(False, f"wrong for first={first} s, total={total} s, {n} tokens.")
    return Feedback(True, "decode pace measured apart from time to first token, as helpers.measure.latency does.")


LOCAL_EUR_MONTH, LOCAL_EUR_REQUEST, CLOUD_EUR_REQUEST = 300.0, 0.0002, 0.002


@exercise(
    "07",
    2,
    "Break-even volume",
    f"A local server costs {LOCAL_EUR_MONTH:g} EUR per month plus "
    f"{LOCAL_EUR_REQUEST:g} EUR of energy per request; a cloud API costs {CLOUD_EUR_REQUEST:g} EUR per "
    "request. Above how many requests per month is local cheaper?",
)
def _ex07_2(answer: Any) -> Feedback:
    from helpers.measure.breakeven import CostModel, crossovers

    local = CostModel(
        "local", fixed_eur_per_unit=LOCAL_EUR_MONTH, eur_per_request=LOCAL_EUR_REQUEST, min_units=1
    )
    cloud = CostModel("cloud", eur_per_request=CLOUD_EUR_REQUEST)
    (cross,) = crossovers(local, cloud, max_requests=1e7)
    return _numeric(
        answer,
        cross.requests,
        [
            (
                LOCAL_EUR_MONTH / CLOUD_EUR_REQUEST,
                "the local server's energy per request grows with volume too.",
            ),
            (
                LOCAL_EUR_MONTH / (CLOUD_EUR_REQUEST + LOCAL_EUR_REQUEST),
                "the two per-request costs are subtracted: local saves the difference on each request.",
            ),
            (LOCAL_EUR_MONTH / LOCAL_EUR_REQUEST, "compare with the cloud's price per request."),
        ],
        "set the two monthly costs equal and solve for the number of requests",
        "the same crossing as helpers.measure.breakeven.crossovers.",
        rel=1e-3,
    )


@exercise(
    "07",
    3,
    "The Luhn check",
    "Write `my_luhn_ok(number)` for a card number given as a string (spaces "
    "allowed): from the rightmost digit, double every second digit, subtract 9 from results over 9, sum "
    "everything; valid when the sum is a multiple of 10.",
)
def _ex07_3(fn: Any) -> Feedback:
    from helpers.deploy.privacy import luhn_valid

    cases = [
        "4111 1111 1111 1111",
        "4111 1111 1111 1112",
        "5555 5555 5555 4444",
        "3782 822463 10005",
        "3782 822463 10006",
        "4012 8888 8888 1881",
        "6011 0009 9013 9424",
    ]
    for number in cases:
        got, want = bool(_call(fn, number)), luhn_valid(number)
        if got == want:
            continue
        if number.startswith("3782"):  # 15 digits: doubling from the left picks the wrong digits
            return Feedback(
                False,
                "count from the right: with an odd number of digits (this one has 15), "
                "doubling from the left picks the wrong ones.",
            )
        return Feedback(False, f"wrong for {number!r} (expected {'valid' if want else 'invalid'}).")
    return Feedback(
        True,
        "agrees with helpers.deploy.privacy.luhn_valid, which redaction uses to tell card numbers "
        "from other digit runs.",
    )
