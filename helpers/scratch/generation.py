"""Decoding for the tiny GPT: a KV cache, the sampling rule (temperature, top-k, top-p) and the loop
that `GPT.generate` and `GPT.stream` share.

`decode(model, idx, max_new_tokens, ...)` yields the next token of every row, one step at a time. With
the cache, the first step reads the whole prompt and each later step only the newest token (its keys and
values are appended; the older ones never change); `use_cache=False` recomputes the whole context each
step, the slow reference the cached path must equal (tests/test_gpt.py).

    nxt = sample_next_token(logits[:, -1, :], temperature=0.8, top_k=50)   # (B, V) -> (B, 1)

Left out on purpose: beam search, repetition penalties, speculative decoding and a cache that slides past
block_size (learned positions cannot slide, so past that point every step refills the cache; see `decode`).
For transformers models, transformers' own `generate` and streamers do this (`helpers.deploy.chat`).

References: Holtzman et al. 2020 (nucleus / top-p sampling); Karpathy's nanoGPT `generate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch  # helpers/__init__ ran first (as the parent package) and set OMP_WAIT_POLICY
from torch.nn import functional as F


class KVCache:
    """Keys and values of every token seen so far, per layer, preallocated to block_size.

    One forward pass with the cache appends its T new tokens at positions length..length+T-1; the next
    pass only needs the newest token, because the keys and values of the older ones never change.
    `config` is a GPTConfig (n_layer, n_head, block_size, head_size).
    """

    def __init__(self, config, batch_size: int, device: torch.device, dtype: torch.dtype):
        shape = (config.n_layer, 2, batch_size, config.n_head, config.block_size, config.head_size)
        self.kv = torch.zeros(shape, device=device, dtype=dtype)  # (L, 2, B, nh, block, hs)
        self.length = 0  # tokens stored so far (the same for every layer once a forward pass ends)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new (B, nh, T, hs) keys/values; return all of them so far, (B, nh, length+T, hs)."""
        end = self.length + k.size(2)
        self.kv[layer, 0, :, :, self.length : end] = k
        self.kv[layer, 1, :, :, self.length : end] = v
        return self.kv[layer, 0, :, :, :end], self.kv[layer, 1, :, :, :end]


def decode(
    model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
    top_p: float | None = None, stop_tokens: Iterable[int] = (), use_cache: bool = True, seed: int | None = None,
) -> Iterator[torch.Tensor]:
    """The decoding loop shared by GPT.generate and GPT.stream: yields the next tokens, (B, 1) each step.

    `model` is a helpers.scratch.gpt.GPT: `model(idx, cache=...)` -> logits (B, T, V). A row that samples a
    stop token repeats it until every row has stopped (then the loop ends early). The model is in eval
    mode while decoding and goes back to its previous mode afterwards.
    """
    if idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError(f"the prompt must be (batch, time), >= 1 token; got shape {tuple(idx.shape)}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
    check_sampling(temperature, top_k, top_p)
    stops = torch.tensor(sorted(set(stop_tokens)), dtype=torch.long, device=idx.device)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    block = model.config.block_size
    cache = None
    finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            if not use_cache:
                logits = model(idx[:, -block:])  # the whole (cropped) context, every step
            elif cache is None or cache.length >= block:
                # First step, or the context outgrew block_size: (re)fill the cache with the last
                # block_size tokens. Past that point every step refills: the cache only helps inside
                # one block, because learned positions cannot slide.
                if cache is None:
                    w = model.transformer.wte.weight
                    cache = KVCache(model.config, idx.size(0), w.device, w.dtype)
                cache.length = 0
                logits = model(idx[:, -block:], cache=cache)
            else:
                logits = model(idx[:, -1:], cache=cache)  # only the newest token: O(T) not O(T^2)
            nxt = sample_next_token(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
            if stops.numel():
                nxt = torch.where(finished[:, None], idx[:, -1:], nxt)  # finished: repeat its stop token
                finished |= torch.isin(nxt[:, 0], stops)
            idx = torch.cat([idx, nxt], dim=1)
            yield nxt
            if stops.numel() and bool(finished.all()):
                return
    finally:
        model.train(was_training)


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise a clear error for sampling settings that make no sense."""
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p!r}")


def sample_next_token(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick one token per row from logits (B, V) -> (B, 1).

    temperature=0: argmax. Otherwise divide by the temperature, keep the top_k largest logits, then keep
    the smallest set of tokens whose probability adds up to top_p (always at least the most likely one),
    and sample from what is left.
    """
    check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1): the k-th largest logit
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        probs = F.softmax(sorted_logits, dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each one
        sorted_logits = sorted_logits.masked_fill(mass_before >= top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
