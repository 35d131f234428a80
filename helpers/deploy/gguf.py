"""Export a transformers model to GGUF, the file format llama.cpp, Ollama and LM Studio run, with llama.cpp's
own tools: its converter (`convert_hf_to_gguf.py`, from llama-cpp-python's source package) and its
quantiser (`llama_model_quantize`, in the installed library).

    export = export_gguf(merged_model, tokenizer, "artifacts/gguf", "tuned", system=FAQ_SYSTEM)
    export.files["q8_0"].path      # tuned-q8_0.gguf; export.modelfile: an Ollama Modelfile beside it

Formats (`FORMATS`): f16 (the weights rounded to 16-bit floats: the reference), Q8_0 (8-bit integers in
blocks of 32 weights, one scale each: ~1/2 the size) and Q4_1 (4-bit, blocks of 32 with a scale and a
minimum each: ~1/3 the size). Why Q4_1 as the 4-bit type, measured on the tuned SmolLM2-135M (20 held-out
reviews): Q4_0 (a scale, no minimum) broke the model (18 of 20 answers were not a label; mean logit error 2.6
against f16, Q4_1's 1.5), while Q4_1 kept the accuracy of f16 and Q8_0; our weights also come from a Q4_1
file. The popular Q4_K_M needs rows that are a multiple of 256 weights, and this model is 576 wide: llama.cpp
stores many of its tensors in a 5-bit fallback, so it is not a 4-bit file here. Both stay in QUANT_TYPES.
A LoRA adapter exports too (`convert_lora`), as a GGUF adapter that llama.cpp applies at load time on
top of the base model's GGUF: one base file, several small task adapters.

Every tool runs in a child process: the converter imports torch and transformers in its own process,
and llama.cpp gets `helpers.deploy.runtime.runtime_env()` (no OMP_WAIT_POLICY, see there).

The converter comes from llama-cpp-python's *source* package (the installed wheel holds only the runtime):
`make setup` downloads it with pip and `prepare_converter` unpacks the converter, its `conversion/` package
and its matching `gguf-py` into CONVERTER_DIR (~3 MB). Converter and runtime come from the same release.

Our tiny GPT (notebooks 02-03) does not convert, for two reasons found by trying
(`helpers.scratch.gpt_io.to_transformers` + the course tokenizer's `to_transformers`, llama.cpp 0.3.36):
1. the converter reads the context length from `n_ctx` in config.json, which transformers 5 no longer
   writes for GPT-2 (it writes `n_positions`): fixable by adding the key;
2. llama.cpp recognises a BPE tokenizer's pre-tokenizer (the regex that splits text before the merges) by a
   hash of how the tokenizer encodes a fixed test text, and knows only published tokenizers' hashes; our
   tokenizer splits with GPT-4's pattern but its own merges, so the hash is new and the converter stops
   ("BPE pre-tokenizer was not recognized"). Registering the hash means editing llama.cpp's converter
   (`convert_hf_to_gguf_update.py` lists the known tokenizers), which this course does not do.

Left out on purpose: importance-matrix quantisation (needs calibration text and llama.cpp's
llama-imatrix tool), running Ollama (the Modelfile is written, not tested: `ollama create` needs Ollama),
sharded GGUFs (our models are far below any size limit).

References: the GGUF specification (github.com/ggml-org/ggml, docs/gguf.md); llama.cpp's quantisation
README (tools/quantize); the Ollama Modelfile reference (docs/modelfile.md in github.com/ollama/ollama).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.core.io import TMP_PREFIX, clean_stale, replace_dir, write_text
from helpers.deploy.runtime import INSTALL, LLAMA_CPP_PYTHON, check_runtime, default_threads, runtime_env

CONVERTER_ENV = "LLAMA_CPP_CONVERTER_DIR"  # overrides where the unpacked converter lives
CONVERTER_DIR = Path(sys.prefix) / "share" / f"llama.cpp-converter-{LLAMA_CPP_PYTHON}"  # beside the runtime
SDIST = f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"
SOURCE_DIR = Path(sys.prefix) / "share" / "llama-cpp-src"  # where `prepare` downloads SDIST (76 MB) once
VENDOR = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/"  # where llama.cpp sits in the sdist
CONVERTER_FILES = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")
# llama.cpp's enum llama_ftype (include/llama.h): the quantiser's target type per format
QUANT_TYPES = {"q8_0": 7, "q4_1": 3, "q4_0": 2, "q4_k_m": 15}
FORMATS = ("f16", "q8_0", "q4_1")  # what export_gguf makes by default (module docstring: why Q4_1)
TOOL_TIMEOUT_S = 900  # s: converting 135M parameters takes ~25 s on 2 busy cores; a 1B model, minutes


class ConverterMissingError(RuntimeError):
    """llama.cpp's converter has not been unpacked from llama-cpp-python's source package."""


class GgufExportError(RuntimeError):
    """A converter or quantiser run failed; the message ends with the tool's last lines of output."""


