"""Test-session set-up: the network is blocked for the whole session (loopback allowed).

Run everything:  make test        (or: COURSE_PROFILE=ci pytest --nbval-lax)
"""

from __future__ import annotations

import os

os.environ.setdefault("COURSE_PROFILE", "ci")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from helpers.netguard import block_network  # noqa: E402

block_network()
