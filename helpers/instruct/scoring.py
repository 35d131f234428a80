"""Scoring what a model writes: sentiment labels and FAQ facts, plus the greedy generation and the
perplexity that produce the numbers.

The scorer (documented here, tested in tests/test_evaluate.py):
- Sentiment: `parse_sentiment` takes the *first* word in the generation that is "positive" or
  "negative" (Italian "positivo/a", "negativo/a" count too; case ignored). A generation with neither is
  *malformed*: it is scored wrong and counted separately, so "the model rambles" is visible apart from
  "the model is wrong".
- FAQ: `fact_in_answer(answer, key)` is True when the key fact appears in the answer after `normalise`
  (lower case, accents removed, "9:30" = "9.30" = "09,30", "€5,90" = "5.90", "19:00" = "19"). Numeric
  keys match whole numbers only (key "45" matches "45 days", not "145" or "4.5"); keys with 6+ digits
  (phone numbers) compare digits only. Strict on purpose: "seven years" for key "7" is wrong. An
  empty answer is malformed.

Generation is greedy (deterministic), batched with left padding (so every prompt ends where its
answer starts), and sorted by length so a batch wastes little padding.

Left out on purpose: model-graded answers (LLM-as-judge), BLEU/ROUGE, and sampling-based evaluation.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from helpers.core.checks import count, instance, non_empty, token_ids, vocab_size_of
from helpers.core.data import labelled_pool
from helpers.instruct.instructions import SENTIMENT_ANSWERS, Example, FaqItem, faq_examples, sentiment_prompt
from helpers.instruct.templates import check_tokenizer, encode_prompt, render

# ----------------------------------------------------------------------------- the scorer

_SENTIMENT = re.compile(r"\b(positiv[eoa]|negativ[eoa])\b")
_NUMBER_SEP = re.compile(r"(?<=\d)[:.,](?=\d)")  # 9:30, 9.30, 9,30 -> 9.30
_LEADING_ZERO = re.compile(r"(?<![\d.])0+(?=\d)")  # 09.30 -> 9.30 (but 0.5 stays)
_ZERO_FRACTION = re.compile(r"(?<=\d)\.0+(?!\d)")  # 19.00 -> 19, 12.50 stays
_SPACES = re.compile(r"\s+")


def _strings(name: str, values) -> list[str]:
    if isinstance(values, (list, tuple)) and not values:
        raise ValueError(f"nothing to score: {name} is empty; pass at least one generation (what generate() returned)")
    non_empty(name, values, "pass what generate() returned")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise TypeError(f"{name}[{i}] must be a string (a generated answer), got {type(v).__name__} {v!r:.40}")
    return list(values)


def normalise(text: str) -> str:
    """'Dalle 09:30 alle 19:00, €5,90' -> 'dalle 9.30 alle 19, €5.90'."""
    instance("text", text, str)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _NUMBER_SEP.sub(".", text)
    text = _LEADING_ZERO.sub("", text)
    text = _ZERO_FRACTION.sub("", text)
    return _SPACES.sub(" ", text).strip()


def fact_in_answer(answer: str, key: str) -> bool:
    """Does `answer` state `key`? ('Within 45 days.', '45') -> True; ('145 days', '45') -> False."""
    instance("answer", answer, str)
    instance("key", key, str, "the fact to look for, e.g. '45'")
    key_n, answer_n = normalise(key), normalise(answer)
    if not key_n:
        raise ValueError("an FAQ key is empty: every row needs the fact to look for (see data/faq/README.md)")
    digits = re.sub(r"\D", "", key_n)
    if len(digits) >= 6 and re.fullmatch(r"[\d\s+\-/().]+", key_n):  # a phone number: digits only
        return digits in re.sub(r"\D", "", answer_n)
    # whole-token match: not inside a longer number (digit or decimal part) or word
    pattern = r"(?<![\w.])(?<!\d\.)" + re.escape(key_n) + r"(?!\w)(?!\.\d)"
    return re.search(pattern, answer_n) is not None


def parse_sentiment(text: str) -> str | None:
    """'Positive.' -> 'positive'; 'The review is negative' -> 'negative'; 'I think so' -> None (malformed)."""
    match = _SENTIMENT.search(normalise(text))
    if match is None:
        return None
    return "positive" if match.group(1).startswith("positiv") else "negative"


@dataclass
class Score:
    """Accuracy over n items; `malformed` of them had no parsable answer (and count as wrong)."""

    accuracy: float
    n: int
    correct: int
    malformed: int
    table: pd.DataFrame  # one row per item: what was asked, expected, generated, parsed, correct

    def __repr__(self) -> str:
        return (f"Score(accuracy={self.accuracy:.3f}, correct={self.correct}/{self.n}, "
                f"malformed={self.malformed})")


def _score(table: pd.DataFrame) -> Score:
    n = len(table)
    if n == 0:
        raise ValueError("nothing to score: pass at least one generation")
    correct = int(table["correct"].sum())
    return Score(correct / n, n, correct, int(table["malformed"].sum()), table)


def score_sentiment(generations: Sequence[str], labels: Sequence[int]) -> Score:
    """Score generations against labels (1 = positive, 0 = negative)."""
    generations = _strings("generations", generations)
    non_empty("labels", labels)
    bad = [y for y in labels if isinstance(y, bool) or y not in SENTIMENT_ANSWERS]
    if bad:
        raise ValueError(f"labels must be 0 (negative) or 1 (positive), got {bad[0]!r}")
    if len(generations) != len(labels):
        raise ValueError(f"{len(generations)} generations but {len(labels)} labels: they must pair up")
    expected = [SENTIMENT_ANSWERS[int(y)] for y in labels]
    parsed = [parse_sentiment(g) for g in generations]
    return _score(pd.DataFrame({
        "expected": expected, "generated": list(generations), "parsed": [p or "(none)" for p in parsed],
        "correct": [p == e for p, e in zip(parsed, expected, strict=True)],
        "malformed": [p is None for p in parsed],
    }))


def score_faq(generations: Sequence[str], items: Sequence[FaqItem]) -> Score:
    """Score generated answers against the FAQ items' keys."""
    generations = _strings("generations", generations)
    non_empty("items", items, "FAQ rows from load_faq()")
    for i, item in enumerate(items):
        instance(f"items[{i}]", item, FaqItem, "read them with helpers.instruct.instructions.load_faq()")
    if len(generations) != len(items):
        raise ValueError(f"{len(generations)} generations but {len(items)} FAQ items: they must pair up")
    return _score(pd.DataFrame({
        "question": [i.question for i in items], "key": [i.key for i in items],
        "generated": list(generations),
        "correct": [fact_in_answer(g, i.key) for g, i in zip(generations, items, strict=True)],
        "malformed": [not g.strip() for g in generations],
    }))


