"""The course tokenizer's file format ("course-bpe v1"): a readable text file, checksummed.

    course-bpe v1
    # byte-level BPE saved by helpers.scratch.tokenizer; edits break the checksum on the last line
    pattern "<the split regex as JSON, or null>"
    meta {"json": "object"}
    special_tokens 3
    "<|endoftext|>"            (one JSON string a line, in id order)
    merges 766
    101 32                     (left id, right id: merge i made token 256 + i)
    sha256 <hex digest of every line above>

`dumps(tok)` writes it for any tokenizer with `pattern`, `meta`, `special_tokens` and `merges`
(`BPETokenizer.save` writes the text atomically); `read(path, build)` checks it and calls
`build(merges, pattern, special_tokens, meta)`, so an error of the constructor (a merge that uses an id
that does not exist yet, duplicate special tokens) is reported as a damaged file too. Every problem is a
`TokenizerFileError` naming the file and what to do: a truncated or edited file, another format (a Hugging
Face tokenizer.json, a minbpe model) or another version.

Left out on purpose: reading other formats (tokenizer.json has its own loader in `tokenizers`; the export
to it is `helpers.scratch.tokenizer_hf`) and migrating old versions (there is one).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import regex

FORMAT_NAME = "course-bpe"
FORMAT_VERSION = 1  # bump when the file layout changes; read() refuses versions it does not know

T = TypeVar("T")


class TokenizerFileError(ValueError):
    """A saved tokenizer file is truncated, edited, from another format or another version."""


def dumps(tok) -> str:
    """The file's text for `tok`: header, special tokens, merges, and the checksum line."""
    lines = [
        f"{FORMAT_NAME} v{FORMAT_VERSION}",
        "# byte-level BPE saved by helpers.scratch.tokenizer; edits break the checksum on the last line",
        f"pattern {json.dumps(tok.pattern)}",
        f"meta {json.dumps(tok.meta, sort_keys=True)}",
        f"special_tokens {len(tok.special_tokens)}",
    ]
    lines += [json.dumps(t) for t in tok.special_tokens]  # in id order
    lines.append(f"merges {len(tok.merges)}")
    lines += [f"{a} {b}" for a, b in tok.merges]
    body = "\n".join(lines) + "\n"
    return body + f"sha256 {hashlib.sha256(body.encode('utf-8')).hexdigest()}\n"


def read(path: str | os.PathLike, build: Callable[..., T]) -> T:
    """Check the file at `path` and return build(merges, pattern, special_tokens, meta)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TokenizerFileError(f"{path} is not a text file: not a {FORMAT_NAME} tokenizer") from err
    # folder/file names it without a machine-specific prefix (/home/...) in stored notebook outputs
    return parse(text, f"{path.parent.name}/{path.name}", build)


def parse(text: str, name: str, build: Callable[..., T]) -> T:
    """The checked content of a file's `text` (called `name` in errors), passed to `build`."""
    lines = _checked_lines(text, name)
    try:
        return build(*_fields(lines))
    except (ValueError, IndexError, TypeError, regex.error) as err:
        raise TokenizerFileError(f"{name}: malformed content ({err}): delete it and retrain") from err


def _checked_lines(text: str, name: str) -> list[str]:
    """The lines above the checksum, once the first line names this format and version and the checksum fits."""

    def bad(msg: str) -> TokenizerFileError:
        return TokenizerFileError(f"{name}: {msg}")

    first = text.split("\n", 1)[0].strip()
    if not first.startswith(FORMAT_NAME + " "):
        hint = ""
        if first.startswith("{"):
            hint = (
                " It looks like JSON (a Hugging Face tokenizer.json?): load that with "
                "transformers.PreTrainedTokenizerFast(tokenizer_file=...)."
            )
        elif first.startswith("minbpe"):
            hint = " It is a minbpe model file: load it with minbpe."
        raise bad(
            f"not a {FORMAT_NAME} file (first line {first[:40]!r}).{hint} "
            f"Files written by BPETokenizer.save start with '{FORMAT_NAME} v{FORMAT_VERSION}'."
        )
    if first != f"{FORMAT_NAME} v{FORMAT_VERSION}":
        raise bad(
            f"format {first!r} is not supported: this helpers reads '{FORMAT_NAME} v{FORMAT_VERSION}'. "
            "Re-save it with the helpers version that wrote it, or retrain."
        )
    body, _, last = text.removesuffix("\n").rpartition("\n")
    body += "\n"
    if not text.endswith("\n") or not regex.fullmatch(r"sha256 [0-9a-f]{64}", last):
        raise bad(
            "the file is truncated (its last line should be 'sha256 <checksum>'): "
            "save it again, or delete it and retrain"
        )
    if hashlib.sha256(body.encode("utf-8")).hexdigest() != last.removeprefix("sha256 "):
        raise bad(
            "the checksum does not match: the file was edited or damaged after saving. "
            "Don't edit it by hand; delete it and retrain (or save again from Python)"
        )
    return body.split("\n")


def _fields(lines: list[str]) -> tuple[list[tuple[int, ...]], str | None, list[str], dict]:
    """(merges, pattern, special_tokens, meta) from the checked lines; ValueError names what is wrong."""

    def header(i: int, key: str) -> str:
        if i >= len(lines) or not lines[i].startswith(key + " "):
            raise ValueError(f"line {i + 1} should start with {key!r}")
        return lines[i][len(key) + 1 :]

    pattern = json.loads(header(2, "pattern"))
    meta = json.loads(header(3, "meta"))
    n_special = int(header(4, "special_tokens"))
    specials = [json.loads(line) for line in lines[5 : 5 + n_special]]
    k = 5 + n_special
    n_merges = int(header(k, "merges"))
    merges = [tuple(int(x) for x in line.split()) for line in lines[k + 1 : k + 1 + n_merges]]
    if len(merges) != n_merges or any(len(m) != 2 for m in merges) or lines[k + 1 + n_merges :] != [""]:
        raise ValueError("the merge list does not have the length its header says")
    if not isinstance(meta, dict):
        raise ValueError("meta must be a JSON object")
    return merges, pattern, specials, meta
