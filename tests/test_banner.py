"""helpers.course.banner: the profile line, and the ci note only under ci."""

import pytest

from helpers.course.banner import banner_text, profile_banner
from helpers.course.profiles import get_profile


def test_ci_gets_the_note_naming_the_noisy_numbers():
    out = banner_text(get_profile("ci"), "the losses and the samples")
    first, *rest = out.splitlines()
    assert first == "profile: ci"
    note = " ".join(rest)
    assert "the losses and the samples are noise" in note
    assert "`cpu` run" in note and "COURSE_PROFILE=cpu" in note
    assert all(len(line) <= 110 for line in rest)


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_cpu_and_gpu_get_only_the_profile_line(name):
    assert banner_text(get_profile(name), "the losses") == f"profile: {name}"


def test_profile_banner_prints_it(capsys):
    profile_banner(get_profile("cpu"), "the losses")
    assert capsys.readouterr().out == "profile: cpu\n"


@pytest.mark.parametrize("profile, noise, error, words", [
    ("ci", "the losses", TypeError, "profile"),
    (None, "the losses", TypeError, "get_profile"),
    ("PROFILE", "", ValueError, "noise"),
    ("PROFILE", 3, TypeError, "noise"),
])
def test_bad_input_names_the_argument(profile, noise, error, words):
    profile = get_profile("ci") if profile == "PROFILE" else profile
    with pytest.raises(error, match=words):
        banner_text(profile, noise)
