"""Byte-level BPE: the tokenizer notebook 01 builds step by step, finished, fast and HF-compatible.

A token is a byte string. Training starts from the 256 single bytes and repeatedly merges the most
frequent adjacent pair into a new token; encoding replays the merges in the order they were learned.
Text is first cut into chunks by a regex (GPT-4 style), so merges never cross a word/space/digit
boundary; special tokens (end-of-text, chat turns) are never produced by merges.

Training is `helpers.scratch.bpe_trainer.train_merges` (incremental: it visits only what a merge
changes); this module cuts the text into chunks for it and holds the result. Encoding caches each
distinct chunk. The file format is `helpers.scratch.tokenizer_file` (`save`/`load`), the Hugging Face
export `helpers.scratch.tokenizer_hf` (`to_hf`/`to_transformers`).

Left out on purpose: byte-fallback/unknown tokens (every byte is a token), normalisation, dropout,
and training on iterators larger than memory. References: Sennrich et al. 2016 (BPE for NMT);
Radford et al. 2019 (byte-level BPE, GPT-2); Karpathy's minbpe (the teaching design we follow).
"""

from __future__ import annotations

import operator
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import repeat
from pathlib import Path

import regex

from helpers.core.io import write_text
from helpers.scratch import tokenizer_file, tokenizer_hf
from helpers.scratch.bpe_trainer import train_merges

