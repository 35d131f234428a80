"""Solutions of the open exercises (notebooks/solutions/*.py, `open_exercise_N`): what is checkable is checked,
on tiny inputs (a tiny GPT on random ids, the tiny Llama of tiny_llama.py), and the numbers the docstrings
state that can be recomputed without the 135M model are (40 FAQ answers, 28 %, T = 640, ...).


Run: COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_solutions_open.py -q
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tiny_llama import tiny_llama, tiny_tokenizer

from helpers.course.profiles import get_profile

SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"


def solutions(notebook: str):
    (path,) = SOLUTIONS.glob(f"{notebook}_*.py")
    spec = importlib.util.spec_from_file_location(f"open_solutions_{notebook}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("notebook", ["00", "01", "02", "03", "04", "05", "06", "07"])
def test_every_open_exercise_has_a_solution(notebook):
    """Each numbered exercise under the notebook's '## Exercises' heading has an open_exercise_N."""
    import json
    import re

    (path,) = (SOLUTIONS.parent).glob(f"{notebook}_*.ipynb")
    cells = json.loads(path.read_text())["cells"]
    text = next("".join(c["source"]) for c in cells if c["cell_type"] == "markdown" and "## Exercises\n" in
                "".join(c["source"]))
    listed = text.split("## Exercises\n", 1)[1]
    numbers = {int(n) for n in re.findall(r"^(\d+)\. ", listed, flags=re.MULTILINE)}
    module = solutions(notebook)
    assert numbers and all(callable(getattr(module, f"open_exercise_{n}", None)) for n in numbers), numbers


# ----------------------------------------------------------------------------- 00
def test_00_small_matmuls_report_fewer_flops():
    flops = solutions("00").open_exercise_1(sizes=(32, 512), seconds=0.2)
    assert flops[32] < flops[512]


def test_00_cpu_is_estimated_longer_than_ci():
    table = solutions("00").open_exercise_2(peak_flops=1e11)
    assert table["cpu"].sum() > table["ci"].sum()


def test_00_loopback_is_not_blocked():
    connected, refused = solutions("00").open_exercise_3()
    assert connected and refused == []


# ----------------------------------------------------------------------------- 01
@pytest.fixture(scope="module")
def review_text():
    from helpers.core.data import pretraining_text, test_set

    return pretraining_text(20_000), list(test_set(10)["text"])


def test_01_trainer_times_are_measured_per_size(review_text):
    from helpers.scratch.tokenizer import BPETokenizer

    text, _ = review_text
    times = solutions("01").open_exercise_1({"course": BPETokenizer.train}, text, (5_000, 10_000), 280)
    assert set(times) == {("course", 5_000), ("course", 10_000)} and all(t > 0 for t in times.values())


@pytest.mark.parametrize(("token", "crosses"), [(b"of the", True), (b"ing ", True), (b" the", False),
                                                (b".\n\n", False), (b"  ", False)])
def test_01_word_boundary_tokens(token, crosses):
    assert solutions("01").crosses_word_boundary(token) is crosses


def test_01_without_pre_splitting_tokens_cross_words(review_text):
    text, reviews = review_text
    out = solutions("01").open_exercise_2(text, 350, reviews)
    assert out["GPT-4 split"][0] == 0 and out["None"][0] > 10


def test_01_italian_premium_volume_by_hand():
    volume = solutions("01").open_exercise_3(80, 120, 0.55, engineer_day_eur=400)
    assert volume == pytest.approx(400 / (40 * 0.55e-6))
    with pytest.raises(ValueError, match="must cost more tokens"):
        solutions("01").open_exercise_3(120, 80, 0.55)


def test_01_italian_in_the_training_mix_lowers_the_italian_premium(review_text):
    from helpers.scratch.parallel_text import load_parallel, side

    text, reviews = review_text
    pairs = load_parallel()
    out = solutions("01").open_exercise_4(text, side(pairs, "it"), side(pairs, "en"), reviews, 350)
    assert out["reviews + Italian"][1] < out["reviews"][1]  # IT/EN token ratio falls
    assert out["reviews + Italian"][0] <= out["reviews"][0]  # English reviews compress no better


def test_01_numbers_split_in_digit_groups():
    out = solutions("01").open_exercise_5()
    assert out[("cl100k_base", "1490 euro")] == ["149", "0", " euro"]
    assert out[("o200k_base", "1.490 euro")] == ["1", ".", "490", " euro"]
    assert out[("gpt2", "1490 euro")] != out[("cl100k_base", "1490 euro")]


# ----------------------------------------------------------------------------- 02
@pytest.fixture(scope="module")
def ci_gpt_config():
    from helpers.course.catchup import gpt_config

    return gpt_config(get_profile("ci").pretrain, 1024)


def test_02_heads_change_neither_parameters_nor_flops(ci_gpt_config):
    (a, b) = solutions("02").open_exercise_1(ci_gpt_config).values()
    assert a == b