# ----------------------------------------------------------------------------- generation


def _eos_ids(model, tokenizer) -> list[int]:
    config = getattr(model, "generation_config", None)
    ids = getattr(config, "eos_token_id", None)
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[Sequence[int]], max_new_tokens: int = 32,
             batch_size: int = 16, eos_token_ids: Sequence[int] | None = None) -> list[str]:
    """Greedy continuations of already-tokenized prompts, in input order (special tokens stripped).

    Prompts are sorted by length, left-padded in batches of `batch_size` (attention_mask 0 on padding),
    and each generation stops at an end-of-sequence id. Each decoding step reads all the weights
    whatever the batch size, so on a CPU bigger batches cost little extra per step.
    """
    if not callable(getattr(model, "generate", None)):
        raise TypeError(f"model must be a transformers causal LM (loaded.model), got {type(model).__name__}")
    check_tokenizer(tokenizer)
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, (list, tuple)):
        raise TypeError(f"prompts must be a list of token-id lists, got {type(prompts).__name__}: use "
                        "prompt_ids(tokenizer, examples)")
    non_empty("prompts", prompts, "use prompt_ids(tokenizer, examples)")
    vocab = vocab_size_of(model)
    prompts = [token_ids(f"prompts[{i}]", p, "use prompt_ids(tokenizer, examples)", vocab)
               for i, p in enumerate(prompts)]
    count("max_new_tokens", max_new_tokens, 1, "e.g. 32")
    count("batch_size", batch_size, 1, "prompts per generate() call, e.g. 16")
    eos = token_ids("eos_token_ids", eos_token_ids) if eos_token_ids is not None else _eos_ids(model, tokenizer)
    if tokenizer.pad_token_id is None and not eos:
        raise ValueError("the tokenizer has no pad token and the model no end-of-sequence id: pass "
                         "eos_token_ids=[...] (the model card names them)")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        T = max(len(prompts[i]) for i in chunk)
        ids = torch.full((len(chunk), T), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        for row, i in enumerate(chunk):  # left padding: the prompt ends at the last column
            n = len(prompts[i])
            ids[row, T - n:] = torch.tensor(prompts[i])
            mask[row, T - n:] = 1
        new = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                             eos_token_id=eos)[:, T:]  # (B, new)
        for row, i in enumerate(chunk):
            out[i] = tokenizer.decode(new[row], skip_special_tokens=True).strip()
    model.train(was_training)
    return out


def prompt_ids(tokenizer, examples: Sequence[Example]) -> list[list[int]]:
    """The token ids a model reads before answering each example (chat template or the simple one)."""
    if isinstance(examples, Example) or not isinstance(examples, (list, tuple)):
        raise TypeError(f"examples must be a list of Examples, got {type(examples).__name__}: write [example]")
    return [encode_prompt(tokenizer, render(tokenizer, e)) for e in examples]


def sentiment_shots(k: int) -> tuple[tuple[str, str], ...]:
    """k labelled reviews from the training pool as few-shot turns (balanced: negative, positive, ...)."""
    count("k", k, 0, "labelled reviews to show, e.g. 2 (0 = zero-shot)")
    pool = labelled_pool(k) if k else []
    return tuple((sentiment_prompt(t), SENTIMENT_ANSWERS[int(y)])
                 for t, y in zip(pool["text"], pool["label"], strict=True)) if k else ()


