"""Solutions: notebook 01, self-checking exercises (helpers.course.exercises)."""


def exercise_1():
    def my_count_pairs(ids):
        counts = {}
        for pair in zip(ids, ids[1:]):  # every position but the last starts a pair; runs overlap
            counts[pair] = counts.get(pair, 0) + 1
        return counts

    return my_count_pairs


def exercise_2():
    def my_merge(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
                out.append(new_id)
                i += 2  # skip both ids of the merged pair: no overlap
            else:
                out.append(ids[i])
                i += 1
        return out

    return my_merge


def exercise_3():
    text = "Perché il reso costa così tanto?"
    return len(text), len(text.encode("utf-8"))


# ----------------------------------------------------------------------------- open exercises
# Each `open_exercise_N` runs the experiment of the notebook's exercise N (sizes are arguments, so a test can
# run it small); its docstring gives the answer to expect. tests/test_solutions_open.py checks them.


def open_exercise_1(trainers, text, sample_chars=(20_000, 60_000), vocab_size=512):
    """Seconds per trainer and sample size -> {(trainer name, chars): seconds}.

    trainers: {name: function(text, vocab_size)}, e.g. {"straightforward": train_bpe, "course":
    BPETokenizer.train} with the notebook's `train_bpe`.

    Answer: the straightforward trainer scales about linearly with the characters (3x the text, ~3x the
    time): every merge re-counts the pairs of every chunk of the whole sample. The course trainer grows
    much less: it counts each *distinct* chunk once with its frequency (distinct words grow far slower
    than the text) and updates pair counts incrementally, touching only the chunks that contain the merged
    pair. So the gap between them widens with the text: that is why section 7 can train on the profile's
    whole text while the hand-written trainer is kept to a sample.
    """
    import time

    times = {}
    for chars in sample_chars:
        sample = text[:chars]
        for name, train in trainers.items():
            start = time.perf_counter()
            train(sample, vocab_size)
            times[(name, chars)] = time.perf_counter() - start
    return times


def crosses_word_boundary(token: bytes) -> bool:
    """A token that goes on past the end of a word (a letter or digit, then whitespace):
    b'of the' -> True, b'ing ' -> True, b' the' -> False, b'.\\n\\n' -> False."""
    import re

    return re.search(rb"\w\s", token) is not None


def open_exercise_2(text, vocab_size, reviews):
    """Train with and without pre-splitting -> {pattern: (tokens crossing a word boundary, bytes per token)}.

    Answer: with `pattern=None` many learned tokens span words (' of the', 'this movie', ', and') because
    frequent word pairs are merged like any other pair; with the split pattern none can (every chunk is at
    most one word with its leading space). Bytes per token on the test reviews go *up* a little without
    pre-splitting (whole phrases become one token), but the vocabulary spends ids on phrases instead of
    word pieces, tokens depend on the neighbouring word (' the' differs from 'of the'), and punctuation and
    numbers get glued to words: that is why GPT-2 and later tokenizers pre-split.
    """
    from helpers.scratch.tokenizer import GPT4_SPLIT_PATTERN, BPETokenizer

    review_bytes = sum(len(r.encode("utf-8")) for r in reviews)
    out = {}
    for name, pattern in (("GPT-4 split", GPT4_SPLIT_PATTERN), ("None", None)):
        tok = BPETokenizer.train(text, vocab_size, pattern=pattern)
        crossing = sum(crosses_word_boundary(tok.token_bytes(i)) for i in range(256, 256 + len(tok.merges)))
        n_tokens = sum(len(tok.encode_ordinary(r)) for r in reviews)
        out[name] = (crossing, review_bytes / n_tokens)
    return out


def open_exercise_3(tokens_en_per_reply, tokens_it_per_reply, eur_per_m_tokens, engineer_day_eur=400.0):
    """Replies per month at which the Italian premium costs as much as one day of an engineer.

    premium per reply = (Italian tokens - English tokens) x price per token; volume = day cost / premium.
    E.g. 120 vs 80 tokens at 0.55 EUR per M output tokens: 40 x 0.55e-6 = 22 micro-EUR per reply, so
    400 EUR / 22e-6 ≈ 18 M replies a month. Answer: at the notebook's price the premium is small per
    reply; it matters at millions of replies a month, or with pricier models (edit `api_output_per_m`),
    and it also costs latency and context that no price shows. engineer_day_eur is illustrative: use
    your own.
    """
    premium = (tokens_it_per_reply - tokens_en_per_reply) * eur_per_m_tokens / 1e6
    if premium <= 0:
        raise ValueError(f"the Italian replies must cost more tokens than the English ones, got "
                         f"{tokens_it_per_reply} vs {tokens_en_per_reply} per reply: check the token counts")
    return engineer_day_eur / premium


def open_exercise_4(text, it_text, en_text, reviews, vocab_size):
    """Tokenizers trained on reviews only and on reviews + Italian -> {name: (review bytes/token, IT/EN)}.

    Answer: adding Italian spends part of the vocabulary on Italian words, so the English reviews get
    slightly fewer bytes per token (a few % worse compression) while the Italian/English token ratio of the
    parallel text falls a lot, towards 1: the same reply in Italian no longer costs far more tokens. A
    tokenizer reflects its training mix; a bilingual shop wants a bilingual tokenizer.
    """
    from helpers.scratch.tokenizer import BPETokenizer

    review_bytes = sum(len(r.encode("utf-8")) for r in reviews)
    out = {}
    for name, corpus in (("reviews", text), ("reviews + Italian", text + "\n\n" + it_text)):
        tok = BPETokenizer.train(corpus, vocab_size)
        bpt = review_bytes / sum(len(tok.encode_ordinary(r)) for r in reviews)
        out[name] = (bpt, len(tok.encode_ordinary(it_text)) / len(tok.encode_ordinary(en_text)))
    return out


def open_exercise_5(texts=("1.490 euro", "1490 euro"), names=("gpt2", "cl100k_base", "o200k_base")):
    """Each reference tokenizer's tokens for each text -> {(name, text): [token strings]}.

    Answer: GPT-2 learned number chunks like any other text, so '1490' splits wherever its merges happen
    to fall. cl100k_base and o200k_base pre-split digits into groups of at most three from the left
    ('1490' -> '149' + '0'), so every number costs about one token per three digits whatever its value,
    and the thousands separator '.' is a token of its own ('1' '.' '490'). Numbers are priced by their
    digits, not their meaning: prices, dates and codes cost more tokens than words of the same length,
    and a model sees '1490' and '1.490' as unrelated token sequences.
    """
    from helpers.scratch.reference_tokenizers import tiktoken_encoding

    out = {}
    for name in names:
        enc = tiktoken_encoding(name)
        for text in texts:
            out[(name, text)] = [enc.decode_single_token_bytes(t).decode("utf-8", "replace")
                                 for t in enc.encode_ordinary(text)]
    return out