# ----------------------------------------------------------------------------- the converter


def converter_dir() -> Path:
    """Where the unpacked converter lives: $LLAMA_CPP_CONVERTER_DIR, else CONVERTER_DIR in this venv."""
    return Path(os.environ.get(CONVERTER_ENV) or CONVERTER_DIR)


def find_sdist(where: str | os.PathLike) -> Path:
    """llama-cpp-python's source package: `where` itself, or the SDIST file inside the folder `where`."""
    path = Path(where)
    found = path / SDIST if path.is_dir() else path
    if not found.is_file():
        raise FileNotFoundError(
            f"no {SDIST} at {path}: download it with `pip download --no-deps --no-binary :all: --dest {path} "
            f"llama-cpp-python=={LLAMA_CPP_PYTHON}` (make setup does), or pass the .tar.gz itself")
    return found


def prepare_converter(sdist: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Unpack CONVERTER_FILES from the source package into `dest` (default `converter_dir()`), atomically."""
    dest = Path(dest) if dest is not None else converter_dir()
    with tarfile.open(find_sdist(sdist)) as tar, replace_dir(dest) as out:
        members = [m for m in tar.getmembers()
                   if m.name.startswith(VENDOR) and m.name[len(VENDOR):].startswith(CONVERTER_FILES)
                   and (m.isfile() or m.isdir())]
        if not any(m.name == VENDOR + CONVERTER_FILES[0] for m in members):
            raise ConverterMissingError(f"{sdist} holds no {VENDOR}{CONVERTER_FILES[0]}: is it llama-cpp-python "
                                        f"{LLAMA_CPP_PYTHON}'s source package?")
        for m in members:
            m.name = m.name[len(VENDOR):]
        tar.extractall(out, members=members, filter="data")  # "data": no links out, no absolute paths
    return dest


def converter_script(name: str = CONVERTER_FILES[0]) -> Path:
    """Path of one of llama.cpp's conversion scripts; ConverterMissingError naming the fix if absent."""
    path = converter_dir() / name
    if not path.is_file():
        raise ConverterMissingError(
            f"llama.cpp's converter is not at {path}. Fix: `make setup`, or download llama-cpp-python's source "
            f"package and unpack it: `pip download --no-deps --no-binary :all: --dest src "
            f"llama-cpp-python=={LLAMA_CPP_PYTHON}` then `python -m helpers.deploy.gguf prepare src` "
            f"(the runtime itself: {INSTALL})")
    return path


def _run(args: Sequence[str], what: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = runtime_env()
    if pythonpath is not None:  # the converter's own gguf-py, which matches it, before any installed gguf
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    try:
        done = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise GgufExportError(f"{what} did not finish in {TOOL_TIMEOUT_S} s") from err
    if done.returncode != 0:
        tail = "\n".join((done.stderr + done.stdout).strip().splitlines()[-8:])
        raise GgufExportError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done


def _into(out: Path, make) -> Path:
    """Run make(tmp) that writes a file at tmp, then move it to `out` (a killed run leaves no half file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out.parent)
    tmp = out.parent / f"{TMP_PREFIX}{out.name}.{os.getpid()}.gguf"
    try:
        make(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# ----------------------------------------------------------------------------- conversion and quantisation


def convert(hf_folder: str | os.PathLike, out: str | os.PathLike, outtype: str = "f16") -> Path:
    """A saved transformers model folder (config, safetensors, tokenizer) -> one GGUF file at `out`."""
    script = converter_script()
    if not (Path(hf_folder) / "config.json").is_file():
        raise FileNotFoundError(f"{hf_folder} holds no config.json: save the model there with save_pretrained "
                                "(or use save_for_conversion)")
    return _into(Path(out), lambda tmp: _run(
        [sys.executable, str(script), str(hf_folder), "--outtype", outtype, "--outfile", str(tmp)],
        f"llama.cpp's converter on {hf_folder}", pythonpath=script.parent / "gguf-py"))


_QUANTISE = """
import ctypes, sys, llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype, params.nthread = int(sys.argv[3]), int(sys.argv[4])
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params)))
"""


def quantize(src: str | os.PathLike, out: str | os.PathLike, kind: str, threads: int | None = None) -> Path:
    """Quantise an f16 GGUF to `kind` (a key of QUANT_TYPES) with llama.cpp's `llama_model_quantize`."""
    if kind not in QUANT_TYPES:
        raise ValueError(f"unknown quantisation {kind!r}: use one of {sorted(QUANT_TYPES)}")
    if not Path(src).is_file():
        raise FileNotFoundError(f"no GGUF at {src}: convert the model first (convert(..., outtype='f16'))")
    check_runtime(need_server=False)
    n = str(threads or os.cpu_count() or 1)
    return _into(Path(out), lambda tmp: _run(
        [sys.executable, "-c", _QUANTISE, str(src), str(tmp), str(QUANT_TYPES[kind]), n],
        f"llama.cpp's quantiser ({kind}) on {src}"))


