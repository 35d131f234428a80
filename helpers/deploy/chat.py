"""A chat with a local model, without any UI: streaming, a stop flag, and the conversation's memory.

    session = ChatSession(loaded.model, loaded.tokenizer)
    for piece in session.stream("When do you open on Saturday?"):
        print(piece, end="")
    session.history      # what the model will see next: [{'role': 'user', ...}, {'role': 'assistant', ...}]
    session.transcript   # what the person saw, stopped and cut answers marked

Streaming follows transformers' own recipe: `model.generate` runs in a background thread and hands each
new token to a streamer (`TextIteratorStreamer` for the chat's text, a token queue for `stream_tokens`);
a `StoppingCriteria` reads a stop flag after every token, so a Stop button (another thread) ends the
answer after the token being computed. A model that brings its own `stream(prompt, max_new_tokens, ...)`
(the course's tiny GPT, `helpers.scratch.gpt.GPT.stream`) is used through that method instead: `deploy`
does not import `scratch`, so it is recognised by shape, not by class.

What the model remembers (`history`) and what the person sees (`transcript`) differ on purpose. Only
answers the model *finished* (it ended its turn) enter the history. An answer stopped by the user, or
cut at `max_new_tokens`, stays in the transcript, marked "… [stopped]" or "… [cut at N tokens]", but
that exchange is left out of the model's history: fed back, the chat template would close the fragment
as a finished turn, and a small model then copies it into every later answer (issue 15: after one Stop,
every answer was the stopped fragment again). Ask again, or raise `ChatConfig.max_new_tokens`.

Left out on purpose: batching several users, beam search, tool calls, rendering Markdown.
References: transformers "Generation strategies" (streaming) and `StoppingCriteria`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import (
    GenerationConfig,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)
from transformers.generation.streamers import BaseStreamer

from helpers.core.checks import count, instance, number, token_ids, vocab_size_of
from helpers.measure.latency import StreamStats

ENDINGS = ("end", "stopped", "cut")  # the model ended its turn | the user pressed Stop | max_new_tokens hit


@dataclass(frozen=True)
class ChatConfig:
    max_new_tokens: int = 200  # a few sentences; most answers end earlier at the end-of-turn token
    temperature: float = 0.0  # 0 = greedy: the same question gives the same answer (workshops, tests)
    top_k: int | None = 50  # with temperature > 0, sample among the 50 likeliest tokens only
    system_prompt: str | None = None  # None: whatever the model's chat template puts by default
    max_prompt_tokens: int = 1536  # oldest turns are dropped past this: keeps CPU latency in check
    seed: int = 0  # for sampling (temperature > 0)

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) \
                or self.max_new_tokens < 1:
            raise ValueError(f"ChatConfig.max_new_tokens must be an int >= 1, got {self.max_new_tokens!r}")
        _check_sampling("ChatConfig.", self.temperature, self.top_k)
        if isinstance(self.max_prompt_tokens, bool) or not isinstance(self.max_prompt_tokens, int) \
                or self.max_prompt_tokens < 8:
            raise ValueError(f"ChatConfig.max_prompt_tokens must be >= 8, got {self.max_prompt_tokens!r}")
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise TypeError(f"ChatConfig.system_prompt must be a string or None (the template's default), got "
                            f"{type(self.system_prompt).__name__}")
        count("ChatConfig.seed", self.seed)


def _check_sampling(prefix: str, temperature: float, top_k: int | None) -> None:
    number(f"{prefix}temperature", temperature, 0, fix="0 = greedy, e.g. 0.7 to sample")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"{prefix}top_k must be None or an int >= 1, got {top_k!r}")


@dataclass(frozen=True)
class Reply:
    """One answer: its text, how it ended, and the token ids generated (a final stop token left out)."""

    text: str
    ending: str  # one of ENDINGS
    token_ids: tuple[int, ...]

    @property
    def shown(self) -> str:
        """The text as the transcript shows it: 'We open at ten … [cut at 48 tokens]'."""
        if self.ending == "end":
            return self.text
        mark = "[stopped]" if self.ending == "stopped" else f"[cut at {len(self.token_ids)} tokens]"
        return f"{self.text} … {mark}" if self.text else mark


# ----------------------------------------------------------------------------- generation


class _StopFlag(StoppingCriteria):
    """generate() asks after every new token; True once `should_stop()` is (e.g. a Stop button's flag)."""

    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), bool(self.should_stop()), dtype=torch.bool,
                          device=input_ids.device)