def test_02_untying_adds_v_times_c(ci_gpt_config):
    added, share = solutions("02").open_exercise_2(ci_gpt_config)
    assert added == ci_gpt_config.vocab_size * ci_gpt_config.n_embd == 65_536
    assert share == pytest.approx(65_536 / (169_728 + 65_536))  # the docstring's ~28 %


def test_02_attention_equals_weights_at_the_stated_lengths(ci_gpt_config):
    from helpers.measure.flops import param_counts
    from helpers.scratch.gpt import GPT

    n = param_counts(GPT(ci_gpt_config)).matmul
    L, C = ci_gpt_config.n_layer, ci_gpt_config.n_embd
    T = solutions("02").open_exercise_3(n, L, C)
    assert T == 640 and 12 * L * C * T == 6 * n
    assert solutions("02").open_exercise_3(124e6, 12, 768) == pytest.approx(6727, abs=1)


def test_02_top_k_1_is_greedy(ci_gpt_config):
    from helpers.scratch.gpt import GPT

    torch.manual_seed(0)
    sampled, greedy = solutions("02").open_exercise_4(GPT(ci_gpt_config), torch.tensor([[1, 2, 3]]), 12)
    assert torch.equal(sampled, greedy)


# ----------------------------------------------------------------------------- 03
@pytest.fixture(scope="module")
def tiny_pretrain():
    sizes = replace(get_profile("ci").pretrain, max_steps=4, eval_interval=2)
    ids = torch.randint(0, 300, (20_000,), generator=torch.Generator().manual_seed(0))
    return ids, sizes


def test_03_a_huge_learning_rate_stops_with_the_loops_error(tiny_pretrain):
    ids, sizes = tiny_pretrain
    out = solutions("03").open_exercise_1(ids, sizes, 300, multipliers=(1, 1e6))
    assert len(out[1]) == 4 and all(math.isfinite(v) for v in out[1])
    assert out[1e6].startswith("TrainingDivergedError") and "lower TrainConfig.lr" in out[1e6]


def test_03_both_precisions_train(tiny_pretrain):
    ids, sizes = tiny_pretrain
    out = solutions("03").open_exercise_2(ids, sizes, 300)
    assert "fp32" in out and all(v[0] > 0 for v in out.values())


def test_03_accumulation_gives_the_same_losses(tiny_pretrain):
    ids, sizes = tiny_pretrain
    out = solutions("03").open_exercise_3(ids, sizes, 300)
    assert out[1][0] == pytest.approx(out[4][0], rel=1e-5)


def test_03_machines_for_a_month_by_hand():
    from helpers.measure.money import pretraining_table, reference_machines

    table = solutions("03").open_exercise_4(pretraining_table([1e9], reference_machines(1e11, 0.05)))
    row = table.iloc[0]  # this machine: 6 * 1e9 * 2e10 FLOPs at 1e11 * 0.05 FLOP/s
    assert row["machines_for_a_month"] == pytest.approx(6 * 1e9 * 2e10 / (1e11 * 0.05) / 3600 / 730)


# ----------------------------------------------------------------------------- 04, 05: the tiny Llama
def _loaded():
    from helpers.instruct.models import LoadedModel

    return LoadedModel(tiny_llama(), tiny_tokenizer(), None, "test", 0.0)


def test_04_prompts_grow_with_shots_and_the_table_has_every_shot():
    from helpers.core.data import test_set

    reviews = test_set(2)
    table = solutions("04").open_exercise_1(tiny_llama(), tiny_tokenizer(), reviews, shots=(0, 1, 2))
    assert list(table["shots"]) == [0, 1, 2] and table["prompt_tokens"].is_monotonic_increasing


def test_04_prompt_wordings_are_restored():
    from helpers.core.data import test_set
    from helpers.instruct import instructions

    before = instructions.SENTIMENT_PROMPT
    out = solutions("04").open_exercise_2(tiny_llama(), tiny_tokenizer(), test_set(2))
    assert len(out) == 3 and instructions.SENTIMENT_PROMPT == before


def test_04_the_scorers_blind_spots():
    assert solutions("04").open_exercise_3() == (True, False)


def test_04_facts_in_the_prompt_cost_tokens():
    from helpers.instruct.instructions import load_faq

    extra, eur = solutions("04").open_exercise_4(tiny_tokenizer(), load_faq("train"), 0.5, questions_per_day=1000)
    assert extra > 0 and eur == pytest.approx(extra * 1000 * 0.5 / 1e6)


@pytest.fixture(scope="module")
def tune_bits():
    from helpers.course.profiles import InstructSizes
    from helpers.instruct.instructions import Example

    sizes = InstructSizes(max_length=128, batch_size=2, max_steps=2, learning_rate=1e-2, lora_r=4, lora_alpha=8)
    examples = [Example(f"Question {i}?", f"Answer number {i}.") for i in range(4)]
    return sizes, examples, {"precision": "fp32", "device": "cpu", "peak_flops": 1e9}


