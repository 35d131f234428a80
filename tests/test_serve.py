"""Local serving: GGUF export checked against transformers, the OpenAI-compatible server on loopback.

Run: COURSE_PROFILE=ci .venv/bin/python -m pytest -q tests/test_serve.py

- Without the runtime: the environment the server gets (no OMP_WAIT_POLICY), the loopback-only rule, the
  errors that name the fix when the runtime or the converter is missing or broken, the converter unpacked
  from a source package, the Ollama Modelfile, and the load test's deadline.
- With the runtime (`make setup` installs llama-cpp-python 0.3.36 and unpacks its converter; skipped with the
  reason otherwise; ~1-2 min): SmolLM2-135M-Instruct converted to an f16 GGUF by llama.cpp's converter gives
  the logits of the transformers fp32 model within F16_LOGIT_ATOL and the same greedy tokens; a LoRA
  adapter converted to a GGUF adapter and applied at load time gives the PeftModel's logits; Q8_0/Q4_1 files
  come out of llama.cpp's quantiser at the expected sizes; the server answers the `openai` client with only
  base_url changed, its answer is llama.cpp's greedy answer, it does not carry OMP_WAIT_POLICY, concurrent
  streams are not cut, and a load test of concurrent clients finishes in bounded time with zero failures.
"""

from __future__ import annotations

import io
import re
import sys
import tarfile
import threading
import time

import numpy as np
import psutil
import pytest
import torch

from helpers.deploy import gguf, runtime
from helpers.deploy.gguf import ConverterMissingError, modelfile_text, prepare_converter
from helpers.deploy.runtime import RuntimeMissingError, check_runtime, runtime_env
from helpers.deploy.serve import LlamaServer, ServerConfig, answer, client, load_test
from tests.tiny_llama import tiny_tokenizer

# f16 rounds each weight to 11 significant bits, and llama.cpp multiplies f16 weights by activations
# rounded to f16 too. Measured (SmolLM2-135M-Instruct, a 40-token chat prompt, fp32 transformers vs the f16
# GGUF): max |logit difference| 0.059, mean 0.006, on logits up to 39 in size; every argmax equal. 0.25
# leaves 4x room for other CPUs' kernels and still catches a wrong tensor (that moves logits by units).
F16_LOGIT_ATOL = 0.25
# The LoRA test's adapter is random (B != 0), far stronger than a trained one: it moves logits by up to 43
# (mean 3.7), and f16 rounding grows with it. Measured: max |difference| 0.27, mean 0.02, every argmax equal.
LORA_LOGIT_ATOL = 0.6
GREEDY_TOKENS = 16  # the issue: greedy text identical for the first tokens
QUESTION = [{"role": "user", "content": "How long do I have to return a bike?"}]


# ----------------------------------------------------------------------------- no runtime needed


