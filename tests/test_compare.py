"""Tests for helpers.experiment (sentiment, answer_scoring, routes, compare): label-noise flipping, the N
ladder, constrained scoring, the route runners on tiny in-process models, the FAQ adaptability run, the
same-test-set guard, the article's table built from hand-made records, and the notebook's own versions
against helpers.

Run: .venv/bin/python -m pytest tests/test_compare.py -q      (~30 s)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_llama import tiny_llama, tiny_tokenizer

from helpers.core.records import RunRecord
from helpers.course.profiles import InstructSizes
from helpers.experiment import answer_scoring, compare, routes, sentiment
from helpers.experiment import report as R
from helpers.measure.ledger import Ledger
from helpers.scratch.gpt import GPT, GPTConfig
from helpers.scratch.tokenizer import BPETokenizer

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_train_vs_instruct.ipynb"
TEXT = (
    "A wonderful film, I loved it. Positive and moving. A terrible film, I hated it, negative and dull. "
    "Is this review positive or negative? The plot was bad but the acting was good. "
) * 20


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def chat_tok():
    return sentiment.course_chat_tokenizer(BPETokenizer.train(TEXT, vocab_size=330))


@pytest.fixture(scope="module")
def gpt_config(chat_tok):
    return GPTConfig(vocab_size=len(chat_tok), block_size=160, n_layer=1, n_head=2, n_embd=16)


@pytest.fixture(scope="module")
def crop(chat_tok, gpt_config):
    return sentiment.Cropper(chat_tok, gpt_config.block_size)


@pytest.fixture(scope="module")
def task(crop):
    return sentiment.sentiment_task(6, crop)


def _recipe(**kw) -> routes.Recipe:
    return routes.Recipe(**{"lr": 1e-3, "batch_size": 4, "epochs": 1.0, "min_steps": 1, "max_steps": 2, **kw})


def _record(name, key, n, acc, noise=0.0, test_set="t1", flops=None, seconds=1.0) -> RunRecord:
    r = RunRecord(
        name=name,
        route=routes.ROUTES.get(key, key),
        device="cpu",
        precision="fp32",
        steps=n,
        wall_seconds=seconds,
        tokens=100 * n,
        flops=float(flops if flops is not None else 1e9 * n),
        flops_method="test",
        achieved_flops_per_s=0.0,
        peak_flops_per_s=1.0,
        mfu=0.0,
        peak_memory_bytes=0,
        trainable_params=1,
        total_params=1,
        metrics={"accuracy": acc},
        test_set=test_set,
        extra={"experiment": compare.EXPERIMENT, "route_key": key, "n_examples": n, "label_noise": noise},
    )
    return r


# ----------------------------------------------------------------------------- label noise


@pytest.mark.parametrize("n", [10, 25, 64])
@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.4, 1.0])
def test_flip_labels_flips_exactly_the_fraction_of_each_class(n, fraction):
    labels = (np.arange(n) % 3 == 0).astype(int)  # unbalanced on purpose: a third positive
    flipped = sentiment.flip_labels(labels, fraction, seed=3)
    for c in (0, 1):
        assert int((flipped != labels)[labels == c].sum()) == round(fraction * int((labels == c).sum()))
    assert set(np.unique(flipped)) <= {0, 1}


def test_flip_labels_is_deterministic_and_nested():
    labels = np.arange(50) % 2
    a, b = sentiment.flip_labels(labels, 0.2, seed=1), sentiment.flip_labels(labels, 0.2, seed=1)
    assert (a == b).all()
    assert (a != sentiment.flip_labels(labels, 0.2, seed=2)).any()
    small, large = a != labels, sentiment.flip_labels(labels, 0.4, seed=1) != labels
    assert (large[small]).all()  # 40 % flips a superset of 20 % (same seed)
    assert (sentiment.flip_labels(labels, 0.0) == labels).all()


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_flip_labels_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction must be in"):
        sentiment.flip_labels([0, 1], fraction)


def test_flip_labels_rejects_non_binary_labels():
    with pytest.raises(ValueError, match="binary labels"):
        sentiment.flip_labels([0, 1, 2], 0.5)


def test_training_examples_carry_the_flipped_labels():
    clean = sentiment.training_examples(10)
    noisy = sentiment.training_examples(10, noise=0.4, seed=0)
    assert [e.prompt for e in clean] == [e.prompt for e in noisy]
    assert sum(a.response != b.response for a, b in zip(clean, noisy, strict=True)) == 4


# ----------------------------------------------------------------------------- the ladder and the target


@pytest.mark.parametrize(("batches", "expected"), [(1, 3), (10, 20), (100, 50)])
def test_recipe_steps_are_epochs_times_batches_within_limits(batches, expected):
    assert routes.Recipe(1e-3, 8, 2.0, 3, 50).steps(batches) == expected


def test_recipe_rejects_bad_limits():
    with pytest.raises(ValueError, match="min_steps <= max_steps"):
        routes.Recipe(1e-3, 8, 1.0, 10, 5)


@pytest.mark.parametrize(
    ("accs", "sustained", "expected"),
    [
        ((0.8, 0.6, 0.9), True, 64),
        ((0.8, 0.6, 0.9), False, 4),
        ((0.5, 0.6, 0.7), True, None),
        ((0.75, 0.75, 0.9), True, 4),  # reaching exactly the target counts
    ],
)
def test_examples_to_reach(accs, sustained, expected):
    assert R.examples_to_reach((4, 16, 64), accs, 0.75, sustained=sustained) == expected


def test_examples_to_reach_sorts_and_checks_its_input():
    assert R.examples_to_reach((64, 4, 16), (0.9, 0.5, 0.8), 0.75) == 16
    with pytest.raises(ValueError, match="pair up"):
        R.examples_to_reach((4, 16), (0.5,), 0.7)
    with pytest.raises(ValueError, match="each N must appear once"):
        R.examples_to_reach((4, 4), (0.5, 0.6), 0.7)


# ----------------------------------------------------------------------------- the test set and scoring


def test_cropper_makes_every_example_fit_and_leaves_short_reviews_alone(chat_tok, crop):
    from helpers.instruct.masking import encode

    short, long = "Great.", "An endless review that goes on and on. " * 30
    assert crop.crop(short) == short
    cut = crop.crop(long)
    assert long.startswith(cut) and len(cut) < len(long)
    for text in (cut, short):
        for label in range(len(sentiment.ANSWERS)):
            assert len(encode(chat_tok, sentiment.task_examples([text], [label])[0])) <= crop.context


def test_cropper_never_leaves_half_a_character(crop):
    long = "Caffè ☕ très bon, à revoir! " * 30
    cut = crop.crop(long)
    assert "\ufffd" not in cut and long.startswith(cut) and len(cut) < len(long)


def test_cropper_refuses_a_context_too_small(chat_tok):
    with pytest.raises(ValueError, match="larger block_size"):
        sentiment.Cropper(chat_tok, 20)


def test_sentiment_task_is_the_fixed_test_prefix_and_names_itself(crop):
    from helpers.core.data import test_set

    small, big = sentiment.sentiment_task(4, crop), sentiment.sentiment_task(6, crop)
    assert big.labels[:4] == small.labels == tuple(test_set(4)["label"])
    assert small.name != big.name and small.name == sentiment.sentiment_task(4, crop).name


@pytest.mark.parametrize(
    ("texts", "labels", "match"),
    [(("a", "b"), (1,), "as many labels"), (("a",), (2,), "labels must be in"), ((), (), "as many labels")],
)
def test_sentiment_task_rejects_bad_input(texts, labels, match):
    with pytest.raises(ValueError, match=match):
        sentiment.SentimentTask(texts, labels, "x")


@torch.no_grad()
def _slow_logprob(model, prompt, answer):
    """Straightforward reference: one sequence, sum of log-probs of the answer's tokens."""
    x = torch.tensor([list(prompt) + list(answer)])
    out = model(x)
    logits = out.logits if hasattr(out, "logits") else out
    logp = torch.log_softmax(logits.float(), -1)[0]
    return sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(answer))


