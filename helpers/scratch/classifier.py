"""Our tiny GPT as a classifier: a head on the last token's hidden state, for route A of notebook 06.

A review is encoded, cut to its first tokens, and closed with an end-of-text token; the GPT reads it
and a `Linear(n_embd, n_classes)` head reads the final LayerNorm's state *at that closing token* (in a
causal model, the only position that has seen the whole review). Every weight is trained: this is full
fine-tuning with a task head, the way GPT-1 (Radford et al. 2018) and Raschka's LLMs-from-scratch ch. 6
tune a pretrained GPT for classification.

The batches carry the class where the loop expects labels: `labels` is (B, T) with -100 everywhere but
the closing token, which holds the class id. So `model(input_ids)` returns (B, T, n_classes) logits and
the loop's own `lm_loss` is the classification loss — the same loop as pretraining, no special case.

    clf = GPTClassifier(copy.deepcopy(pretrained_gpt))  # the head trains the GPT's own tensors: copy first
    ids = [close_ids(bpe.encode(text), eot_id, clf.config.block_size) for text in texts]
    batches = class_batches(ids, labels, pad_id, batch_size=32)

Left out on purpose: pooling other than the last token (mean pooling measured 1.6 points worse at N=1k,
docs/research/issue12-recipes.md), freezing layers, and a decision threshold other than 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from helpers.scratch.gpt import GPT, check_token_ids, hidden_states

IGNORE = -100  # = helpers.core.loop_parts.IGNORE_INDEX: positions without a loss


class GPTClassifier(nn.Module):
    """`gpt`'s embeddings, blocks and final LayerNorm (the LM head is dropped) + a class head.

    The module holds `gpt.transformer` itself (not a copy): pass a copy to keep the original untouched.
    `config` is the GPT's, so FLOP counting (helpers.measure.flops) reads its sizes; the tied LM head is
    not part of this module, so it is neither run nor counted."""

    def __init__(self, gpt: GPT, n_classes: int = 2):
        super().__init__()
        if not isinstance(gpt, GPT):
            raise TypeError(f"gpt must be a helpers.scratch.gpt.GPT, got {type(gpt).__name__}")
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
        self.config = gpt.config
        self.transformer = gpt.transformer
        self.head = nn.Linear(gpt.config.n_embd, n_classes)
        nn.init.normal_(self.head.weight, mean=0.0, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Class logits (B, T, n_classes) at every position; read the one at each row's closing token."""
        if idx.dim() != 2 or idx.shape[1] > self.config.block_size:
            raise ValueError(
                f"GPTClassifier expects token ids (batch, time) with time <= block_size="
                f"{self.config.block_size}, got shape {tuple(idx.shape)}: crop the reviews shorter"
            )
        check_token_ids(idx, self.config.vocab_size)
        return self.head(hidden_states(self.transformer, idx))


def close_ids(ids: Sequence[int], eot_id: int, max_tokens: int) -> list[int]:
    """A review's token ids cut to `max_tokens` - 1 and closed with the end-of-text token."""
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be >= 2 (one review token and the closing one), got {max_tokens}")
    return [*list(ids)[: max_tokens - 1], eot_id]


def class_batches(
    ids: Sequence[Sequence[int]],
    labels: Sequence[int],
    pad_id: int,
    batch_size: int,
    seed: int = 0,
) -> list[dict[str, torch.Tensor]]:
    """Right-padded batches for the loop: input_ids, attention_mask (1 = real) and labels (B, T) that hold
    the class at each row's last real token and -100 elsewhere. Rows are shuffled once with `seed` before
    batching (the loop reshuffles batches per epoch). ids must already be closed (`close_ids`)."""
    if len(ids) != len(labels) or not ids:
        raise ValueError(f"need as many labels as sequences (and at least one): {len(ids)} vs {len(labels)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    order = np.random.default_rng(seed).permutation(len(ids))
    batches = []
    for start in range(0, len(order), batch_size):
        rows = [int(i) for i in order[start : start + batch_size]]
        T = max(len(ids[i]) for i in rows)
        x = torch.full((len(rows), T), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), T), dtype=torch.long)
        y = torch.full((len(rows), T), IGNORE, dtype=torch.long)
        for r, i in enumerate(rows):
            n = len(ids[i])
            if n == 0:
                raise ValueError(f"sequence {i} is empty: close it with close_ids first")
            x[r, :n] = torch.tensor(list(ids[i]))
            mask[r, :n] = 1
            y[r, n - 1] = int(labels[i])
        batches.append({"input_ids": x, "attention_mask": mask, "labels": y})
    return batches


@torch.no_grad()
def class_logits(model: GPTClassifier, ids: Sequence[Sequence[int]], batch_size: int = 64) -> torch.Tensor:
    """(N, n_classes) logits at each sequence's last token; sequences of similar length share a batch."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = torch.zeros(len(ids), model.head.out_features)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        T = max(len(ids[i]) for i in rows)
        x = torch.zeros((len(rows), T), dtype=torch.long)
        for r, i in enumerate(rows):
            x[r, : len(ids[i])] = torch.tensor(list(ids[i]))
        logits = model(x.to(device)).float().cpu()
        for r, i in enumerate(rows):
            out[i] = logits[r, len(ids[i]) - 1]
    model.train(was_training)
    return out
