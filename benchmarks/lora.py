"""One LoRA training step: the course's helpers vs a bare transformers + peft loop, on identical
model, data and batch size.

Goal (issue 5): tokens/s of the helpers step >= the bare loop's (ratio >= 1.0). Tokens are *real*
tokens (padding excluded) per second of one training step; each method is the median of its steps. The
methods take turns, one step each per round (a burst of load on a shared machine then hits all of them),
and the first step of every turn is not timed. Tokens per CPU-second (this process's CPU time, all
threads) are printed too: on a busy machine they are the steadier measure of the work a step needs.

- reference: what a first transformers + peft script does: examples in random order, right-padded to
  the longest in each batch (attention mask), `model(input_ids, attention_mask, labels=labels)` (the
  model's own shifted loss), fp32, torch.optim.AdamW.
- helpers: `helpers.core.training.train` (the one loop) on `helpers.instruct.packing` batches - packed rows of
  max_length (block-diagonal attention via restarting position_ids) or length-grouped padding - in fp32
  and with bf16 autocast (where the hardware has it), with the loop's default loss or
  `masking.response_loss` (the LM head only where a label is set).
Same examples (the course's instruction dataset, profile sizes), same LoRA (targets, r, alpha,
dropout, seed), same rows per batch, same learning rate. Each method gets a fresh copy of the base model.

Run:  cd /work/main && COURSE_PROFILE=ci .venv/bin/python benchmarks/lora.py [--steps 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import copy
import functools
import itertools
import random
import statistics
import sys
import time

import torch

import helpers  # noqa: F401  (sets OMP_WAIT_POLICY before torch is imported)
from helpers.core.batches import IGNORE_INDEX, ListBatches
from helpers.core.device import precision_policy
from helpers.core.training import Callback, TrainConfig, train
from helpers.course.profiles import get_profile
from helpers.instruct import instructions, lora, masking, packing
from helpers.instruct.models import load_model
from helpers.measure.flops import training_flops_per_token

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


def now() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    return time.perf_counter(), time.process_time()


class Method:
    """One way of training: its own model copy and batches; `run(n)` trains n more steps and keeps each
    step's real tokens per wall second and per CPU second. The first step of every call is not kept
    (set-up, cold caches)."""

    def __init__(self, name, model, batches, real_tokens, step_fn):
        self.name, self.model, self.batches, self.real = name, model, batches, real_tokens
        self.step_fn, self.served, self.wall, self.cpu = step_fn, 0, [], []

    def run(self, n: int) -> None:
        clock = self.step_fn(self, n + 1)  # n + 2 (wall, cpu) readings: the start, then every step's end
        for i in range(1, n + 1):
            tokens = self.real[(self.served + i) % len(self.batches)]
            self.wall.append(tokens / (clock[i + 1][0] - clock[i][0]))
            self.cpu.append(tokens / (clock[i + 1][1] - clock[i][1]))
        self.served += n + 1

    @property
    def tokens_per_second(self) -> float:
        return statistics.median(self.wall)

    @property
    def tokens_per_cpu_second(self) -> float:
        return statistics.median(self.cpu)


def reference_steps(method: Method, n: int, lr: float) -> list[tuple[float, float]]:
    """The bare loop: model(**batch).loss, backward, AdamW step."""
    model = method.model
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    clock = [now()]
    for i in range(n):
        batch = method.batches[(method.served + i) % len(method.batches)]
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        clock.append(now())
    return clock


class StepClock(Callback):
    def __init__(self):
        self.clock = [now()]

    def on_step_end(self, state):
        self.clock.append(now())


def helpers_steps(method: Method, n: int, lr: float, precision: str, loss_fn=None) -> list[tuple[float, float]]:
    """The course loop (helpers.core.training.train) for n steps, serving the batches in order."""
    data = ListBatches(method.batches)
    data.load_state_dict({"position": method.served % len(method.batches)})
    flops = training_flops_per_token(method.model)  # 4N + 2N_lora per token, as lora.tune counts
    config = TrainConfig(max_steps=n, lr=lr, warmup_steps=1, weight_decay=0.0, precision=precision,
                         progress=False, name="benchmark", route="instruct",
                         flops_per_token=flops.per_token, flops_method=flops.method)
    clock = StepClock()
    train(method.model, data, config, loss_fn=loss_fn, callbacks=[clock])
    return clock.clock


def packed_real_tokens(rows, batch_size: int, seed: int = 0) -> list[int]:
    """Non-padding tokens of each batch of packing.packed_batches(rows, batch_size, seed)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)  # the shuffle packed_batches uses
    chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    return [sum(len(rows[i].input_ids) - rows[i].n_pad for i in chunk) for chunk in chunks]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1, help="timed steps per method per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds; each runs every method in turn")
    args = parser.parse_args(argv)
    sizes = get_profile().instruct
    loaded = load_model()
    tok, spec = loaded.tokenizer, loaded.spec
    base = loaded.model
    report = masking.encode_all(tok, instructions.instruction_dataset(sizes.train_sentiment), sizes.max_length)
    encoded, pad, lr = report.examples, tok.pad_token_id, sizes.learning_rate

    ref_batches = reference_batches(encoded, sizes.batch_size, pad)
    rows = packing.pack(encoded, sizes.max_length, pad)
    packed = packing.packed_batches(rows, sizes.batch_size)
    packed_real = packed_real_tokens(rows, sizes.batch_size)
    grouped = packing.pad_batches(encoded, sizes.batch_size, pad)
    grouped_real = [int(b["attention_mask"].sum()) for b in grouped]

    def fresh():
        return lora.add_lora(copy.deepcopy(base), spec.lora_target_modules, sizes.lora_r,
                                 sizes.lora_alpha, sizes.lora_dropout, seed=0)

    low = precision_policy(None).name  # bf16 where the hardware has it, else fp32 again
    reference = Method("reference: bare loop, random padding, fp32", fresh(), ref_batches,
                       [int(b["attention_mask"].sum()) for b in ref_batches],
                       lambda m, n: reference_steps(m, n, lr))
    methods = [reference]
    for (name, batches, real), precision, (loss_name, loss_fn) in itertools.product(
        (("packed", packed, packed_real), ("length-grouped", grouped, grouped_real)),
        sorted({"fp32", low}),
        (("full LM head", None), ("response-only LM head", masking.response_loss)),
    ):
        step_fn = functools.partial(helpers_steps, lr=lr, precision=precision, loss_fn=loss_fn)
        methods.append(Method(f"helpers: {name}, {precision}, {loss_name}", fresh(), batches, real, step_fn))
    for _ in range(args.rounds):  # interleaved, so a burst of load on the machine hits every method
        for method in methods:
            method.run(args.steps)

    ref, ref_cpu = reference.tokens_per_second, reference.tokens_per_cpu_second
    print(f"model {spec.name}, profile {get_profile().name}, batch {sizes.batch_size} rows, "
          f"max_length {sizes.max_length}, {len(encoded)} examples, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds x {args.steps} timed steps per method (median step)")
    waste = [packing.padding_waste(b) for b in (ref_batches, grouped, rows)]
    print(f"padding waste: random padding {waste[0]:.1%}, length-grouped {waste[1]:.1%}, "
          f"packed {waste[2]:.1%}")
    print(f"{'':62s} {'tokens/s':>9s} {'ratio':>6s} {'tokens/CPU-s':>13s} {'ratio':>6s}")
    for m in methods:
        print(f"{m.name:62s} {m.tokens_per_second:9.0f} {m.tokens_per_second / ref:6.2f} "
              f"{m.tokens_per_cpu_second:13.0f} {m.tokens_per_cpu_second / ref_cpu:6.2f}")
    best = max(methods[1:], key=lambda m: m.tokens_per_second)
    print(f"best helpers / reference = {best.tokens_per_second / ref:.2f} tokens/s, "
          f"{best.tokens_per_cpu_second / ref_cpu:.2f} tokens per CPU-second ({best.name}; goal >= {GOAL})")
    by_name = {m.name: m.tokens_per_second for m in methods}
    for name in ("packed", "length-grouped"):
        for loss_name in ("full LM head", "response-only LM head"):
            fp32 = by_name[f"helpers: {name}, fp32, {loss_name}"]
            print(f"{low} / fp32 ({name}, {loss_name}) = {by_name[f'helpers: {name}, {low}, {loss_name}'] / fp32:.2f}")
    return 0 if best.tokens_per_second / ref >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