def test_runtime_env_leaves_out_omp_wait_policy():
    env = runtime_env({"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "2", "HOME": "/h"})
    assert env == {"OMP_NUM_THREADS": "2", "HOME": "/h"}


def test_one_release_pinned():
    from helpers.course.artifacts import REPO_ROOT

    pins = re.findall(r'"llama-cpp-python\[server\]==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text())
    assert pins == [runtime.LLAMA_CPP_PYTHON]  # the converter we unpack matches the runtime pip installs


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com"])
def test_non_loopback_bind_refused(tmp_path, host):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(ValueError, match="allow_remote=True"):
        ServerConfig(model, host=host)
    assert ServerConfig(model, host=host, allow_remote=True).host == host  # an explicit choice is allowed


def test_missing_model_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="export a GGUF first"):
        ServerConfig(tmp_path / "nothing.gguf")


def _fake_python(tmp_path, body: str):
    """A python whose `llama_cpp` is `body` (an empty folder on PYTHONPATH: the real one is hidden by -S)."""
    pkg = tmp_path / "fake" / "llama_cpp"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(body)
    script = tmp_path / "python"
    script.write_text(f'#!/bin/sh\nPYTHONPATH={tmp_path / "fake"} exec {sys.executable} -S "$@"\n')
    script.chmod(0o755)
    return str(script)


def test_missing_runtime_names_the_fix(tmp_path):
    python = _fake_python(tmp_path, "raise ModuleNotFoundError(\"No module named 'llama_cpp'\")")
    with pytest.raises(RuntimeMissingError, match="is not installed.*make setup"):
        check_runtime(python)


def test_broken_runtime_names_the_fix(tmp_path):
    python = _fake_python(tmp_path, "raise OSError('libllama.so: cannot open shared object file')")
    with pytest.raises(RuntimeMissingError, match="installed but broken.*libllama.so.*make setup"):
        check_runtime(python)


def test_missing_converter_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(gguf.CONVERTER_ENV, str(tmp_path / "none"))
    with pytest.raises(ConverterMissingError, match="make setup"):
        gguf.converter_script()


def _sdist(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_prepare_converter_takes_only_the_converter(tmp_path):
    v = gguf.VENDOR
    _sdist(tmp_path / gguf.SDIST, {
        v + "convert_hf_to_gguf.py": b"# converter", v + "conversion/llama.py": b"#", v + "gguf-py/gguf/a.py": b"#",
        v + "LICENSE": b"MIT", v + "ggml/src/big.c": b"int x;", "llama_cpp_python-0.3.36/setup.py": b"#"})
    out = prepare_converter(tmp_path, tmp_path / "conv")
    found = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert found == ["LICENSE", "conversion/llama.py", "convert_hf_to_gguf.py", "gguf-py/gguf/a.py"]
    with pytest.raises(ConverterMissingError, match="source package"):
        prepare_converter(_sdist(tmp_path / "other.tar.gz", {"x/README": b"hi"}), tmp_path / "conv2")
    assert out.is_dir()  # a failed prepare elsewhere leaves a good one alone


def test_modelfile_chatml():
    text = modelfile_text("tuned-q8_0.gguf", tiny_tokenizer(), system="You help.")
    assert "FROM ./tuned-q8_0.gguf" in text and 'SYSTEM """You help."""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0" in text
    # the Go template ends where the model's own template ends a prompt: the assistant header
    prompt = tiny_tokenizer().apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    template = text.split('TEMPLATE """')[1].split('"""')[0]
    assert prompt.endswith("<|im_start|>assistant\n") and template.endswith("<|im_start|>assistant\n")


def test_modelfile_without_chatml_leaves_template_to_the_gguf():
    text = modelfile_text("m.gguf", tiny_tokenizer(chat=False))
    assert "TEMPLATE" not in text.replace("# no TEMPLATE", "")


def test_load_test_deadline_bounds_it():
    result = load_test(api=None, conversations=[QUESTION], clients=3, requests=9, deadline_s=0.0)
    assert result.latencies == [] and len(result.failures) == 9 and "deadline" in result.failures[0]
    assert result.seconds < 5


# ----------------------------------------------------------------------------- with the runtime


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    """The course model (fp32 transformers) and an f16 GGUF that llama.cpp's converter made from it."""
    try:
        runtime.check_runtime()
        gguf.converter_script()
    except (RuntimeMissingError, ConverterMissingError) as err:
        pytest.skip(f"llama.cpp runtime not ready: {err}")
    from helpers.instruct.models import load_model

    loaded = load_model()
    path = gguf.convert(loaded.cache_path, tmp_path_factory.mktemp("gguf") / "base-f16.gguf")
    ids = list(loaded.tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=True)["input_ids"])
    return loaded, path, ids


def _hf_logits(model, ids) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


@pytest.mark.slow
def test_f16_logits_and_greedy_match_transformers(smollm):
    loaded, path, ids = smollm
    run = gguf.run_gguf(path, ids, new_tokens=GREEDY_TOKENS)
    ref = _hf_logits(loaded.model, ids)
    assert run.logits.shape == ref.shape
    assert np.abs(run.logits - ref).max() < F16_LOGIT_ATOL
    with torch.no_grad():
        out = loaded.model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False,
                                    min_new_tokens=GREEDY_TOKENS, pad_token_id=loaded.tokenizer.eos_token_id)
    assert run.greedy == out[0, len(ids):].tolist()


@pytest.mark.slow
def test_quantised_files(smollm, tmp_path):
    loaded, path, ids = smollm
    sizes = {"f16": path.stat().st_size}
    for kind in ("q8_0", "q4_1"):
        out = gguf.quantize(path, tmp_path / f"m-{kind}.gguf", kind)
        sizes[kind] = out.stat().st_size
        run = gguf.run_gguf(out, ids, new_tokens=1)
        assert np.isfinite(run.logits).all()
    # per 32 weights: f16 64 bytes, Q8_0 34, Q4_1 20; the tied embedding/output matrix stays at 8 bits
    assert 0.45 < sizes["q8_0"] / sizes["f16"] < 0.6 and sizes["q4_1"] / sizes["f16"] < 0.45


@pytest.mark.slow
def test_lora_adapter_gguf_applied_at_load_time(smollm, tmp_path):
    from peft import LoraConfig, get_peft_model

    loaded, path, ids = smollm
    torch.manual_seed(0)
    peft_model = get_peft_model(loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                         init_lora_weights=False))  # B != 0: it changes logits
    try:
        peft_model.save_pretrained(tmp_path / "adapter")
        adapter = gguf.convert_lora(tmp_path / "adapter", loaded.cache_path, tmp_path / "adapter.gguf")
        ref = _hf_logits(peft_model, ids)
        with peft_model.disable_adapter():
            base = _hf_logits(peft_model, ids)
        run = gguf.run_gguf(path, ids, lora=adapter)
    finally:
        peft_model.unload()  # the module fixture's model is shared: take the LoRA layers out again
    gap = np.abs(run.logits - ref).max()
    assert gap < LORA_LOGIT_ATOL and (run.logits.argmax(-1) == ref.argmax(-1)).all()
    assert np.abs(ref - base).max() > 20 * gap  # the adapter was applied: without it llama.cpp would be far off


