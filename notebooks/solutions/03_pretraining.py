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
