"""Tests for helpers.instruct (instructions, templates, masking, packing, lora): the FAQ data, chat
formatting, prompt masking, packing, LoRA set-up and the adapter's round trip through stock peft, on a
tiny in-process Llama (tests/tiny_llama.py).

Proves: masking puts -100 exactly on prompt tokens; packing never lets one example attend to another
(logits and loss equal the examples run alone); the adapter reloads with stock PeftModel.from_pretrained
to identical logits and merges into a plain transformers model that saves and reloads; every bad input
(JSONL field missing / not a string / empty, empty response, too-long example, no chat template and no
fallback, nonexistent LoRA target) gets a clear error or a counted warning.

Run: .venv/bin/python -m pytest tests/test_instruct.py -q      (~30 s; loads the cached SmolLM2 once)
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter

import pytest
import torch
from tiny_llama import tiny_llama, tiny_tokenizer

from helpers.core.batches import IGNORE_INDEX, ListBatches
from helpers.core.io import DataFormatError
from helpers.core.loop_parts import default_loss_fn
from helpers.core.training import TrainConfig, train
from helpers.instruct import instructions, lora, masking, packing, templates
from helpers.instruct.instructions import Example
from helpers.measure.flops import training_flops_per_token


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def _examples(n: int = 6) -> list[Example]:
    qa = [("How long do I have to return an item?", "You can return any item within 45 days."),
          ("Quanto costa la spedizione?", "5.90 euro."),
          ("Classify the sentiment of this review as positive or negative.\n\nReview: loved it", "positive"),
          ("Hi?", "Hello, how can I help you today with your order?")]
    return [Example(q, a, system="S" if i % 2 else None, source=f"test:{i}") for i, (q, a) in
            enumerate(qa * (n // len(qa) + 1))][:n]


# ----------------------------------------------------------------------------- the FAQ data


def test_faq_files_have_the_documented_shape():
    train, held = instructions.load_faq("train"), instructions.load_faq("heldout")
    assert (len(train), len(held)) == (600, 60)
    assert len({i.fact for i in train}) == 30 and {i.fact for i in held} == {i.fact for i in train}
    assert Counter(i.lang for i in train) == {"en": 300, "it": 300}
    assert set(Counter((i.fact, i.lang) for i in train).values()) == {10}  # 10 phrasings per fact and language
    assert len({i.id for i in train + held}) == 660
    assert len({i.question.lower() for i in train}) == 600  # no training question twice
    assert len({i.fact for i in train[:120]}) == 30  # the first 120 rows already cover every fact
    # prefixes stay stable as phrasings are added (notebook 06 tunes on a prefix): rows 1-120 hold
    # phrasings 1-2, rows 121-240 phrasings 3-4, rows 241-600 phrasings 5-10
    phrasing = [int(i.id.rsplit("-", 1)[1]) for i in train]
    assert set(phrasing[:120]) == {1, 2} and set(phrasing[120:240]) == {3, 4}
    assert set(phrasing[240:]) == set(range(5, 11))
    assert {i.fact for i in held[:30]} == {i.fact for i in train}  # any 30-prefix covers every fact


def _shared_trigrams(question: str, other: str) -> float:
    """Share of `question`'s word 3-grams (lower case, punctuation dropped) that `other` also has."""
    def grams(q):
        words = re.findall(r"[\w']+", q.lower())
        return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}

    mine = grams(question)
    return len(mine & grams(other)) / max(1, len(mine))


def test_heldout_questions_are_not_near_duplicates_of_any_training_question():
    """A held-out question that is a training question with a word changed measures memory, not
    generalisation: none may share 80 % or more of its word 3-grams with any training question."""
    assert _shared_trigrams("What time do you close on a Wednesday?",
                            "What time do you close on a Wednesday, please?") >= 0.8  # the check can fire
    assert _shared_trigrams("What time do you close on a Wednesday?", "Saturday hours?") == 0
    train, held = instructions.load_faq("train"), instructions.load_faq("heldout")
    near = [(h.id, t.id, round(share, 2)) for h in held for t in train
            if (share := _shared_trigrams(h.question, t.question)) >= 0.8]
    assert not near, f"held-out questions too close to training questions: {near}"


