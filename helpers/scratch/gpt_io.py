"""Saving, loading and exporting the tiny GPT: safetensors + a JSON config, and the same model as a
transformers `GPT2LMHeadModel`.

- `save_gpt(model, folder)` writes folder/model.safetensors + folder/config.json through
  `helpers.core.io.replace_dir` (an interrupted save leaves the previous model loadable); no pickle.
- `load_gpt(folder)` reads them back; every problem (missing file, other format version, weights from
  another save, shapes that do not fit the config) is an error naming the file and what to do.
- `to_transformers(model)` copies the weights into a `GPT2LMHeadModel` (same logits in fp32), so
  transformers' `generate`, pipelines and peft work on our model.

Left out on purpose: loading hub checkpoints into our GPT, sharded weights, and saving the optimiser
(training state is a checkpoint's job: `helpers.core.checkpoints`). Where the course keeps its pretrained
tiny GPT, and the catch-up that rebuilds it, is `helpers.course.catchup`.

References: the safetensors format (Hugging Face); GPT-2's `Conv1D` layout in transformers' `modeling_gpt2`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import safetensors.torch
import torch  # helpers/__init__ ran first (as the parent package) and set OMP_WAIT_POLICY

from helpers.core.io import replace_dir, write_bytes, write_json
from helpers.scratch.gpt import GPT, GPTConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1  # bump when the saved layout changes; load_gpt refuses versions it does not know


def save_gpt(model: GPT, folder: str | os.PathLike) -> Path:
    """Save `model` as folder/model.safetensors + folder/config.json; the folder is replaced as a whole.

    Both files are written into a temporary folder beside `folder`, which is swapped in only when both are
    complete (helpers.core.io.replace_dir): an interrupted save leaves the previous model loadable, and any
    other file in the old folder goes with it. A non-empty folder that is not a saved model (no config.json)
    is refused rather than replaced. The tied LM head is not stored twice: it *is* the token embedding.
    config.json records the sha256 of the weights, so load_gpt notices a weights file from another save.
    """
    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile ...
    model = getattr(model, "module", model)  # ... and DistributedDataParallel
    if not isinstance(model, GPT):
        raise TypeError(f"save_gpt saves a helpers.scratch.gpt.GPT, got {type(model).__name__}: for a transformers "
                        "model use its save_pretrained(folder)")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file: save_gpt saves into a folder; pass a folder path")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / CONFIG_FILE).is_file():
        raise FileExistsError(f"{folder} holds files but no saved model ({CONFIG_FILE}); save_gpt replaces the "
                              "whole folder, so pass a new or empty folder, e.g. folder / 'tiny_gpt'")
    state = model.state_dict()
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items() if k != "lm_head.weight"}
    blob = safetensors.torch.save(tensors, metadata={"format": "pt"})
    meta = {"format_version": FORMAT_VERSION, "config": asdict(model.config),
            "weights_sha256": hashlib.sha256(blob).hexdigest()}
    with replace_dir(folder) as tmp:
        write_bytes(tmp / WEIGHTS_FILE, blob)
        write_json(tmp / CONFIG_FILE, meta)
    return folder


def load_gpt(folder: str | os.PathLike, device: str | torch.device = "cpu") -> GPT:
    """Load a GPT saved by `save_gpt`; every problem is an error naming the file and what to do."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path.name} is missing from the model folder {folder.name!r}: save a model there with "
                f"helpers.scratch.gpt_io.save_gpt(model, folder) (notebook 03 does this for the course model)"
            )
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
        version, config_values = meta["format_version"], meta["config"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{CONFIG_FILE} in {folder.name!r} is not a save_gpt config ({err}): save the model "
                         "again with save_gpt") from err
    if version != FORMAT_VERSION:
        raise ValueError(f"{CONFIG_FILE} has format_version={version!r}, this code reads {FORMAT_VERSION}: "
                         "save the model again with this version of helpers.scratch.gpt_io")
    config = GPTConfig.from_dict(config_values)
    blob = weights_path.read_bytes()
    expected = meta.get("weights_sha256")
    if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
        raise ValueError(f"{WEIGHTS_FILE} in {folder.name!r} does not match its {CONFIG_FILE} (corrupted, or "
                         "from another save): save the model again with save_gpt")
    try:
        tensors = safetensors.torch.load(blob)
    except safetensors.SafetensorError as err:
        raise ValueError(f"{WEIGHTS_FILE} in {folder.name!r} is corrupt or half-written ({err}): save the "
                         "model again with save_gpt") from err
    model = GPT(config)
    wanted = {k: v.shape for k, v in model.state_dict().items() if k != "lm_head.weight"}
    missing, unexpected = sorted(set(wanted) - set(tensors)), sorted(set(tensors) - set(wanted))
    wrong = [f"{k}: file {tuple(tensors[k].shape)} vs config {tuple(wanted[k])}"
             for k in wanted if k in tensors and tensors[k].shape != wanted[k]]
    if missing or unexpected or wrong:
        raise ValueError(
            f"the weights in {folder.name!r} do not fit its config {config}: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shapes {wrong[:3]}; fix config.json (vocab_size, "
            "block_size, n_layer, n_head, n_embd) to match the weights, or save the model again"
        )
    model.load_state_dict(tensors, strict=False)  # lm_head.weight is tied to wte, loaded with it
    return model.to(device)


def to_transformers(model: GPT, eos_token_id: int | None = None):
    """The same model as a transformers GPT2LMHeadModel (same weights, same logits in fp32).

    Our nn.Linear stores weights as (out, in); GPT-2's Conv1D stores (in, out), so those are transposed.
    The result works with transformers' `generate`, pipelines and peft.
    """
    from transformers import GPT2Config, GPT2LMHeadModel  # lazy: transformers takes seconds to import

    c = model.config
    hf_config = GPT2Config(
        vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
        n_head=c.n_head, n_inner=4 * c.n_embd, activation_function="gelu_new",
        resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.dropout,
        layer_norm_epsilon=c.layer_norm_epsilon, tie_word_embeddings=True,
        bos_token_id=eos_token_id, eos_token_id=eos_token_id, pad_token_id=eos_token_id,
    )
    hf = GPT2LMHeadModel(hf_config)
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    state = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        state[name] = tensor.t().contiguous() if name.endswith(conv1d) else tensor
    missing, unexpected = hf.load_state_dict(state, strict=False)
    # Only the tied head (and, in some versions, non-persistent attention-mask buffers) may be "missing".
    buffers = (".attn.bias", ".attn.masked_bias")
    really_missing = [k for k in missing if k != "lm_head.weight" and not k.endswith(buffers)]
    if really_missing or unexpected:
        raise RuntimeError(f"transformers' GPT-2 layout changed: missing {really_missing}, "
                           f"unexpected {unexpected}; pin transformers<6 (tested with 5.24)")
    hf.tie_weights()
    return hf.to(model.transformer.wte.weight.device).eval()
