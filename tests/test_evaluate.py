"""Tests for helpers.instruct.scoring: the scorer on right, wrong and malformed answers (sentiment and FAQ facts),
batched greedy generation with left padding, and the windowed perplexity.

Run: .venv/bin/python -m pytest tests/test_evaluate.py -q      (~10 s)
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from tiny_llama import tiny_llama, tiny_tokenizer

from helpers.instruct import instructions, scoring


@pytest.mark.parametrize("text, expected", [
    ("positive", "positive"),  # right form
    ("Negative.", "negative"),
    ("The review is negative", "negative"),
    ("POSITIVE!", "positive"),
    ("positivo", "positive"),  # Italian
    ("recensione negativa", "negative"),
    ("It is positive, not negative", "positive"),  # the first one wins
    ("The sentiment of this", None),  # malformed
    ("", None),
    ("positively", None),  # not the word itself
])
def test_parse_sentiment(text, expected):
    assert scoring.parse_sentiment(text) == expected


def test_score_sentiment_counts_malformed_as_wrong_and_reports_them():
    gens = ["positive", "The review is negative", "I cannot say", "positive"]
    score = scoring.score_sentiment(gens, [1, 0, 1, 0])
    assert (score.correct, score.n, score.malformed) == (2, 4, 1)
    assert score.accuracy == 0.5
    assert score.table["parsed"].tolist()[:3] == ["positive", "negative", "(none)"]
    with pytest.raises(ValueError, match="3 generations but 2 labels"):
        scoring.score_sentiment(["a", "b", "c"], [0, 1])


@pytest.mark.parametrize("answer, key, expected", [
    ("You can return it within 45 days.", "45", True),
    ("Entro 45 giorni dalla consegna.", "45", True),
    ("You have 145 days.", "45", False),  # inside a longer number
    ("About 4.5 days.", "45", False),
    ("45.5 days", "45", False),  # a decimal part makes it another number
    ("Shipping costs €5,90.", "5.90", True),  # decimal comma
    ("Shipping costs 5.90 EUR", "5.90", True),
    ("Shipping costs €5.9", "5.90", False),  # strict: not the same string of digits
    ("Shipping costs 15.90", "5.90", False),
    ("Open from 09:30 to 19:30", "19:30", True),
    ("aperto dalle 9.30 alle 19.30", "19:30", True),
    ("We close at 19", "19:00", True),  # 19:00 = 19
    ("We close at 7 pm", "19:30", False),
    ("Opening at 9:30", "9", False),  # a time is not the number 9
    ("Refund within 9 working days", "9", True),
    ("Call +39 0599 417 268", "0599 417268", True),  # phone numbers: digits only
    ("Call 0599-417-268.", "0599 417268", True),
    ("Call 0599 417 269", "0599 417268", False),
    ("Via delle Rondini 27, Borgo Lumino", "Rondini 27", True),
    ("Via delle Rondini 270", "Rondini 27", False),
    ("Mail assistenza@zefirobikes.example.", "assistenza@zefirobikes.example", True),
    ("A 7-year warranty", "7", True),
    ("seven years", "7", False),  # strict on purpose: words are not digits
    ("Lo sconto è del 12%", "12", True),
    ("Piazza del Mulino 4, Valdorso", "Mulino 4", True),
    ("", "45", False),
])
def test_fact_in_answer(answer, key, expected):
    assert scoring.fact_in_answer(answer, key) is expected


def test_normalise_hand_worked_example():
    assert scoring.normalise("Dalle 09:30 alle 19:00, €5,90  è") == "dalle 9.30 alle 19, €5.90 e"


def test_score_faq_right_wrong_and_malformed():
    items = instructions.load_faq("heldout", 3)
    gens = [items[0].answer, "We are open every day.", "  "]
    score = scoring.score_faq(gens, items)
    assert (score.correct, score.malformed, score.n) == (1, 1, 3)
    assert score.table["correct"].tolist() == [True, False, False]
    assert "accuracy=0.333" in repr(score)
    with pytest.raises(ValueError, match="nothing to score"):
        scoring.score_faq([], [])


def test_empty_key_is_a_clear_error():
    with pytest.raises(ValueError, match="FAQ key is empty"):
        scoring.fact_in_answer("anything", " ")


def test_batched_left_padded_generation_equals_one_at_a_time():
    tok, model = tiny_tokenizer(), tiny_llama(seed=3)
    questions = ("Hi?", "How long do I have to return an item, please?", "45?")
    examples = [instructions.Example(q, "-") for q in questions]
    prompts = scoring.prompt_ids(tok, examples)
    assert len({len(p) for p in prompts}) == 3  # different lengths: the batch needs padding
    batched = scoring.generate(model, tok, prompts, max_new_tokens=6, batch_size=3, eos_token_ids=[2])
    alone = [scoring.generate(model, tok, [p], max_new_tokens=6, batch_size=1, eos_token_ids=[2])[0]
             for p in prompts]
    assert batched == alone
    assert all(isinstance(g, str) for g in batched)


def test_sentiment_and_faq_accuracy_run_end_to_end_on_a_tiny_model():
    tok, model = tiny_tokenizer(), tiny_llama()
    reviews = pd.DataFrame({"text": ["great", "awful"], "label": [1, 0]})
    score = scoring.sentiment_accuracy(model, tok, reviews, max_new_tokens=2)
    assert score.n == 2 and score.correct + (score.n - score.correct) == 2
    assert scoring.faq_accuracy(model, tok, instructions.load_faq("heldout", 2), max_new_tokens=3).n == 2


def test_sentiment_shots_are_balanced_pool_examples():
    shots = scoring.sentiment_shots(4)
    assert [a for _, a in shots] == ["negative", "positive", "negative", "positive"]
    assert all(q.startswith("Classify the sentiment") for q, _ in shots)
    assert scoring.sentiment_shots(0) == ()


def test_text_loss_scores_every_token_but_the_first_once():
    model = tiny_llama()
    ids = torch.randint(3, 400, (50,), generator=torch.Generator().manual_seed(0)).tolist()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]  # (T, V)
        direct = -torch.log_softmax(logits[:-1], -1).gather(-1, torch.tensor(ids[1:])[:, None]).sum().item()
    whole = scoring.text_loss(lambda x: model(x).logits, ids, block_size=64, n_bytes=100)
    assert whole.tokens == 49 and whole.nats == pytest.approx(direct, rel=1e-5)
    assert whole.perplexity == pytest.approx(math.exp(direct / 49))
    assert whole.bits_per_byte == pytest.approx(direct / math.log(2) / 100)
    for block in (2, 7, 16, 50):
        assert scoring.text_loss(lambda x: model(x).logits, ids, block_size=block, n_bytes=100).tokens == 49


def test_text_loss_with_a_context_free_model_does_not_depend_on_the_window():
    table = torch.randn(400, 400, generator=torch.Generator().manual_seed(1))

    def bigram(x):  # logits depend only on the current token
        return table[x]

    ids = torch.randint(0, 400, (40,), generator=torch.Generator().manual_seed(2)).tolist()
    losses = {scoring.text_loss(bigram, ids, block_size=b, n_bytes=40).nats for b in (4, 9, 40, 100)}
    assert max(losses) - min(losses) < 1e-3
