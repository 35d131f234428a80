"""Instruction data: the `Example` every later step consumes, and the course's instruction datasets.

- `Example(prompt, response, system, shots)`: one instruction and its answer (few-shot turns optional).
- The project's own bilingual FAQ for the *fictional* shop Zefiro Bikes (`data/faq/`, schema in its README):
  `load_faq` reads it through `helpers.core.io.read_jsonl` (errors name the file, line and field).
- Sentiment instructions built from the packaged reviews (`sentiment_examples`), with the course's
  instruction `SENTIMENT_PROMPT`; `instruction_dataset(n)` is the tuning set notebook 05 uses.
- Online users can pass any `datasets` dataset with instruction/response columns (`from_dataset`).

Left out on purpose: multi-turn conversations as training data (the course tunes on single question/answer
pairs), and downloading instruction datasets (none ships on PyPI; `from_dataset` takes one already loaded).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass

from helpers.core.checks import count, instance, text
from helpers.core.data import PROJECT_DATA_DIR, labelled_pool
from helpers.core.io import read_jsonl

FAQ_DIR = PROJECT_DATA_DIR / "faq"
FAQ_FIELDS = ("id", "fact", "lang", "question", "answer", "key")
FAQ_SYSTEM = ("You are the customer-support assistant of Zefiro Bikes, a bicycle shop with stores in "
              "Borgo Lumino and Valdorso. Answer in the customer's language, briefly.")
SENTIMENT_PROMPT = ("Classify the sentiment of this review as positive or negative. Answer with one word.\n\n"
                    "Review: {review}")
SENTIMENT_ANSWERS = {0: "negative", 1: "positive"}  # same as helpers.core.data.LABEL_NAMES


@dataclass(frozen=True)
class FaqItem:
    """One FAQ row (schema: data/faq/README.md)."""

    id: str
    fact: str
    lang: str  # "en" or "it"
    question: str
    answer: str  # the reference answer; contains `key`
    key: str  # the fact a correct answer must contain, e.g. "45" or "5.90"


def load_faq(split: str = "train", n: int | None = None,
             path: str | os.PathLike | None = None) -> list[FaqItem]:
    """The FAQ's `train` (600 rows) or `heldout` (60 paraphrased questions) split; n = a prefix."""
    if n is not None:
        count("n", n, 0, "how many rows (a prefix), or None for all of them")
    if path is None:
        if split not in ("train", "heldout"):
            raise ValueError(f"unknown FAQ split {split!r}: use 'train' or 'heldout'")
        path = FAQ_DIR / f"faq_{split}.jsonl"
    else:
        instance("path", path, (str, os.PathLike), "a JSONL file with the FAQ schema (data/faq/README.md)")
    items = [FaqItem(**{k: row[k] for k in FAQ_FIELDS}) for row in read_jsonl(path, FAQ_FIELDS)]
    return items if n is None else items[:n]


@dataclass(frozen=True)
class Example:
    """One instruction and its response; `shots` are earlier (user, assistant) turns for few-shot prompts."""

    prompt: str
    response: str
    system: str | None = None  # None = the template's default system prompt, if it has one
    shots: tuple[tuple[str, str], ...] = ()
    source: str = ""  # where it came from, for error messages ("faq:return-window-en-1")

    def __post_init__(self) -> None:
        where = self.source or "no source"
        for name in ("prompt", "response"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"Example.{name} must be a string, got {type(value).__name__} ({where})")
        if not self.prompt.strip():
            raise ValueError(f"Example.prompt is empty ({where}): every example needs an instruction")
        if self.system is not None and not isinstance(self.system, str):
            raise TypeError(f"Example.system must be a string or None (the template's default), got "
                            f"{type(self.system).__name__} ({where})")
        if not isinstance(self.shots, tuple) or not all(
                isinstance(s, tuple) and len(s) == 2 and all(isinstance(t, str) for t in s) for s in self.shots):
            raise TypeError(f"Example.shots must be a tuple of (user, assistant) string pairs, got "
                            f"{self.shots!r:.80} ({where}): e.g. (('Review: great', 'positive'),)")
        instance("Example.source", self.source, str)


def faq_examples(items: Iterable[FaqItem]) -> list[Example]:
    """FAQ rows as examples with the Zefiro Bikes system prompt."""
    items = list(items)
    for i, item in enumerate(items):
        instance(f"items[{i}]", item, FaqItem, "read them with load_faq()")
    return [Example(i.question, i.answer, FAQ_SYSTEM, source=f"faq:{i.id}") for i in items]


def sentiment_prompt(review: str) -> str:
    return SENTIMENT_PROMPT.format(review=review)


def sentiment_examples(reviews) -> list[Example]:
    """Reviews (a DataFrame with text and label, e.g. helpers.core.data.labelled_pool(n)) as instructions."""
    columns = getattr(reviews, "columns", None)
    if columns is None or "text" not in columns or "label" not in columns:
        raise TypeError(f"reviews must be a DataFrame with 'text' and 'label' columns, got "
                        f"{type(reviews).__name__}: e.g. helpers.core.data.labelled_pool(32)")
    bad = [y for y in reviews["label"] if y not in SENTIMENT_ANSWERS]
    if bad:
        raise ValueError(f"reviews['label'] must be 0 (negative) or 1 (positive), got {bad[0]!r}")
    return [Example(sentiment_prompt(t), SENTIMENT_ANSWERS[int(y)], source="reviews:pool")
            for t, y in zip(reviews["text"], reviews["label"], strict=True)]


def from_dataset(dataset, instruction_column: str = "instruction", response_column: str = "response",
                 system: str | None = None) -> list[Example]:
    """Any `datasets.Dataset` (or list of dicts) with instruction/response columns, as examples."""
    text("instruction_column", instruction_column)
    text("response_column", response_column)
    if isinstance(dataset, (str, bytes, dict)) or not isinstance(dataset, Iterable):
        raise TypeError(f"dataset must be a datasets.Dataset or a list of dicts, got {type(dataset).__name__}")
    rows = list(dataset)
    if not rows:
        raise ValueError("dataset is empty: there is nothing to tune on")
    if not isinstance(rows[0], dict):
        raise TypeError(f"dataset rows must be dicts of columns, got {type(rows[0]).__name__}")
    for name in (instruction_column, response_column):
        if rows and name not in rows[0]:
            raise KeyError(f"the dataset has no column {name!r} (it has {sorted(rows[0])}): pass "
                           f"instruction_column=/response_column= naming the right ones")
    return [Example(r[instruction_column], r[response_column], system, source=f"dataset row {i}")
            for i, r in enumerate(rows)]


def instruction_dataset(n_sentiment: int, seed: int = 0) -> list[Example]:
    """The course's tuning set: all 600 FAQ rows + `n_sentiment` review instructions, shuffled (seeded)."""
    count("n_sentiment", n_sentiment, 0, "review instructions to add, e.g. 32 (InstructSizes.train_sentiment)")
    count("seed", seed)
    examples = faq_examples(load_faq("train")) + sentiment_examples(labelled_pool(n_sentiment))
    random.Random(seed).shuffle(examples)
    return examples
