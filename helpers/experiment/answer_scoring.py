"""How notebook 06 scores a route on the task: constrained log-likelihood, and generation as a check.

For each review we compare log p("positive" | prompt) and log p("negative" | prompt), summed over each
answer word's tokens, and predict the likelier one (`answer_logprobs`, `score_task`). No parsing, no
"malformed" answers, one forward pass per review when every answer is one token — and an untuned model
is scored the same way. `answer_ids` checks that the answer words tokenize as a training response begins,
so scoring reads what training taught. The other way to score, greedy answers parsed by
`helpers.instruct.scoring.score_sentiment`, is `generation_accuracy`.

Left out on purpose: calibration of the answer scores, and length normalisation (both answers are one
word; with the course tokenizers, one token each).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from helpers.core.device import precision_policy
from helpers.core.loop_parts import autocast
from helpers.experiment.sentiment import ANSWERS, SentimentTask, task_examples
from helpers.instruct import templates
from helpers.instruct.scoring import prompt_ids, score_sentiment


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    out = model(ids)
    return out.logits if hasattr(out, "logits") else out  # transformers object, or our GPT's tensor


def _kept_logits(model, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Logits at positions `keep` (B, L) of each row only: (B, L, V).

    A transformers model projects just those positions onto its vocabulary (`logits_to_keep`): for
    SmolLM2 the 49,152-word LM head and its softmax over every position of a 150-token prompt were most of
    the scoring time. Other models (our GPT) compute every position and we pick."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper passes it on
    if "logits_to_keep" in inspect.signature(base.forward).parameters:
        return model(ids, logits_to_keep=keep).logits
    return torch.take_along_dim(_logits(model, ids), keep[..., None], dim=1)


@torch.no_grad()
def answer_logprobs(
    model,
    prompts: Sequence[Sequence[int]],
    answers: Sequence[Sequence[int]],
    batch_size: int = 8,
    precision: str = "fp32",
) -> torch.Tensor:
    """log p(answer | prompt) summed over the answer's tokens, for every prompt and answer: (P, A).

    `precision`: "fp32", or "auto" for the device's training policy (`helpers.core.device.precision_policy`:
    bf16 autocast on a CPU or GPU with native bf16, as the loop trains). Measured on 64 IMDB prompts with
    SmolLM2 on 2 cores: bf16 scores ~2x faster, and 3 % of the predictions (margins near 0) flip.

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
    if precision not in ("fp32", "auto"):
        raise ValueError(f"precision must be 'fp32' or 'auto' (the device's training policy), got {precision!r}")
    dtype = None if precision == "fp32" else precision_policy(device).autocast_dtype
    was_training = model.training
    model.eval()
    order = sorted(range(len(jobs)), key=lambda j: len(seqs[j]))  # similar lengths share a batch
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        T = max(len(seqs[j]) for j in chunk)
        x = torch.zeros(len(chunk), T, dtype=torch.long)
        for row, j in enumerate(chunk):
            x[row, : len(seqs[j])] = torch.tensor(seqs[j])
        # the positions each row reads: the prompt's last one (and one per further answer token)
        reads = [1 if jobs[j][1] is None else len(answers[jobs[j][1]]) for j in chunk]
        keep = torch.tensor([[len(prompts[jobs[j][0]]) - 1 + min(i, k - 1) for i in range(max(reads))]
                             for j, k in zip(chunk, reads, strict=True)])
        with autocast(device, dtype):
            kept = _kept_logits(model, x.to(device), keep.to(device))
        logp = torch.log_softmax(kept.float(), dim=-1).cpu()
        for row, j in enumerate(chunk):
            p, a = jobs[j]
            if a is None:  # every answer is one token: read them all after the prompt's last token
                out[p] = logp[row, 0, [ans[0] for ans in answers]].double()
            else:
                targets = torch.tensor(answers[a])  # (n,)
                picked = logp[row, : len(targets)].gather(-1, targets[:, None])
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


def score_task(model, tokenizer, task: SentimentTask, batch_size: int = 8, precision: str = "auto") -> Scored:
    """Accuracy of `model` on `task` by constrained log-likelihood (see the module docstring), in the
    precision the model was trained in ("auto": the device's policy) unless told "fp32"."""
    start = time.perf_counter()
    examples = task_examples(task.texts, task.labels, task.prompt)
    lp = answer_logprobs(model, prompt_ids(tokenizer, examples), answer_ids(tokenizer), batch_size, precision)
    pred = lp.argmax(dim=1).numpy()
    acc = float((pred == np.asarray(task.labels)).mean())
    return Scored(acc, pred, (lp[:, 1] - lp[:, 0]).numpy(), time.perf_counter() - start)


def generation_accuracy(route, model, task: SentimentTask, max_new_tokens: int = 4):
    """The other way to score: greedy answers parsed by `helpers.instruct.scoring.score_sentiment`
    (an answer with neither word is malformed, and wrong)."""
    examples = task_examples(task.texts, task.labels, task.prompt)
    return score_sentiment(
        route.generate(model, prompt_ids(route.tokenizer, examples), max_new_tokens), list(task.labels)
    )
