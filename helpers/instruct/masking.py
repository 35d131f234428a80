"""Prompt masking: an example as token ids whose labels come only from the response, and that loss.

- `mask_prompt` joins prompt and response ids and sets the label to -100 on every prompt token, so the loss
  (and the gradient) comes only from the response. Labels are *already shifted* (label[t] is the token at
  t+1), as `helpers.core.training` expects.
- `encode` renders (`helpers.instruct.templates`), tokenizes and masks one example; `encode_all` does a
  dataset and counts what did not fit in `max_length` (dropped or truncated, never silently).
- `response_loss` is the loop's loss with the LM head run only on labelled positions (same value, less work).

Left out on purpose: loss weighting between examples of different lengths (each labelled token counts once,
as in the loop's default loss), and masking inside multi-turn conversations.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from helpers.core.batches import IGNORE_INDEX
from helpers.core.checks import count, instance, one_of, token_ids
from helpers.instruct.instructions import Example
from helpers.instruct.templates import SIMPLE_TEMPLATE, check_tokenizer, encode_prompt, render


@dataclass(frozen=True)
class Encoded:
    """One example as ids; labels already shifted: labels[t] = ids[t+1] on response tokens, else -100."""

    input_ids: list[int]
    labels: list[int]
    n_prompt: int  # how many leading tokens are prompt

    def __len__(self) -> int:
        return len(self.input_ids)


def mask_prompt(prompt_ids: list[int], response_ids: list[int]) -> Encoded:
    """Join and label only the response: ([5, 6], [7, 8]) -> ids [5, 6, 7, 8], labels [-100, 7, 8, -100].

    Position t predicts token t+1, so the last prompt token carries the first response label, and the
    last token of the example has nothing to predict (-100): it must not learn the *next* example.
    """
    prompt_ids = token_ids("prompt_ids", prompt_ids, "the first response token is predicted from the last prompt "
                                                     "token, so a prompt needs at least one")
    response_ids = token_ids("response_ids", response_ids, "an example needs a response to learn")
    ids = list(prompt_ids) + list(response_ids)
    labels = [IGNORE_INDEX] * (len(prompt_ids) - 1) + list(response_ids) + [IGNORE_INDEX]
    return Encoded(ids, labels[: len(ids)], len(prompt_ids))


def encode(tokenizer, example: Example, fallback: dict | None = SIMPLE_TEMPLATE) -> Encoded:
    """Render, tokenize (prompt and response separately) and mask one example.

    Subtle: tokenizing the two parts separately (not the joined text) gives exactly the prompt ids the
    model sees at generation time, so training and inference agree on the boundary token.
    """
    check_tokenizer(tokenizer)
    instance("example", example, Example, "build one with helpers.instruct.instructions.Example(prompt, response)")
    if not example.response.strip():
        raise ValueError(f"empty response in {example.source or 'an example'}: there is nothing to learn; "
                         "write the answer or drop the example")
    rendered = render(tokenizer, example, fallback)
    response_ids = tokenizer(rendered.response, add_special_tokens=False)["input_ids"]
    return mask_prompt(encode_prompt(tokenizer, rendered), response_ids)


@dataclass
class EncodeReport:
    """What `encode_all` did: counts for the notebook to show (and a warning when anything was cut)."""

    examples: list[Encoded]
    n_in: int
    n_truncated: int = 0  # response cut to fit max_length (its end-of-turn token is lost)
    n_dropped: int = 0  # prompt alone does not fit, or too_long="drop"
    longest: int = 0  # tokens in the longest example before cutting
    dropped_sources: list[str] = field(default_factory=list)


def encode_all(tokenizer, examples: Sequence[Example], max_length: int, too_long: str = "drop",
               fallback: dict | None = SIMPLE_TEMPLATE) -> EncodeReport:
    """Encode every example; those longer than `max_length` are dropped (default) or truncated: counted."""
    one_of("too_long", too_long, ("drop", "truncate"))
    check_tokenizer(tokenizer)
    if isinstance(examples, Example) or not isinstance(examples, (list, tuple)):
        raise TypeError(f"examples must be a list of Examples, got {type(examples).__name__}: write [example], or "
                        "use helpers.instruct.instructions.instruction_dataset(n)")
    if not examples:
        raise ValueError("examples is an empty list: there is nothing to encode; pass at least one Example "
                         "(e.g. helpers.instruct.instructions.instruction_dataset(32))")
    for i, example in enumerate(examples):
        instance(f"examples[{i}]", example, Example, "build it with helpers.instruct.instructions.Example")
    count("max_length", max_length, 2, "tokens per example, e.g. 256 (InstructSizes.max_length)")
    report = EncodeReport([], len(examples))
    for example in examples:
        enc = encode(tokenizer, example, fallback)
        report.longest = max(report.longest, len(enc))
        if len(enc) <= max_length:
            report.examples.append(enc)
        elif too_long == "truncate" and enc.n_prompt < max_length:
            labels = enc.labels[:max_length]
            labels[-1] = IGNORE_INDEX  # the cut-off next token is not in the row
            report.examples.append(Encoded(enc.input_ids[:max_length], labels, enc.n_prompt))
            report.n_truncated += 1
        else:
            report.n_dropped += 1
            report.dropped_sources.append(example.source)
    if report.n_truncated or report.n_dropped:
        warnings.warn(f"{report.n_truncated + report.n_dropped} of {report.n_in} examples are longer than "
                      f"max_length={max_length} tokens (longest {report.longest}): {report.n_dropped} "
                      f"dropped, {report.n_truncated} truncated. Raise max_length or shorten them.",
                      stacklevel=2)
    if not report.examples:
        raise ValueError(f"no example fits in max_length={max_length} tokens (longest {report.longest}): "
                         "raise max_length")
    return report


def response_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss of `helpers.core.training.default_loss_fn`, with the LM head run only where a label is set.

    Subtle: a 49k-word LM head is a fifth of SmolLM2's compute and its logits (B x T x 49,152 floats) are
    most of the activation memory, yet only response tokens carry a loss - one or two per sentiment
    example. Same value, less work: a transformers causal LM (or a PeftModel around one) only.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not (hasattr(base, "get_decoder") and hasattr(base, "get_output_embeddings")):
        raise TypeError(f"response_loss needs a transformers causal LM (or a PeftModel around one), got "
                        f"{type(base).__name__}: use helpers.core.training.default_loss_fn for other models")
    if not isinstance(batch, dict) or not {"input_ids", "labels"} <= set(batch):
        raise ValueError("batch must be a dict with 'input_ids' and 'labels' (and optionally position_ids, "
                         "attention_mask), as packed_batches/pad_batches make")
    if not bool((batch["labels"] != IGNORE_INDEX).any()):
        raise ValueError("batch has no label other than -100: its loss would be NaN; every row needs response "
                         "tokens (encode_all drops examples that do not fit)")
    decoder, head = base.get_decoder(), base.get_output_embeddings()
    extras = {k: batch[k] for k in ("attention_mask", "position_ids") if k in batch}
    hidden = decoder(input_ids=batch["input_ids"], use_cache=False, **extras).last_hidden_state  # (B, T, C)
    keep = batch["labels"] != IGNORE_INDEX  # (B, T)
    logits = head(hidden[keep])  # (N, V): N labelled positions only
    return F.cross_entropy(logits.float(), batch["labels"][keep])