@pytest.mark.parametrize("answers", [[[5], [9]], [[5, 7], [9], [3, 3, 3]]])
def test_answer_logprobs_equal_one_sequence_at_a_time(answers):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=32, block_size=24, n_layer=1, n_head=2, n_embd=16)).eval()
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10], [11]]
    got = answer_scoring.answer_logprobs(model, prompts, answers, batch_size=2)
    want = torch.tensor([[_slow_logprob(model, p, a) for a in answers] for p in prompts], dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)  # float32 logits summed in a different order


def test_answer_ids_are_how_training_responses_begin(chat_tok):
    ids = answer_scoring.answer_ids(chat_tok)
    assert [chat_tok.decode(i) for i in ids] == list(sentiment.ANSWERS)


# ----------------------------------------------------------------------------- route runners


def test_scratch_route_runs_a_point_through_the_loop(chat_tok, gpt_config, crop, task):
    route = routes.ScratchRoute("A0", chat_tok, gpt_config, _recipe(), seed=0)
    record = compare.run_point(route, task, 4, crop=crop, generation=True)
    assert record.route == "scratch-no-pretrain" and record.test_set == task.name
    assert 0.0 <= record.metrics["accuracy"] <= 1.0 and "accuracy_generated" in record.metrics
    assert record.extra["n_examples"] == 4 and record.extra["examples_dropped"] == 0
    assert record.steps == 1  # 4 examples, batch 4, one epoch
    n = sum(m.weight.numel() for m in GPT(gpt_config).modules() if isinstance(m, torch.nn.Linear))
    c = gpt_config  # training FLOPs per token: 6 x matmul weights + attention 12*L*C*T at the full context
    assert record.flops == pytest.approx((6 * n + 12 * c.n_layer * c.n_embd * c.block_size) * record.tokens)
    again = compare.run_point(route, task, 4, crop=crop)
    assert again.metrics["accuracy"] == record.metrics["accuracy"]  # seeded: repeatable