def test_faq_keys_are_in_answers_and_heldout_questions_are_new():
    from helpers.instruct.scoring import fact_in_answer

    train, held = instructions.load_faq("train"), instructions.load_faq("heldout")
    for item in train + held:
        assert fact_in_answer(item.answer, item.key), item.id
    seen = {(i.fact, i.question.lower()) for i in train}
    assert not [i.id for i in held if (i.fact, i.question.lower()) in seen]


def test_faq_files_say_the_business_is_fictional():
    for name in ("faq_train.jsonl", "faq_heldout.jsonl"):
        first = json.loads((instructions.FAQ_DIR / name).read_text(encoding="utf-8").splitlines()[0])
        assert "FICTIONAL" in first["_about"] and "project" in first["_about"]


ROW = {"id": "x-en-1", "fact": "x", "lang": "en", "question": "Q?", "answer": "A.", "key": "A"}


@pytest.mark.parametrize("line, expected", [
    ({k: v for k, v in ROW.items() if k != "answer"}, "line 2: field 'answer' is missing"),
    ({**ROW, "key": 45}, "line 2: field 'key' must be a string, got int 45"),
    ({**ROW, "answer": "   "}, "line 2: field 'answer' is empty"),
    ("{not json", "line 2 is not valid JSON"),
    ([1, 2], "line 2 is a list, not a JSON object"),
])
def test_bad_jsonl_lines_name_file_line_and_field(tmp_path, line, expected):
    path = tmp_path / "faq.jsonl"
    bad = line if isinstance(line, str) else json.dumps(line)
    path.write_text(json.dumps(ROW) + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="faq.jsonl " + expected.replace("(", r"\(")):
        instructions.load_faq(path=path)


def test_from_dataset_reads_instruction_response_columns():
    from datasets import Dataset

    ds = Dataset.from_dict({"instruction": ["a?", "b?"], "response": ["A", "B"]})
    assert [e.response for e in instructions.from_dataset(ds)] == ["A", "B"]
    with pytest.raises(KeyError, match="no column 'output'.*response_column="):
        instructions.from_dataset(ds, response_column="output")


def test_instruction_dataset_is_faq_plus_sentiment():
    examples = instructions.instruction_dataset(8)
    kinds = Counter(e.source.split(":")[0] for e in examples)
    assert kinds == {"faq": 600, "reviews": 8}
    answers = Counter(e.response for e in examples if e.source.startswith("reviews"))
    assert answers == {"positive": 4, "negative": 4}


# ----------------------------------------------------------------------------- formatting and masking


def test_render_splits_the_chat_template_at_the_answer(tok):
    ex = Example("Hi?", "Hello.", system="Be brief.")
    r = templates.render(tok, ex)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                {"role": "assistant", "content": "Hello."}]
    full = tok.apply_chat_template(messages, tokenize=False)
    assert r.template == "chat" and r.prompt + r.response == full
    assert r.prompt.endswith("<|im_start|>assistant\n") and r.response == "Hello.<|im_end|>\n"


def test_simple_template_for_models_without_one():
    tok = tiny_tokenizer(chat=False)
    r = templates.render(tok, Example("Hi?", "Hello.", system="Be brief.", shots=(("1+1?", "2"),)))
    assert r.template == "simple"
    assert r.prompt == ("### System:\nBe brief.\n\n### User:\n1+1?\n\n### Assistant:\n2\n\n"
                        "### User:\nHi?\n\n### Assistant:\n")
    assert r.response == "Hello.<|im_end|>"


def test_no_chat_template_and_no_fallback_is_a_clear_error():
    with pytest.raises(templates.TemplateError, match="no chat template and no fallback.*SIMPLE_TEMPLATE"):
        templates.render(tiny_tokenizer(chat=False), Example("Hi?", "Hello."), fallback=None)
    with pytest.raises(templates.TemplateError, match="eos_token"):
        templates.render(tiny_tokenizer(chat=False, eos=False), Example("Hi?", "Hello."))


