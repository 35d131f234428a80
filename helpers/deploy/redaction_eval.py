"""Measuring redaction: the project's labelled privacy data and the precision and recall of `find_pii`.

- `TESTSET` (data/privacy/redaction_testset.jsonl): fictional, labelled records, 60 per kind plus mixed
  records and hard negatives; `CUSTOMER_MESSAGES`: 30 fictional messages to the course's shop (notebook 07).
  `load_jsonl` reads either (`{"_about": ...}` notes skipped), with errors naming the file and line.
- `score_redaction(records)` -> {kind: KindScore}: exact-span matches (kind, start and end all agree).

Left out on purpose: partial-overlap credit (a span that is off by one character is a miss: a redaction
that leaves a digit behind leaks it) and scoring the placeholders (they follow from the kind).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from helpers.core.data import PROJECT_DATA_DIR
from helpers.core.io import read_jsonl
from helpers.deploy.privacy import KINDS, find_pii

DATA_DIR = PROJECT_DATA_DIR / "privacy"  # schema: its README.md
TESTSET = DATA_DIR / "redaction_testset.jsonl"  # labelled, fictional: 60 per kind + hard negatives
CUSTOMER_MESSAGES = DATA_DIR / "customer_messages.jsonl"  # 30 fictional messages to Zefiro Bikes


def load_jsonl(path: str | Path = TESTSET) -> list[dict]:
    """Records of a privacy JSONL file (`{"_about": ...}` notes skipped): `helpers.core.io.read_jsonl`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the privacy data lives in data/privacy/ of the checkout")
    return read_jsonl(path)


@dataclass(frozen=True)
class KindScore:
    """Exact-span matches for one kind: a found span counts only if kind, start and end all agree."""

    kind: str
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score_redaction(records: Iterable[dict], kinds: Iterable[str] = KINDS) -> dict[str, KindScore]:
    """Precision and recall per kind of `find_pii` on labelled records ({"text", "entities": [...]})."""
    kinds = tuple(kinds)
    counts = {k: [0, 0, 0] for k in kinds}  # tp, fp, fn
    for n, rec in enumerate(records):
        if "text" not in rec or "entities" not in rec:
            raise ValueError(f"record {n} needs 'text' and 'entities' fields (see data/privacy/README.md)")
        gold = {(e["kind"], e["start"], e["end"]) for e in rec["entities"] if e["kind"] in kinds}
        found = {(r.kind, r.start, r.end) for r in find_pii(rec["text"], kinds)}
        for kind, *_ in found & gold:
            counts[kind][0] += 1
        for kind, *_ in found - gold:
            counts[kind][1] += 1
        for kind, *_ in gold - found:
            counts[kind][2] += 1
    return {k: KindScore(k, *c) for k, c in counts.items()}
