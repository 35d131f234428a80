"""How fast does a local model answer? Time to first token and tokens/s of any token stream.

    stats = time_stream(model.stream(prompt_ids, 32))       # any iterator of tokens (or text pieces)
    stats.first_token_seconds, stats.tokens_per_second

A chat user feels two numbers: the wait before the first token appears (prompt processing + one
decode step) and the pace of the tokens after it (decode steps, each reusing the KV cache). We report
both at batch 1, the case of one person chatting. `CLOUD_ROUND_TRIP` puts beside them what a hosted API
adds: the figures are editable assumptions with a source and a date, not measurements.

Left out on purpose: batched serving throughput (a server answering many users at once gets far more
tokens/s from the same hardware), speculative decoding, quantised inference.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from helpers.core.checks import count, number
from helpers.measure.assumptions import Assumption


@dataclass(frozen=True)
class StreamStats:
    """Timing of one streamed generation (seconds)."""

    new_tokens: int
    first_token_seconds: float  # from the call to the first token: prompt processing + 1 step
    total_seconds: float
    prompt_tokens: int | None = None
    stopped: bool = False  # True if the user pressed stop

    def __post_init__(self) -> None:
        count("StreamStats.new_tokens", self.new_tokens)
        number("StreamStats.first_token_seconds", self.first_token_seconds, 0)
        number("StreamStats.total_seconds", self.total_seconds, 0)
        if self.prompt_tokens is not None:
            count("StreamStats.prompt_tokens", self.prompt_tokens, fix="or None when unknown")

    @property
    def tokens_per_second(self) -> float:
        """Decode pace after the first token (the first one pays for the whole prompt)."""
        later = self.new_tokens - 1
        span = self.total_seconds - self.first_token_seconds
        return later / span if later > 0 and span > 0 else float("nan")


def time_stream(stream: Iterable, prompt_tokens: int | None = None) -> StreamStats:
    """Consume `stream` and time it: time_stream(iter([1, 2, 3])).new_tokens -> 3."""
    _check_stream("stream", stream)
    if prompt_tokens is not None:
        count("prompt_tokens", prompt_tokens, fix="the prompt's length in tokens, or None")
    start = time.perf_counter()
    first = None
    n = 0
    for _ in stream:
        n += 1
        if first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return StreamStats(n, first if first is not None else total, total, prompt_tokens)


def _check_stream(name: str, stream) -> None:
    if isinstance(stream, (str, bytes)) or not isinstance(stream, Iterable):
        raise TypeError(f"{name} must be an iterator of tokens (e.g. model.stream(ids, 32)), got "
                        f"{type(stream).__name__}: a string would be timed letter by letter")


def measure(make_stream: Callable[[], Iterable], repeats: int = 3, warmup: int = 1,
            prompt_tokens: int | None = None) -> StreamStats:
    """Median over `repeats` timed runs after `warmup` untimed ones (the first run pays one-off costs).

    `make_stream` builds a fresh stream each time, e.g. `lambda: model.stream(ids, 32, temperature=0)`.
    """
    if not callable(make_stream) or isinstance(make_stream, Iterable):
        raise TypeError(f"make_stream must be a function that builds a fresh stream, got "
                        f"{type(make_stream).__name__}: write lambda: model.stream(ids, 32) (a stream is used up "
                        "after one run)")
    count("repeats", repeats, 1, "the median of at least one timed run")
    count("warmup", warmup, 0, "untimed runs first, e.g. 1")
    if prompt_tokens is not None:
        count("prompt_tokens", prompt_tokens, fix="the prompt's length in tokens, or None")
    for _ in range(warmup):
        stream = make_stream()
        _check_stream("make_stream()", stream)
        for _ in stream:
            pass
    runs = [time_stream(make_stream(), prompt_tokens) for _ in range(repeats)]
    return StreamStats(
        new_tokens=int(statistics.median(r.new_tokens for r in runs)),
        first_token_seconds=statistics.median(r.first_token_seconds for r in runs),
        total_seconds=statistics.median(r.total_seconds for r in runs),
        prompt_tokens=prompt_tokens,
    )


@dataclass(frozen=True)
class CloudRoundTrip:
    """What a hosted chat API adds, as editable assumptions: edit them for your provider and network."""

    network_rtt: Assumption  # one request/response over the internet
    first_token: Assumption  # the provider's time to first token, queueing included
    tokens_per_second: Assumption  # the provider's streaming pace

    def stats(self, new_tokens: int) -> StreamStats:
        """The same numbers as a local StreamStats, for a side-by-side table."""
        count("new_tokens", new_tokens, 1, "tokens in the answer, e.g. 32")
        first = self.network_rtt.value + self.first_token.value
        return StreamStats(new_tokens, first, first + (new_tokens - 1) / self.tokens_per_second.value)


CLOUD_ROUND_TRIP = CloudRoundTrip(
    network_rtt=Assumption(
        0.05, "s", "illustrative: 50 ms, a European office to a European data centre", "2025"),
    first_token=Assumption(
        0.5, "s", "illustrative: typical of small hosted chat models on public API latency leaderboards "
        "(e.g. artificialanalysis.ai); varies with provider, model and load", "2025"),
    tokens_per_second=Assumption(
        100, "tokens/s", "illustrative: typical streaming pace of small hosted chat models (same boards)",
        "2025"),
)