def test_mask_prompt_hand_worked_example():
    enc = masking.mask_prompt([5, 6], [7, 8])
    assert enc.input_ids == [5, 6, 7, 8]
    assert enc.labels == [IGNORE_INDEX, 7, 8, IGNORE_INDEX]
    assert enc.n_prompt == 2


@pytest.mark.parametrize("index", range(4))
def test_masking_puts_minus_100_exactly_on_prompt_tokens(tok, index):
    ex = _examples()[index]
    enc = masking.encode(tok, ex)
    r = templates.render(tok, ex)
    prompt = tok(r.prompt, add_special_tokens=False)["input_ids"]
    response = tok(r.response, add_special_tokens=False)["input_ids"]
    assert enc.input_ids == prompt + response
    # label[t] is the target of position t: the targets are exactly the response tokens, in order
    targets = [t + 1 for t, y in enumerate(enc.labels) if y != IGNORE_INDEX]
    assert targets == list(range(len(prompt), len(prompt) + len(response)))
    assert [y for y in enc.labels if y != IGNORE_INDEX] == response


def test_empty_response_is_a_clear_error(tok):
    with pytest.raises(ValueError, match="empty response in test:9"):
        masking.encode(tok, Example("Q?", "  ", source="test:9"))


@pytest.mark.parametrize("too_long, kept, truncated, dropped", [("drop", 5, 0, 1), ("truncate", 6, 1, 0)])
def test_too_long_examples_are_counted_and_warned(tok, too_long, kept, truncated, dropped):
    examples = _examples(5) + [Example("Short?", "word " * 200, source="test:long")]
    longest = max(len(masking.encode(tok, e)) for e in examples[:5])
    with pytest.warns(UserWarning, match=f"1 of 6 examples are longer than max_length={longest} tokens"):
        report = masking.encode_all(tok, examples, max_length=longest, too_long=too_long)
    assert (len(report.examples), report.n_truncated, report.n_dropped) == (kept, truncated, dropped)
    assert all(len(e) <= longest for e in report.examples)
    if too_long == "truncate":
        assert report.examples[-1].labels[-1] == IGNORE_INDEX


def test_prompt_longer_than_max_length_is_dropped_even_when_truncating(tok):
    fits = len(masking.encode(tok, _examples(1)[0]))
    with pytest.warns(UserWarning, match="1 dropped"):
        examples = [Example("x " * 200, "y"), *_examples(1)]
        report = masking.encode_all(tok, examples, fits, too_long="truncate")
    assert report.n_dropped == 1 and report.dropped_sources == [""]


# ----------------------------------------------------------------------------- packing


def _enc(lengths):
    # length 1: the token alone, unlabelled (mask_prompt refuses an empty prompt: its label would be wrong)
    return [masking.mask_prompt(list(range(10 * i, 10 * i + n - 1)), [99]) if n > 1
            else masking.Encoded([99], [IGNORE_INDEX], 0) for i, n in enumerate(lengths)]


def test_pack_hand_worked_example():
    rows = packing.pack(_enc([4, 3, 2, 1]), max_length=5, pad_id=0)
    assert [r.n_examples for r in rows] == [2, 2]  # first fit decreasing: [4, 1] and [3, 2]
    assert rows[0].position_ids == [0, 1, 2, 3, 0] and rows[1].position_ids == [0, 1, 2, 0, 1]
    assert [r.n_pad for r in rows] == [0, 0]
    assert packing.padding_waste(rows) == 0.0


def test_pack_keeps_every_token_and_pads_the_tail_as_its_own_segment():
    encoded = _enc([7, 3, 6, 2, 5, 5])
    rows = packing.pack(encoded, max_length=8, pad_id=0)
    assert all(len(r.input_ids) == len(r.labels) == len(r.position_ids) == 8 for r in rows)
    packed_tokens = sorted(t for r in rows for t in r.input_ids if t)
    assert packed_tokens == sorted(t for e in encoded for t in e.input_ids if t)
    assert sum(r.n_examples for r in rows) == 6
    assert packing.padding_waste(rows) == pytest.approx(sum(r.n_pad for r in rows) / (8 * len(rows)))
    for r in rows:
        if r.n_pad:
            assert r.position_ids[-r.n_pad:] == list(range(r.n_pad))
            assert set(r.labels[-r.n_pad:]) == {IGNORE_INDEX}


