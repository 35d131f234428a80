"""The local runtime, llama.cpp (through llama-cpp-python): is it installed, and how to start it safely.

    check_runtime()      # -> Runtime(version='0.3.36', server=True, ...) or RuntimeMissingError naming the fix
    runtime_env()        # os.environ without OMP_WAIT_POLICY: the environment every llama.cpp process gets

llama-cpp-python is a C++ library behind a Python binding; on most platforms pip builds it from source
(a C++ compiler and cmake, ~5 min on 2 cores, once: pip caches the wheel). A build can be missing or
broken (wrong compiler, a library built for another CPU), so we never import it into the notebook's
process: `check_runtime` imports it in a child process and turns any failure into one error that says
what to run. The rest of the course never needs it.

Pitfall, measured: `helpers` sets OMP_WAIT_POLICY=PASSIVE for torch (see helpers/__init__.py), and
llama.cpp's OpenMP threads then sleep between the many small steps of decoding: ~3x slower
(30-38 instead of ~105 tokens/s for SmolLM2-135M on 2 cores). So every llama.cpp process (converter,
quantiser, server) starts from `runtime_env()`, which leaves that variable out.

Build note: `make setup` builds AVX2-level code on x86-64 (GGML_NATIVE=OFF, see the Makefile). A native
build on the course machines (Xeon with AMX and AVX-512) crashed with a segfault on every quantised GGUF
(Q8_0, Q4_0, and the Q4_1 our model wheel ships) in the AMX weight repacking; f16 ran.

Left out on purpose: GPU builds (CUDA/Metal need their own build flags: see llama-cpp-python's README), and
importing llama_cpp in-process (its threads would inherit this process's OpenMP settings).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

LLAMA_CPP_PYTHON = "0.3.36"  # the release tested here (2026-11-30); its converter matches its runtime
INSTALL = (
    f"make setup   (or: pip install 'llama-cpp-python[server]=={LLAMA_CPP_PYTHON}' openai sentencepiece; "
    "it builds llama.cpp from source: a C++ compiler and cmake, ~5 min on 2 cores, once)"
)
UNSAFE_ENV = ("OMP_WAIT_POLICY",)  # PASSIVE makes llama.cpp's decoding ~3x slower (module docstring)
CHECK_TIMEOUT_S = 120  # importing the runtime takes ~2 s; a cold disk or a busy machine, far more


class RuntimeMissingError(RuntimeError):
    """llama-cpp-python (or its server extras) is not installed here, or it is installed but broken."""


@dataclass(frozen=True)
class Runtime:
    """What `check_runtime` found: the binding's version, whether its HTTP server can start, which python."""

    version: str
    server: bool  # llama_cpp.server imports (the [server] extra: fastapi, uvicorn, ...)
    python: str
    system_info: str  # llama.cpp's own line about the CPU features it was built for (AVX2, ...)


def default_threads() -> int:
    """Threads for llama.cpp's decoding: every core but one (one on a 2-core machine).

    llama.cpp's threads meet at a barrier after every step of every token, so one thread that the OS parks
    for another program stalls all the others. Measured on 2 cores shared with other work (SmolLM2-135M
    Q8_0): 1 thread 27-33 tokens/s, 2 threads 3-14. On an idle machine all cores are faster (`threads=`).
    """
    return max(1, (os.cpu_count() or 2) - 1)


def runtime_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of `env` (default os.environ) without the variables that slow llama.cpp down (UNSAFE_ENV).

    {'OMP_WAIT_POLICY': 'PASSIVE', 'HOME': '/root'} -> {'HOME': '/root'}
    """
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if k not in UNSAFE_ENV}


_PROBE = """
import json, llama_cpp
try:
    import llama_cpp.server.app  # noqa: F401
    server = True
except ImportError:
    server = False
info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
print(json.dumps({"version": llama_cpp.__version__, "server": server, "system_info": info}))
"""


@functools.cache
def check_runtime(python: str = sys.executable, need_server: bool = True) -> Runtime:
    """Import llama-cpp-python in a child process (so a broken build cannot crash this one) and report it.

    Raises RuntimeMissingError naming the fix when it is missing, broken, or lacks the server extras.
    """
    try:
        done = subprocess.run([python, "-c", _PROBE], env=runtime_env(), capture_output=True, text=True,
                              timeout=CHECK_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RuntimeMissingError(f"could not run {python} to look for llama-cpp-python ({err}): {INSTALL}") from err
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        what = "is not installed" if "No module named 'llama_cpp'" in done.stderr else "is installed but broken"
        raise RuntimeMissingError(f"the local runtime llama-cpp-python {what} ({last}). Fix: {INSTALL}. "
                                  "Everything else in the course runs without it.")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    runtime = Runtime(found["version"], found["server"], python, found["system_info"])
    if need_server and not runtime.server:
        raise RuntimeMissingError(f"llama-cpp-python {runtime.version} is installed without its server "
                                  f"extras (fastapi, uvicorn, sse-starlette, ...). Fix: {INSTALL}")
    return runtime
