"""The first lines a notebook prints: its profile, and under `ci` a note that its numbers are noise.

`ci` is the size the test suite runs (the whole course in minutes on 2 cores): big enough to prove that every
cell works, far too small for losses, accuracies or timings to mean anything. A learner who opens a notebook
executed under `ci` should read that before the numbers, not after them.

    profile_banner(get_profile(), "the losses, the samples and the run's cost")  # first code cell of 03
"""

from __future__ import annotations

import textwrap

from helpers.core.checks import instance, text
from helpers.course.profiles import Profile


def banner_text(profile: Profile, noise: str) -> str:
    """The profile line, plus under `ci` one paragraph saying which of this notebook's numbers (`noise`, e.g.
    "the losses, the samples and the run's cost") are noise at that size and where the real ones come from."""
    instance("profile", profile, Profile, fix="pass helpers.course.profiles.get_profile()")
    text("noise", noise, fix='name the numbers that mean nothing at the ci size, e.g. "the losses and accuracies"')
    line = f"profile: {profile.name}"
    if profile.name != "ci":
        return line
    note = (
        f"Note: this notebook ran at the tiny `ci` size, the one the test suite uses. Every cell works at this size, "
        f"but {noise.strip()} are noise here: they show that the code runs, not what it teaches. The course's "
        "committed outputs come from a `cpu` run; run the notebook with COURSE_PROFILE=cpu (or gpu) to see the "
        "numbers the text describes."
    )
    return line + "\n" + textwrap.fill(note, width=110)


def profile_banner(profile: Profile, noise: str) -> None:
    """Print `banner_text(profile, noise)`: the first output of a notebook (in a cell nbval does not compare)."""
    print(banner_text(profile, noise))