def test_scratch_route_from_a_base_starts_from_its_weights(chat_tok, gpt_config, task):
    torch.manual_seed(1)
    base = GPT(gpt_config)
    route = routes.ScratchRoute("A", chat_tok, gpt_config, _recipe(), base=base)
    untuned = compare.run_point(route, task, 0)
    assert untuned.steps == 0 and untuned.flops == 0 and untuned.wall_seconds == 0
    assert untuned.metrics["accuracy"] == answer_scoring.score_task(base.eval(), chat_tok, task).accuracy
    with pytest.raises(ValueError, match="'A' or 'A0'"):
        routes.ScratchRoute("B", chat_tok, gpt_config, _recipe())


@pytest.fixture
def lora_route():
    from helpers.instruct.models import LoadedModel

    def load():
        return LoadedModel(tiny_llama(), tiny_tokenizer(), None, "test", 0.0)

    sizes = InstructSizes(max_length=256, lora_r=2, lora_alpha=4, lora_dropout=0.0)
    return routes.LoraRoute(sizes, _recipe(lr=1e-2), load_fn=load)


def test_lora_route_runs_a_point_through_the_loop(lora_route):
    tok = tiny_tokenizer()
    crop = sentiment.Cropper(tok, 200)
    task = sentiment.sentiment_task(4, crop)
    base = compare.run_point(lora_route, task, 0, crop=crop)
    tuned = compare.run_point(lora_route, task, 4, noise=0.5, crop=crop)
    assert tuned.route == "instruct" and tuned.steps >= 1 and tuned.extra["label_noise"] == 0.5
    assert tuned.trainable_params < tuned.total_params  # only the adapters train
    assert "N_trainable" in tuned.flops_method and tuned.test_set == base.test_set == task.name
    R.runs_table([base, tuned])  # same test set: accepted


def test_faq_split_scores_only_the_facts_it_trains_on():
    train, held = compare.faq_split(8, 10)
    assert len(train) == 8 and len({i.fact for i in train}) == 2
    assert len(held) == 4 and {i.fact for i in held} == {i.fact for i in train}
    with pytest.raises(ValueError, match=">= 1"):
        compare.faq_split(0, 2)


def test_faq_adaptation_for_both_routes(lora_route, chat_tok, gpt_config):
    train, held = compare.faq_split(2, 2)
    scratch = routes.ScratchRoute("A", chat_tok, gpt_config, _recipe(), base=GPT(gpt_config))
    for route in (lora_route, scratch):
        record = compare.adapt_to_faq(route, train, held, steps=1, max_new_tokens=4)
        assert record.steps == 1 and 0.0 <= record.metrics["faq_accuracy"] <= 1.0
        assert record.test_set == "faq-heldout n=2" and record.extra["task"] == "faq"


# ----------------------------------------------------------------------------- tables and the guard


