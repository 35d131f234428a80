"""Solutions: notebook 07, self-checking exercises (helpers.course.exercises)."""


def exercise_1():
    def my_decode_speed(first_token_seconds, total_seconds, new_tokens):
        return (new_tokens - 1) / (total_seconds - first_token_seconds)

    return my_decode_speed


def exercise_2():
    fixed, local, cloud = 300.0, 0.0002, 0.002
    return fixed / (cloud - local)  # 300 + local * R = cloud * R


def exercise_3():
    def my_luhn_ok(number):
        digits = [int(c) for c in number if c.isdigit()]
        total = 0
        for i, d in enumerate(reversed(digits)):
            if i % 2 == 1:
                d *= 2
                if d > 9:
                    d -= 9
            total += d
        return total % 10 == 0

    return my_luhn_ok


# ----------------------------------------------------------------------------- open exercises
# Each `open_exercise_N` runs the experiment of the notebook's exercise N, with sizes as arguments; its
# docstring gives the answer. tests/test_solutions_open.py checks what is checkable.


def time_request(send):
    """(seconds to the first streamed chunk, seconds in all, chunks) of one streamed request: `send()` returns
    an iterator of chunks (e.g. your provider's streaming call). Put the medians of a few into
    CloudRoundTrip(network_rtt=..., first_token=..., tokens_per_second=...)."""
    import time

    start, first, n = time.perf_counter(), None, 0
    for _ in send():
        n += 1
        first = first if first is not None else time.perf_counter() - start
    return first, time.perf_counter() - start, n


def open_exercise_1(local_first_s, local_tokens_per_s, cloud_first_s, cloud_tokens_per_s):
    """The answer length (tokens) above which the cloud answers sooner than the local model, or None if it
    never does. Total time = first token + (n - 1) / tokens per second on each side; equal at
    n - 1 = (cloud_first - local_first) / (1 / local_pace - 1 / cloud_pace).

    Answer: local has no network round trip and no queue, so it wins short answers; a hosted model that
    streams faster wins long ones. E.g. local 0.2 s + 40 tokens/s against cloud 0.55 s + 100 tokens/s: the
    cloud is ahead after ~24 tokens. With your measured numbers the crossover moves: a slow network or a
    busy provider pushes it up, a faster local runtime (the GGUF server of section 7) pushes it up too.
    """
    gap_first = cloud_first_s - local_first_s  # what local saves before the first token
    gap_pace = 1 / local_tokens_per_s - 1 / cloud_tokens_per_s  # what local loses per further token
    if gap_pace <= 0:  # local streams at least as fast: the cloud never catches up
        return None if gap_first >= 0 else 1
    if gap_first <= 0:  # the cloud is ahead from the first token
        return 1
    return 1 + gap_first / gap_pace


# Messages that fool `redact`, and whether it should catch them (a person would call each one personal data).
FOOLING_MESSAGES = {
    "phone split over two lines": ("Call me at +39 347\n123 4567 tomorrow.", True),
    "IBAN with a typo": ("Refund to IT60 X054 2811 1010 0000 0123 457 please.", True),
    "e-mail written out": ("Write to mario dot rossi at gmail dot com", True),
    "e-mail obfuscated": ("mario.rossi(at)gmail.com", True),
    "phone number in words": ("My number is three four seven, one two three, four five six seven.", True),
}
CAUGHT_AFTER_ALL = {"card inside a URL": "See https://pay.example/checkout?card=4111111111111111&exp=12"}


def open_exercise_2():
    """{name: what redact found} for FOOLING_MESSAGES (all empty: each fools it) and CAUGHT_AFTER_ALL.

    Answer: the five messages pass unredacted. It should catch all five - each identifies a person or an
    account - but they fail for different reasons: the split phone and the written-out e-mails defeat the
    patterns (fixable by normalising whitespace and ' at '/' dot ' before matching, at the price of more false
    alarms); the IBAN with a typo fails its checksum, which is there on purpose to avoid redacting random
    codes (a typo'd IBAN is still close to a real account: a judgement call); numbers in words need a
    language-aware model. The card number inside a URL is caught: the card pattern needs no word boundary
    and the Luhn check confirms it. Adding them to a copy of the test set (with their spans) lowers recall
    for phone and email by a few points and leaves precision as it was: the redactor fails by missing,
    not by over-redacting.
    """
    from helpers.deploy.privacy import redact

    texts = {name: text for name, (text, _) in FOOLING_MESSAGES.items()} | CAUGHT_AFTER_ALL
    return {name: redact(text).counts() for name, text in texts.items()}


