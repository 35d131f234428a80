"""Chat templates: an `Example` as the text a model reads (the prompt) and the text it must write (the response).

- The model's own chat template when it has one (`tokenizer.apply_chat_template`), else `SIMPLE_TEMPLATE`
  (documented below), so a base model without a template can be tuned too.
- `render` splits the conversation into prompt and response *text*; `encode_prompt` turns the prompt into
  the ids a model reads at generation time (scoring uses it; `helpers.instruct.masking` builds training
  labels on top of it).

Left out on purpose: multi-turn rendering beyond few-shot turns, tool calls, and Jinja templates of our own
(the tokenizer's template is the model's contract; we only split it).

Reference: the Hugging Face chat-templating guide (transformers docs, "Chat templates").
"""

from __future__ import annotations

from dataclasses import dataclass

from helpers.core.checks import instance
from helpers.instruct.instructions import Example

# The fallback for models without a chat template (e.g. a base model). Each turn is a header line,
# the text, and a blank line; the response ends with the tokenizer's end-of-sequence token, so the
# model learns when to stop:
#
#   ### System:\n{system}\n\n### User:\n{prompt}\n\n### Assistant:\n{response}<eos>
SIMPLE_TEMPLATE = {
    "system": "### System:\n{}\n\n",
    "user": "### User:\n{}\n\n",
    "assistant": "### Assistant:\n",
}


class TemplateError(ValueError):
    """The tokenizer cannot format a conversation (no chat template and no fallback, or no EOS token)."""


@dataclass(frozen=True)
class Rendered:
    prompt: str  # everything the model reads before answering (ends with the assistant header)
    response: str  # what it must write, including the end-of-turn marker
    template: str  # "chat" (the model's own) or "simple" (SIMPLE_TEMPLATE)


def check_tokenizer(tokenizer) -> None:
    """A transformers tokenizer (callable, with decode and apply_chat_template), else a TypeError naming the fix."""
    if not (callable(tokenizer) and hasattr(tokenizer, "decode") and hasattr(tokenizer, "apply_chat_template")):
        raise TypeError(f"tokenizer must be a transformers tokenizer, got {type(tokenizer).__name__}: use "
                        "loaded.tokenizer or helpers.instruct.models.load_tokenizer() (the course's BPE tokenizer "
                        "of helpers.scratch has no chat template)")


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _messages(example: Example) -> list[dict]:
    messages = [{"role": "system", "content": example.system}] if example.system is not None else []
    for user, assistant in example.shots:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages + [{"role": "user", "content": example.prompt}]


def render(tokenizer, example: Example, fallback: dict | None = SIMPLE_TEMPLATE) -> Rendered:
    """Split an example into prompt text and response text with the model's chat template (or `fallback`).

    SmolLM2: Example("Hi?", "Hello.") -> prompt '<|im_start|>system\\n...<|im_end|>\\n<|im_start|>user\\nHi?'
    '<|im_end|>\\n<|im_start|>assistant\\n', response 'Hello.<|im_end|>\\n'.
    """
    check_tokenizer(tokenizer)
    instance("example", example, Example, "build one with helpers.instruct.instructions.Example(prompt, response)")
    if fallback is not None:
        instance("fallback", fallback, dict, "a dict like SIMPLE_TEMPLATE, or None")
        missing = [k for k in SIMPLE_TEMPLATE if k not in fallback]
        if missing:
            raise ValueError(f"fallback lacks the key(s) {missing}: give it the keys of SIMPLE_TEMPLATE "
                             f"{list(SIMPLE_TEMPLATE)}")
    if has_chat_template(tokenizer):
        messages = _messages(example)
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": example.response}],
                                             tokenize=False)
        if not full.startswith(prompt):
            raise TemplateError("this chat template does not render the prompt as a prefix of the "
                                "conversation, so prompt tokens cannot be masked: remove "
                                "tokenizer.chat_template to use SIMPLE_TEMPLATE instead")
        return Rendered(prompt, full[len(prompt):], "chat")
    if fallback is None:
        raise TemplateError(f"{type(tokenizer).__name__} has no chat template and no fallback was given: "
                            "pass fallback=helpers.instruct.templates.SIMPLE_TEMPLATE, or use a model with a "
                            "chat template")
    eos = getattr(tokenizer, "eos_token", None)
    if not eos:
        raise TemplateError("the simple template ends each response with the tokenizer's eos_token, but this "
                            "tokenizer has none: set tokenizer.eos_token (e.g. to its end-of-text token)")
    parts = [fallback["system"].format(example.system)] if example.system is not None else []
    for user, assistant in example.shots:
        parts += [fallback["user"].format(user), fallback["assistant"] + assistant + "\n\n"]
    parts += [fallback["user"].format(example.prompt), fallback["assistant"]]
    return Rendered("".join(parts), example.response + eos, "simple")


def encode_prompt(tokenizer, rendered: Rendered) -> list[int]:
    """Token ids of the prompt. The chat template writes its own special tokens; the simple one lets
    the tokenizer add its usual ones (e.g. <bos>)."""
    check_tokenizer(tokenizer)
    instance("rendered", rendered, Rendered, "what render(tokenizer, example) returned")
    return tokenizer(rendered.prompt, add_special_tokens=rendered.template == "simple")["input_ids"]