class _TokenQueue(BaseStreamer):
    """A streamer that hands generate()'s new token ids to another thread (the prompt comes first: skipped)."""

    END = None

    def __init__(self):
        self.queue: queue.Queue = queue.Queue()
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():  # batch 1: one id per step
            self.queue.put(token)

    def end(self) -> None:
        self.queue.put(self.END)

    def __iter__(self) -> Iterator[int]:
        while (token := self.queue.get()) is not self.END:
            yield token


class _ChatStreamer(TextIteratorStreamer):
    """transformers' text streamer that also keeps the new token ids (to count them and tell a cut from an end)."""

    def __init__(self, tokenizer):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.token_ids: list[int] = []
        self.first_token_at: float | None = None

    def put(self, value: torch.Tensor) -> None:
        if not self.next_tokens_are_prompt:
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            self.token_ids.extend(value.reshape(-1).tolist())
        super().put(value)


@contextmanager
def _seeded(seed: int, device: torch.device):
    """generate() samples from torch's global generator: seed it for this call, then restore it."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _is_transformers(model) -> bool:
    """A transformers model (or a peft wrapper around one) carries a generation_config; our GPT does not."""
    return hasattr(model, "generation_config") and callable(getattr(model, "generate", None))


def _generation_config(model, max_new_tokens: int, stop_ids: Sequence[int], temperature: float,
                       top_k: int | None) -> GenerationConfig:
    # subtle: eos_token_id=None would fall back to the model's own end token; [] really means "no stop".
    pad = stop_ids[0] if stop_ids else (model.generation_config.pad_token_id or 0)
    if isinstance(pad, list):
        pad = pad[0]
    sampling = {"do_sample": True, "temperature": temperature, "top_k": top_k or 0} if temperature > 0 else {}
    return GenerationConfig(max_new_tokens=max_new_tokens, eos_token_id=list(stop_ids), pad_token_id=pad,
                            **{"do_sample": False, **sampling})


def _start_generate(model, prompt_ids: Sequence[int], streamer: BaseStreamer, config: GenerationConfig,
                    should_stop: Callable[[], bool], seed: int) -> Callable[[], None]:
    """Run model.generate in a background thread; returns `finish()`: wait for it, re-raise its error."""
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids)], device=device)  # (1, T)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with torch.no_grad(), _seeded(seed, device):
                model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config,
                               streamer=streamer, stopping_criteria=StoppingCriteriaList([_StopFlag(should_stop)]))
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread by finish()
            errors.append(err)
            streamer.end()  # generate() did not get to it: unblock the reader

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def finish() -> None:
        thread.join()
        if errors:
            raise errors[0]

    return finish


def _check_prompt(prompt_ids: Sequence[int], max_new_tokens: int) -> list[int]:
    if hasattr(prompt_ids, "__len__") and len(prompt_ids) == 0:
        raise ValueError("prompt_ids is empty: a prompt needs at least one token id")
    ids = token_ids("prompt_ids", prompt_ids, "tokenize the prompt first, e.g. tokenizer.encode(text)")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    return ids


def _check_stop_ids(name: str, stop_ids) -> list[int]:
    """A list of token ids, possibly empty (no stop: generate exactly max_new_tokens)."""
    if isinstance(stop_ids, (str, bytes)) or not isinstance(stop_ids, (list, tuple)):
        raise TypeError(f"{name} must be a list of token ids (possibly empty), got {stop_ids!r}: e.g. "
                        "[tokenizer.eos_token_id]")
    return token_ids(name, stop_ids) if stop_ids else []


def stream_tokens(
    model,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    stop_ids: Sequence[int] = (),
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[int]:
    """Yield the new token ids of one prompt as they are generated (batch 1: one person chatting).

    Ends before a stop id, after max_new_tokens, or after the token during which should_stop() became
    true. [1, 2, 3] -> 17, 5, ... A transformers model streams through generate(); a model with its own
    `stream` method (the course's tiny GPT) through that. stop_ids=() generates exactly max_new_tokens.
    Arguments are checked when it is called, not at the first token (it returns a generator).
    """
    prompt_ids = _check_prompt(prompt_ids, max_new_tokens)
    token_ids("prompt_ids", prompt_ids, vocab_size=vocab_size_of(model))
    stop_ids = _check_stop_ids("stop_ids", stop_ids)
    _check_sampling("", temperature, top_k)
    count("seed", seed)
    if not callable(should_stop):
        raise TypeError(f"should_stop must be a function () -> bool, got {type(should_stop).__name__}: e.g. "
                        "threading.Event().is_set")
    if not _is_transformers(model) and not callable(getattr(model, "stream", None)):
        raise TypeError(f"{type(model).__name__} is neither a transformers model nor has a "
                        "stream(prompt, max_new_tokens, ...) method: pass a transformers causal LM or a "
                        "helpers.scratch.gpt.GPT")
    return _stream_tokens(model, prompt_ids, max_new_tokens, stop_ids, temperature, top_k, seed, should_stop)


def _stream_tokens(model, prompt_ids: list[int], max_new_tokens: int, stop_ids: list[int], temperature: float,
                   top_k: int | None, seed: int, should_stop: Callable[[], bool]) -> Iterator[int]:
    if not _is_transformers(model):
        for token in model.stream(list(prompt_ids), max_new_tokens, temperature=temperature, top_k=top_k,
                                  stop_tokens=stop_ids, seed=seed):
            yield token
            if should_stop():
                return
        return
    streamer = _TokenQueue()
    stop = threading.Event()  # also set when the caller abandons the iterator early
    config = _generation_config(model, max_new_tokens, stop_ids, temperature, top_k)
    finish = _start_generate(model, prompt_ids, streamer, config, lambda: stop.is_set() or should_stop(), seed)
    try:
        for token in streamer:
            if token in stop_ids:
                break
            yield token
    finally:
        stop.set()
        finish()


# ----------------------------------------------------------------------------- the conversation


class ChatSession:
    """A conversation with a chat model: history, chat template, streaming, stop.

    `history` is what the model sees (finished exchanges only); `transcript` is what the person saw,
    every exchange, stopped and cut answers marked (see the module docstring for why they differ).
    """

    def __init__(self, model, tokenizer, config: ChatConfig | None = None,
                 stop_token_ids: Sequence[int] | None = None):
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "this tokenizer has no chat template: set tokenizer.chat_template (a Jinja string) or use a "
                "chat/instruct model such as helpers.instruct.models.load_model('smollm2-135m-instruct')"
            )
        if not _is_transformers(model):
            raise TypeError(f"ChatSession needs a transformers causal LM, got {type(model).__name__}: for the "
                            "tiny GPT use helpers.deploy.chat.stream_tokens")
        if config is not None:
            instance("config", config, ChatConfig, "e.g. ChatConfig(max_new_tokens=100)")
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or ChatConfig()
        if stop_token_ids is None:
            stop_token_ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.stop_token_ids = _check_stop_ids("stop_token_ids", stop_token_ids)
        self.history: list[dict[str, str]] = []
        self.transcript: list[dict[str, str]] = []
        self.last: StreamStats | None = None  # timing of the latest answer
        self.last_reply: Reply | None = None
        self._stop = threading.Event()

    # -- prompt ---------------------------------------------------------------------------------------
    def messages(self, user_message: str) -> list[dict[str, str]]:
        """System prompt (if any) + history + the new user message, as the chat template expects."""
        prompt = self.config.system_prompt
        system = [{"role": "system", "content": prompt}] if prompt else []
        return system + self.history + [{"role": "user", "content": user_message}]

    def _encode(self, messages: list[dict[str, str]]) -> list[int]:
        out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = out["input_ids"] if hasattr(out, "keys") else out  # transformers 5 returns a BatchEncoding
        return list(ids)

    def prompt_ids(self, user_message: str) -> list[int]:
        """Token ids of the next prompt; the oldest exchanges are dropped if it exceeds max_prompt_tokens."""
        if not isinstance(user_message, str) or not user_message.strip():
            raise ValueError("the message is empty: type a question first")
        while True:
            ids = self._encode(self.messages(user_message))
            if len(ids) <= self.config.max_prompt_tokens:
                return ids
            if len(self.history) < 2:
                raise ValueError(
                    f"the message alone takes {len(ids)} tokens, more than max_prompt_tokens="
                    f"{self.config.max_prompt_tokens}: shorten it or raise ChatConfig.max_prompt_tokens"
                )
            del self.history[:2]  # forget the oldest user/assistant exchange (the transcript keeps it)

    # -- generation -----------------------------------------------------------------------------------
    def stop(self) -> None:
        """End the running answer after the token being computed (safe to call from another thread)."""
        self._stop.set()

    def reset(self) -> None:
        """Forget the conversation."""
        self.history.clear()
        self.transcript.clear()
        self.last = None
        self.last_reply = None

    def stream(self, user_message: str) -> Iterator[str]:
        """Yield the answer piece by piece; the exchange is recorded when it ends, stops or is cut."""
        ids = self.prompt_ids(user_message)
        self._stop.clear()
        c = self.config
        streamer = _ChatStreamer(self.tokenizer)
        config = _generation_config(self.model, c.max_new_tokens, self.stop_token_ids, c.temperature, c.top_k)
        start = time.perf_counter()
        finish = _start_generate(self.model, ids, streamer, config, self._stop.is_set, c.seed)
        try:
            for piece in streamer:
                if piece:
                    yield piece
        except BaseException:  # the caller stopped reading (GeneratorExit) or was interrupted: a stop
            self._stop.set()
            _finish_quietly(finish)
            self._record(user_message, streamer, start, len(ids))
            raise
        finish()  # re-raises an error of the generation thread: nothing is recorded then
        self._record(user_message, streamer, start, len(ids))

    def _record(self, user_message: str, streamer: _ChatStreamer, start: float, prompt_tokens: int) -> None:
        total = time.perf_counter() - start
        tokens = list(streamer.token_ids)
        if tokens and tokens[-1] in self.stop_token_ids:
            ending, tokens = "end", tokens[:-1]
        elif self._stop.is_set():
            ending = "stopped"
        else:
            ending = "cut" if len(tokens) >= self.config.max_new_tokens else "end"
        first = streamer.first_token_at - start if streamer.first_token_at is not None else total
        self.last = StreamStats(len(tokens), first, total, prompt_tokens, stopped=ending == "stopped")
        text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        self.last_reply = Reply(text, ending, tuple(tokens))
        self.transcript += [{"role": "user", "content": user_message},
                            {"role": "assistant", "content": self.last_reply.shown}]
        if ending == "end":
            self.history += [{"role": "user", "content": user_message},
                             {"role": "assistant", "content": text}]

    def send(self, user_message: str) -> str:
        """The whole answer at once (its text, without the transcript's marks)."""
        for _ in self.stream(user_message):
            pass
        return self.last_reply.text


def _finish_quietly(finish: Callable[[], None]) -> None:
    """Wait for a generation thread whose result no longer matters (its error, if any, is already moot)."""
    try:
        finish()
    except Exception:  # noqa: BLE001, S110 - the caller is already leaving with its own error or stop
        pass
