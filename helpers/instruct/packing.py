"""Packing and padding: encoded examples into training batches, and how much of each batch is padding.

- `pack`: several examples share one row of `max_length` tokens (first-fit decreasing); `position_ids`
  restart at 0 for each example, and transformers turns those restarts into a block-diagonal causal mask
  (no example sees another; `block_diagonal_mask` draws it). Subtle: it does so only when the model runs
  without a KV cache, so `helpers.instruct.lora.add_lora` sets `config.use_cache = False` (generation still
  uses its cache). `packed_batches` shuffles rows into batches.
- `pad_batches` is the alternative: one example per row, length-grouped and right-padded, with an
  attention mask; `padding_waste` measures the padding of either.

Left out on purpose: packing across epochs or streaming datasets (the course's sets fit in memory), and
flash-attention's varlen kernels (CUDA only; position_ids give the same result on every device).

Reference: Krell et al. 2021, "Efficient Sequence Packing without Cross-contamination" (arXiv:2107.02027).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from helpers.core.batches import IGNORE_INDEX
from helpers.core.checks import count, instance
from helpers.instruct.masking import Encoded


def _check_encoded(encoded: Sequence[Encoded]) -> None:
    if isinstance(encoded, Encoded) or not isinstance(encoded, (list, tuple)):
        raise TypeError(f"encoded must be a list of Encoded examples, got {type(encoded).__name__}: use "
                        "encode_all(tokenizer, examples, max_length).examples")
    if not encoded:
        raise ValueError("encoded is an empty list: there is nothing to batch; encode some examples first "
                         "(encode_all(...).examples)")
    for i, e in enumerate(encoded):
        instance(f"encoded[{i}]", e, Encoded, "use encode_all(tokenizer, examples, max_length).examples")


def _check_position_ids(position_ids: torch.Tensor) -> None:
    instance("position_ids", position_ids, torch.Tensor, "a LongTensor (B, T), e.g. a packed batch's position_ids")
    if position_ids.ndim != 2 or position_ids.dtype.is_floating_point:
        raise ValueError(f"position_ids must be an integer tensor of shape (B, T), got {position_ids.dtype} of "
                         f"shape {tuple(position_ids.shape)}")


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
    _check_encoded(encoded)
    count("max_length", max_length, 1, "tokens per packed row, e.g. 256 (InstructSizes.max_length)")
    count("pad_id", pad_id, 0, "the tokenizer's pad_token_id (or its eos id when it has no pad token)")
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
    if not isinstance(rows, (list, tuple)) or not rows:
        raise ValueError(f"rows must be a non-empty list of Rows from pack(), got {rows!r:.60}")
    for i, r in enumerate(rows):
        instance(f"rows[{i}]", r, Row, "pack(encoded, max_length, pad_id) makes them")
    count("batch_size", batch_size, 1, "rows per step, e.g. 4")
    count("seed", seed)
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
    _check_encoded(encoded)
    count("batch_size", batch_size, 1, "examples per step, e.g. 4")
    count("pad_id", pad_id, 0, "the tokenizer's pad_token_id (or its eos id when it has no pad token)")
    if not isinstance(group_by_length, bool):
        raise ValueError(f"group_by_length must be True or False, got {group_by_length!r}")
    count("seed", seed)
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
    if isinstance(items, (Row, dict)) or not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"padding_waste needs a non-empty list of Rows or padded batches, got {items!r:.60}: "
                         "pass what pack() or pad_batches() returned")
    if all(isinstance(r, Row) for r in items):
        return sum(r.n_pad for r in items) / sum(len(r.input_ids) for r in items)
    if all(isinstance(b, dict) and "attention_mask" in b for b in items):
        pad = sum(int((b["attention_mask"] == 0).sum()) for b in items)
        return pad / sum(b["input_ids"].numel() for b in items)
    raise TypeError("padding_waste needs the Rows from pack() or padded batches with an attention_mask "
                    "(packed batches carry no mask, so measure their Rows)")


def segment_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Which example each position belongs to: positions [[0, 1, 2, 0, 1, 0]] -> [[0, 0, 0, 1, 1, 2]]."""
    _check_position_ids(position_ids)
    restarts = torch.zeros_like(position_ids)
    restarts[:, 1:] = (position_ids[:, 1:] != position_ids[:, :-1] + 1).long()
    return restarts.cumsum(-1)


def block_diagonal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """Bool (B, T, T): query i may attend to key j iff j <= i and both belong to the same example.

    This is the mask transformers builds from restarting position_ids; notebook 05 draws it.
    """
    _check_position_ids(position_ids)
    seg = segment_ids(position_ids)  # (B, T)
    T = position_ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
    return causal & (seg[:, :, None] == seg[:, None, :])  # (B, T, T)