def convert_lora(adapter_folder: str | os.PathLike, base_hf_folder: str | os.PathLike,
                 out: str | os.PathLike) -> Path:
    """A peft LoRA adapter folder -> a GGUF adapter (f16) for the base model saved in `base_hf_folder`."""
    script = converter_script(CONVERTER_FILES[1])
    if not (Path(adapter_folder) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_folder} holds no adapter_config.json: save the adapter there first "
                                "(helpers.instruct.lora.save_adapter)")
    return _into(Path(out), lambda tmp: _run(
        [sys.executable, str(script), "--base", str(base_hf_folder), "--outtype", "f16", "--outfile", str(tmp),
         str(adapter_folder)], f"llama.cpp's LoRA converter on {adapter_folder}",
        pythonpath=script.parent / "gguf-py"))


def save_for_conversion(model, tokenizer, folder: str | os.PathLike) -> Path:
    """Save a transformers model and its tokenizer where the converter reads them (atomically)."""
    if hasattr(model, "peft_config"):
        raise ValueError("this is a PeftModel: fold the adapter in first (model.merge_and_unload()), or export "
                         "the base model and the adapter separately (convert_lora)")
    from transformers.utils import logging as hf_logging  # heavy third-party: only when saving

    hf_logging.disable_progress_bar()  # its "Writing model shards" bar would fill a notebook's stored output
    try:
        with replace_dir(folder) as out:
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
    finally:
        hf_logging.enable_progress_bar()
    return Path(folder)


# ----------------------------------------------------------------------------- checking an export

_EVALUATE = """
import json, sys, numpy as np, llama_cpp
a = json.loads(sys.argv[1])
llm = llama_cpp.Llama(a["model"], lora_path=a["lora"], n_ctx=a["n_ctx"], logits_all=True, verbose=False,
                      n_threads=a["threads"], n_threads_batch=a["threads"])
llm.eval(a["ids"])
np.save(a["out"], np.asarray(llm.scores[:len(a["ids"])], dtype=np.float32))
greedy = []
for _ in range(a["new"]):
    greedy.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
    llm.eval(greedy[-1:])
print(json.dumps(greedy))
"""


@dataclass(frozen=True)
class GgufRun:
    logits: np.ndarray  # (T, V): llama.cpp's next-token logits after each prompt token
    greedy: list[int]  # the greedy continuation (argmax at each step, no sampler)


