"""Concept figures drawn by code: the course roadmap and one picture per key idea, each a small, deterministic
matplotlib `Figure` (no data loading: what a figure shows is passed in).

    roadmap("03")                  # where notebook 03 sits on the two routes (every notebook, at the top)
    causal_attention(weights)      # a (T, T) attention matrix, future positions hatched (02)
    kv_cache(8)                    # keys/values computed vs read from the cache, per generation step (02)
    bpe_merges(" word", merges)    # a word's bytes merging step by step (01)
    training_loop()                # the loop's steps and the callback hooks (03)
    lora_diagram(576, 8)           # frozen W beside the low-rank B and A, with parameter counts (05)
    masking_and_packing(labels)    # loss positions padded vs packed, block-diagonal attention (05)
    four_routes()                  # notebook 06's routes: starts from, trains, costs (06)

Each function builds its figure through pyplot and closes it at once (as `helpers.core.plots.plot_losses`
does): Jupyter shows the returned figure once, and no pyplot state is left behind. Sizes stay at most
9 x 3.5 inches at 90 dpi, so a PNG in a notebook's outputs stays under 60 kB.

Left out on purpose: interactive figures, colour themes, figures of measured results (those are in
`helpers.core.plots` and the notebooks). Reference: S. Raschka, *Build a Large Language Model (From
Scratch)*, Manning 2024, whose chapter roadmaps this imitates.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

DPI = 90  # 9 x 3.5 in at 90 dpi is 810 x 315 px: a PNG of a few tens of kB
HIGHLIGHT = "#f4a261"  # the current notebook's boxes
PLAIN = "#e9eef4"

# notebook -> boxes (label, x, y) on the roadmap; notebook 05 has two steps of the instruct route
_ROADMAP: dict[str, list[tuple[str, float, float]]] = {
    "00": [("00 setup", 0.6, 1.0)],
    "01": [("01 tokenizer", 2.2, 1.7)],
    "02": [("02 tiny GPT", 3.7, 1.7)],
    "03": [("03 pretraining", 5.2, 1.7)],
    "04": [("04 pretrained\nmodel", 2.2, 0.3)],
    "05": [("05 instruction\ndata", 3.7, 0.3), ("05 LoRA\ntuning", 5.2, 0.3)],
    "06": [("06 train vs\ninstruct", 6.9, 1.0)],
    "07": [("07 local\ndeployment", 8.4, 1.0)],
}
_EDGES = [("00 setup", "01 tokenizer"), ("01 tokenizer", "02 tiny GPT"), ("02 tiny GPT", "03 pretraining"),
          ("00 setup", "04 pretrained\nmodel"), ("04 pretrained\nmodel", "05 instruction\ndata"),
          ("05 instruction\ndata", "05 LoRA\ntuning"), ("03 pretraining", "06 train vs\ninstruct"),
          ("05 LoRA\ntuning", "06 train vs\ninstruct"), ("06 train vs\ninstruct", "07 local\ndeployment")]
_BOX_W, _BOX_H = 1.15, 0.6


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure pyplot no longer tracks: Jupyter displays the returned object once, nothing leaks."""
    fig = plt.figure(figsize=figsize, dpi=DPI)
    plt.close(fig)
    return fig


def _box(ax, label: str, x: float, y: float, highlight: bool) -> FancyBboxPatch:
    patch = FancyBboxPatch((x - _BOX_W / 2, y - _BOX_H / 2), _BOX_W, _BOX_H, boxstyle="round,pad=0.04",
                           facecolor=HIGHLIGHT if highlight else PLAIN, edgecolor="black",
                           linewidth=2.0 if highlight else 0.8, gid="highlight" if highlight else "box")
    ax.add_patch(patch)
    ax.text(x, y, label, ha="center", va="center", fontsize=8.5, weight="bold" if highlight else "normal")
    return patch