def sentiment_accuracy(model, tokenizer, reviews: pd.DataFrame, shots: int = 0, max_new_tokens: int = 4,
                       batch_size: int = 16) -> Score:
    """Accuracy on reviews (text, label) asked with instructions.SENTIMENT_PROMPT, zero-shot or with `shots`."""
    if not isinstance(reviews, pd.DataFrame) or not {"text", "label"} <= set(reviews.columns):
        raise TypeError(f"reviews must be a DataFrame with 'text' and 'label' columns, got "
                        f"{type(reviews).__name__}: e.g. helpers.core.data.test_set(20)")
    non_empty("reviews", reviews, "e.g. helpers.core.data.test_set(20)")
    turns = sentiment_shots(shots)
    examples = [Example(sentiment_prompt(t), "-", shots=turns) for t in reviews["text"]]
    gens = generate(model, tokenizer, prompt_ids(tokenizer, examples), max_new_tokens, batch_size)
    return score_sentiment(gens, list(reviews["label"]))


def faq_accuracy(model, tokenizer, items: Sequence[FaqItem], max_new_tokens: int = 40,
                 batch_size: int = 16) -> Score:
    """Fact accuracy on FAQ questions, asked with the Zefiro Bikes system prompt."""
    non_empty("items", items, "FAQ rows, e.g. load_faq('heldout', 8)")
    prompts = prompt_ids(tokenizer, faq_examples(items))
    gens = generate(model, tokenizer, prompts, max_new_tokens, batch_size)
    return score_faq(gens, items)


# ----------------------------------------------------------------------------- perplexity


@dataclass(frozen=True)
class TextLoss:
    """A model's cross-entropy on a text: per token (perplexity), per byte (comparable across tokenizers)."""

    tokens: int  # tokens scored (all but the first)
    n_bytes: int  # UTF-8 bytes of the text
    nats: float  # summed negative log-likelihood

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats / self.tokens)

    @property
    def bits_per_byte(self) -> float:
        return self.nats / math.log(2) / self.n_bytes


@torch.no_grad()
def text_loss(logits_fn: Callable[[torch.Tensor], torch.Tensor], ids: Sequence[int], block_size: int,
              n_bytes: int, batch_size: int = 4, device: torch.device | str | None = None) -> TextLoss:
    """Score one long token stream with windows of `block_size` and stride block_size // 2.

    Every token but the first is predicted once, with at least block_size // 2 tokens of context (the
    first window's tokens with what precedes them). logits_fn: LongTensor (B, T) -> logits (B, T, V).
    device: where the model runs (inputs go there); None = the module's own device, or the CPU for a function.
    """
    if not callable(logits_fn):
        raise TypeError(f"logits_fn must be a function ids (B, T) -> logits (B, T, V), got {type(logits_fn).__name__}"
                        ": e.g. our GPT itself, or lambda x: model(input_ids=x).logits")
    ids = torch.as_tensor(token_ids("ids", ids, "tokenize the text first"), dtype=torch.long)
    if len(ids) < 2:
        raise ValueError(f"text_loss needs at least 2 tokens, got {len(ids)}: score a longer text")
    count("block_size", block_size, 2, "the model's context length, e.g. 64")
    count("n_bytes", n_bytes, 1, "the text's UTF-8 length: len(text.encode())")
    count("batch_size", batch_size, 1, "windows per forward pass, e.g. 4")
    if device is None:  # a module (our GPT) knows its device; a plain function gets CPU inputs
        params = logits_fn.parameters() if isinstance(logits_fn, torch.nn.Module) else iter(())
        device = next(params, torch.empty(0)).device
    stride = max(1, block_size // 2)
    windows = []  # (start, first scored target index within the window)
    start = 0
    while True:
        end = min(start + block_size, len(ids))
        first = 1 if start == 0 else block_size - stride
        windows.append((start, end, first))
        if end == len(ids):
            break
        start += stride
    nats, scored = 0.0, 0
    for b in range(0, len(windows), batch_size):
        chunk = windows[b:b + batch_size]
        T = max(e - s for s, e, _ in chunk)
        x = torch.zeros((len(chunk), T), dtype=torch.long)
        for row, (s, e, _) in enumerate(chunk):
            x[row, : e - s] = ids[s:e]
        logits = logits_fn(x.to(device))  # (B, T, V)
        if int(x.max()) >= logits.shape[-1]:
            raise ValueError(f"ids contain token id {int(x.max())}, outside the model's vocabulary of "
                             f"{logits.shape[-1]}: encode the text with the model's own tokenizer")
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()  # (B, T, V)
        for row, (s, e, first) in enumerate(chunk):
            targets = ids[s + first : e]  # (n,)
            picked = logp[row, first - 1 : e - s - 1].gather(-1, targets[:, None])  # (n, 1)
            nats -= float(picked.sum())
            scored += len(targets)
    return TextLoss(scored, n_bytes, nats)