def open_exercise_3(train_fn, score_fn, repeats=(1, 2, 4, 8, 16), seeds=(0, 1, 2)):
    """Exposure of the canary against repetitions, per seed -> DataFrame (plot exposure against repeats, one
    line per seed). train_fn(repeats, seed) trains the tiny GPT on text with the canary planted `repeats`
    times (the notebook's canary section with `sizes.canary_repeats` changed) and returns a score function;
    score_fn(score, seed) -> the exposure in bits (`measure_exposure(score, canary).exposure`).

    What to expect: exposure grows with repetitions but not smoothly: near zero for 1-2 copies, then a
    jump once the model has seen the sentence often enough to prefer its digits, then it saturates near the
    maximum (log2 of the number of candidates). Seeds move the jump by a factor of about two: one run is
    not a measurement. Carlini et al. 2019 (The Secret Sharer) found the same shape.
    """
    import pandas as pd

    rows = [{"repeats": r, "seed": s, "exposure": score_fn(train_fn(r, s), s)} for s in seeds for r in repeats]
    return pd.DataFrame(rows)


def open_exercise_4():
    """LoRA memorisation (needs the 135M model and minutes of tuning: run it in the notebook).

    Recipe: examples = [Example("Message from a customer:", text) for text in planted] (the redacted=False
    messages with the canary planted), result = lora.tune(loaded, profile.instruct, examples),
    score = text_scorer(lambda x: result.model(input_ids=x).logits, lambda s: loaded.tokenizer.encode(s)),
    measure_exposure(score, canary).

    What to expect: at the same number of repetitions a LoRA adapter memorises less than full fine-tuning
    of the tiny GPT - it changes under 1 % of the weights and trains for fewer steps - but not nothing: a
    135M model is a far better language model, so the few digits of a canary repeated often still rise in
    rank. "LoRA" does not mean "safe": redact before tuning.
    """
    return None


def open_exercise_5(items=None, keep=("+39 0599 417268", "assistenza@zefirobikes.example")):
    """FAQ answers whose key fact redaction removes -> (lost without keep, lost with keep).

    Answer: every answer whose key fact is the shop's phone number or e-mail address would lose it without a
    keep list (40 of the 600 training answers when this was written: the customer-service number and e-mail,
    in both languages and several phrasings); with the shop's phone number and e-mail on it, none does. A
    redactor that cannot tell the shop's public contacts from a customer's would
    erase exactly the facts the tuned model is meant to learn.
    """
    from helpers.deploy.privacy import redact
    from helpers.instruct.instructions import load_faq
    from helpers.instruct.scoring import fact_in_answer

    items = load_faq("train") if items is None else items

    def lost(keep_list):
        return sum(fact_in_answer(i.answer, i.key) and not fact_in_answer(redact(i.answer, keep=keep_list).text, i.key)
                   for i in items)

    return lost(()), lost(list(keep))


def open_exercise_6():
    """What 4 bits cost (needs llama.cpp: `pip install -e .[serve]`; run it in the notebook with
    export_gguf(..., formats=("f16", "q4_0", "q4_k_m")) and the notebook's scoring of each format).

    What to expect (measured by the project, commit e2acbac): Q4_0 broke the tuned 135M model - 18 of 20
    answers were not a label, mean logit error 2.6 against 1.5 for Q4_1 - so it falls outside the
    transformers interval; Q4_K_M on SmolLM2 falls back to a 5-bit type on rows of 576 (not a multiple of
    its 256-weight super-blocks), so it is not really 4-bit here. Why the minimum matters: Q4_0 stores one
    scale per 32 weights and codes them symmetrically around zero, so a block whose weights are not centred
    wastes levels; Q4_1 stores a scale and a minimum and spends all 16 levels on the block's actual range.
    A small model has few redundant weights to absorb the rounding error, so it feels this first.
    """
    return None
