"""Run-time estimates for every notebook, from its compute and this machine's measured speed.

An estimate is compute / (measured peak FLOP/s x an assumed utilisation) + a fixed overhead
(imports, model loading, plotting). Both assumptions are stated in `BudgetAssumptions` and printed by
notebook 00; CI's measured run times (see the notebooks' first cells) are the ground truth that
these estimates are refined against.

Left out: tokenizer training and data loading are not FLOP-bound; they are counted in the overhead.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from helpers.profiles import Profile

SMOLLM2_PARAMS = 134_515_008  # helpers.models.REGISTRY["smollm2-135m-instruct"].parameters
PROMPT_TOKENS = 120  # a short review + the instruction, in SmolLM2 tokens (measured on the test set)


@dataclass(frozen=True)
class BudgetAssumptions:
    training_utilisation: float = 0.25  # small models reach 20-35 % of matmul peak on CPU (notebook 03 measures it)
    inference_utilisation: float = 0.10  # batch-1 generation is memory-bound: far below peak
    overhead_seconds: dict[str, float] | None = None  # fixed costs per notebook (imports, loading, plots)

    def overhead(self, notebook: str) -> float:
        default = {"00": 15, "01": 30, "02": 10, "03": 15, "04": 15, "05": 20, "06": 30, "07": 20}
        return (self.overhead_seconds or default).get(notebook, 10)


def tiny_gpt_params(profile: Profile, vocab_size: int | None = None) -> int:
    """12*L*d^2 (attention + MLP) + vocab*d (tied embeddings) + block*d (positions)."""
    p = profile.pretrain
    vocab = vocab_size or profile.tokenizer.vocab_size
    return 12 * p.n_layer * p.n_embd**2 + vocab * p.n_embd + p.block_size * p.n_embd


def notebook_flops(profile: Profile) -> dict[str, tuple[float, str]]:
    """Training/inference FLOPs per notebook with the formula used: {'03': (flops, 'why'), ...}."""
    p, ins, cmp_, dep = profile.pretrain, profile.instruct, profile.compare, profile.deploy
    n_tiny = tiny_gpt_params(profile)
    pre_tokens = p.max_steps * p.batch_size * p.block_size
    lora_tokens = ins.max_steps * ins.batch_size * ins.max_length
    eval_tokens = ins.eval_reviews * PROMPT_TOKENS
    ladder_tokens = sum(cmp_.n_ladder) * PROMPT_TOKENS * 3  # ~3 epochs over each N
    return {
        "00": (2 * SMOLLM2_PARAMS * 40, "one chat answer: 2*N*tokens"),
        "01": (0.0, "tokenizer training is not FLOP-bound (overhead only)"),
        "02": (2 * n_tiny * p.block_size * 8, "a few forward passes: 2*N*tokens"),
        "03": (6 * n_tiny * pre_tokens, "pretraining: 6*N*D"),
        "04": (2 * SMOLLM2_PARAMS * eval_tokens * 3, "zero-shot + few-shot (~2x longer) scoring: 2*N*tokens"),
        "05": (4 * SMOLLM2_PARAMS * lora_tokens + 2 * 2 * SMOLLM2_PARAMS * eval_tokens,
               "LoRA: ~4*N*D (frozen weights need no weight gradients) + before/after evaluation"),
        "06": (4 * SMOLLM2_PARAMS * ladder_tokens * (1 + len(cmp_.label_noise)) + 6 * n_tiny * ladder_tokens * 2,
               "route B LoRA ladder + noise runs, routes A/A0 on the tiny GPT"),
        "07": (2 * SMOLLM2_PARAMS * dep.latency_tokens * dep.latency_repeats * 2
               + 4 * SMOLLM2_PARAMS * dep.canary_steps * 2 * 4 * 128,
               "latency generations + canary tuning (with and without redaction)"),
    }


def estimate_runtimes(profile: Profile, peak_flops: float, assumptions: BudgetAssumptions | None = None) -> pd.DataFrame:
    """One row per notebook: compute, estimated minutes on a machine with `peak_flops` (measured)."""
    if peak_flops <= 0:
        raise ValueError("peak_flops must be a positive FLOP/s figure: measure it with helpers.device.hardware_card()")
    a = assumptions or BudgetAssumptions()
    rows = []
    for nb, (flops, how) in notebook_flops(profile).items():
        util = a.inference_utilisation if nb in ("00", "04") else a.training_utilisation
        seconds = flops / (peak_flops * util) + a.overhead(nb)
        rows.append({"notebook": nb, "GFLOPs": round(flops / 1e9, 1), "estimated min": round(seconds / 60, 1),
                     "how the compute is counted": how})
    return pd.DataFrame(rows).set_index("notebook")
