"""Train vs instruct, measured: the runs notebook 06 makes, each returning the loop's RunRecord with the
accuracy, the test set's identity and the experiment's facts (N, label noise) added.

- `run_point(route, task, n, noise)`: one point of the N ladder (and of the label-noise runs): tune a route
  on the first n labelled examples, score it on the task; n = 0 scores the model as it is.
- `ladder_point(route, task, n, crop, noise, seed)`: the same for the IMDB task of issue 12 — any of the
  four routes (A, A0, B, C) fits `sentiment.imdb_training(n, crop, noise, seed)` and predicts the task;
  the record carries the number right (`correct`), so intervals and pooled seeds can be computed.
- `faq_split` and `adapt_to_faq`: adaptability, the time to teach a route the customer-support FAQ and its
  fact accuracy on held-out paraphrases.

Fairness, decided once, in the modules this one puts together:
- same text: one task, one fixed test set, reviews cut to fit the smallest context for every route
  (`helpers.experiment.sentiment`);
- same scoring: constrained log-likelihood of the two answer words, for tuned and untuned models alike
  (`helpers.experiment.answer_scoring`);
- same N, same examples, same seeds; each route gets its own recipe (`helpers.experiment.routes`).
The article's table, the ledger and the plots built from these runs' records are in
`helpers.experiment.report`.

Left out on purpose: several seeds per point (the notebook's exercises ask for it) and hyper-parameter
search per N.
"""

from __future__ import annotations

import time

from helpers.core.records import RunRecord
from helpers.experiment.answer_scoring import generation_accuracy
from helpers.experiment.routes import LoraRoute
from helpers.experiment.sentiment import Cropper, SentimentTask, TokenCrop, imdb_training, training_examples
from helpers.instruct import instructions
from helpers.instruct.scoring import prompt_ids, score_faq

EXPERIMENT = "06-train-vs-instruct"  # RunRecord.extra["experiment"]: how the ledger finds this notebook's runs


# ----------------------------------------------------------------------------- the N ladder and label noise


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


SCORING = {
    "A": "class head on the closing token (argmax)",
    "A0": "class head on the closing token (argmax)",
    "B": "likelier answer word after the instruction (constrained log-likelihood)",
    "C": "logistic regression's decision (argmax)",
}


def ladder_point(route, task: SentimentTask, n: int, crop: TokenCrop, noise: float = 0.0, seed: int = 0,
                 generation: bool = False) -> RunRecord:
    """One run of the IMDB ladder: `route` fits n labelled reviews (seeded sample, a `noise` share of each
    class flipped) and predicts `task`. n = 0 scores the model as it is (route B only: the others have
    nothing to predict with before training). The record gets accuracy, the count right (`correct`),
    the share answered "positive", the test set's name and the experiment's facts."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n (labelled examples) must be an int >= 0, got {n!r}")
    name = f"{route.key} N={n}" + (f" noise={noise:.0%}" if noise else "") + (f" seed={seed}" if seed else "")
    if n == 0:
        if not hasattr(route, "untuned"):
            raise ValueError(f"route {route.key} has no model before training: N = 0 exists for route B only")
        model = route.untuned()
        record = _untrained_record(name, route.route, model)
    else:
        model, record = route.fit(imdb_training(n, crop, noise, seed), name, task.prompt)
    scored = route.predict(model, task)
    labels = list(task.labels)
    correct = int(sum(int(p) == y for p, y in zip(scored.predictions, labels, strict=True)))
    record.metrics.update({"accuracy": correct / len(labels), "correct": float(correct),
                           "says_positive": float(sum(int(p) for p in scored.predictions) / len(labels))})
    record.test_set = task.name
    record.extra.update({"experiment": EXPERIMENT, "route_key": route.key, "n_examples": n, "label_noise": noise,
                         "seed": seed, "n_test": len(labels), "score_seconds": round(scored.seconds, 3),
                         "scoring": SCORING.get(route.key, "")})
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
