"""A tiny GPT: the model notebook 02 builds step by step.

What is here:
- `GPTConfig` (sizes, with named presets) and `GPT`, a decoder-only transformer with GPT-2 conventions:
  learned position embeddings, pre-LayerNorm blocks (LayerNorm with bias), GELU with the tanh
  approximation, biases in every Linear, and an LM head tied to the token embeddings. Those conventions
  make `gpt_io.to_transformers` exact: the same weights in a `GPT2LMHeadModel` give the same logits.
- `GPT.forward(idx) -> logits` (B, T, vocab_size); `lm_loss(logits, targets)` is the matching loss, so a
  generic training loop needs nothing GPT-specific.
- `GPT.generate` / `GPT.stream`: temperature, top-k, top-p, stop tokens, with a KV cache (or without,
  as the reference it must equal); the decoding loop and the cache live in `helpers.scratch.generation`.
Saving, loading and the export to transformers are `helpers.scratch.gpt_io`; where the course keeps its
pretrained tiny GPT, and the catch-up that rebuilds it, is `helpers.course.catchup`.

Left out on purpose: rotary embeddings, RMSNorm, grouped-query attention, weight loading from hub
checkpoints — the course needs one clear GPT, and GPT-2's layout is the one transformers, pipelines
and peft all speak.

References: Radford et al. 2019 (GPT-2); Karpathy's nanoGPT `model.py` and minGPT (preset names);
Parameter and FLOP counts of this model live with every other count: `helpers.measure.flops`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields

import torch  # helpers/__init__ ran first (as the parent package) and set OMP_WAIT_POLICY
import torch.nn as nn
from torch.nn import functional as F

from helpers.scratch.generation import KVCache, decode


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of a GPT. `GPTConfig.preset("gpt-micro", vocab_size=1024)` gives a named size."""

    vocab_size: int = 1024  # the course tokenizer's vocabulary (profile `ci`); set it from the tokenizer
    block_size: int = 64  # context length in tokens: position embeddings exist for 0..block_size-1
    n_layer: int = 2  # transformer blocks
    n_head: int = 2  # attention heads per block; n_embd must divide evenly among them
    n_embd: int = 64  # width of the residual stream (C)
    dropout: float = 0.0  # tiny models on little data overfit slowly; 0 keeps runs exactly repeatable
    layer_norm_epsilon: float = 1e-5  # GPT-2's value (needed for an exact transformers export)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            below = self.n_embd - self.n_embd % self.n_head
            raise ValueError(
                f"GPTConfig.n_embd={self.n_embd} is not divisible by n_head={self.n_head}: each head gets "
                f"n_embd // n_head channels, so pick n_embd as a multiple of n_head "
                f"(e.g. n_embd={below or self.n_head} or {below + self.n_head})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def preset(cls, name: str, **overrides) -> GPTConfig:
        """A named size from PRESETS, with any field overridden: preset("gpt-nano", vocab_size=300)."""
        if name not in PRESETS:
            raise ValueError(f"unknown GPT preset {name!r}: choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, values: dict) -> GPTConfig:
        """Inverse of `asdict`, with an error naming any field this version does not know."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown GPTConfig field(s) {unknown}: expected only {sorted(known)}")
        return cls(**values)


# Named sizes (names and sizes from minGPT). vocab_size and block_size stay the defaults unless overridden.
PRESETS: dict[str, dict[str, int]] = {
    "gpt-nano": dict(n_layer=3, n_head=3, n_embd=48),  # ~0.1 M params: tests
    "gpt-micro": dict(n_layer=4, n_head=4, n_embd=128),  # ~0.9 M: nanoGPT's CPU size, the benchmarks
    "gpt-mini": dict(n_layer=6, n_head=6, n_embd=192),  # ~2.9 M: a laptop in minutes
}


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where token t sees tokens 0..t only."""

    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        self.n_head, self.n_embd, self.layer = config.n_head, config.n_embd, layer
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # q, k, v for all heads in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.update(self.layer, k, v)  # (B, nh, past + T, hs)
        mask, causal = None, T > 1 and past == 0
        if T > 1 and past > 0:  # new tokens after cached ones: query i sees keys 0..past+i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, dropout_p=self.dropout if self.training else 0.0
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Per-token feed-forward network: C -> 4C -> GELU (tanh approximation, as GPT-2) -> C."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config, layer)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)  # tokens talk to each other
        x = x + self.mlp(self.ln_2(x))  # each token thinks on its own
        return x


class GPT(nn.Module):
    """Decoder-only transformer. `forward(idx)` returns logits only: (B, T) token ids -> (B, T, vocab_size).

    The loss is a separate function, `lm_loss(logits, targets)`, so a generic loop can do
    `loss = lm_loss(model(x), y)` for this model and the same with any other model that returns logits.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token id -> vector
            wpe=nn.Embedding(config.block_size, config.n_embd),  # position -> vector
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config, layer) for layer in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Tied weights: the vector that reads token i in is the one that scores token i out (fewer
        # parameters, and what GPT-2 does).
        self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # GPT-2: the projections that write into the residual stream start smaller, by 1/sqrt(2 * n_layer),
        # because 2 * n_layer of them add up along the stream.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits (B, T, vocab_size) for token ids idx (B, T); with a cache, idx are the *new* tokens."""
        if idx.dim() != 2:
            raise ValueError(f"GPT expects token ids of shape (batch, time), got shape {tuple(idx.shape)}: "
                             "add a batch dimension with idx[None]")
        check_token_ids(idx, self.config.vocab_size)
        B, T = idx.shape
        past = cache.length if cache is not None else 0
        if past + T > self.config.block_size:
            raise ValueError(
                f"input of {T} tokens" + (f" after {past} cached ones" if past else "")
                + f" exceeds block_size={self.config.block_size}: crop it to the last "
                f"{self.config.block_size - past} tokens (idx[:, -block_size:]) or build the model with "
                f"a larger GPTConfig.block_size"
            )
        return self.lm_head(hidden_states(self.transformer, idx, cache))  # (B, T, vocab_size)

    def configure_optimizer_groups(self, weight_decay: float) -> list[dict]:
        """AdamW parameter groups: decay the 2-D matmul weights; never biases, LayerNorms or embeddings.

        Decay pulls weights toward zero; on a bias or a norm's gain that only fights the model, and on
        the (tied) embeddings it shrinks rare tokens' vectors that get few gradient updates.
        """
        embeddings = {id(self.transformer.wte.weight), id(self.transformer.wpe.weight)}
        decay, no_decay, seen = [], [], set()
        for p in self.parameters():  # yields the tied weight once
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (decay if p.dim() >= 2 and id(p) not in embeddings else no_decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    # ---- generation -----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0, top_k: int | None = None,
        top_p: float | None = None, stop_tokens: Iterable[int] = (), use_cache: bool = True,
        seed: int | None = None,
    ) -> torch.Tensor:
        """Continue idx (B, T) by up to max_new_tokens tokens -> (B, T + n).

        temperature=0 is greedy decoding. A row that samples a stop token keeps it and is padded with
        that same token until every row has stopped (then generation ends early). use_cache=False
        recomputes the whole context each step: the slow reference the KV cache must equal.
        """
        new = list(decode(self, idx, max_new_tokens, temperature, top_k, top_p, stop_tokens, use_cache, seed))
        return torch.cat([idx, *new], dim=1) if new else idx

    @torch.no_grad()
    def stream(
        self, prompt: Iterable[int] | torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
        top_k: int | None = None, top_p: float | None = None, stop_tokens: Iterable[int] = (),
        use_cache: bool = True, seed: int | None = None,
    ) -> Iterator[int]:
        """Yield new token ids one by one for a single prompt (list of ids); stops *before* a stop token.

        for token in model.stream(tok.encode("The film"), 50): print(tok.decode([token]), end="")
        """
        device = self.transformer.wte.weight.device
        idx = torch.as_tensor(list(prompt) if not torch.is_tensor(prompt) else prompt, device=device)
        if idx.dim() == 1:
            idx = idx[None]
        if idx.size(0) != 1:
            raise ValueError(f"stream takes one prompt, got {idx.size(0)}: use generate() for a batch")
        stops = set(stop_tokens)
        for token in decode(self, idx, max_new_tokens, temperature, top_k, top_p, stops, use_cache, seed):
            t = int(token)
            if t in stops:
                return
            yield t


def hidden_states(transformer: nn.ModuleDict, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
    """The final LayerNorm's output (B, T, n_embd) of GPT's `transformer` (embeddings, blocks, ln_f) for
    token ids idx (B, T): what the LM head reads, and what a classifier head on our GPT reads
    (helpers.scratch.classifier). Sizes are checked by GPT.forward."""
    past = cache.length if cache is not None else 0
    T = idx.shape[1]
    pos = torch.arange(past, past + T, device=idx.device)  # (T,)
    x = transformer.drop(transformer.wte(idx) + transformer.wpe(pos))  # (B, T, C)
    for block in transformer.h:
        x = block(x, cache)
    if cache is not None:
        cache.length += T
    return transformer.ln_f(x)


def check_token_ids(idx: torch.Tensor, vocab_size: int) -> None:
    """Refuse ids the embedding has no row for, naming the id (torch would say "index out of range in self",
    or on a GPU abort with a device-side assert). One reduction per call: a sync on GPUs, cheap next to a step."""
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
        raise ValueError(f"token ids must be integers (torch.long), got dtype {idx.dtype}: pass the ids the "
                         "tokenizer returns, e.g. torch.tensor(tok.encode(text))")
    outside = (idx < 0) | (idx >= vocab_size)
    if bool(outside.any()):
        token = int(idx[outside][0])
        raise ValueError(f"token id {token} is outside the model's vocabulary (vocab_size={vocab_size}: ids 0.."
                         f"{vocab_size - 1}): encode with the tokenizer this model was built for, or build the "
                         f"model with GPTConfig(vocab_size >= {max(token + 1, vocab_size)})")


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean next-token cross-entropy: logits (B, T, V), targets (B, T); ignore_index targets are skipped."""
    flat = logits.reshape(-1, logits.size(-1))  # (B*T, V)
    return F.cross_entropy(flat, targets.reshape(-1), ignore_index=ignore_index)