@pytest.mark.slow
def test_server_openai_client_loopback(smollm):
    import openai

    loaded, path, ids = smollm
    with LlamaServer(ServerConfig(path, threads=2)) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        # the same code as for a hosted API: only base_url changes (the local server checks no key)
        api = openai.OpenAI(base_url=server.base_url, api_key="local")
        reply = api.chat.completions.create(model="local", messages=QUESTION, max_tokens=12, temperature=0)
        text = reply.choices[0].message.content
        assert reply.usage.prompt_tokens == len(ids)  # the server rendered the same chat template
        greedy = gguf.run_gguf(path, ids, new_tokens=12).greedy
        eos = loaded.tokenizer.eos_token_id
        expected = loaded.tokenizer.decode(greedy[:greedy.index(eos)] if eos in greedy else greedy)
        assert text.strip() == expected.strip()
        # its own environment: this process has OMP_WAIT_POLICY (helpers sets it), the server does not
        assert "OMP_WAIT_POLICY" in __import__("os").environ
        assert "OMP_WAIT_POLICY" not in psutil.Process(server.pid).environ()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_server_concurrent_clients_queue_not_cut(smollm):
    loaded, path, ids = smollm
    with LlamaServer(ServerConfig(path)) as server:
        api = client(server.base_url)
        alone = answer(api, QUESTION, 24)
        texts = [None, None]

        def stream(i):
            chunks = api.chat.completions.create(model="local", messages=QUESTION, max_tokens=24, temperature=0,
                                                 stream=True)
            texts[i] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

        threads = [threading.Thread(target=stream, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert texts == [alone, alone]  # a second request queues; it does not cut the first answer short
        start = time.perf_counter()
        result = load_test(api, [QUESTION, [{"role": "user", "content": "Ciao!"}]], clients=4, requests=16,
                           max_tokens=2, deadline_s=120)
        assert result.failures == [] and len(result.latencies) == 16
        assert time.perf_counter() - start < 180 and result.p50 <= result.p95
