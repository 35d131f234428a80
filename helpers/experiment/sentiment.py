"""The task of notebook 06: the sentiment of held-out reviews, asked the same way of every route.

- The instruction (`TASK_PROMPT`, with `{review}` where the review goes) and its answers (`ANSWERS`:
  "negative" / "positive", index = label), rendered in ChatML (`CHATML_TEMPLATE`); `course_chat_tokenizer`
  gives the course BPE tokenizer that template, so routes A/A0 and B read the same markup.
- `Cropper`: the tiny GPT has a short context, so reviews are cut to the tokens that fit it *with* the
  instruction and the longest answer; every route then reads the same cut text.
- `sentiment_task(n, crop)`: the one test set every route is scored on (`SentimentTask`, named by its size,
  cropping and a hash, so records of different test sets are never compared).
- `training_examples(n, noise, crop)`: the first n labelled pool reviews as instructions, with an exact,
  seeded fraction of labels flipped (`flip_labels`).
How a task is scored is `helpers.experiment.answer_scoring`; the routes, `helpers.experiment.routes`.

Left out on purpose: other tasks and languages, several prompts per review (prompt sensitivity is an
exercise), and balancing the test set (it is the corpus's fixed held-out split).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from helpers.core.data import LABEL_NAMES, imdb_labelled, imdb_test, labelled_pool, test_set
from helpers.instruct import instructions, masking

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


def flip_labels(labels: Sequence[int], fraction: float, seed: int = 0) -> np.ndarray:
    """Flip round(fraction * n_c) labels *in each class c*, at positions a seeded permutation picks.

    The same share of each class is flipped, so the labels keep their balance and the noise is noise, not
    a shift toward one class: flip_labels([0, 1, 0, 1, 0, 1], 1/3) flips one 0 and one 1. The same seed
    always flips the same positions, and a larger fraction flips a superset of a smaller one (one
    permutation per class, a longer prefix of it).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1] (0.2 flips 20 % of the labels), got {fraction!r}")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"flip_labels needs binary labels 0/1, got {sorted(set(labels.tolist()))}")
    rng = np.random.default_rng(seed)
    out = labels.copy()
    for c in (0, 1):
        where = np.flatnonzero(labels == c)
        chosen = where[rng.permutation(where.size)[: int(round(fraction * where.size))]]
        out[chosen] = 1 - c
    return out


def training_examples(
    n: int, noise: float = 0.0, crop: Cropper | None = None, seed: int = 0, prompt: str = TASK_PROMPT
) -> list[instructions.Example]:
    """The first n labelled pool reviews (balanced, disjoint from the test set) as sentiment instructions,
    cut like the test set, with a `noise` fraction of their labels flipped."""
    pool = labelled_pool(n)
    texts = list(pool["text"])
    texts = crop(texts) if crop is not None else texts
    return task_examples(texts, flip_labels(pool["label"], noise, seed), prompt)


# ----------------------------------------------------------------------------- the IMDB task (issue 12)


class TokenCrop:
    """Cut reviews to their first `n_tokens` tokens of the course tokenizer, decoded back to text.

    Every route then reads the same text: the tiny GPT reads exactly those tokens, SmolLM2 and TF-IDF read
    the same words. TokenCrop(bpe, 127)(["a long review ..."]) -> ["a long rev..."]; `words` (set by
    `describe`) reports the crop in words, since "128 tokens" means less text in a small vocabulary."""

    def __init__(self, bpe, n_tokens: int):
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 8:
            raise ValueError(f"n_tokens must be an int >= 8 (tokens of review kept), got {n_tokens!r}")
        self.bpe, self.n_tokens = bpe, n_tokens

    def ids(self, text: str) -> list[int]:
        """The first n_tokens ids of `text` (only a generous prefix of a long text is encoded)."""
        return self.bpe.encode(text[: self.n_tokens * 16])[: self.n_tokens]

    def crop(self, text: str) -> str:
        # a cut can split a multi-byte character; decode gives U+FFFD for it, which we drop
        return self.bpe.decode(self.ids(text)).replace("\ufffd", "").strip()

    def __call__(self, texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            raise TypeError("TokenCrop(...) takes a list of reviews: for one review use .crop(text)")
        return [self.crop(t) for t in texts]

    @property
    def name(self) -> str:
        return f"first {self.n_tokens} tokens (vocabulary {self.bpe.vocab_size})"


def imdb_task(n: int, crop: TokenCrop, prompt: str = TASK_PROMPT) -> SentimentTask:
    """The first n IMDB test reviews (balanced), cut by `crop`: notebook 06's one test set."""
    prompt = check_prompt(prompt)
    df = imdb_test(n)
    texts, labels = crop(list(df["text"])), [int(y) for y in df["label"]]
    n_cut = sum(len(crop.ids(t)) >= crop.n_tokens for t in df["text"])
    name = f"imdb-test n={len(texts)} {crop.name} sha1={_digest(texts, labels, prompt)}"
    return SentimentTask(tuple(texts), tuple(labels), name, n_cut, prompt)


@dataclass(frozen=True)
class Labelled:
    """Training texts (already cut) and their labels, as every route of notebook 06 gets them."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    seed: int
    noise: float

    def __len__(self) -> int:
        return len(self.texts)


def imdb_training(n: int, crop: TokenCrop, noise: float = 0.0, seed: int = 0) -> Labelled:
    """n labelled IMDB reviews from outside the test split (`helpers.core.data.imdb_labelled`; seed 0 = the
    hash-order prefix, other seeds another balanced sample), cut by `crop`, with a `noise` share of each
    class's labels flipped (`flip_labels`, with the same seed)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (labelled examples) must be an int >= 1, got {n!r}")
    df = imdb_labelled(n, seed)
    labels = flip_labels(df["label"], noise, seed)
    return Labelled(tuple(crop(list(df["text"]))), tuple(int(y) for y in labels), seed, noise)