def _arrow(ax, start: tuple[float, float], end: tuple[float, float]) -> None:
    """An arrow from box centre to box centre, clipped to the box edges."""
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    shrink = 0.5 * _BOX_W / max(abs(dx), 1e-9) if abs(dx) * _BOX_H >= abs(dy) * _BOX_W else 0.5 * _BOX_H / abs(dy)
    shrink = min(shrink * 1.08, 0.45)
    ax.annotate("", xy=(x1 - shrink * dx, y1 - shrink * dy), xytext=(x0 + shrink * dx, y0 + shrink * dy),
                arrowprops={"arrowstyle": "->", "color": "#555555", "lw": 1.0})


def _notebook_key(notebook: str | int) -> str:
    key = f"{notebook:02d}" if isinstance(notebook, int) and not isinstance(notebook, bool) else str(notebook)[:2]
    if key not in _ROADMAP:
        raise ValueError(f"roadmap(notebook={notebook!r}): not a course notebook; pass one of "
                         f"{sorted(_ROADMAP)} (or its number 0-7)")
    return key


def roadmap(notebook: str | int) -> Figure:
    """The course on two routes (from scratch, top; instruct, bottom) meeting at 06 and 07, after setup (00);
    the boxes of `notebook` ("03", 3 or "03_pretraining") highlighted."""
    current = _notebook_key(notebook)
    fig = _new_figure((9, 2.6))
    ax = fig.add_axes((0.01, 0.02, 0.98, 0.84))
    centres = {}
    for key, boxes in _ROADMAP.items():
        for label, x, y in boxes:
            _box(ax, label, x, y, highlight=key == current)
            centres[label] = (x, y)
    for a, b in _EDGES:
        _arrow(ax, centres[a], centres[b])
    ax.text(3.7, 2.2, "from scratch", ha="center", fontsize=9, style="italic", color="#1d3557")
    ax.text(3.7, -0.2, "instruct a pretrained model", ha="center", va="top", fontsize=9,
            style="italic", color="#1d3557")
    ax.set_xlim(-0.1, 9.1)
    ax.set_ylim(-0.45, 2.4)
    ax.set_axis_off()
    fig.suptitle(f"Course roadmap: you are in notebook {current}", fontsize=10)
    return fig


def causal_attention(weights, tokens: list[str] | None = None) -> Figure:
    """Attention weights (T, T) as a heatmap, row = query position, column = key position; the future
    positions (column > row), which the causal mask blocks, drawn grey and hatched."""
    w = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] < 2:
        raise ValueError(f"causal_attention(weights): expected a square (T, T) matrix with T >= 2, got shape "
                         f"{w.shape}; pass one head of one sequence, e.g. weights[0, 0]")
    if w.shape[0] > 64:
        raise ValueError(f"causal_attention(weights): T={w.shape[0]} is too many positions to read; slice the "
                         f"first ones, e.g. weights[:16, :16]")
    t = w.shape[0]
    if tokens is not None and len(tokens) != t:
        raise ValueError(f"causal_attention(tokens=...): {len(tokens)} labels for T={t} positions; "
                         f"pass one per position")
    future = np.triu(np.ones((t, t), dtype=bool), k=1)
    fig = _new_figure((5.2, 3.5))
    bottom = 0.24 if tokens is not None else 0.14  # room for the rotated token labels
    ax = fig.add_axes((0.17, bottom, 0.58, 0.88 - bottom))
    image = ax.imshow(np.ma.masked_array(w, future), cmap="viridis", vmin=0.0, vmax=max(float(w.max()), 1e-9))
    for i, j in zip(*np.nonzero(future), strict=True):
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#d9d9d9", edgecolor="#9a9a9a",
                                   hatch="///", linewidth=0.0, gid="masked"))
    labels = tokens if tokens is not None else [str(i) for i in range(t)]
    ax.set_xticks(range(t), labels, fontsize=7, rotation=90 if tokens is not None else 0)
    ax.set_yticks(range(t), labels, fontsize=7)
    ax.set_xlabel("key position (attended to)", fontsize=8)
    ax.set_ylabel("query position", fontsize=8)
    ax.set_title("causal attention: grey = future, masked", fontsize=9)
    colorbar = fig.colorbar(image, cax=fig.add_axes((0.8, bottom, 0.03, 0.88 - bottom)))
    colorbar.ax.tick_params(labelsize=7)
    return fig


