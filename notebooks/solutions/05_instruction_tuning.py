"""Solutions: notebook 05, self-checking exercises (helpers.course.exercises)."""


def exercise_1():
    def my_mask(prompt_ids, response_ids):
        ids = list(prompt_ids) + list(response_ids)
        # position t predicts ids[t+1]: the last prompt position predicts the first response token,
        # and the last position has nothing left to predict.
        labels = [-100] * (len(prompt_ids) - 1) + list(response_ids) + [-100]
        return ids, labels

    return my_mask


def exercise_2():
    r, layers = 8, 30
    shapes = [(576, 576), (576, 192), (576, 192), (576, 576)]  # q, k, v, o as (in, out)
    return layers * sum(r * (d_in + d_out) for d_in, d_out in shapes)  # A is r x in, B is out x r


# ----------------------------------------------------------------------------- open exercises
# Each `open_exercise_N` runs the experiment of the notebook's exercise N. `load` is a function returning a
# fresh LoadedModel (e.g. `helpers.instruct.models.load_model`: tune wraps its model in place, so every run
# needs a fresh one); sizes are arguments, so a test runs them on a tiny model. Docstrings give the answer
# to expect (not measured here at the cpu size: run them to see yours). tests/test_solutions_open.py checks
# what is checkable.


def with_targets(loaded, targets):
    """`loaded` whose spec names other LoRA target modules (lora.tune reads spec.lora_target_modules)."""
    from dataclasses import replace

    from helpers.instruct.models import DEFAULT_MODEL, get_spec

    return replace(loaded, spec=replace(loaded.spec or get_spec(DEFAULT_MODEL), lora_target_modules=tuple(targets)))


def open_exercise_1(load, sizes, items, steps=(25, 50, 100, 150)):
    """FAQ accuracy on `items` (e.g. load_faq('heldout')) after each number of steps -> {steps: Score}.
    Plot `accuracy` against steps.

    What to expect: the answer *format* comes first (short replies in the shop's voice within a few dozen
    steps), the exact facts later: numbers such as '45' or '5.90' appear once each fact has been seen several
    times, and the held-out paraphrases lag behind the training questions. Accuracy rises in steps rather than smoothly,
    and the intervals are wide at 60 held-out questions: compare runs by their intervals.
    """
    from dataclasses import replace

    from helpers.instruct import lora
    from helpers.instruct.scoring import faq_accuracy

    out = {}
    for n in steps:
        loaded = load()
        result = lora.tune(loaded, replace(sizes, max_steps=n))
        out[n] = faq_accuracy(result.model, loaded.tokenizer, items)
    return out


def open_exercise_2(load, sizes, folder, ranks=(2, 8, 32), examples=None, **train_overrides):
    """LoRA with each rank (lora_alpha = 2r, same steps) -> {r: (trainable params, adapter bytes, model)}.
    Score each model with faq_accuracy as in the notebook.

    Answer: the trainable parameters and the adapter file grow exactly linearly with r: r x (in + out) per
    adapted matrix, 30 layers x (576+576 + 576+192 + 576+192 + 576+576) = 115,200 x r on SmolLM2-135M, i.e.
    230,400 / 921,600 / 3,686,400 for r = 2 / 8 / 32, and 4 bytes each in the fp32 safetensors file
    (~0.9 / 3.7 / 14.7 MB). FAQ accuracy barely follows: at these step counts r = 2 and r = 32 land within each
    other's intervals (Hu et al. 2021 found r = 1-8 enough for GPT-3 on several tasks): the steps, not the
    rank, limit what is learned.
    """
    from dataclasses import replace
    from pathlib import Path

    from helpers.instruct import lora

    out = {}
    for r in ranks:
        loaded = load()
        result = lora.tune(loaded, replace(sizes, lora_r=r, lora_alpha=2 * r), examples, **train_overrides)
        path = lora.save_adapter(result.model, Path(folder) / f"r{r}", "model")
        size = sum(f.stat().st_size for f in Path(path).glob("*.safetensors"))
        out[r] = (result.record.trainable_params, size, result.model)
    return out


