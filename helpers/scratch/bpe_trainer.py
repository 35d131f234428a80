"""The incremental BPE trainer: the merges of byte-level BPE, learned fast enough for a laptop.

`train_merges(chunk_counts, n_merges)` takes the distinct chunks of a text (the pieces the split regex
cuts it into) with how often each occurs, starts from the 256 single bytes, and repeatedly merges the
most frequent adjacent pair into a new token. `helpers.scratch.tokenizer.BPETokenizer.train` cuts the
text and calls it; notebook 01 builds the straightforward version (count every pair, merge, repeat).

Fast because it is smart, not native: each distinct chunk is counted once (with its frequency); after a
merge only the chunks that contain the merged pair are visited, and only the counts next to each merged
occurrence change; a heap with lazy updates finds the next best pair. A chunk is held as a str whose
characters are token ids, so applying a merge is one `str.replace`.

Rules shared with the notebook's straightforward version (a test proves they learn the same merges):
- the best pair is the most frequent; ties go to the smallest (left id, right id);
- a pair whose merge would spell bytes that are already a token is skipped, so every id is a distinct
  byte string (a Hugging Face `tokenizer.json` maps strings to ids and could not hold two).

Left out on purpose: training on iterators larger than memory, and parallel counting.
References: Sennrich et al. 2016 (BPE for NMT); Karpathy's minbpe (the teaching design we follow).
"""

from __future__ import annotations

import heapq


def train_merges(
    chunk_counts: dict[bytes, int], n_merges: int, merge_counts: list[int] | None = None
) -> list[tuple[int, int]]:
    """Learn up to `n_merges` merges from distinct chunks and their counts (stops early if no pair is left).

    If `merge_counts` is a list, each merge appends how many tokens it removed from the training text
    (its pair count, less overlaps: b"aaa" holds the pair (97, 97) twice but merges it once).

    {b"aaab": 2}, n_merges=2 -> [(97, 97), (97, 98)]: "aa", then "ab" (tied with (256, 97): smaller ids win).
    """
    # Representation trick: a word is a str whose characters are token ids (chr(id)), so a merge is
    # str.replace (left to right, non-overlapping: exactly `merge`), and a pair is a 2-character str
    # whose ordering is the ordering of (left id, right id).
    words = [c.decode("latin-1") for c in chunk_counts]
    freqs = list(chunk_counts.values())
    counts, where = _count_pairs(words, freqs)
    heap = [(-c, p) for p, c in counts.items()]
    heapq.heapify(heap)
    vocab = [bytes([i]) for i in range(256)]
    known = set(vocab)
    merges: list[tuple[int, int]] = []
    banned: set[str] = set()  # pairs whose merge would repeat an existing token
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        c = counts.get(pair, 0)
        if c != -neg:
            # subtle: only counts of pairs with the new token grow, and only those are pushed; a count
            # that shrank leaves a too-high entry behind. Re-queue it at its true count and look again.
            if c > 0 and pair not in banned:
                heapq.heappush(heap, (-c, pair))
            continue
        a, b = ord(pair[0]), ord(pair[1])
        spelled = vocab[a] + vocab[b]
        if pair in banned or spelled in known:
            banned.add(pair)  # never again: those bytes are a token already (see module docstring)
            continue
        new = chr(len(vocab))  # the new token's id, as a character
        merges.append((a, b))
        vocab.append(spelled)
        known.add(spelled)
        fresh, removed = _merge_everywhere(pair, new, words, freqs, counts, where)
        if merge_counts is not None:
            merge_counts.append(removed)
        for q in fresh:
            heapq.heappush(heap, (-counts[q], q))
    return merges


def _count_pairs(words: list[str], freqs: list[int]) -> tuple[dict[str, int], dict[str, set[int]]]:
    """Every adjacent pair's count (weighted by its word's frequency), and the words that contain it."""
    counts: dict[str, int] = {}
    where: dict[str, set[int]] = {}  # pair -> words that contain it (may be stale, never incomplete)
    for wi, (w, f) in enumerate(zip(words, freqs, strict=True)):
        for i in range(len(w) - 1):
            p = w[i : i + 2]
            counts[p] = counts.get(p, 0) + f
            s = where.get(p)
            if s is None:
                where[p] = {wi}
            else:
                s.add(wi)
    return counts, where


def _merge_everywhere(
    pair: str, new: str, words: list[str], freqs: list[int], counts: dict[str, int], where: dict[str, set[int]]
) -> tuple[set[str], int]:
    """Replace `pair` by `new` in every word that holds it, updating `counts` and `where` in place.

    Returns the pairs with the new token (the only counts that grew: the caller re-queues them) and how
    many tokens the merge removed from the text. Only the neighbourhood of each merged occurrence changes:
    x a b y -> x N y loses (x, a), (a, b), (b, y) and gains (x, N), (N, y).
    """
    left, right = pair
    counts_get = counts.get
    fresh: set[str] = set()
    removed = 0
    for wi in where.pop(pair, ()):
        w = words[wi]
        nw = w.replace(pair, new)
        if len(nw) == len(w):
            continue  # stale index: this word lost the pair to an earlier merge
        f = freqs[wi]
        removed += f * (len(w) - len(nw))
        j = nw.find(new)
        while j >= 0:
            counts[pair] -= f
            if j > 0:
                x = nw[j - 1]
                counts[(right if x == new else x) + left] -= f  # old left pair (a N N b: was b a)
                q = x + new
                counts[q] = counts_get(q, 0) + f
                fresh.add(q)
                where_q = where.get(q)
                if where_q is None:
                    where[q] = {wi}
                else:
                    where_q.add(wi)
            if j + 1 < len(nw) and nw[j + 1] != new:  # a following N is handled as its left pair
                y = nw[j + 1]
                counts[right + y] -= f
                q = new + y
                counts[q] = counts_get(q, 0) + f
                fresh.add(q)
                where_q = where.get(q)
                if where_q is None:
                    where[q] = {wi}
                else:
                    where_q.add(wi)
            j = nw.find(new, j + 1)
        words[wi] = nw
    return fresh, removed
