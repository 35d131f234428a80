"""The project's own parallel English/Italian customer-service text (`data/parallel_en_it/`).

Written by the project for the course (a fictional e-bike shop; see the folder's README.md). Notebook 01
tokenizes both sides to measure the Italian/English token ratio of each tokenizer and trains small
tokenizers on one side. Left out: sentence-level alignment (pairs are aligned by paragraph).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from helpers.core.data import PROJECT_DATA_DIR
from helpers.core.io import DataFormatError, read_jsonl, read_jsonl_notes

PARALLEL_FILE = PROJECT_DATA_DIR / "parallel_en_it" / "parallel_en_it.jsonl"
FORMAT_VERSION = 1
FIELDS = ("id", "kind", "topic", "split", "en", "it")
SPLITS = ("train", "eval")


@dataclass(frozen=True)
class ParallelPair:
    id: str
    kind: str  # faq | customer | agent | notice
    topic: str
    split: str  # train | eval
    en: str
    it: str


@lru_cache(maxsize=4)
def _load(path: Path) -> tuple[ParallelPair, ...]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path.name} is missing: it ships with the repository in data/parallel_en_it/ "
            "(restore it with `git checkout data/parallel_en_it`)"
        )
    meta = read_jsonl_notes(path).get("_meta")
    if not isinstance(meta, dict):
        raise DataFormatError(f'{path.name}: line 1 must be the header {{"_meta": ...}}; restore the file from git')
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataFormatError(
            f"{path.name}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    pairs = tuple(ParallelPair(**{k: rec[k] for k in FIELDS}) for rec in read_jsonl(path, FIELDS))
    for pair in pairs:
        if pair.split not in SPLITS:
            raise DataFormatError(f"{path.name}: pair {pair.id!r}: split must be one of {SPLITS}, got {pair.split!r}")
    return pairs


def load_parallel(split: str | None = None, path: str | Path | None = None) -> list[ParallelPair]:
    """All aligned pairs (or one split): load_parallel('eval')[0].it -> 'Quanto tempo richiede ...'."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None (all pairs), got {split!r}")
    pairs = _load(Path(path) if path is not None else PARALLEL_FILE)
    return [p for p in pairs if split is None or p.split == split]


def side(pairs: list[ParallelPair], language: str, separator: str = "\n\n") -> str:
    """One language of some pairs as one text: side(pairs, 'it')."""
    if language not in ("en", "it"):
        raise ValueError(f"language must be 'en' or 'it', got {language!r}")
    return separator.join(getattr(p, language) for p in pairs)
