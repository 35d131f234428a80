"""A tiny stand-in language model and a command-line training run, for tests/test_training.py.

The loop must not care what it trains, so its tests use this ~10k-parameter model instead of the GPT.
The tests start this file in subprocesses (to SIGKILL a run, or under torch.distributed.run):

    python tests/training_worker.py OUT_FILE [--steps 6] [--checkpoint-dir D --interval 2]
        [--kill-at-step 4] [--resume] [--batch-size 8] [--dropout 0.1]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from helpers.core.batches import TokenBatches  # noqa: E402
from helpers.core.training import Callback, TrainConfig, train  # noqa: E402

VOCAB, BLOCK = 32, 16


class TinyLM(nn.Module):
    """Token + position embeddings, one MLP, a head: enough to have a loss that falls. (B, T) -> (B, T, V)."""

    def __init__(
        self, vocab_size: int = VOCAB, block_size: int = BLOCK, n_embd: int = 16, dropout: float = 0.0
    ):
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.tok = nn.Embedding(vocab_size, n_embd)
        self.pos = nn.Embedding(block_size, n_embd)
        self.norm = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * n_embd, n_embd)
        )
        self.head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))  # (B, T, C)
        x = x + self.mlp(self.norm(x))
        return self.head(x), None  # (B, T, V), like a GPT's (logits, loss)


def make_tokens(n: int = 3000, seed: int = 0) -> torch.Tensor:
    """A learnable stream: mostly token t -> (3t + 1) mod V, with 10 % random tokens mixed in."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, dtype=torch.long)
    out[0] = 0
    noise = torch.rand(n, generator=g) < 0.1
    rand = torch.randint(VOCAB, (n,), generator=g)
    for i in range(1, n):
        out[i] = rand[i] if noise[i] else (3 * out[i - 1] + 1) % VOCAB
    return out


def make_model(seed: int = 0, dropout: float = 0.0) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM(dropout=dropout)


class KillAt(Callback):
    """SIGKILL this process right after the checkpoint of `step` is on disk: no clean-up, like a power cut."""

    def __init__(self, step: int):
        self.step = step

    def on_checkpoint(self, state, path):
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--checkpoint-dir")
    p.add_argument("--interval", type=int, default=0)
    p.add_argument("--kill-at-step", type=int)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--dropout", type=float, default=0.0)
    args = p.parse_args()
    torch.set_num_threads(1)
    model = make_model(dropout=args.dropout)
    data = TokenBatches(make_tokens(), batch_size=args.batch_size, block_size=BLOCK, seed=1)
    config = TrainConfig(
        max_steps=args.steps,
        lr=1e-2,
        warmup_steps=2,
        precision="fp32",
        device="cpu",
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_interval=args.interval,
        resume=args.resume,
        peak_flops=1e9,
        progress=False,
    )
    callbacks = [KillAt(args.kill_at_step)] if args.kill_at_step else []
    record = train(model, data, config, callbacks=callbacks)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(
            {"weights": model.state_dict(), "losses": record.losses, "tokens": record.tokens}, args.out
        )


if __name__ == "__main__":
    main()