def test_segment_ids_and_block_diagonal_mask():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0]])
    assert packing.segment_ids(pos).tolist() == [[0, 0, 0, 1, 1, 2]]
    mask = packing.block_diagonal_mask(pos)[0].int()
    assert mask.tolist() == [[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0],
                             [0, 0, 0, 1, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1]]


def test_packing_never_lets_one_example_attend_to_another(tok):
    encoded = [masking.encode(tok, e) for e in _examples(3)]
    rows = packing.pack(encoded, max_length=sum(map(len, encoded)) + 3, pad_id=tok.pad_token_id)
    assert len(rows) == 1 and rows[0].n_examples == 3
    batch = packing.packed_batches(rows, batch_size=1)[0]
    model = lora.add_lora(tiny_llama(), ("q_proj", "v_proj"), r=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        packed = model(batch["input_ids"], position_ids=batch["position_ids"]).logits[0]  # (T, V)
        start = 0
        for e in sorted(encoded, key=len, reverse=True):  # pack places the longest first
            alone = model(torch.tensor([e.input_ids])).logits[0]  # (n, V)
            torch.testing.assert_close(packed[start:start + len(e)], alone, atol=1e-5, rtol=1e-5)
            start += len(e)
        # and the loop's loss on the packed row = the token-weighted mean of the examples' own losses
        counts = [sum(y != IGNORE_INDEX for y in e.labels) for e in encoded]
        losses = [default_loss_fn(model, {"input_ids": torch.tensor([e.input_ids]),
                                          "labels": torch.tensor([e.labels])}) for e in encoded]
        nll = sum(loss * n for loss, n in zip(losses, counts, strict=True)) / sum(counts)
        torch.testing.assert_close(default_loss_fn(model, batch), nll, atol=1e-5, rtol=1e-5)


def test_pad_batches_mask_padding_and_grouping_wastes_less(tok):
    encoded = [masking.encode(tok, e) for e in _examples(12)]
    grouped = packing.pad_batches(encoded, 4, tok.pad_token_id)
    plain = packing.pad_batches(encoded, 4, tok.pad_token_id, group_by_length=False)
    for b in grouped:
        assert b["input_ids"].shape == b["labels"].shape == b["attention_mask"].shape
        assert (b["labels"][b["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert sum(int(b["attention_mask"].sum()) for b in grouped) == sum(map(len, encoded))
    assert packing.padding_waste(grouped) <= packing.padding_waste(plain)
    with pytest.raises(TypeError, match="Rows from pack"):
        packing.padding_waste(packing.packed_batches(packing.pack(encoded, 200, 2), 2))


# ----------------------------------------------------------------------------- LoRA


def test_nonexistent_target_module_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\['query'\] do not exist in LlamaForCausalLM.*'q_proj'"):
        lora.add_lora(tiny_llama(), ("q_proj", "query"))


def test_lora_starts_equal_to_the_base_and_counts_its_parameters():
    base = tiny_llama()
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    with torch.no_grad():
        expected = base(ids).logits
    model = lora.add_lora(copy.deepcopy(base), ("q_proj", "k_proj", "v_proj", "o_proj"), r=4, alpha=8)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # per layer: r * (in + out) for q (32->32), k (32->16), v (32->16), o (32->32); 2 layers
    assert trainable == 2 * 4 * ((32 + 32) + (32 + 16) + (32 + 16) + (32 + 32))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(ids).logits, expected, atol=0, rtol=0)  # B starts at zero


def _trained_lora(seed: int = 0):
    model = lora.add_lora(tiny_llama(), ("q_proj", "k_proj", "v_proj", "o_proj"), r=4, alpha=8)
    with torch.no_grad():  # pretend training happened: non-zero B
        g = torch.Generator().manual_seed(seed)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def test_adapter_round_trips_through_stock_peft_with_identical_logits(tmp_path):
    from peft import PeftModel

    model = _trained_lora()
    folder = lora.save_adapter(model, tmp_path / "adapter", "tiny-llama", {"steps": 0})
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny-llama"  # no machine path
    assert (folder / "adapter_model.safetensors").is_file()
    reloaded = PeftModel.from_pretrained(tiny_llama(), folder).eval()  # stock peft, fresh base
    ids = torch.tensor([[1, 7, 42, 99, 5, 2]])
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, model(ids).logits)
        assert torch.equal(lora.load_adapter(tiny_llama(), folder)(ids).logits, model(ids).logits)


def test_load_adapter_without_one_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_adapter.*notebook 05.*catchup.tuned_model"):
        lora.load_adapter(tiny_llama(), tmp_path)


def test_merged_model_equals_the_adapter_and_saves_and_reloads(tmp_path):
    from transformers import AutoModelForCausalLM

    model = _trained_lora()
    ids = torch.tensor([[1, 7, 42, 99, 5, 2]])
    with torch.no_grad():
        expected = model(ids).logits
    merged = model.merge_and_unload()
    assert type(merged).__name__ == "LlamaForCausalLM"
    assert not any("lora" in n for n, _ in merged.named_parameters())
    merged.save_pretrained(tmp_path / "merged")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, expected, atol=1e-4, rtol=1e-4)
        assert torch.equal(reloaded(ids).logits, merged(ids).logits)


def test_tune_runs_through_the_one_loop_and_returns_a_run_record(tok):
    from helpers.course.profiles import InstructSizes
    from helpers.instruct.models import LoadedModel

    loaded = LoadedModel(tiny_llama(), tok, None, "test", 0.0)
    sizes = InstructSizes(max_length=128, batch_size=2, max_steps=3, learning_rate=1e-2, lora_r=4,
                          lora_alpha=8)
    result = lora.tune(loaded, sizes, _examples(6), precision="fp32", device="cpu", peak_flops=1e9)
    record = result.record
    assert record.route == "instruct" and record.steps == 3
    counted = training_flops_per_token(result.model)  # the one FLOP owner: 4N + 2N_trainable, adapters train
    assert record.flops_method == counted.method and "N_trainable = 1,792" in counted.method
    assert record.flops == pytest.approx(counted.per_token * record.tokens)
    assert record.trainable_params == 2 * 4 * (64 + 48 + 48 + 64)
    assert all(torch.isfinite(torch.tensor(record.losses)))
    assert 0.0 <= result.padding_waste < 1.0 and result.report.n_dropped == 0


def test_same_loop_gives_same_losses_with_packed_and_unpacked_batches(tok):
    """A step on a packed row has the loss of the same examples padded: packing changes nothing learned."""
    encoded = [masking.encode(tok, e) for e in _examples(3)]
    packed = packing.packed_batches(packing.pack(encoded, sum(map(len, encoded)) + 3, tok.pad_token_id), 1)
    assert len(packed) == 1
    padded = packing.pad_batches(encoded, 3, tok.pad_token_id)
    losses = []
    for batches in (packed, padded):
        model = lora.add_lora(tiny_llama(), ("q_proj", "v_proj"), r=4, alpha=8, dropout=0.0)
        config = TrainConfig(max_steps=1, lr=1e-2, warmup_steps=0, precision="fp32", device="cpu",
                             peak_flops=1e9, progress=False)
        losses.append(train(model, ListBatches(batches), config).losses[0])
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


@pytest.mark.parametrize("packed", [True, False])
def test_response_loss_equals_the_loops_default_loss_and_gradients(tok, packed):
    encoded = [masking.encode(tok, e) for e in _examples(5)]
    if packed:
        batch = packing.packed_batches(packing.pack(encoded, 128, tok.pad_token_id), 2)[0]
    else:
        batch = packing.pad_batches(encoded, 3, tok.pad_token_id)[0]
    grads = []
    for loss_fn in (default_loss_fn, masking.response_loss):
        model = lora.add_lora(tiny_llama(), ("q_proj", "v_proj"), r=4, alpha=8, dropout=0.0)
        with torch.no_grad():  # non-zero B, so A gets a gradient too
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.fill_(0.01)
        loss = loss_fn(model, batch)
        loss.backward()
        grads.append((loss.detach(), [p.grad for p in model.parameters() if p.requires_grad]))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=1e-5)
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


