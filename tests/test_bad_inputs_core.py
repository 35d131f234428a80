"""Bad input at the training loop's boundary: each row is (entry point, argument, bad value, error, phrase).

Issue 13's battery for helpers.core (TrainConfig, train, batches, checkpoints, records, device, and the GPT's
token-id check that train relies on); the other entry points are in tests/test_bad_inputs.py. In the style
of peft's test tables: one runner per entry point fills every other argument with a valid value, so each
row changes exactly one thing, and the message must name it (the phrase) and the error must be the type
a caller would catch.

Run: .venv/bin/python -m pytest tests/test_bad_inputs_core.py -q
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from training_worker import BLOCK, VOCAB, make_model, make_tokens

from helpers.core.batches import ListBatches, TokenBatches
from helpers.core.checkpoints import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from helpers.core.device import pick_device, precision_policy
from helpers.core.energy import EnergyMeter
from helpers.core.loop_parts import evaluate
from helpers.core.plots import LivePlot
from helpers.core.records import RunRecord
from helpers.core.training import TrainConfig, train
from helpers.scratch.gpt import GPT, GPTConfig

NAN, INF = math.nan, math.inf
CUDA = torch.cuda.is_available()


@dataclass(frozen=True)
class Make:
    """A bad value built when the row runs (it needs tmp_path, or a fresh iterator)."""

    build: object  # callable(tmp_path) -> value

    def __call__(self, tmp_path):
        return self.build(tmp_path)


def _batch(**changes):
    batch = next(TokenBatches(make_tokens(), 2, BLOCK, seed=0))
    return {**batch, **changes}


def _train_kwargs(tmp_path) -> dict:
    config = TrainConfig(max_steps=1, precision="fp32", device="cpu", peak_flops=1e9, progress=False)
    return {"model": make_model(), "train_data": TokenBatches(make_tokens(), 2, BLOCK, seed=0), "config": config}


GOOD_RECORD = dict(name="r", route="scratch", device="cpu", precision="fp32", steps=1, wall_seconds=1.0, tokens=10,
                   flops=60.0, flops_method="6N", achieved_flops_per_s=60.0, peak_flops_per_s=1e9, mfu=6e-8,
                   peak_memory_bytes=1, trainable_params=1, total_params=2)
TINY_GPT = GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=1, n_head=2, n_embd=16)


def _gpt_forward(argument, value):
    torch.manual_seed(0)
    return GPT(TINY_GPT)(value)


def _gpt_generate(argument, value):
    torch.manual_seed(0)
    return GPT(TINY_GPT).generate(value, 2)


RUNNERS = {
    "TrainConfig": lambda arg, value, tmp: TrainConfig(**{arg: value}),
    "train": lambda arg, value, tmp: train(**{**_train_kwargs(tmp), arg: value}),
    "TokenBatches": lambda arg, value, tmp: TokenBatches(**{**dict(tokens=torch.arange(10), batch_size=2,
                                                                   block_size=4), arg: value}),
    "ListBatches": lambda arg, value, tmp: ListBatches(**{**dict(batches=[_batch()]), arg: value}),
    "load_checkpoint": lambda arg, value, tmp: load_checkpoint(value),
    "Checkpoint.load_state_dict": lambda arg, value, tmp: Checkpoint().load_state_dict(value),
    "save_checkpoint": lambda arg, value, tmp: save_checkpoint(**{**dict(directory=tmp, checkpoint=Checkpoint()),
                                                                 arg: value}),
    "RunRecord": lambda arg, value, tmp: RunRecord(**{**GOOD_RECORD, arg: value}),
    "RunRecord.from_dict": lambda arg, value, tmp: RunRecord.from_dict(value),
    "RunRecord.load": lambda arg, value, tmp: RunRecord.load(value),
    "pick_device": lambda arg, value, tmp: pick_device(value),
    "precision_policy": lambda arg, value, tmp: precision_policy("cpu", value),
    "evaluate": lambda arg, value, tmp: evaluate(make_model(), value),
    "LivePlot": lambda arg, value, tmp: LivePlot(every=value),
    "EnergyMeter": lambda arg, value, tmp: EnergyMeter("cpu", poll_s=value),
    "GPT.forward": lambda arg, value, tmp: _gpt_forward(arg, value),
    "GPT.generate": lambda arg, value, tmp: _gpt_generate(arg, value),
}


def _write(name: str, text: str):
    def build(tmp):
        path = tmp / name
        path.write_text(text)
        return path

    return Make(build)


CASES = [
    # (entry point, argument, bad value, error type, phrase of the message)
    # --- TrainConfig: counts, numbers, choices, checkpoints
    ("TrainConfig", "max_steps", 0, ValueError, "max_steps must be a positive integer"),
    ("TrainConfig", "max_steps", True, ValueError, "a bool is not a count"),
    ("TrainConfig", "max_steps", 2.5, ValueError, "max_steps must be a positive integer, got 2.5"),
    ("TrainConfig", "grad_accum_steps", -1, ValueError, "grad_accum_steps must be a positive integer"),
    ("TrainConfig", "warmup_steps", -1, ValueError, "warmup_steps must be an integer >= 0"),
    ("TrainConfig", "keep_checkpoints", 0, ValueError, "keep_checkpoints must be a positive integer"),
    ("TrainConfig", "seed", 1.5, ValueError, "seed must be an integer"),
    ("TrainConfig", "lr", -1.0, ValueError, "lr must be a positive number"),
    ("TrainConfig", "lr", NAN, ValueError, "lr must be a positive number, got nan"),
    ("TrainConfig", "lr", INF, ValueError, "lr must be a positive number, got inf"),
    ("TrainConfig", "eps", 0.0, ValueError, "eps must be a positive number"),
    ("TrainConfig", "weight_decay", NAN, ValueError, "weight_decay must be a number >= 0, got nan"),
    ("TrainConfig", "min_lr_ratio", 1.5, ValueError, "min_lr_ratio must be in [0, 1]"),
    ("TrainConfig", "betas", (0.9,), ValueError, "betas must be two numbers in [0, 1)"),
    ("TrainConfig", "betas", (0.9, 1.0), ValueError, "betas must be two numbers in [0, 1)"),
    ("TrainConfig", "grad_clip", 0.0, ValueError, "grad_clip must be a positive number or None"),
    ("TrainConfig", "grad_clip", NAN, ValueError, "(None = no clipping)"),
    ("TrainConfig", "peak_flops", 0, ValueError, "peak_flops must be a positive number or None"),
    ("TrainConfig", "precision", "fp8", ValueError, "precision must be one of"),
    ("TrainConfig", "device", "tpu", ValueError, "TrainConfig.device='tpu': unknown device"),
    ("TrainConfig", "fused_adamw", "yes", ValueError, "fused_adamw must be True or False"),
    ("TrainConfig", "progress", 1, ValueError, "progress must be True or False"),
    ("TrainConfig", "name", "", ValueError, "name must be a non-empty string"),
    ("TrainConfig", "checkpoint_interval", 5, ValueError, "need TrainConfig.checkpoint_dir"),
    ("TrainConfig", "resume", True, ValueError, "need TrainConfig.checkpoint_dir"),
    ("TrainConfig", "resume", 1, ValueError, "resume must be True, False or a checkpoint file's path"),
    ("TrainConfig", "checkpoint_dir", "", ValueError, "checkpoint_dir must be a folder path or None"),
    ("TrainConfig", "flops_per_token", 6.0, ValueError, "flops_per_token and flops_method go together"),
    # --- train(): what it is given
    ("train", "model", "gpt", TypeError, "model must be a torch.nn.Module, got str"),
    ("train", "config", {"max_steps": 1}, TypeError, "config must be a helpers.core.training.TrainConfig"),
    ("train", "train_data", [_batch()], TypeError, "wrap a list of batches in helpers.core.batches.ListBatches"),
    ("train", "eval_data", [], ValueError, "eval_data is empty"),
    ("train", "eval_data", 5, TypeError, "eval_data must be a list of batch dicts or an iterator"),
    ("train", "eval_data", Make(lambda tmp: iter([_batch()])), ValueError, "eval_data ran out after 1 batches"),
    ("train", "loss_fn", "mse", TypeError, "loss_fn must be a function"),
    ("train", "callbacks", [None], TypeError, "callbacks[0] is a NoneType, not a Callback"),
    ("train", "train_data", Make(lambda tmp: TokenBatches(torch.arange(40), 2, BLOCK)), ValueError,
     "contains token id 39 but the model's vocab_size is 32"),
    ("train", "train_data", Make(lambda tmp: ListBatches([_batch(labels=torch.full((2, BLOCK), -100))])),
     ValueError, "no label other than -100"),
    # --- batches
    ("TokenBatches", "tokens", torch.zeros(2, 10, dtype=torch.long), ValueError, "must be a 1-D tensor"),
    ("TokenBatches", "tokens", torch.rand(10), ValueError, "must be integer token ids, got dtype torch.float32"),
    ("TokenBatches", "tokens", torch.tensor([1, 2, -3, 4, 5, 6]), ValueError, "negative id -3"),
    ("TokenBatches", "batch_size", 0, ValueError, "batch_size must be an integer >= 1"),
    ("TokenBatches", "batch_size", True, ValueError, "batch_size must be an integer >= 1, got True"),
    ("TokenBatches", "block_size", 10, ValueError, "needs 11 tokens but the data has 10"),
    ("TokenBatches", "batch_size", 7, ValueError, "larger than the data"),
    ("TokenBatches", "seed", "a", ValueError, "seed must be an integer"),
    ("ListBatches", "batches", [], ValueError, "got no batches"),
    ("ListBatches", "batches", (b for b in [_batch()]), TypeError, "materialise it with list"),
    ("ListBatches", "batches", [{"input_ids": torch.zeros(2, 3, dtype=torch.long)}], ValueError,
     "each batch needs 'input_ids' and 'labels'"),
    ("ListBatches", "batches", [_batch(labels=torch.zeros(2, 3, dtype=torch.long))], ValueError,
     "must both be [B, T]"),
    ("ListBatches", "batches", [_batch(input_ids=torch.zeros(2, BLOCK))], ValueError, "must be integers"),
    ("ListBatches", "shuffle", "yes", ValueError, "shuffle must be True or False"),
    # --- checkpoints
    ("load_checkpoint", "path", Make(lambda tmp: tmp / "step_0000009.pt"), CheckpointError,
     "step_0000009.pt does not exist"),
    ("load_checkpoint", "path", Make(lambda tmp: tmp), CheckpointError, "no checkpoint (step_*.pt) in"),
    ("load_checkpoint", "path", _write("step_0000001.pt", "not a zip"), CheckpointError, "is half-written"),
    ("Checkpoint.load_state_dict", "state", {"format": 1}, CheckpointError, "(format 1, expected 2)"),
    ("Checkpoint.load_state_dict", "state", {"format": 2, "step": 3}, CheckpointError, "lacks ['run_id'"),
    ("Checkpoint.load_state_dict", "state", [1, 2], CheckpointError, "format None"),
    ("save_checkpoint", "keep", 0, ValueError, "keep must be a positive integer"),
    # --- records
    ("RunRecord", "wall_seconds", NAN, ValueError, "wall_seconds must be a finite number >= 0, got nan"),
    ("RunRecord", "wall_seconds", -1.0, ValueError, "wall_seconds must be a finite number >= 0"),
    ("RunRecord", "tokens", -1, ValueError, "tokens must be an integer >= 0"),
    ("RunRecord", "steps", 1.5, ValueError, "steps must be an integer >= 0"),
    ("RunRecord", "flops", INF, ValueError, "flops must be a finite number >= 0, got inf (None = not counted)"),
    ("RunRecord", "flops", None, ValueError, "mfu and achieved_flops_per_s need flops"),
    ("RunRecord", "trainable_params", 3, ValueError, "trainable_params (3) exceeds total_params (2)"),
    ("RunRecord.from_dict", "data", {**GOOD_RECORD, "colour": "red"}, ValueError, "unknown fields ['colour']"),
    ("RunRecord.from_dict", "data", {"name": "r"}, ValueError, "run record is incomplete"),
    ("RunRecord.load", "path", _write("r.json", "{half"), ValueError, "is not a run record (not JSON"),
    ("RunRecord.load", "path", _write("r.json", "[1, 2]"), ValueError, "holds a JSON list, not a run record"),
    ("RunRecord.load", "path", Make(lambda tmp: tmp / "none.json"), FileNotFoundError, "no run record at"),
    # --- device, evaluation, callbacks, energy
    ("pick_device", "prefer", "tpu", ValueError, "unknown device 'tpu'"),
    ("pick_device", "prefer", "cuda:99", ValueError, "device 'cuda:99' asked for, but"),
    ("precision_policy", "prefer", "fp8", ValueError, "unknown precision 'fp8'"),
    ("evaluate", "batches", [], ValueError, "evaluate got no batches"),
    ("LivePlot", "every", 0, ValueError, "LivePlot(every=0)"),
    ("LivePlot", "every", True, ValueError, "LivePlot(every=True)"),
    ("EnergyMeter", "poll_s", NAN, ValueError, "poll_s must be a number of seconds > 0, got nan"),
    # --- token ids the model has no embedding for (torch says "index out of range in self")
    ("GPT.forward", "idx", torch.tensor([[1, VOCAB]]), ValueError, f"token id {VOCAB} is outside the model's "
     f"vocabulary (vocab_size={VOCAB}"),
    ("GPT.forward", "idx", torch.tensor([[-1, 2]]), ValueError, "token id -1 is outside"),
    ("GPT.forward", "idx", torch.tensor([[1.0, 2.0]]), ValueError, "token ids must be integers"),
    ("GPT.generate", "idx", torch.tensor([[3, 999]]), ValueError, "GPTConfig(vocab_size >= 1000)"),
]


@pytest.mark.parametrize(("entry", "argument", "value", "error", "phrase"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_gives_a_clear_error(tmp_path, entry, argument, value, error, phrase):
    value = value(tmp_path) if isinstance(value, Make) else value
    with pytest.raises(error) as info:
        RUNNERS[entry](argument, value, tmp_path)
    assert phrase in str(info.value), f"{entry}({argument}={value!r}): message lacks {phrase!r}: {info.value}"


@pytest.mark.parametrize("entry", sorted(RUNNERS))
def test_every_runner_accepts_its_valid_defaults(tmp_path, entry):
    """The table proves something only if the runner succeeds when nothing is bad."""
    good = {
        "TrainConfig": ("max_steps", 1), "train": ("eval_data", None), "TokenBatches": ("seed", 0),
        "ListBatches": ("shuffle", False), "save_checkpoint": ("keep", 1), "RunRecord": ("steps", 1),
        "RunRecord.from_dict": ("data", GOOD_RECORD), "pick_device": ("prefer", "cpu"),
        "precision_policy": ("prefer", "fp32"), "evaluate": ("batches", [_batch()]), "LivePlot": ("every", 1),
        "EnergyMeter": ("poll_s", 1.0), "GPT.forward": ("idx", torch.tensor([[1, 2]])),
        "GPT.generate": ("idx", torch.tensor([[1, 2]])),
    }
    if entry in ("load_checkpoint", "Checkpoint.load_state_dict", "RunRecord.load"):
        path = save_checkpoint(tmp_path, Checkpoint(step=1))
        RUNNERS["load_checkpoint"]("path", path, tmp_path)
        Checkpoint().load_state_dict(Checkpoint().state_dict())
        RunRecord.load(RunRecord(**GOOD_RECORD).save(tmp_path / "r.json"))
        return
    RUNNERS[entry](*good[entry], tmp_path)


def test_a_cuda_device_on_a_machine_without_one_names_the_field_and_the_fix():
    if CUDA:
        assert TrainConfig(device="cuda").device == "cuda"
        return
    with pytest.raises(ValueError, match=r"TrainConfig.device='cuda': device 'cuda' asked for, but CUDA is not "
                                         r"available here: use 'cpu'"):
        TrainConfig(device="cuda")


@pytest.mark.parametrize("native", [True, False])
def test_fp16_on_cpu_says_what_the_cpu_has(monkeypatch, native):
    """Issue 13: the message claimed the CPU had no bf16 on a CPU that has it."""
    import helpers.core.device as device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    with pytest.raises(ValueError, match="precision='fp16' is not available on cpu") as info:
        train(**{**_train_kwargs(None), "config": TrainConfig(max_steps=1, precision="fp16", device="cpu",
                                                              peak_flops=1e9, progress=False)})
    message = str(info.value)
    assert ("has native bf16: use 'bf16'" in message) == native
    assert "without native bf16" not in message