MLP = ("gate_proj", "up_proj", "down_proj")


def open_exercise_3(load, sizes, examples=None, **train_overrides):
    """LoRA on attention only and on attention + MLP -> {targets: TuneResult}. Score both with faq_accuracy.

    Answer: adding gate/up/down adds r x (576 + 1536) x 3 per layer, 1,520,640 at r = 8 on SmolLM2-135M:
    2.65x the trainable weights (2,442,240 vs 921,600) for about the same compute per step (the frozen
    forward/backward dominates). Facts usually come somewhat earlier or more completely at the same number
    of steps - consistent with the MLPs acting as key-value memories (Geva et al. 2021) - but at the course's
    step counts the difference is often within the intervals: compare at equal steps and report both.
    """
    from helpers.instruct import lora

    attention = ("q_proj", "k_proj", "v_proj", "o_proj")
    return {targets: lora.tune(with_targets(load(), targets), sizes, examples, **train_overrides)
            for targets in (attention, attention + MLP)}


def all_token_loss(pad_id):
    """A loss_fn for lora.tune with labels on every token (prompt included): each position predicts the next
    input id; only padding is left out (where pad == eos, the eos after each answer is left out too)."""
    import torch

    from helpers.core.batches import IGNORE_INDEX
    from helpers.core.loop_parts import default_loss_fn

    def loss_fn(model, batch):
        ids = batch["input_ids"]  # (B, T)
        labels = torch.full_like(ids, IGNORE_INDEX)
        labels[:, :-1] = ids[:, 1:].masked_fill(ids[:, 1:] == pad_id, IGNORE_INDEX)  # position t -> ids[t+1]
        return default_loss_fn(model, {**batch, "labels": labels})

    return loss_fn


def open_exercise_4(load, sizes, examples=None, **train_overrides):
    """Masked (the course) and unmasked tuning -> {"masked" | "all tokens": TuneResult}. Compare
    record.losses and faq_accuracy on load_faq('heldout').

    Answer: the unmasked loss starts lower and falls faster - most tokens are the prompt (template, system
    prompt, the review), predictable or repeated in every example - so the curve looks better while the
    answers get a small share of the gradient. The two losses are not comparable (different tokens are
    averaged). FAQ accuracy on the held-out paraphrases rises more slowly or falls, and the model may start
    writing questions or reviews, because it was also trained to produce them.
    """
    from helpers.instruct import lora

    masked = lora.tune(load(), sizes, examples, **train_overrides)
    loaded = load()
    unmasked = lora.tune(loaded, sizes, examples, loss_fn=all_token_loss(loaded.tokenizer.pad_token_id),
                         **train_overrides)
    return {"masked": masked, "all tokens": unmasked}


GENERAL_QUESTIONS = ("What is the capital of France?", "How many days are in a week?",
                     "Translate 'good morning' into Italian.", "What is 12 times 3?", "Who wrote Romeo and Juliet?")


def open_exercise_5(base, tuned, questions=GENERAL_QUESTIONS, max_new_tokens=40):
    """The base and the tuned LoadedModel's greedy answers to general questions -> DataFrame.
    (`tuned`: helpers.course.catchup.tuned_model(), or a LoadedModel around the tuned PeftModel.)

    What to expect: after the course's short LoRA runs most general answers are unchanged or close; the
    drift shows in style - shorter replies, the shop's tone, now and then bikes or Zefiro Bikes where they do
    not belong - more than in lost facts. LoRA changes few weights and tends to forget less than full
    fine-tuning (Biderman et al. 2024, "LoRA Learns Less and Forgets Less"); more steps or a higher learning
    rate make forgetting visible.
    """
    import pandas as pd

    from helpers.instruct.models import chat

    return pd.DataFrame({"question": list(questions),
                         "base": [chat(base, q, max_new_tokens) for q in questions],
                         "tuned": [chat(tuned, q, max_new_tokens) for q in questions]})
