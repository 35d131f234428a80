"""Where the course keeps what it builds: `artifacts/` at the repository root (git-ignored).

Override with COURSE_ARTIFACTS_DIR (tests point it at a temporary folder). Notebooks save the
tokenizer, the pretrained tiny GPT, adapters and the cost ledger here, and later notebooks read them.
"""

from __future__ import annotations

import os
from pathlib import Path

ARTIFACTS_ENV = "COURSE_ARTIFACTS_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]


def artifacts_dir(*parts: str, create: bool = True) -> Path:
    """`artifacts_dir("tokenizer")` -> <repo>/artifacts/tokenizer (created unless create=False)."""
    for part in parts:
        if not isinstance(part, str) or not part or part.startswith("/") or ".." in Path(part).parts:
            raise ValueError(f"artifacts_dir parts must be folder names inside artifacts/, got {part!r}: "
                             "e.g. artifacts_dir('tokenizer')")
    root = Path(os.environ.get(ARTIFACTS_ENV) or REPO_ROOT / "artifacts")
    path = root.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def display_path(path: str | os.PathLike) -> str:
    """A path as a learner should see it in stored outputs: relative to the repository, never /root/..."""
    p = Path(path).resolve()
    for base, label in ((REPO_ROOT, ""), (Path.home(), "~/")):
        try:
            rel = p.relative_to(base)
            return f"{label}{rel}" if label else str(rel)
        except ValueError:
            continue
    return p.name