# ----------------------------------------------------------------------------- notebooks 04-05 == helpers


def test_notebook_05_pieces_equal_helpers(tok):
    from notebook_defs import load_definitions

    nb = load_definitions("05_instruction_tuning.ipynb")
    for prompt, response in (([5, 6], [7, 8]), ([1], [2, 3, 4]), (list(range(10)), [99])):
        enc = masking.mask_prompt(prompt, response)
        assert nb.mask_prompt(prompt, response) == (enc.input_ids, enc.labels)
    for lengths, max_length in (([4, 3, 2, 1], 5), ([7, 3, 6, 2, 5, 5], 8), ([9, 1, 1, 1, 8], 10)):
        rows = packing.pack(_enc(lengths), max_length, pad_id=0)
        ours = [[lengths[i] for i in r] for r in nb.pack(lengths, max_length)]
        assert sorted(map(sum, ours)) == sorted(max_length - r.n_pad for r in rows)
        assert sorted(map(len, ours)) == sorted(r.n_examples for r in rows)
    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 0, 1], [0, 1, 2, 3, 4, 5, 6, 7]])
    assert torch.equal(nb.segment_ids(pos), packing.segment_ids(pos))
    assert torch.equal(nb.block_diagonal_mask(pos), packing.block_diagonal_mask(pos))


