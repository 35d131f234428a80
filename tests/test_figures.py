"""The concept figures of helpers/course/figures.py: each is a Figure with the parts it promises, renders to a
small PNG, and refuses arguments it cannot draw.

Run:  .venv/bin/python -m pytest tests/test_figures.py -q
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from helpers.core.training import Callback
from helpers.course import figures
from helpers.scratch.tokenizer import BPETokenizer

MAX_PNG_BYTES = 60_000


def _png_bytes(fig: Figure) -> int:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return len(buffer.getvalue())


def _patches(fig: Figure, gid: str) -> list:
    return [p for ax in fig.axes for p in ax.patches if p.get_gid() == gid]


@pytest.mark.parametrize("notebook", ["00", "01", "02", "03", "04", "05", "06", "07"])
def test_roadmap_highlights_only_the_current_notebook(notebook):
    fig = figures.roadmap(notebook)
    assert isinstance(fig, Figure)
    highlighted = _patches(fig, "highlight")
    assert len(highlighted) == (2 if notebook == "05" else 1)
    assert len(highlighted) + len(_patches(fig, "box")) == 9  # 00-07, with 05's two steps
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sum(t.startswith(notebook) for t in texts) == len(highlighted)
    assert _png_bytes(fig) < MAX_PNG_BYTES


def test_roadmap_takes_a_number_or_a_file_stem_and_leaves_pyplot_clean():
    before = plt.get_fignums()
    titles = {fig.get_suptitle() for fig in (figures.roadmap(3), figures.roadmap("03_pretraining"))}
    assert titles == {"Course roadmap: you are in notebook 03"}
    assert plt.get_fignums() == before


@pytest.mark.parametrize("bad", ["08", "setup", 9, -1, True])
def test_roadmap_refuses_an_unknown_notebook(bad):
    with pytest.raises(ValueError, match="not a course notebook"):
        figures.roadmap(bad)


def test_causal_attention_hatches_exactly_the_future():
    t = 8
    w = np.tril(np.ones((t, t)))
    w /= w.sum(axis=1, keepdims=True)
    fig = figures.causal_attention(w)
    assert len(_patches(fig, "masked")) == t * (t - 1) // 2
    assert len(fig.axes) == 2  # heatmap and colour bar
    shown = fig.axes[0].images[0].get_array()
    assert shown.mask[0, 1] and not shown.mask[1, 0]
    assert _png_bytes(fig) < MAX_PNG_BYTES


def test_causal_attention_takes_a_tensor_and_token_labels():
    torch = pytest.importorskip("torch")
    w = torch.softmax(torch.zeros(4, 4).masked_fill(torch.triu(torch.ones(4, 4, dtype=torch.bool), 1), -1e9), -1)
    fig = figures.causal_attention(w, tokens=["a", "b", "c", "d"])
    assert [label.get_text() for label in fig.axes[0].get_xticklabels()] == ["a", "b", "c", "d"]


@pytest.mark.parametrize(("weights", "tokens", "match"), [
    (np.ones((3, 4)), None, "square"),
    (np.ones((1, 1)), None, "square"),
    (np.ones((65, 65)), None, "too many"),
    (np.ones((3, 3)), ["a", "b"], "one per position"),
])
def test_causal_attention_refuses_bad_arguments(weights, tokens, match):
    with pytest.raises(ValueError, match=match):
        figures.causal_attention(weights, tokens=tokens)


def test_lora_diagram_counts_the_parameters():
    fig = figures.lora_diagram(576, 8)
    ax = fig.axes[0]
    assert {p.get_gid() for p in ax.patches} == {"frozen", "lora_B", "lora_A"}
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "331,776 parameters" in texts and "9,216 parameters" in texts and "2.78% of W" in texts
    b = next(p for p in ax.patches if p.get_gid() == "lora_B")
    a = next(p for p in ax.patches if p.get_gid() == "lora_A")
    assert b.get_height() == a.get_width() == 2.4 and b.get_width() == a.get_height()  # B is A turned
    assert _png_bytes(fig) < MAX_PNG_BYTES


@pytest.mark.parametrize(("d", "r", "match"), [
    (576, 0, "positive integer"), (576, 2.5, "positive integer"), (True, 1, "positive integer"),
    (8, 8, "smaller than d"), (8, 16, "smaller than d"),
])
def test_lora_diagram_refuses_bad_sizes(d, r, match):
    with pytest.raises(ValueError, match=match):
        figures.lora_diagram(d, r)


def test_masking_and_packing_shows_loss_padding_and_blocks():
    ignore = figures.IGNORE_INDEX
    rows = [[ignore] * 5 + [1, 2, 3] + [ignore], [ignore] * 3 + [4] + [ignore]]  # 9 and 5 positions
    fig = figures.masking_and_packing(rows)
    padded, packed, attention = (ax.images[0].get_array() for ax in fig.axes)
    assert padded.shape == (2, 9) and int((padded == 0).sum()) == 4  # the short example padded by 4
    assert packed.shape == (1, 14) and int((packed == 2).sum()) == 4 and not (packed == 0).any()
    assert attention.shape == (14, 14)
    assert attention[8, 0] and not attention[9, 8] and attention[13, 9] and not attention[9, 10]
    assert "4 of 18 positions are padding" in fig.axes[0].get_title()
    assert _png_bytes(fig) < MAX_PNG_BYTES


@pytest.mark.parametrize(("rows", "match"), [
    ([], "non-empty"), ([[1], []], "non-empty"), ([[1]] * 13, "1-12"), ([[1] * 300, [1] * 300], "too many"),
])
def test_masking_and_packing_refuses_bad_rows(rows, match):
    with pytest.raises(ValueError, match=match):
        figures.masking_and_packing(rows)


def test_kv_cache_counts_what_is_computed():
    fig = figures.kv_cache(8)
    without, cached = (ax.images[0].get_array() for ax in fig.axes)
    assert int((without == 2).sum()) == 8 * 9 // 2 and int((cached == 2).sum()) == 8
    assert int((cached == 1).sum()) == 8 * 7 // 2  # the rest is read, not recomputed
    assert fig.axes[1].get_title() == "with a KV cache: 8 K/V computed"
    assert _png_bytes(fig) < MAX_PNG_BYTES


@pytest.mark.parametrize(("T", "match"), [(0, "positive"), (1, "2-32"), (33, "2-32"), (4.0, "positive")])
def test_kv_cache_refuses_bad_lengths(T, match):
    with pytest.raises(ValueError, match=match):
        figures.kv_cache(T)


def test_training_loop_names_every_callback_hook_of_the_loop():
    fig = figures.training_loop()
    ax = fig.axes[0]
    hooks = {t.get_text() for t in ax.texts if t.get_text().startswith("on_")}
    assert hooks == {name for name in vars(Callback) if name.startswith("on_")}
    assert len([p for p in ax.patches if p.get_gid() == "box"]) == 7  # batch ... record
    assert _png_bytes(fig) < MAX_PNG_BYTES


def test_bpe_merges_replays_the_merges_of_a_real_tokenizer():
    tok = BPETokenizer.train("the theme of the thesis: then there " * 20, 256 + 12 + 3)
    fig = figures.bpe_merges(" there", tok.merges)
    rows = {}
    for text in fig.axes[0].texts:
        if text.get_gid():
            rows.setdefault(text.get_gid(), []).append(text.get_text().replace("␣", " "))
    assert all("".join(tokens) == " there" for tokens in rows.values())  # every row spells the word
    assert len(rows[f"row {len(rows) - 1}"]) == len(tok.encode(" there"))  # the last row is the encoding
    assert f"6 bytes -> {len(tok.encode(' there'))} tokens" in fig.get_suptitle()
    assert _png_bytes(fig) < MAX_PNG_BYTES


def test_bpe_merges_takes_notebook_01s_dict_of_merges():
    merges = {(116, 104): 256, (256, 101): 257}  # "th", "the"
    fig = figures.bpe_merges("the", merges)
    assert fig.get_suptitle().startswith("BPE encoding 'the': 3 bytes -> 1 tokens in 2 merges")
    assert len([p for p in fig.axes[0].patches if p.get_gid() == "token"]) == 3 + 2 + 1


@pytest.mark.parametrize(("word", "merges", "match"), [
    ("a", [], "2-16 UTF-8 bytes"), ("x" * 17, [], "2-16 UTF-8 bytes"), (b"ab", [], "2-16 UTF-8 bytes"),
    ("ab", {(300, 97): 256}, "not defined before it"),
])
def test_bpe_merges_refuses_bad_arguments(word, merges, match):
    with pytest.raises(ValueError, match=match):
        figures.bpe_merges(word, merges)


def test_four_routes_draws_every_route_of_notebook_06():
    from helpers.experiment.routes import ROUTES  # torch and transformers: only this test needs them

    fig = figures.four_routes()
    ax = fig.axes[0]
    drawn = {t.get_text().removeprefix("route ") for t in ax.texts if t.get_text().startswith("route ")}
    assert drawn == set(ROUTES), "a route was added to helpers.experiment.routes: add its column to four_routes"
    assert len(ax.patches) == 3 * len(ROUTES)  # starts from, trains, costs
    assert _png_bytes(fig) < MAX_PNG_BYTES
