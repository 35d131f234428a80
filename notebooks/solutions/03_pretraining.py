"""Solutions: notebook 03, self-checking exercises (helpers.course.exercises)."""

import math


def exercise_1():
    from helpers.course.catchup import gpt_config
    from helpers.course.profiles import get_profile
    from helpers.measure.flops import param_counts
    from helpers.scratch.gpt import GPT

    sizes = get_profile("ci").pretrain
    model = GPT(gpt_config(sizes, vocab_size=1024))
    tokens = sizes.max_steps * sizes.batch_size * sizes.block_size
    return 6 * param_counts(model).matmul * tokens


def exercise_2():
    def my_lr_multiplier(step, warmup_steps, max_steps, min_ratio):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, max_steps - 1 - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return my_lr_multiplier


def exercise_3():
    return math.log(1024)  # -log(1/1024)


# ----------------------------------------------------------------------------- open exercises
# Each `open_exercise_N` runs the experiment of the notebook's exercise N on the notebook's objects (`data`,
# `sizes`, the tokenizer's vocab_size), with sizes as arguments so a test can run it small; its docstring gives
# the answer. tests/test_solutions_open.py checks them.


def _run(train_ids, sizes, vocab_size, batch_size=None, eval_data=None, **overrides):
    """Train a fresh tiny GPT of `sizes` on `train_ids` as notebook 03 does -> its RunRecord."""
    import torch

    from helpers.core.batches import TokenBatches
    from helpers.core.training import train
    from helpers.course.catchup import gpt_config, train_config
    from helpers.scratch.gpt import GPT

    torch.manual_seed(0)  # the same initial weights for every run compared
    model = GPT(gpt_config(sizes, vocab_size))
    config = train_config(sizes, model, progress=False, **overrides)
    batches = TokenBatches(train_ids, batch_size or sizes.batch_size, sizes.block_size, seed=0)
    return train(model, batches, config, eval_data=eval_data)


def open_exercise_1(train_ids, sizes, vocab_size, multipliers=(1, 10, 100, 1_000, 10_000, 100_000)):
    """warmup_steps=0 and the learning rate times each multiplier -> {multiplier: first losses or the error}.

    Answer (ci size, measured): at 10x the first steps' loss drops faster, then stalls and wobbles; at 100x it
    jumps from 6.9 to 12-16 in the first steps (the random initial gradients are large and there is no warm-up
    to damp them); at 1,000x and 10,000x it climbs into the hundreds or more and never recovers, yet stays
    finite: gradient clipping bounds each gradient and Adam's step is about lr whatever the gradient's size.
    Around 100,000x (lr = 300) the gradient norm becomes inf and the loop stops with TrainingDivergedError,
    whose message says what to do: lower TrainConfig.lr, keep grad_clip set, or use precision='fp32'. The
    lesson: a loss that rises without a NaN is the common failure; warm-up and a sane lr prevent both.
    """
    from helpers.core.training import TrainingDivergedError

    out = {}
    for mult in multipliers:
        try:
            record = _run(train_ids, sizes, vocab_size, warmup_steps=0, lr=sizes.learning_rate * mult)
            out[mult] = [round(loss, 2) for loss in record.losses[:6]]
        except TrainingDivergedError as err:
            out[mult] = f"TrainingDivergedError: {err}"
    return out


def open_exercise_2(train_ids, sizes, vocab_size, eval_data=None):
    """The run under precision 'auto' and 'fp32' -> {precision: (tokens/s, MFU, final validation loss)}
    (eval_data: the notebook's `val_set`; without it the validation loss is None).

    Answer: it depends on the chip. On a CPU with native bf16 matrix instructions (AMX on recent Xeons, as
    on the course's machine) 'auto' picks bf16 and matmuls run several times faster (notebook 00's card),
    though the tiny GPT's small matrices gain less than the card's big ones; on a CPU without them 'auto'
    *is* fp32. The final loss is the same within noise: bf16 autocast keeps the weights and the optimiser
    in fp32. MFU is measured against the peak of the precision used, so it can go down while speed goes
    up. On a GPU the gap is larger (tensor cores: an A100 does 312 TFLOP/s bf16 vs 19.5 fp32) and bf16 also
    halves activation memory.
    """
    out = {}
    for precision in ("auto", "fp32"):
        record = _run(train_ids, sizes, vocab_size, eval_data=eval_data, precision=precision)
        out[record.precision] = (record.tokens_per_second, record.mfu, record.final_val_loss)
    return out


def open_exercise_3(train_ids, sizes, vocab_size, accum=4):
    """grad_accum_steps=accum with batch_size // accum, against the plain run ->
    {grad_accum_steps: (losses, wall seconds, peak memory bytes)} (fp32, so the comparison is exact).

    Answer: the loss curve is the same (equal to ~1e-6 in fp32: the loop averages the micro-batch losses,
    and the same seed draws the same rows, a quarter at a time), but the run is no faster and usually slower
    (measured at the ci size, 5 steps: 0.8 s vs 2.0 s; in very short runs the first run's warm-up can hide
    it): four small matmuls use the cores worse than one big one, and each pass has its own overhead. Peak activation memory drops about 4x; the process's peak (what the record shows on
    a CPU) barely moves, because weights, optimiser state and the Python process dominate at this size.
    Accumulation is for when the batch does not fit, not for speed.
    """
    out = {}
    for steps in (1, accum):
        record = _run(train_ids, sizes, vocab_size, batch_size=sizes.batch_size // steps, grad_accum_steps=steps,
                      precision="fp32")
        out[steps] = (record.losses, record.wall_seconds, record.peak_memory_bytes)
    return out


def open_exercise_4(table, hours_per_month=730.0):
    """Machines needed to finish each row of `pretraining_table(...)` in a month -> the table with a column.

    machines = device-hours / hours in a month (730 = 8760 / 12), ignoring that scaling out is never perfect.
    Answer: the 1B model takes this 2-core machine millions of device-hours (notebook 03's table: ~2.9 M), so
    about 4,000 such machines for a month, against a fraction of one H100. Changing `energy_price` moves
    every row's energy EUR in proportion to its kWh, so the row with the most kWh changes the most in
    euros: the 7B model on this machine (a CPU needs far more device-hours per FLOP than a GPU, and its
    kWh grow with them); the GPU rows barely move. The cloud EUR column does not depend on it at all.
    """
    return table.assign(machines_for_a_month=table["device_hours"] / hours_per_month)