def test_05_rank_scales_parameters_and_file(tmp_path, tune_bits):
    sizes, examples, overrides = tune_bits
    out = solutions("05").open_exercise_2(_loaded, sizes, tmp_path, ranks=(2, 4), examples=examples, **overrides)
    assert out[4][0] == 2 * out[2][0] == 2 * 2 * 2 * (32 + 32 + 32 + 16 + 32 + 16 + 32 + 32)  # r x (in + out)
    assert all(size >= 4 * params for params, size, _ in out.values())  # fp32: 4 bytes per weight


def test_05_mlp_targets_add_their_adapters(tune_bits):
    sizes, examples, overrides = tune_bits
    attention, both = solutions("05").open_exercise_3(_loaded, sizes, examples, **overrides).values()
    extra = both.record.trainable_params - attention.record.trainable_params
    assert extra == 2 * sizes.lora_r * (32 + 64) * 3  # 2 layers: gate, up (32 -> 64), down (64 -> 32)


def test_05_all_token_loss_puts_labels_on_the_prompt(tune_bits):
    import torch.nn.functional as F

    module = solutions("05")
    model = tiny_llama()
    ids = torch.tensor([[5, 6, 7, 8, 2, 2]])  # 2 = pad: the last two positions are padding
    batch = {"input_ids": ids, "labels": torch.full_like(ids, -100)}
    loss = module.all_token_loss(pad_id=2)(model, batch)
    logits = model(ids).logits[0]  # (T, V)
    expected = F.cross_entropy(logits[:3], ids[0, 1:4])  # positions 0-2 predict 6, 7, 8; 8 -> pad is left out
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    sizes, examples, overrides = tune_bits
    out = module.open_exercise_4(_loaded, sizes, examples, **overrides)
    assert out["masked"].record.losses != out["all tokens"].record.losses


# ----------------------------------------------------------------------------- 07
@pytest.mark.parametrize("times", [(0.2, 40, 0.55, 100), (0.1, 20, 1.0, 200)])
def test_07_crossover_makes_both_totals_equal(times):
    local_first, local_pace, cloud_first, cloud_pace = times
    n = solutions("07").open_exercise_1(*times)
    assert local_first + (n - 1) / local_pace == pytest.approx(cloud_first + (n - 1) / cloud_pace)


def test_07_no_crossover_when_local_streams_faster():
    assert solutions("07").open_exercise_1(0.2, 200, 0.55, 100) is None


def test_07_the_fooling_messages_fool_the_redactor_and_lower_recall_only():
    from helpers.deploy.redaction_eval import load_jsonl, score_redaction

    module = solutions("07")
    found = module.open_exercise_2()
    assert all(found[name] == {} for name in module.FOOLING_MESSAGES) and found["card inside a URL"] == {"card": 1}
    phone = module.FOOLING_MESSAGES["phone split over two lines"][0]
    start = phone.index("+39")
    extra = [{"text": phone, "entities": [{"kind": "phone", "start": start, "end": phone.index(" tomorrow")}]}]
    before, after = score_redaction(load_jsonl()), score_redaction(load_jsonl() + extra)
    assert after["phone"].recall < before["phone"].recall and after["phone"].precision == before["phone"].precision


def test_07_the_keep_list_saves_every_faq_fact():
    from helpers.instruct.instructions import load_faq

    # the shop's e-mail, or its phone number (six digits or more, the rule fact_in_answer uses for phones)
    contacts = [i for i in load_faq("train") if "@" in i.key or sum(c.isdigit() for c in i.key) >= 6]
    assert contacts and solutions("07").open_exercise_5() == (len(contacts), 0)


# ----------------------------------------------------------------------------- 06


def test_06_verdict_per_target_from_hand_made_points():
    import pandas as pd

    rows = [("A", 256, 0.55, 0.62), ("A", 10000, 0.74, 0.80), ("B", 64, 0.70, 0.78), ("B", 256, 0.80, 0.86)]
    points = pd.DataFrame([{"route_key": k, "n": n, "noise": 0.0, "low": lo, "high": hi} for k, n, lo, hi in rows])
    got = solutions("06").open_exercise_4(points, [0.5, 0.79, 0.9])
    # 50 %: both reach it, A at N=256 (its whole ladder), B at N=64 -> A needs more; 79 %: B reaches it at 256,
    # A never (its best interval tops out at 80 %: undecided); 90 %: neither reaches it
    assert got == {0.5: "supported", 0.79: "inconclusive", 0.9: "inconclusive"}


def test_06_route_c_reads_more_words_with_a_longer_crop():
    from helpers.core import data
    from helpers.scratch.tokenizer import BPETokenizer

    bpe = BPETokenizer.train(data.pretraining_text(60_000), vocab_size=400)
    got = solutions("06").open_exercise_5(bpe, 1000, 200, crop_tokens=(60, 400))
    (short_words, short_acc), (long_words, long_acc) = got[60], got[400]
    assert long_words > 3 * short_words and 0.55 < short_acc < long_acc  # measured: 0.64 and 0.735