def test_notebook_04_scorer_equals_helpers():
    from notebook_defs import load_definitions

    from helpers.instruct import scoring

    nb = load_definitions("04_pretrained_model.ipynb")
    items = instructions.load_faq("heldout") + instructions.load_faq("train")
    answers = [i.answer for i in items] + ["Entro 145 giorni", "dalle 09:30", "€ 5,9", "+39 0599-417-268", ""]
    for answer in answers:
        assert nb.normalise(answer) == scoring.normalise(answer)
        for key in {i.key for i in items}:
            assert nb.fact_in_answer(answer, key) == scoring.fact_in_answer(answer, key), (answer, key)
    for text in nb.SENTIMENT_CASES + ["Negativo!", "", "neutral", "The review is POSITIVE but negative"]:
        assert nb.parse_sentiment(text) == scoring.parse_sentiment(text)


def test_saving_the_adapter_twice_is_silent_and_keeps_our_card(tmp_path, capfd):
    """A second save into the same folder once made huggingface_hub warn about our card (no metadata
    block): a notebook's stored output then depended on whether the folder existed."""
    model = _trained_lora()
    lora.save_adapter(model, tmp_path / "adapter", "tiny-llama", {"steps": 0})
    capfd.readouterr()
    folder = lora.save_adapter(model, tmp_path / "adapter", "tiny-llama", {"steps": 1})
    out, err = capfd.readouterr()
    assert "metadata" not in out + err
    assert (folder / "README.md").read_text().startswith("# LoRA adapter for tiny-llama")
    assert '"steps": 1' in (folder / "README.md").read_text()


def test_an_interrupted_adapter_save_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    """save_adapter builds the folder aside and swaps it in whole: killed after peft's files and before our
    card, the folder still holds the previous adapter, byte for byte, and no temporary folder is left."""
    old = _trained_lora(seed=0)
    folder = lora.save_adapter(old, tmp_path / "adapter", "tiny-llama", {"steps": 1})
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed between files")

    monkeypatch.setattr(lora, "_adapter_card", killed)
    with pytest.raises(KeyboardInterrupt):
        lora.save_adapter(_trained_lora(seed=1), folder, "tiny-llama", {"steps": 2})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
    ids = torch.tensor([[1, 7, 42, 99, 5, 2]])
    with torch.no_grad():
        assert torch.equal(lora.load_adapter(tiny_llama(), folder)(ids).logits, old(ids).logits)
