"""Solutions: notebook 04, self-checking exercises (helpers.course.exercises)."""

import math


def exercise_1():
    from helpers.instruct.models import get_spec

    spec = get_spec("smollm2-135m-instruct")
    return 6 * spec.parameters * spec.training_tokens


def exercise_2():
    losses = [2.0, 3.0, 4.0, 1.0]
    return math.exp(sum(losses) / len(losses))


# ----------------------------------------------------------------------------- open exercises
# Each `open_exercise_N` runs the experiment of the notebook's exercise N on the notebook's objects (`loaded`,
# `reviews`, FAQ items), with sizes as arguments; its docstring gives the answer. tests/test_solutions_open.py
# checks what is checkable on a tiny model.


def prompt_tokens(tokenizer, review, shots):
    """Tokens the model reads to answer `review` with `shots` labelled examples before it."""
    from helpers.instruct.instructions import Example, sentiment_prompt
    from helpers.instruct.scoring import prompt_ids, sentiment_shots

    return len(prompt_ids(tokenizer, [Example(sentiment_prompt(review), "-", shots=sentiment_shots(shots))])[0])


def open_exercise_1(model, tokenizer, reviews, shots=(0, 1, 2, 4, 8)):
    """Accuracy, malformed answers and mean prompt length per number of shots -> DataFrame (plot both columns
    against `shots`).

    Answer: the prompt grows linearly, by one short review per shot (measured with SmolLM2's tokenizer: 123
    tokens at 0 shots, 256 at 2, 693 at 8), and the prefill time with it; accuracy gains come mostly from the first one or two shots, which teach the
    answer format (malformed answers drop), then flatten or wobble within their intervals: a 135M model
    does not learn the task from more examples, and long contexts dilute the question. Adding examples
    stops paying off after 1-2 shots here; past that you pay tokens for noise.
    """
    import pandas as pd

    from helpers.instruct.scoring import sentiment_accuracy

    rows = []
    for k in shots:
        score = sentiment_accuracy(model, tokenizer, reviews, shots=k)
        length = sum(prompt_tokens(tokenizer, t, k) for t in reviews["text"]) / len(reviews)
        rows.append({"shots": k, "accuracy": score.accuracy, "malformed": score.malformed,
                     "prompt_tokens": length})
    return pd.DataFrame(rows)


def open_exercise_2(model, tokenizer, reviews, prompts=None):
    """Zero-shot accuracy and malformed answers for several wordings of `instructions.SENTIMENT_PROMPT`
    -> {wording: Score}. The module's prompt is restored afterwards.

    Answer: without "Answer with one word" the model explains or repeats the review, the first word is often
    not a label and malformed answers rise sharply; accuracy moves by several points between wordings that
    a person would read as equivalent, often more than the interval's half-width. Small models are
    sensitive to wording: fix the prompt before comparing models, and report it with the result.
    """
    from helpers.instruct import instructions
    from helpers.instruct.scoring import sentiment_accuracy

    original = instructions.SENTIMENT_PROMPT
    prompts = prompts or {
        "course": original,
        "no 'one word'": "Classify the sentiment of this review as positive or negative.\n\nReview: {review}",
        "question": "Is this review positive or negative?\n\n{review}",
    }
    out = {}
    try:
        for name, prompt in prompts.items():
            instructions.SENTIMENT_PROMPT = prompt  # sentiment_prompt reads the module's value at each call
            out[name] = sentiment_accuracy(model, tokenizer, reviews)
    finally:
        instructions.SENTIMENT_PROMPT = original
    return out


# A reply fact_in_answer scores right although it is wrong, and one it scores wrong although it is right.
SCORED_RIGHT_BUT_WRONG = ("You cannot return items after 45 days; our return window is 14 days.", "45")
SCORED_WRONG_BUT_RIGHT = ("You can return any item within forty-five days of delivery.", "45")


def open_exercise_3():
    """(what fact_in_answer says of SCORED_RIGHT_BUT_WRONG, of SCORED_WRONG_BUT_RIGHT) -> (True, False).

    Answer: the scorer looks for the key as a whole token, so it accepts any reply that *mentions* 45 -
    negated, as a wrong number among others, or as a guess among several - and rejects a right answer
    written in words ('forty-five') or in another unit ('six weeks and three days'). The first kind (scored
    right, actually wrong) is worse for a support team: a wrong fact reaches customers while the metric says
    all is well. The second kind only makes the model look worse than it is; a person reviewing a sample
    of replies catches both.
    """
    from helpers.instruct.scoring import fact_in_answer

    return fact_in_answer(*SCORED_RIGHT_BUT_WRONG), fact_in_answer(*SCORED_WRONG_BUT_RIGHT)


def faq_system_with_facts(items):
    """instructions.FAQ_SYSTEM followed by the FAQ's answers (one per fact, English), as the exercise asks."""
    from helpers.instruct.instructions import FAQ_SYSTEM

    answers = {i.fact: i.answer for i in items if i.lang == "en"}
    return FAQ_SYSTEM + "\n\nShop facts:\n" + "\n".join(f"- {a}" for a in answers.values())


def open_exercise_4(tokenizer, items, eur_per_m_input, questions_per_day=10_000):
    """Extra prompt tokens per question when the FAQ's answers are in the system prompt, and their EUR per
    day at `eur_per_m_input` -> (tokens per question, EUR per day). For the accuracy, set
    `instructions.FAQ_SYSTEM = faq_system_with_facts(items)` and call `faq_accuracy` again (restore it after).

    Answer: with the facts in the prompt FAQ accuracy jumps (the model copies what it can read; a 135M model
    still garbles some), at the price of the facts' tokens on every question: measured with SmolLM2's
    tokenizer, the 30 facts' English answers add 583 tokens per question, 5.8 M tokens a day at 10,000
    questions - about 0.8 EUR a day at the notebook's API input price (0.15 USD per M tokens), or on a local
    model 583 more tokens of prefill on every request. Retrieval
    (only the relevant facts) or tuning (notebook 05: facts in the weights) cut that cost.
    """
    from helpers.instruct.instructions import FAQ_SYSTEM, Example
    from helpers.instruct.scoring import prompt_ids

    question = items[0].question
    plain = prompt_ids(tokenizer, [Example(question, "-", FAQ_SYSTEM)])[0]
    with_facts = prompt_ids(tokenizer, [Example(question, "-", faq_system_with_facts(items))])[0]
    extra = len(with_facts) - len(plain)
    return extra, extra * questions_per_day * eur_per_m_input / 1e6


def open_exercise_5(reviews):
    """SmolLM2-135M *base* (needs internet): its zero-shot Score. Not run by the tests (no network there).

    Answer: the base model has no chat template (the course falls back to templates.SIMPLE_TEMPLATE) and was
    never taught to follow instructions, so it often continues the review or the prompt instead of
    answering: many malformed answers and an accuracy near chance. The Instruct model's advantage is the
    answer *format* it learned in instruction tuning - the step notebook 05 reproduces on a small scale.
    """
    from helpers.instruct.models import load_model
    from helpers.instruct.scoring import sentiment_accuracy

    base = load_model("HuggingFaceTB/SmolLM2-135M")
    return sentiment_accuracy(base.model, base.tokenizer, reviews)