def run_gguf(path: str | os.PathLike, ids: Sequence[int], new_tokens: int = 0,
             lora: str | os.PathLike | None = None, threads: int | None = None) -> GgufRun:
    """Feed token ids to llama.cpp (in a child process) and return its logits and greedy continuation: the
    way to check an export against the transformers model it came from (tests/test_serve.py does)."""
    check_runtime(need_server=False)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "logits.npy"
        args = {"model": str(path), "lora": str(lora) if lora else None, "ids": [int(i) for i in ids],
                "new": new_tokens, "n_ctx": len(ids) + new_tokens + 8, "out": str(out),
                "threads": threads or default_threads()}
        done = _run([sys.executable, "-c", _EVALUATE, json.dumps(args)], f"llama.cpp on {path}")
        return GgufRun(np.load(out), json.loads(done.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------- Ollama


# ChatML (SmolLM2, Qwen, ...) as an Ollama (Go) template: the same text the model's Jinja template renders
_CHATML = ('{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
           '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
           '<|im_start|>assistant\n')


def modelfile_text(gguf_name: str, tokenizer, system: str | None = None, num_ctx: int = 2048) -> str:
    """An Ollama Modelfile for the GGUF `gguf_name` beside it: template, stop tokens, greedy decoding."""
    template = getattr(tokenizer, "chat_template", None) or ""
    lines = ["# Ollama: `ollama create my-model -f Modelfile`, then `ollama run my-model` (not run by the course)",
             f"FROM ./{gguf_name}"]
    if "<|im_start|>" in template:
        lines.append(f'TEMPLATE """{_CHATML}"""')
    else:
        lines.append("# no TEMPLATE: Ollama reads the chat template stored in the GGUF (tokenizer.chat_template)")
    if system:
        lines.append(f'SYSTEM """{system}"""')
    stops = [t for t in (getattr(tokenizer, "eos_token", None), "<|im_end|>" if "<|im_start|>" in template
                         else None) if t]
    lines += [f'PARAMETER stop "{s}"' for s in dict.fromkeys(stops)]
    lines += ["PARAMETER temperature 0", f"PARAMETER num_ctx {num_ctx}"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- all at once


@dataclass(frozen=True)
class GgufFile:
    kind: str  # f16 or a key of QUANT_TYPES
    path: Path
    seconds: float  # to make it

    @property
    def megabytes(self) -> float:
        return self.path.stat().st_size / 1e6


@dataclass
class GgufExport:
    """What `export_gguf` wrote: one file per format, and the Ollama Modelfile."""

    folder: Path
    files: dict[str, GgufFile] = field(default_factory=dict)
    modelfile: Path | None = None


def export_gguf(model, tokenizer, folder: str | os.PathLike, name: str, formats: Sequence[str] = FORMATS,
                system: str | None = None, ollama_format: str = "q8_0") -> GgufExport:
    """Save, convert to f16 and quantise: folder/{name}-{format}.gguf for each format, plus a Modelfile
    (FROM the `ollama_format` file). The transformers copy the converter reads is temporary."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or "f16" not in formats:
        raise ValueError(f"formats must include 'f16' (the quantiser's input) and be among {FORMATS}, got {formats}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale(folder)
    export = GgufExport(folder)
    start = time.perf_counter()
    # named like helpers.core.io's temporaries (prefix, name, pid), so a killed export's copy is cleaned later
    with tempfile.TemporaryDirectory(dir=folder, prefix=f"{TMP_PREFIX}{name}-hf.{os.getpid()}.") as tmp:
        hf = save_for_conversion(model, tokenizer, Path(tmp) / "hf")
        f16 = convert(hf, folder / f"{name}-f16.gguf")
    export.files["f16"] = GgufFile("f16", f16, time.perf_counter() - start)
    for kind in formats:
        if kind != "f16":
            start = time.perf_counter()
            path = quantize(f16, folder / f"{name}-{kind}.gguf", kind)
            export.files[kind] = GgufFile(kind, path, time.perf_counter() - start)
    if ollama_format in export.files:
        text = modelfile_text(export.files[ollama_format].path.name, tokenizer, system)
        export.modelfile = write_text(folder / "Modelfile", text)
    return export


def download_sdist(folder: str | os.PathLike = SOURCE_DIR) -> Path:
    """llama-cpp-python's source package in `folder`, downloaded with pip if it is not there yet (needs PyPI)."""
    folder = Path(folder)
    if not (folder / SDIST).is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "--dest", str(folder), f"llama-cpp-python=={LLAMA_CPP_PYTHON}"], check=True)
    return find_sdist(folder)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m helpers.deploy.gguf prepare [SDIST_OR_FOLDER]`: unpack llama.cpp's converter from the source
    package (default: download it into SOURCE_DIR with pip, once). `make setup` runs it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(args) <= 2 or args[0] != "prepare":
        print(main.__doc__, file=sys.stderr)
        return 2
    try:
        where = prepare_converter(args[1] if len(args) == 2 else download_sdist())
    except (OSError, subprocess.CalledProcessError, ConverterMissingError, tarfile.TarError) as err:
        print(f"llama.cpp's converter not prepared: {err}", file=sys.stderr)
        return 1
    print(f"llama.cpp's converter unpacked into {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