def _positive_int(name: str, value, function: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{function}({name}={value!r}): expected a positive integer")
    return int(value)


def lora_diagram(d: int, r: int) -> Figure:
    """LoRA on one d x d weight: W frozen beside the trainable B (d x r) and A (r x d), drawn to scale (with a
    minimum width so a small r stays visible), with the parameter counts d*d and 2*d*r."""
    d, r = _positive_int("d", d, "lora_diagram"), _positive_int("r", r, "lora_diagram")
    if r >= d:
        raise ValueError(f"lora_diagram(d={d}, r={r}): the rank r must be smaller than d to be low-rank; "
                         f"pass e.g. r={max(1, d // 64)}")
    side, thin = 2.4, max(2.4 * r / d, 0.12)
    fig = _new_figure((9, 3.2))
    ax = fig.add_axes((0.01, 0.02, 0.98, 0.86))
    ax.add_patch(plt.Rectangle((0.2, 0.0), side, side, facecolor="#c9d1d9", edgecolor="black", gid="frozen"))
    ax.text(0.2 + side / 2, side / 2, f"W\n{d} x {d}\nfrozen", ha="center", va="center", fontsize=10)
    ax.text(0.2 + side / 2, -0.15, f"{d * d:,} parameters, not trained", ha="center", va="top", fontsize=9)
    ax.text(3.0, side / 2, "+", ha="center", va="center", fontsize=20)
    x_b = 3.4
    ax.add_patch(plt.Rectangle((x_b, 0.0), thin, side, facecolor=HIGHLIGHT, edgecolor="black", gid="lora_B"))
    ax.text(x_b + thin / 2, -0.15, f"B\n{d} x {r}", ha="center", va="top", fontsize=9)
    x_a = x_b + thin + 0.25
    ax.add_patch(plt.Rectangle((x_a, side - thin), side, thin, facecolor=HIGHLIGHT, edgecolor="black",
                               gid="lora_A"))
    ax.text(x_a + side / 2, side - thin - 0.1, f"A   {r} x {d}", ha="center", va="top", fontsize=9)
    ax.text(x_a + side / 2, 0.9, f"trainable: 2 x {d} x {r}\n= {2 * d * r:,} parameters\n"
            f"({2 * d * r / (d * d):.2%} of W)", ha="center", va="center", fontsize=9)
    ax.text(x_a + side + 0.3, side / 2, "h = W x + (alpha / r) B A x\n\nB starts at zero:\nthe wrapped model\n"
            "begins equal to the base", ha="left", va="center", fontsize=9)
    ax.set_xlim(0, 10.2)
    ax.set_ylim(-0.75, side + 0.1)
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.suptitle(f"LoRA on one {d} x {d} weight, rank r = {r}", fontsize=10)
    return fig


IGNORE_INDEX = -100  # the label cross-entropy skips (prompt positions, the end of an example)


def _loss_kinds(labels: list[int]) -> list[int]:
    """Per position: 1 = label ignored (prompt, end of example), 2 = carries loss; padding is 0."""
    return [1 if label == IGNORE_INDEX else 2 for label in labels]


def masking_and_packing(rows: list[list[int]]) -> Figure:
    """Which positions carry loss, for the examples' label lists `rows` (IGNORE_INDEX = -100 where no loss):
    padded to the longest (one example per row) and packed longest first into one row; right, the packed
    row's attention, causal inside each example and blocked across examples (block-diagonal)."""
    if not rows or any(not row for row in rows) or len(rows) > 12:
        raise ValueError(f"masking_and_packing(rows): expected 1-12 non-empty label lists, got "
                         f"{[len(r) for r in rows] if rows else rows!r}; pass e.g. [e.labels for e in examples[:3]]")
    if sum(len(row) for row in rows) > 512:
        raise ValueError(f"masking_and_packing(rows): {sum(len(r) for r in rows)} tokens in all is too many to "
                         f"read; pass the few shortest examples (at most 512 tokens together)")
    colours = ListedColormap(["white", "#c9d1d9", HIGHLIGHT])
    longest = max(len(row) for row in rows)
    padded = np.array([_loss_kinds(row) + [0] * (longest - len(row)) for row in rows])
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    packed = np.array([sum((_loss_kinds(rows[i]) for i in order), [])])
    segment = np.concatenate([np.full(len(rows[i]), k) for k, i in enumerate(order)])
    t = len(segment)
    allowed = (segment[:, None] == segment[None, :]) & np.tril(np.ones((t, t), dtype=bool))
    fig = _new_figure((9, 3.4))
    ax_pad = fig.add_axes((0.06, 0.5, 0.55, 0.34))
    ax_pack = fig.add_axes((0.06, 0.14, 0.55, 0.12))
    ax_attn = fig.add_axes((0.68, 0.12, 0.3, 0.72))
    ax_pad.imshow(padded, cmap=colours, vmin=0, vmax=2, aspect="auto", interpolation="nearest")
    ax_pad.set_title(f"padded: {int((padded == 0).sum())} of {padded.size} positions are padding", fontsize=9)
    ax_pad.set_yticks(range(len(rows)), [f"ex {i}" for i in range(len(rows))], fontsize=7)
    ax_pad.set_xticks([])
    ax_pack.imshow(packed, cmap=colours, vmin=0, vmax=2, aspect="auto", interpolation="nearest")
    for edge in np.cumsum([len(rows[i]) for i in order])[:-1]:
        ax_pack.axvline(edge - 0.5, color="black", linewidth=1.5)
    ax_pack.set_title("packed into one row (longest first), no padding", fontsize=9)
    ax_pack.set_yticks([])
    ax_pack.set_xlabel("position; orange = carries loss, grey = label -100 (prompt, end), white = padding",
                       fontsize=8)
    ax_attn.imshow(allowed, cmap=ListedColormap(["#f2f2f2", "#1d3557"]), interpolation="nearest")
    ax_attn.set_title("packed row: who may attend to whom", fontsize=9)
    ax_attn.set_xlabel("key position", fontsize=8)
    ax_attn.set_ylabel("query position", fontsize=8)
    ax_attn.tick_params(labelsize=7)
    return fig


def kv_cache(T: int) -> Figure:
    """Generating T tokens: at each step (row), the positions (columns) whose keys and values are computed
    (orange) or read from the cache (blue): without a cache every step recomputes the whole context,
    T*(T+1)/2 key/value computations in all; with one, T."""
    T = _positive_int("T", T, "kv_cache")
    if not 2 <= T <= 32:
        raise ValueError(f"kv_cache(T={T}): draw 2-32 steps to keep the grid readable; pass e.g. T=8")
    steps = np.arange(T)[:, None]
    positions = np.arange(T)[None, :]
    without = np.where(positions <= steps, 2, 0)  # 2 = computed, 1 = read from the cache, 0 = not there yet
    with_cache = np.where(positions == steps, 2, np.where(positions < steps, 1, 0))
    colours = ListedColormap(["white", "#8ecae6", HIGHLIGHT])
    fig = _new_figure((8, 3.5))
    for k, (grid, title) in enumerate([(without, "without a cache"), (with_cache, "with a KV cache")]):
        ax = fig.add_axes((0.07 + 0.47 * k, 0.14, 0.4, 0.7))
        ax.imshow(grid, cmap=colours, vmin=0, vmax=2, interpolation="nearest")
        ax.set_xticks(np.arange(-0.5, T, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, T, 1), minor=True)
        ax.grid(which="minor", color="#bbbbbb", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelsize=7)
        ax.set_title(f"{title}: {int((grid == 2).sum())} K/V computed", fontsize=9)
        ax.set_xlabel("position", fontsize=8)
        ax.set_ylabel("generation step", fontsize=8)
    fig.suptitle("orange = keys/values computed this step, blue = read from the cache", fontsize=9)
    return fig


_LOOP_STEPS = ["get batch", "forward", "loss", "backward", "step\n(clip, AdamW,\nlr schedule)", "eval /\ncheckpoint",
               "record"]
# callback hook, where its box is drawn, the x of the loop step it fires at (train begin/end: first/last)
_LOOP_HOOKS = [("on_train_begin", 0.7, 0.7), ("on_step_end", 5.6, 6.7), ("on_eval_end", 7.0, 8.0),
               ("on_checkpoint", 8.4, 8.4), ("on_train_end", 9.8, 9.7)]


def training_loop() -> Figure:
    """The training loop of `helpers.core.training.train` as a cycle of steps (top), with the callback hooks
    it calls (bottom, dashed) and where each fires."""
    fig = _new_figure((9, 3.0))
    ax = fig.add_axes((0.01, 0.02, 0.98, 0.86))
    xs = [0.7 + 1.5 * k for k in range(len(_LOOP_STEPS))]
    for label, x in zip(_LOOP_STEPS, xs, strict=True):
        _box(ax, label, x, 1.5, highlight=False)
    for x0, x1 in zip(xs, xs[1:], strict=False):
        _arrow(ax, (x0, 1.5), (x1, 1.5))
    ax.annotate("", xy=(xs[0], 1.86), xytext=(xs[-1], 1.86), arrowprops={
        "arrowstyle": "->", "color": "#555555", "lw": 1.0, "connectionstyle": "arc3,rad=0.12"})
    ax.text((xs[0] + xs[-1]) / 2, 2.35, "next step, until max_steps", ha="center", fontsize=8.5, style="italic")
    for hook, x, target in _LOOP_HOOKS:
        ax.add_patch(FancyBboxPatch((x - 0.62, 0.05), 1.24, 0.4, boxstyle="round,pad=0.03", facecolor="white",
                                    edgecolor="#1d3557", linestyle="--", gid="hook"))
        ax.text(x, 0.25, hook, ha="center", va="center", fontsize=7.5, family="monospace", color="#1d3557")
        ax.plot([x, target], [0.45, 1.12], color="#1d3557", linestyle=":", linewidth=1.0)
    ax.text(1.6, 0.25, "callbacks, e.g. LivePlot (the live loss plot)", fontsize=8, color="#1d3557", ha="left",
            va="center")
    ax.set_xlim(-0.1, 10.6)
    ax.set_ylim(-0.05, 2.55)
    ax.set_axis_off()
    fig.suptitle("helpers.core.training.train: one loop, callbacks attached", fontsize=10)
    return fig


def _merge_steps(data: bytes, merges: dict[tuple[int, int], int]) -> list[list[int]]:
    """The ids after each merge when encoding `data`, earliest-learned merge first (as encoding does)."""
    ids, steps = list(data), [list(data)]
    while len(ids) >= 2:
        pairs = set(zip(ids, ids[1:], strict=False))
        pair = min(pairs, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(merges[pair])
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
        steps.append(ids)
    return steps


def bpe_merges(word: str, merges) -> Figure:
    """`word`'s UTF-8 bytes merging step by step under a BPE tokenizer's `merges` ({(left, right): new id},
    as notebook 01 builds them, or the ordered list of pairs of `helpers.scratch.tokenizer.Tokenizer.merges`):
    one row per merge, one box per token, showing the bytes it stands for."""
    if isinstance(merges, dict):
        table = {tuple(p): int(i) for p, i in merges.items()}
    else:
        table = {tuple(p): 256 + k for k, p in enumerate(merges)}
    data = word.encode("utf-8") if isinstance(word, str) else b""
    if not 2 <= len(data) <= 16:
        raise ValueError(f"bpe_merges(word={word!r}): expected a string of 2-16 UTF-8 bytes; pass one word, "
                         f"e.g. ' actors'")
    vocab = {i: bytes([i]) for i in range(256)}
    for (left, right), new in sorted(table.items(), key=lambda item: item[1]):
        if left not in vocab or right not in vocab:
            raise ValueError(f"bpe_merges(merges=...): merge {(left, right)} -> {new} uses an id not defined "
                             f"before it; pass the merges in the order they were learned")
        vocab[new] = vocab[left] + vocab[right]
    steps = _merge_steps(data, table)
    fig = _new_figure((9, min(0.9 + 0.32 * len(steps), 3.5)))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.86))
    unit = 8.6 / len(data)  # width of one byte
    for row, ids in enumerate(steps):
        x = 0.2
        for token in ids:
            width = unit * len(vocab[token])
            ax.add_patch(plt.Rectangle((x, -row), width - 0.05, 0.8, facecolor=PLAIN if token < 256 else HIGHLIGHT,
                                       edgecolor="black", linewidth=0.6, gid="token"))
            ax.text(x + width / 2, -row + 0.4, vocab[token].decode("utf-8", "replace").replace(" ", "␣"),
                    ha="center", va="center", fontsize=8, family="monospace", gid=f"row {row}")
            x += width
        ax.text(8.95, -row + 0.4, f"{len(ids)}", ha="left", va="center", fontsize=8)
    ax.set_xlim(0, 9.4)
    ax.set_ylim(-len(steps) + 0.8, 0.9)
    ax.set_axis_off()
    fig.suptitle(f"BPE encoding {word!r}: {len(data)} bytes -> {len(steps[-1])} tokens in {len(steps) - 1} merges "
                 f"(orange = a merged token; right: tokens per row)", fontsize=9)
    return fig


