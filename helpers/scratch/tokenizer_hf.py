"""The course tokenizer in Hugging Face's formats: a `tokenizers.Tokenizer` (and its `tokenizer.json`) and a
transformers `PreTrainedTokenizerFast`, giving the same ids as `BPETokenizer.encode(text, allowed_special="all")`.

A byte-level BPE vocabulary in `tokenizer.json` maps *strings* to ids, each byte written with GPT-2's
printable stand-in (`bytes_to_unicode`: 32, a space, is 'Ġ'); the merges are pairs of such strings. The
split regex becomes a `Split` pre-tokenizer before `ByteLevel`, and the special tokens are added tokens
with the ids they have in ours.

Limitation: HF splits text with Oniguruma, whose Unicode tables are older than those of Python's `regex`
(Unicode 17.0, 2025). A scan of every code point found 17,480 that split differently, all of them
unassigned in Unicode 14.0 (e.g. scripts added in 17.0); tests/test_tokenizer.py checks the characters
assigned before.

Left out on purpose: importing a tokenizer.json back into a BPETokenizer (GPT-2's merges are loaded in
tests/test_tokenizer.py to check our encoder against tiktoken) and slow (Python) HF tokenizers.
References: Radford et al. 2019 (GPT-2's byte-to-unicode table); the `tokenizers` BPE model documentation.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpers.core.io import write_text


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte (HF byte-level vocabularies are written with it).

    Printable Latin-1 bytes stand for themselves; the others are shifted to 256+: 32 (space) -> 'Ġ'.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, shifted = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def hf_tokenizer(tok):
    """`tok` (a BPETokenizer: merges, pattern, special_tokens, token_bytes) as a `tokenizers.Tokenizer`."""
    # lazy: only the export needs the tokenizers package
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    b2u = bytes_to_unicode()

    def show(bs: bytes) -> str:
        return "".join(b2u[b] for b in bs)

    token_bytes = [tok.token_bytes(i) for i in range(256 + len(tok.merges))]
    vocab = {show(bs): i for i, bs in enumerate(token_bytes)}
    merges = [(show(token_bytes[a]), show(token_bytes[b])) for a, b in tok.merges]
    model = models.BPE(
        vocab=vocab, merges=merges, dropout=None, unk_token=None, fuse_unk=False, byte_fallback=False,
        ignore_merges=False,
    )
    out = Tokenizer(model)
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if tok.pattern is not None:
        split = pre_tokenizers.Split(Regex(tok.pattern), behavior="isolated", invert=False)
        out.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
    else:
        out.pre_tokenizer = byte_level
    out.decoder = decoders.ByteLevel()
    specials = tok.special_tokens
    out.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    got = {t: out.token_to_id(t) for t in specials}
    if got != specials:  # pragma: no cover - a tokenizers release that numbers added tokens differently
        raise RuntimeError(f"HF export numbered the special tokens {got}, expected {specials}")
    return out


def save_tokenizer_json(tok, path: str | os.PathLike) -> Path:
    """Write `tok` as a Hugging Face `tokenizer.json` (a folder gets `tokenizer.json` inside). Returns the file."""
    path = Path(path)
    if path.suffix != ".json":
        path.mkdir(parents=True, exist_ok=True)
        path = path / "tokenizer.json"
    return write_text(path, hf_tokenizer(tok).to_str(pretty=True))


def to_transformers(tok, eos_token: str | None = None):
    """`tok` as a transformers `PreTrainedTokenizerFast` (special tokens in text are always matched, like
    allowed_special='all'); `eos_token` names its end-of-sequence token, if it has one."""
    from transformers import PreTrainedTokenizerFast  # lazy: transformers takes seconds to import

    kwargs = {"eos_token": eos_token} if eos_token is not None else {}
    return PreTrainedTokenizerFast(tokenizer_object=hf_tokenizer(tok), **kwargs)