def test_runs_table_refuses_different_test_sets():
    with pytest.raises(ValueError, match="same test set"):
        R.runs_table([_record("a", "A", 4, 0.6, test_set="t1"), _record("b", "B", 4, 0.8, test_set="t2")])


def test_article_table_from_hand_made_records():
    records = [
        _record(f"{k} N={n}", k, n, acc)
        for k, ladder in {
            "A": [(0, 0.5), (4, 0.55), (16, 0.72), (64, 0.8)],
            "B": [(0, 0.7), (4, 0.82), (16, 0.85), (64, 0.9)],
        }.items()
        for n, acc in ladder
    ]
    records.append(_record("B N=16 noise", "B", 16, 0.3, noise=0.4))  # noisy runs stay out of the table
    runs = R.runs_table(records)
    pre = {"A": R.PretrainCompute(1e12, 30.0, "measured", method="test"),  # counted as the records were
           "B": R.PretrainCompute(1e21, None, "inherited", inherited=True)}
    faq = _record("B FAQ", "B", 0, 0.0, seconds=12.0)
    faq.metrics = {"faq_accuracy": 0.5}
    table = R.article_table(runs, 0.75, pre, {"B": faq})
    assert table.loc["A", "examples_needed"] == 64 and table.loc["B", "examples_needed"] == 4
    assert table.loc["B", "tuning_flops"] == 4e9 and table.loc["B", "own_flops"] == 4e9  # inherited apart
    assert table.loc["B", "inherited_pretraining_flops"] == 1e21 and table.loc["B", "own_pretraining_flops"] == 0
    assert table.loc["A", "own_flops"] == 1e12 + 64e9 and table.loc["A", "inherited_pretraining_flops"] == 0
    assert table.loc["A", "ladder_flops"] == (0 + 4 + 16 + 64) * 1e9
    assert table.loc["A", "best_accuracy"] == 0.8 and table.loc["B", "faq_accuracy"] == 0.5
    assert math.isnan(table.loc["A", "faq_adapt_seconds"])
    high = R.article_table(runs, 0.95, pre)
    assert not high["reached"].any() and high.loc["A", "at_n"] == 64
    view = R.article_view(table)
    assert "4 labelled examples reach 75%" in view[routes.ROUTE_LABELS["B"]]["Dataset"]
    assert "not reached" in R.article_view(high)[routes.ROUTE_LABELS["A"]]["Dataset"]


def test_flops_counted_differently_are_never_added():
    runs = R.runs_table([_record("A4", "A", 4, 0.6), _record("A16", "A", 16, 0.8)])
    pre = {"A": R.PretrainCompute(1e12, 30.0, "measured", method="6N + attention")}  # records say "test"
    table = R.article_table(runs, 0.75, pre)
    assert math.isnan(table.loc["A", "own_flops"]) and table.loc["A", "own_pretraining_flops"] == 1e12
    assert "not added: counted differently" in R.article_view(table)[routes.ROUTE_LABELS["A"]]["Compute (FLOPs)"]
    assert R.same_method_sum([(1e9, "6N"), (2e9, "6N"), (0.0, None)]) == 3e9
    assert math.isnan(R.same_method_sum([(1e9, "6N"), (None, "6N")]))  # a run that did not count


def test_article_table_needs_clean_runs():
    runs = R.runs_table([_record("a", "A", 4, 0.6, noise=0.2)])
    with pytest.raises(ValueError, match="without label noise"):
        R.article_table(runs, 0.7, {})


def test_update_ledger_replaces_this_experiments_records_only(tmp_path):
    path = tmp_path / "ledger.json"
    other = _record("pretrain", "A", 1, 0.5)
    other.extra = {}
    Ledger([other]).save(path)
    R.update_ledger([_record("a", "A", 4, 0.6)], path)
    ledger = R.update_ledger([_record("b", "B", 4, 0.7)], path)
    assert [r.name for r in Ledger.load(path)] == ["pretrain", "b"] == [r.name for r in ledger]


def test_money_reads_as_euros_with_sensible_digits():
    """Issue 15: the article table showed '3.6e-05 (cloud equivalent 3.5e-05)'."""
    amounts = (3.6e-05, 0.00037, 1.5, 1234.5, 0.0, float("nan"), None)
    assert [R.euros(x) for x in amounts] == ["€0.000036", "€0.00037", "€1.50", "€1,234", "€0", "n/a", "n/a"]