# notebook 06's routes (keys of helpers.experiment.routes.ROUTES): what each starts from, trains, and pays
_ROUTES_06 = {
    "A": ("our tokenizer + tiny GPT\npretrained on reviews (03)", "every weight\n(full fine-tuning)",
          "our pretraining compute\n+ the tuning run"),
    "A0": ("the same tiny GPT,\nrandom weights", "every weight\n(full fine-tuning)",
           "the tuning run only\n(no pretraining)"),
    "B": ("SmolLM2-135M-Instruct,\npretrained by others (04)", "LoRA adapters only\n(05)",
          "the tuning run; the\npretraining is inherited"),
    "C": ("nothing: word counts\n(TF-IDF), no language model", "a logistic regression\n(scikit-learn)",
          "seconds of fitting;\nno FLOPs counted"),
}


def four_routes() -> Figure:
    """Notebook 06's routes side by side, one column each: what it starts from, what it trains, what its
    bill counts; all see the same N labelled examples and are scored on the same test set."""
    fig = _new_figure((11, 3.3))
    ax = fig.add_axes((0.01, 0.02, 0.98, 0.86))
    rows = [("starts from", 2.2), ("trains", 1.25), ("costs", 0.3)]
    for name, y in rows:
        ax.text(0.05, y, name, ha="left", va="center", fontsize=9, style="italic")
    for k, (route, cells) in enumerate(_ROUTES_06.items()):
        x = 2.4 + 2.5 * k
        ax.text(x, 2.95, f"route {route}", ha="center", va="center", fontsize=10, weight="bold")
        for (_, y), text in zip(rows, cells, strict=True):
            ax.add_patch(FancyBboxPatch((x - 1.1, y - 0.36), 2.2, 0.72, boxstyle="round,pad=0.03",
                                        facecolor=HIGHLIGHT if route == "B" else PLAIN, edgecolor="black",
                                        linewidth=0.8, gid=f"route {route}"))
            ax.text(x, y, text, ha="center", va="center", fontsize=8)
    ax.text(12.35, 1.25, "same N labelled\nexamples, same\ntest set;\nA, A0, B: same\nloop", ha="center",
            va="center", fontsize=8, color="#1d3557")
    ax.set_xlim(0, 13.1)
    ax.set_ylim(-0.15, 3.2)
    ax.set_axis_off()
    fig.suptitle("Notebook 06: the routes compared (orange: instruct a pretrained model)", fontsize=10)
    return fig
