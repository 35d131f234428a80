"""One LoRA training step: the course's helpers vs a bare transformers + peft loop, on identical
model, data and batch size.

Goal (issue 5): tokens/s of the helpers step >= the bare loop's (ratio >= 1.0). Tokens are *real*
tokens (padding excluded) per second of training, measured after warm-up steps, all in this process.

- reference: what a first transformers + peft script does: examples in random order, right-padded to
  the longest in each batch (attention mask), `model(input_ids, attention_mask, labels=labels)` (the
  model's own shifted loss), fp32, torch.optim.AdamW.
- helpers: `helpers.training.train` (the one loop) on `helpers.instruct` batches - packed rows of
  max_length (block-diagonal attention via restarting position_ids) or length-grouped padding - in fp32
  and with bf16 autocast (where the hardware has it), with the loop's default loss or
  `instruct.response_loss` (the LM head only where a label is set).
Same examples (the course's instruction dataset, profile sizes), same LoRA (targets, r, alpha,
dropout, seed), same rows per batch, same learning rate. Each method gets a fresh copy of the base model.

Run:  cd /work/main && COURSE_PROFILE=ci .venv/bin/python benchmarks/lora.py [--steps 6] [--warmup 2]
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time

import torch

import helpers  # noqa: F401  (sets OMP_WAIT_POLICY before torch is imported)
from helpers import instruct
from helpers.batches import IGNORE_INDEX
from helpers.device import precision_policy
from helpers.models import load_model
from helpers.profiles import get_profile
from helpers.training import Callback, TrainConfig, train

GOAL = 1.0


def reference_batches(encoded, batch_size: int, pad_id: int, seed: int = 0) -> list[dict]:
    """Random order, right padding, HF-style labels (unshifted: the model shifts them itself)."""
    order = list(range(len(encoded)))
    random.Random(seed).shuffle(order)
    batches = []
    for s in range(0, len(order) - batch_size + 1, batch_size):
        group = [encoded[i] for i in order[s:s + batch_size]]
        T = max(len(e) for e in group)
        ids = torch.full((len(group), T), pad_id)
        labels = torch.full((len(group), T), IGNORE_INDEX)
        mask = torch.zeros((len(group), T), dtype=torch.long)
        for row, e in enumerate(group):
            n = len(e)
            ids[row, :n] = torch.tensor(e.input_ids)
            # HF labels: the token itself on response positions (shifted inside the model)
            labels[row, 1:n] = torch.tensor(e.labels[: n - 1])
            mask[row, :n] = 1
        batches.append({"input_ids": ids, "labels": labels, "attention_mask": mask})
    return batches


def run_reference(model, batches, lr: float, steps: int, warmup: int) -> float:
    """Bare loop; returns real tokens per second over the timed steps."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    tokens, start = 0, None
    for step in range(warmup + steps):
        if step == warmup:
            tokens, start = 0, time.perf_counter()
        batch = batches[step % len(batches)]
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return tokens / (time.perf_counter() - start)


class StepClock(Callback):
    def __init__(self):
        self.times = []

    def on_step_end(self, state):
        self.times.append(time.perf_counter())


def run_helpers(model, batches, real_tokens, lr: float, steps: int, warmup: int, precision: str,
                loss_fn=None) -> float:
    """The course loop; `real_tokens[i]` = non-padding tokens of batches[i] (served in order)."""
    clock = StepClock()
    from helpers.batches import ListBatches

    config = TrainConfig(max_steps=warmup + steps, lr=lr, warmup_steps=1, weight_decay=0.0,
                         precision=precision, progress=False, name="benchmark", route="instruct")
    start = time.perf_counter()
    train(model, ListBatches(batches), config, loss_fn=loss_fn, callbacks=[clock])
    times = [start] + clock.times
    timed = range(warmup, warmup + steps)
    tokens = sum(real_tokens[i % len(batches)] for i in timed)
    return tokens / (times[warmup + steps] - times[warmup])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    args = parser.parse_args(argv)
    sizes = get_profile().instruct
    loaded = load_model()
    tok, spec = loaded.tokenizer, loaded.spec
    base = loaded.model
    report = instruct.encode_all(tok, instruct.instruction_dataset(sizes.train_sentiment), sizes.max_length)
    encoded, pad = report.examples, tok.pad_token_id

    ref_batches = reference_batches(encoded, sizes.batch_size, pad)
    rows = instruct.pack(encoded, sizes.max_length, pad)
    packed = instruct.packed_batches(rows, sizes.batch_size)
    packed_real = [int(b["input_ids"].numel()) for b in packed]
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)  # the same shuffle packed_batches used: count real tokens per batch
    for b in range(len(packed)):
        chunk = order[b * sizes.batch_size:(b + 1) * sizes.batch_size]
        packed_real[b] -= sum(rows[i].n_pad for i in chunk)
    grouped = instruct.pad_batches(encoded, sizes.batch_size, pad)
    grouped_real = [int(b["attention_mask"].sum()) for b in grouped]

    def fresh():
        return instruct.add_lora(copy.deepcopy(base), spec.lora_target_modules, sizes.lora_r,
                                 sizes.lora_alpha, sizes.lora_dropout, seed=0)

    low = precision_policy(None).name  # bf16 where the hardware has it, else fp32 again
    lr, steps, warmup = sizes.learning_rate, args.steps, args.warmup
    reference = "reference: bare loop, random padding, fp32"
    results = {reference: run_reference(fresh(), ref_batches, lr, steps, warmup)}
    for name, batches, real, precision, loss_fn in (
        ("packed", packed, packed_real, "fp32", None),
        ("packed", packed, packed_real, low, None),
        ("length-grouped padding", grouped, grouped_real, low, None),
        ("packed, response-only LM head", packed, packed_real, low, instruct.response_loss),
    ):
        results[f"helpers: {name}, {precision}"] = run_helpers(fresh(), batches, real, lr, steps, warmup,
                                                               precision, loss_fn)
    ref = results[reference]
    print(f"model {spec.name}, profile {get_profile().name}, batch {sizes.batch_size} rows, "
          f"max_length {sizes.max_length}, {len(encoded)} examples, {torch.get_num_threads()} threads")
    waste = [instruct.padding_waste(b) for b in (ref_batches, grouped, rows)]
    print(f"padding waste: random padding {waste[0]:.1%}, length-grouped {waste[1]:.1%}, "
          f"packed {waste[2]:.1%}")
    for name, tps in results.items():
        print(f"{name:56s} {tps:8.0f} tokens/s   x{tps / ref:.2f}")
    best = max(v for k, v in results.items() if k.startswith("helpers"))
    print(f"best helpers / reference = {best / ref:.2f} (goal >= {GOAL})")
    speedup = results[f"helpers: packed, {low}"] / results["helpers: packed, fp32"]
    print(f"{low} / fp32 (packed) = {speedup:.2f}")
    return 0 if best / ref >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