# The split pattern of cl100k_base (GPT-4's tokenizer) as tiktoken publishes it, with one portable
# change — subtle: `\p{N}{1,3}+` is a possessive quantifier in Python's `regex` but means
# `(\p{N}{1,3})+` (all the digits at once) in Oniguruma's Ruby syntax, which HF `tokenizers` uses.
# At the end of an alternative possessive and greedy match the same, so we drop the `+`.
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s"""
)
DEFAULT_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # end of text, chat turns
EOT = "<|endoftext|>"
COURSE_FILE = "course.bpe"  # the course tokenizer's file name (helpers.course.catchup keeps it in artifacts/tokenizer/)
MAX_VOCAB = 1_000_000  # ids are stored as characters while training/encoding (Unicode ends at 0x10FFFF)
_NO_MERGE = chr(0x10FFFF)  # sorts after every id character: "no merge for this pair"


def _check_special_tokens(special_tokens) -> list[str]:
    if special_tokens is None:
        return []
    if isinstance(special_tokens, str) or not isinstance(special_tokens, Iterable):
        raise TypeError(
            f"special_tokens must be a list of strings such as {DEFAULT_SPECIAL_TOKENS}, "
            f"got {type(special_tokens).__name__}"
        )
    tokens = list(special_tokens)
    for t in tokens:
        if not isinstance(t, str) or not t:
            raise ValueError(f"special_tokens must be non-empty strings, got {t!r}")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"special_tokens has duplicates: {tokens}; list each once")
    return tokens


class BPETokenizer:
    """A trained byte-level BPE tokenizer: ids 0-255 are bytes, then merges, then special tokens.

    >>> tok = BPETokenizer.train("the cat sat on the mat " * 20, vocab_size=270)
    >>> tok.decode(tok.encode("the cat")) == "the cat"
    True
    """

    def __init__(
        self,
        merges: Sequence[tuple[int, int]],
        pattern: str | None = GPT4_SPLIT_PATTERN,
        special_tokens: Sequence[str] | None = DEFAULT_SPECIAL_TOKENS,
        meta: dict | None = None,
    ):
        if len(merges) + 256 > MAX_VOCAB:
            raise ValueError(f"{len(merges)} merges: at most {MAX_VOCAB - 256:,} are supported")
        vocab = [bytes([i]) for i in range(256)]
        self._ranks: dict[tuple[int, int], int] = {}
        for i, (a, b) in enumerate(merges):
            new_id = 256 + i
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise ValueError(
                    f"merge {i} ({a}, {b}) uses an id that does not exist yet (< {new_id} needed)"
                )
            vocab.append(vocab[a] + vocab[b])
            self._ranks[(a, b)] = new_id
        if len(set(vocab)) != len(vocab):
            raise ValueError("two merges spell the same bytes: every token must be a distinct byte string")
        self._merges = [tuple(m) for m in merges]
        self._char_ranks = {chr(a) + chr(b): chr(i) for (a, b), i in self._ranks.items()}  # for _encode_chunk
        self._char_pairs = {new: pair for pair, new in self._char_ranks.items()}
        self._vocab = vocab
        self.pattern = pattern
        self._split = regex.compile(pattern) if pattern is not None else None
        specials = _check_special_tokens(special_tokens)
        self._specials = {t: len(vocab) + i for i, t in enumerate(specials)}
        self._special_by_id = {i: t.encode("utf-8") for t, i in self._specials.items()}
        # Longest first, so a special token that contains another one wins.
        self._special_re = (
            regex.compile("|".join(regex.escape(t) for t in sorted(specials, key=len, reverse=True)))
            if specials
            else None
        )
        self.meta = dict(meta or {})
        self._cache: dict[str, list[int]] = {}

    # ---- training -------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        pattern: str | None = GPT4_SPLIT_PATTERN,
        special_tokens: list[str] | None = DEFAULT_SPECIAL_TOKENS,
        meta: dict | None = None,
    ) -> BPETokenizer:
        """Learn merges until the vocabulary (bytes + merges + special tokens) has `vocab_size` entries.

        Stops early (a smaller vocabulary) if the text runs out of pairs to merge.
        """
        specials = _check_special_tokens(special_tokens)
        if not isinstance(text, str):
            raise TypeError(
                f"text must be a str, got {type(text).__name__}: decode bytes first "
                "(text.decode('utf-8')) or join a list of documents with '\\n\\n'"
            )
        if not text:
            raise ValueError(
                "text is empty: train on at least a few sentences, e.g. "
                "helpers.core.data.pretraining_text(200_000)"
            )
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__} {vocab_size!r}")
        minimum = 256 + len(specials)
        if vocab_size > MAX_VOCAB:
            raise ValueError(
                f"vocab_size={vocab_size} is too large: it must be <= {MAX_VOCAB:,} (typical: 1k-200k)"
            )
        if vocab_size < minimum:
            raise ValueError(
                f"vocab_size={vocab_size} is too small: it must be >= {minimum} "
                f"(256 byte tokens + {len(specials)} special tokens), e.g. 1024"
            )
        split = regex.compile(pattern) if pattern is not None else None
        counts: Counter[str] = Counter()
        for piece in _split_on_specials(text, specials):
            counts.update(split.findall(piece) if split is not None else [piece])
        chunk_counts = {c.encode("utf-8"): n for c, n in counts.items()}
        merges = train_merges(chunk_counts, vocab_size - minimum)
        return cls(merges, pattern, specials, meta)

    # ---- properties -----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return len(self._vocab) + len(self._specials)

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._specials)

    @property
    def eot_id(self) -> int:
        if EOT not in self._specials:
            raise KeyError(
                f"this tokenizer has no {EOT!r} special token: train it with "
                f"special_tokens including {EOT!r} (the default does)"
            )
        return self._specials[EOT]

    @property
    def merges(self) -> list[tuple[int, int]]:
        """The learned merges in order; merge i made token 256 + i."""
        return list(self._merges)

    def __repr__(self) -> str:
        pattern = "GPT-4" if self.pattern == GPT4_SPLIT_PATTERN else "custom" if self.pattern else None
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)}, "
            f"special_tokens={list(self._specials)}, pattern={pattern})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BPETokenizer):
            return NotImplemented
        return (self._merges, self.pattern, self._specials) == (other._merges, other.pattern, other._specials)

    # ---- encode / decode ------------------------------------------------------------------
    def _encode_chunk(self, chunk: str) -> list[int]:
        """Replay the merges on one chunk, earliest-learned first (the notebook's `encode_chunk`)."""
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        # Same trick as training: token ids as characters, a merge is str.replace, and the new token's
        # character doubles as its rank (a merge learned earlier has a smaller id).
        w = chunk.encode("utf-8").decode("latin-1")
        get, pair_of = self._char_ranks.get, self._char_pairs
        while len(w) >= 2:
            best = min(map(get, [w[i : i + 2] for i in range(len(w) - 1)], repeat(_NO_MERGE)))
            if best == _NO_MERGE:
                break
            w = w.replace(pair_of[best], best)
        ids = [ord(c) for c in w]
        if len(self._cache) < 1_000_000:  # bound memory on pathological inputs
            self._cache[chunk] = ids
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode text with no special-token handling (their characters are ordinary text here)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        chunks = self._split.findall(text) if self._split is not None else ([text] if text else [])
        out: list[int] = []
        cache = self._cache
        try:
            for chunk in chunks:
                ids = cache.get(chunk)
                out.extend(ids if ids is not None else self._encode_chunk(chunk))
        except UnicodeEncodeError as err:
            raise ValueError(
                f"text contains a character UTF-8 cannot encode ({err.reason}, e.g. a lone "
                "surrogate): clean it with text.encode('utf-8', 'replace').decode()"
            ) from err
        return out

    def encode(self, text: str, allowed_special: str | set[str] = "none") -> list[int]:
        """Text -> ids. Special tokens become their id only if `allowed_special` allows them.

        allowed_special: "none" (default: raise if the text contains one), "all", or a set of tokens.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if allowed_special == "all":
            allowed = set(self._specials)
        elif allowed_special == "none":
            allowed = set()
        elif isinstance(allowed_special, (set, frozenset)):
            unknown = set(allowed_special) - set(self._specials)
            if unknown:
                raise ValueError(
                    f"allowed_special names tokens this tokenizer does not have: {sorted(unknown)}; "
                    f"its special tokens are {list(self._specials)}"
                )
            allowed = set(allowed_special)
        else:
            raise ValueError(
                f"allowed_special must be 'none', 'all' or a set of special tokens, got {allowed_special!r}"
            )
        if self._special_re is None:
            return self.encode_ordinary(text)
        out: list[int] = []
        start = 0
        for m in self._special_re.finditer(text):
            if m.group() not in allowed:
                raise ValueError(
                    f"the text contains the special token {m.group()!r} at position {m.start()}, which "
                    f"allowed_special={allowed_special!r} does not allow: pass allowed_special='all' (or "
                    f"{{{m.group()!r}}}) if it is meant as a control token, or remove it from the text"
                )
            out.extend(self.encode_ordinary(text[start : m.start()]))
            out.append(self._specials[m.group()])
            start = m.end()
        out.extend(self.encode_ordinary(text[start:]))
        return out

    def _as_id(self, i) -> int:
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise ValueError(f"token ids must be ints, got {type(i).__name__} {i!r}")
        return operator.index(i)  # numpy / torch integers are fine

    def _unknown(self, i) -> ValueError:
        return ValueError(
            f"unknown token id {i!r}: ids of this tokenizer are in [0, {self.vocab_size}) "
            "(were they made by a different tokenizer?)"
        )

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one id stands for: 32 -> b' '."""
        i = self._as_id(token_id)
        if 0 <= i < len(self._vocab):
            return self._vocab[i]
        if i in self._special_by_id:
            return self._special_by_id[i]
        raise self._unknown(i)

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Ids -> the exact bytes they stand for: [104, 105] -> b'hi'."""
        vocab, n, parts = self._vocab, len(self._vocab), []
        for i in ids:
            parts.append(vocab[i] if type(i) is int and 0 <= i < n else self.token_bytes(i))
        return b"".join(parts)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text; bytes that are not valid UTF-8 on their own (a cut multi-byte char) become '�'."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # ---- save / load (the format: helpers.scratch.tokenizer_file) -------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write a readable, checksummed text file (atomically: a crash never leaves half a file). Returns the path."""
        return write_text(path, tokenizer_file.dumps(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a file written by `save`; a damaged or foreign file is a TokenizerFileError naming it."""
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(
                f"{path} is a folder: pass the tokenizer file inside it, e.g. {path / COURSE_FILE}"
            )
        return tokenizer_file.read(path, cls)

    # ---- Hugging Face export (helpers.scratch.tokenizer_hf) -------------------------------
    def to_hf(self, path: str | os.PathLike) -> Path:
        """Write a Hugging Face `tokenizer.json` (a folder gets `tokenizer.json` inside). Returns the file.

        Same ids as `encode(text, allowed_special="all")`, except for characters assigned in Unicode after
        14.0 (see helpers.scratch.tokenizer_hf).
        """
        return tokenizer_hf.save_tokenizer_json(self, path)

    def to_transformers(self):
        """A `PreTrainedTokenizerFast` giving the same ids (special tokens in text are always matched,
        like allowed_special='all')."""
        return tokenizer_hf.to_transformers(self, eos_token=EOT if EOT in self._specials else None)


def _split_on_specials(text: str, specials: Sequence[str]) -> list[str]:
    """'a<|endoftext|>b' -> ['a', 'b']: special tokens are boundaries in training text."""
    if not specials:
        return [text]
    pattern = regex.compile("|".join(regex.escape(t) for t in sorted(specials, key=len, reverse=True)))
    return [p for p in pattern.split(text) if p]
