"""A tiny Llama and a tiny ChatML tokenizer, built in-process in well under a second, for the instruct
and evaluate tests: same architecture family and chat format as SmolLM2, no files, no network."""

from __future__ import annotations

import functools

import torch

CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a tiny test model.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TEXTS = [
    "You can return any item within 45 days of delivery.",
    "Puoi restituire qualsiasi articolo entro 45 giorni dalla consegna.",
    "Classify the sentiment of this review as positive or negative.",
    "A wonderful film, I loved every minute. positive negative",
    "Standard shipping within Italy costs 5.90 euro. system user assistant",
] * 4


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TEXTS, trainer)
    return tok.to_str()


def tiny_tokenizer(chat: bool = True, eos: bool = True):
    """A byte-level BPE tokenizer (~400 ids) with ChatML special tokens; chat=False: no chat template."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_tokenizer_json()))
    tok.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|im_end|>"} if eos else {})
    tok.bos_token = "<|im_start|>"
    if chat:
        tok.chat_template = CHATML
    return tok


def tiny_llama(vocab_size: int = 400, seed: int = 0):
    """A 2-layer Llama (GQA 4/2 heads, 32 wide, RoPE, RMSNorm, gated MLP) with random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    return LlamaForCausalLM(config).eval()