def test_plots_draw_every_route():
    runs = R.runs_table(
        [_record(f"{k}{n}", k, n, 0.6) for k in ("A", "A0", "B") for n in (0, 4, 16)]
        + [_record("Bn", "B", 16, 0.5, noise=0.4)]
    )
    pre = {"B": R.PretrainCompute(1e21, None, "inherited", inherited=True)}
    assert len(R.plot_accuracy_vs_n(runs, 0.7).axes[0].lines) == 3 + 2  # routes + target + chance lines
    assert len(R.plot_accuracy_vs_compute(runs, pre).axes) == 2
    assert len(R.plot_label_noise(runs, 16).axes[0].lines) == 1 + 1  # route B + chance line


# ----------------------------------------------------------------------------- the notebook equals helpers


@pytest.fixture(scope="module")
def nb():
    from notebook_defs import load_definitions

    if not NOTEBOOK.exists():
        pytest.skip("notebooks/06_train_vs_instruct.ipynb is not written yet")
    return load_definitions(NOTEBOOK)


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.4])
def test_notebook_flip_labels_equals_helpers(nb, fraction):
    labels = np.arange(40) % 2
    assert (nb.flip_labels(labels, fraction, seed=5) == sentiment.flip_labels(labels, fraction, seed=5)).all()


def test_notebook_scoring_equals_helpers(nb):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=32, block_size=24, n_layer=1, n_head=2, n_embd=16)).eval()
    prompts, answers = [[1, 2, 3], [4, 5, 6, 7]], [[5], [9, 2]]
    want = answer_scoring.answer_logprobs(model, prompts, answers)
    got = torch.tensor(
        [[nb.answer_logprob(model, p, a) for a in answers] for p in prompts], dtype=torch.float64
    )
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_notebook_examples_to_reach_equals_helpers(nb):
    for accs in ((0.8, 0.6, 0.9), (0.5, 0.6, 0.7), (0.9, 0.9, 0.9)):
        assert nb.examples_to_reach((4, 16, 64), accs, 0.75) == R.examples_to_reach((4, 16, 64), accs, 0.75)


def test_the_course_instruction_in_profiles_is_instructs():
    from helpers.course.profiles import COURSE_INSTRUCTION, get_profile
    from helpers.instruct.instructions import SENTIMENT_PROMPT

    assert COURSE_INSTRUCTION == SENTIMENT_PROMPT
    for name in ("ci", "cpu", "gpu"):
        sentiment.check_prompt(get_profile(name).compare.instruction)


@pytest.mark.parametrize("prompt", ["no placeholder", "{review} twice {review}"])
def test_an_instruction_without_one_review_slot_is_refused(chat_tok, prompt):
    with pytest.raises(ValueError, match="exactly once"):
        sentiment.Cropper(chat_tok, 160, prompt)


def test_the_instruction_is_part_of_the_test_sets_identity(chat_tok):
    crop_a, crop_b = sentiment.Cropper(chat_tok, 160), sentiment.Cropper(chat_tok, 160, "Sentiment?\n\n{review}")
    a, b = sentiment.sentiment_task(4, crop_a), sentiment.sentiment_task(4, crop_b)
    assert a.labels == b.labels and a.name != b.name and b.prompt == crop_b.prompt
    with pytest.raises(ValueError, match="another instruction"):
        sentiment.sentiment_task(4, crop_a, prompt="Sentiment?\n\n{review}")


def test_answer_logprobs_precision_is_checked_and_auto_follows_the_training_policy():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=32, block_size=24, n_layer=1, n_head=2, n_embd=16)).eval()
    prompts, answers = [[1, 2, 3], [4, 5, 6, 7]], [[5], [9]]
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'auto'.*'bf17'"):
        answer_scoring.answer_logprobs(model, prompts, answers, precision="bf17")
    fp32 = answer_scoring.answer_logprobs(model, prompts, answers, precision="fp32")
    auto = answer_scoring.answer_logprobs(model, prompts, answers, precision="auto")
    # bf16 keeps ~3 significant digits: the same log-probabilities to within its rounding, never equal by chance
    torch.testing.assert_close(auto, fp32, atol=0.05, rtol=0)
    from helpers.core.device import precision_policy

    if precision_policy("cpu").autocast_dtype is not None:
        assert not torch.equal(auto, fp32), "auto on a bf16 CPU must score in bf16"
