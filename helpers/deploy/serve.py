"""An OpenAI-compatible HTTP endpoint for a GGUF model on this machine: llama-cpp-python's server, started and
stopped from Python, bound to loopback, and measured the way a client sees it.

    with LlamaServer(ServerConfig("artifacts/gguf/tuned-q8_0.gguf")) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")   # the one line that changes
        client.chat.completions.create(model="local", messages=[...])

An application written against a cloud API (the `openai` client) switches to the local model by changing
its base URL: that is how companies swap between cloud and local models, and why llama.cpp, Ollama, LM Studio
and vLLM all speak this API.

What this module takes care of:
- its own process with its own environment (`helpers.deploy.runtime.runtime_env`: no OMP_WAIT_POLICY,
  which makes llama.cpp ~3x slower), so the notebook's settings for torch never reach it;
- loopback only: a host that other machines can reach is refused unless `allow_remote=True` (then
  anyone who can reach the port can use the model: put authentication and TLS in front of it);
- llama-cpp-python's server options that would mislead a measurement: it answers one request at a time,
  and by default a new request *interrupts* a streaming one (`--interrupt_requests`), which we turn off so
  concurrent clients queue instead of failing; it keeps logits for every prompt token (`--logits_all`),
  which we turn off because nothing here asks for prompt log-probabilities.
- measuring: `stream_stats` (time to first token and tokens/s of one streamed answer, as
  helpers.measure.latency.StreamStats), `answer_all` (many prompts, a few clients at once) and
  `load_test` (concurrent clients, latency percentiles, failures counted, bounded in time).

Left out on purpose: batching several requests into one forward pass (llama.cpp's own `llama-server` does
that with `--parallel`; llama-cpp-python's server does not), authentication, TLS, GPU offload.

Reference: the OpenAI API reference (chat completions, streaming); llama-cpp-python's server docs
(docs/server.md in github.com/abetlen/llama-cpp-python).
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from helpers.core.netguard import is_loopback
from helpers.deploy.runtime import check_runtime, default_threads, runtime_env
from helpers.measure.latency import StreamStats

MODEL_NAME = "local"  # what clients pass as `model=`: the server holds one model and ignores the name


class ServerStartError(RuntimeError):
    """The server process exited or did not answer in time; the message ends with its log."""


@dataclass(frozen=True)
class ServerConfig:
    """How to start one llama.cpp server on one GGUF file."""

    model: str | os.PathLike
    host: str = "127.0.0.1"  # loopback: only programs on this machine can connect
    port: int = 0  # 0: pick a free port
    threads: int | None = None  # None: runtime.default_threads(), every core but one (see there why)
    n_ctx: int = 2048  # tokens of context: the course's longest prompt + answer is ~600
    lora: str | os.PathLike | None = None  # a GGUF LoRA adapter applied on top of `model` at load time
    allow_remote: bool = False  # True: bind an address other machines can reach (you add auth and TLS)
    startup_timeout_s: float = 180.0  # loading a 135M GGUF takes ~1-2 s; a busy machine, much more

    def __post_init__(self) -> None:
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"ServerConfig.host={self.host!r} would let other machines use the model: use '127.0.0.1' "
                "(loopback), or pass allow_remote=True and put authentication and TLS in front of it")
        if not Path(self.model).is_file():
            raise FileNotFoundError(f"ServerConfig.model={str(self.model)!r} is not a file: export a GGUF first "
                                    "(helpers.deploy.gguf.export_gguf)")
        if self.lora is not None and not Path(self.lora).is_file():
            raise FileNotFoundError(f"ServerConfig.lora={str(self.lora)!r} is not a file: convert the adapter "
                                    "first (helpers.deploy.gguf.convert_lora)")
        if not (0 <= self.port < 65536) or (self.threads is not None and self.threads < 1) or self.n_ctx < 16:
            raise ValueError(f"ServerConfig: need 0 <= port < 65536, threads >= 1 or None, n_ctx >= 16; got "
                             f"port={self.port}, threads={self.threads}, n_ctx={self.n_ctx}")


def _free_port(host: str) -> int:
    # subtle: the port is free now; another program could take it before the server binds (then start fails)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server in a child process. `with LlamaServer(config) as s:` starts
    it and waits until it answers; leaving the block (or `stop()`, or the end of this Python) stops it."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.startup_seconds: float | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        self._finalizer = weakref.finalize(self, os.unlink, self._log.name)

    @property
    def base_url(self) -> str:
        """http://host:port/v1: what an OpenAI client takes as base_url."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self) -> list[str]:
        c = self.config
        threads = str(c.threads or default_threads())
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(c.model), "--host", c.host,
               "--port", str(self.port), "--n_threads", threads, "--n_threads_batch", threads,
               "--n_ctx", str(c.n_ctx), "--logits_all", "false", "--interrupt_requests", "false",
               "--verbose", "false"]
        return cmd + (["--lora_path", str(c.lora)] if c.lora else [])

    def start(self) -> LlamaServer:
        if self.process is not None and self.process.poll() is None:
            return self
        check_runtime()  # RuntimeMissingError naming the fix, before any process is started
        self.port = self.config.port or _free_port(self.config.host)
        start = time.perf_counter()
        # runtime_env(): the server must not inherit OMP_WAIT_POLICY (module docstring)
        self.process = subprocess.Popen(self.command(), env=runtime_env(), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        weakref.finalize(self, _stop, self.process)  # a forgotten server dies with this Python
        self._wait_ready(start)
        self.startup_seconds = time.perf_counter() - start
        return self

    def _wait_ready(self, start: float) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
        while time.perf_counter() - start < self.config.startup_timeout_s:
            if self.process.poll() is not None:
                raise ServerStartError(f"the llama.cpp server exited with code {self.process.returncode}:\n"
                                       f"{self.log_tail()}")
            with contextlib.suppress(OSError):
                with opener.open(f"{self.base_url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        return
            time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"the llama.cpp server did not answer within {self.config.startup_timeout_s} s "
                               f"(ServerConfig.startup_timeout_s):\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(Path(self._log.name).read_text(errors="replace").strip().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def memory_mb(self) -> float:
        """The server process's resident memory now (MB): the model, its KV cache, Python and the HTTP stack."""
        return psutil.Process(self.pid).memory_info().rss / 2**20

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ----------------------------------------------------------------------------- clients


def client(base_url: str, timeout_s: float = 120.0, max_retries: int = 0):
    """An `openai.OpenAI` client for a local server: no retries (a failure must be seen, not hidden), no
    proxy (loopback), and a placeholder key (the local server checks none)."""
    import httpx  # heavy third-party, and only needed when talking to a server
    import openai

    return openai.OpenAI(base_url=base_url, api_key="local", timeout=timeout_s, max_retries=max_retries,
                         http_client=httpx.Client(trust_env=False, timeout=timeout_s))


def stream_stats(api, messages: list[dict], max_tokens: int, banned_ids: Sequence[int] = ()) -> StreamStats:
    """Stream one chat answer and time it. `banned_ids` (e.g. the end-of-turn ids) get a -100 logit bias, so
    every run generates exactly max_tokens tokens: the same work each time, as in the transformers runs."""
    start = time.perf_counter()
    first, pieces = None, 0
    stream = api.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=max_tokens,
                                         temperature=0, stream=True,
                                         logit_bias={str(i): -100 for i in banned_ids} or None)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces += 1
            if first is None:
                first = time.perf_counter() - start
    total = time.perf_counter() - start
    # with the end ids banned the server writes exactly max_tokens tokens (it may merge a few into one piece)
    new = max_tokens if banned_ids else pieces
    return StreamStats(new, first if first is not None else total, total)


def measure_stream(api, messages: list[dict], max_tokens: int, banned_ids: Sequence[int] = (), repeats: int = 3,
                   warmup: int = 1) -> StreamStats:
    """Median of `repeats` timed `stream_stats` runs after `warmup` untimed ones (as latency.measure does)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"measure_stream needs repeats >= 1 and warmup >= 0, got {repeats=}, {warmup=}")
    runs = [stream_stats(api, messages, max_tokens, banned_ids) for _ in range(warmup + repeats)][warmup:]
    return StreamStats(new_tokens=int(statistics.median(r.new_tokens for r in runs)),
                       first_token_seconds=statistics.median(r.first_token_seconds for r in runs),
                       total_seconds=statistics.median(r.total_seconds for r in runs))


def answer(api, messages: list[dict], max_tokens: int) -> str:
    """One greedy chat answer (temperature 0), as text."""
    reply = api.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=max_tokens, temperature=0)
    return reply.choices[0].message.content or ""


def answer_all(api, conversations: Sequence[list[dict]], max_tokens: int, clients: int = 4) -> list[str]:
    """Greedy answers to many conversations, in order, `clients` requests in flight at a time."""
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda m: answer(api, m, max_tokens), conversations))


@dataclass
class LoadResult:
    """A load test: one latency per finished request, and every failure with its error."""

    clients: int
    requests: int  # asked for
    seconds: float  # wall time of the whole test
    latencies: list[float] = field(default_factory=list)  # seconds per successful request
    completion_tokens: int = 0
    failures: list[str] = field(default_factory=list)  # errors, and requests never sent before the deadline

    def percentile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q) - 1]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds


def load_test(api, conversations: Sequence[list[dict]], clients: int = 8, requests: int = 200,
              max_tokens: int = 8, deadline_s: float = 300.0) -> LoadResult:
    """`requests` chat requests (cycling through `conversations`) from `clients` concurrent clients.

    Bounded: no request starts after `deadline_s`; each one not sent is counted as a failure, as is every
    error (the client does not retry). Latency is per request, queueing at the server included.
    """
    if clients < 1 or requests < 1 or not conversations:
        raise ValueError(f"load_test needs clients >= 1, requests >= 1 and conversations; got {clients=}, "
                         f"{requests=}, {len(conversations)} conversations")
    result = LoadResult(clients, requests, 0.0)
    lock, counter = threading.Lock(), iter(range(requests))
    start = time.perf_counter()

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            if time.perf_counter() - start > deadline_s:
                with lock:
                    result.failures.append(f"request {i}: not sent, past the {deadline_s} s deadline")
                continue
            t0 = time.perf_counter()
            try:
                reply = api.chat.completions.create(model=MODEL_NAME, messages=conversations[i % len(conversations)],
                                                    max_tokens=max_tokens, temperature=0)
                with lock:
                    result.latencies.append(time.perf_counter() - t0)
                    result.completion_tokens += reply.usage.completion_tokens if reply.usage else 0
            except Exception as err:  # noqa: BLE001 - every failure is counted, whatever it is
                with lock:
                    result.failures.append(f"request {i}: {type(err).__name__}: {err}")

    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(worker)
    result.seconds = time.perf_counter() - start
    return result
