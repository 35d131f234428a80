"""Tests for helpers.core.io, the one atomic-write helper, and for the savers that go through it.

Proves: a write is all or nothing (a failure leaves the old file and no temp file); a full disk is a
DiskFullError naming the folder; temp files of a *killed* process are removed at the next save, those
of a live one are not; a multi-file save (`replace_dir`, `save_gpt`) interrupted between its files, or
between its two renames, leaves the previous version loadable.

Run: .venv/bin/python -m pytest tests/test_io.py -q
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.core import io
from helpers.core.io import DiskFullError, clean_stale, replace_dir, write_bytes, write_json, write_text
from helpers.scratch import gpt_io
from helpers.scratch.gpt import GPT, GPTConfig
from helpers.scratch.tokenizer import BPETokenizer

REPO = Path(__file__).resolve().parent.parent


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


# ----------------------------------------------------------------------------- one file


def test_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_json(target, {"name": "café", "n": 1})
    assert target.read_text(encoding="utf-8") == '{\n  "name": "café",\n  "n": 1\n}\n'
    write_text(target, "second\n")
    assert target.read_text() == "second\n" and [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = write_bytes(tmp_path / "w.bin", b"old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_bytes(target, b"new")
    monkeypatch.undo()
    assert _files(tmp_path) == {"w.bin": b"old"}


def test_disk_full_is_named_with_the_folder(tmp_path, monkeypatch):
    target = write_bytes(tmp_path / "w.bin", b"old")
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(DiskFullError, match=rf"disk full while saving into {tmp_path}.*free some space") as info:
        write_bytes(target, b"new" * 1000)
    monkeypatch.undo()
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert _files(tmp_path) == {"w.bin": b"old"}


# ----------------------------------------------------------------------------- leftovers of killed writes


def test_clean_stale_removes_only_what_dead_processes_left(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    stale_file = tmp_path / f"{io.TMP_PREFIX}model.safetensors.{dead}.abc123"
    stale_dir = tmp_path / f"{io.TMP_PREFIX}tiny_gpt.{dead}.xyz"
    in_progress = tmp_path / f"{io.TMP_PREFIX}other.json.{live}.def456"
    backup = tmp_path / f"{io.TMP_PREFIX}tiny_gpt.backup"
    foreign = tmp_path / ".hidden-but-not-ours"
    stale_file.write_bytes(b"half")
    stale_dir.mkdir()
    (stale_dir / "config.json").write_text("{}")
    in_progress.write_bytes(b"being written")
    backup.mkdir()
    foreign.write_text("keep me")
    assert sorted(p.name for p in clean_stale(tmp_path)) == sorted([stale_file.name, stale_dir.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([in_progress.name, backup.name, foreign.name])


def test_a_sigkilled_write_is_cleaned_by_the_next_save(tmp_path):
    code = (
        "import os, signal, sys; from pathlib import Path; from helpers.core import io; "
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL); "  # die mid-write, temp file on disk
        "io.write_bytes(Path(sys.argv[1]) / 'model.bin', b'x' * 4096)"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    (leftover,) = list(tmp_path.iterdir())
    assert leftover.name.startswith(f"{io.TMP_PREFIX}model.bin.")
    write_text(tmp_path / "other.txt", "next save")
    assert [p.name for p in tmp_path.iterdir()] == ["other.txt"]


# ----------------------------------------------------------------------------- several files as one


def test_replace_dir_swaps_in_a_complete_folder(tmp_path):
    folder = tmp_path / "artifact"
    with replace_dir(folder) as tmp:
        write_text(tmp / "a.txt", "1")
        write_text(tmp / "b.txt", "1")
    with replace_dir(folder) as tmp:
        write_text(tmp / "a.txt", "2")
    assert _files(folder) == {"a.txt": b"2"}  # the folder is the artifact: b.txt went with the old version
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_replace_dir_interrupted_between_files_keeps_the_previous_version(tmp_path):
    folder = tmp_path / "artifact"
    with replace_dir(folder) as tmp:
        write_text(tmp / "a.txt", "old a")
        write_text(tmp / "b.txt", "old b")
    with pytest.raises(KeyboardInterrupt), replace_dir(folder) as tmp:
        write_text(tmp / "a.txt", "new a")
        raise KeyboardInterrupt  # stopped between the two files
    assert _files(folder) == {"a.txt": b"old a", "b.txt": b"old b"}
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_a_failure_between_the_two_renames_puts_the_previous_version_back(tmp_path, monkeypatch):
    folder = tmp_path / "artifact"
    with replace_dir(folder) as tmp:
        write_text(tmp / "a.txt", "old")
    real_replace, calls = os.replace, []

    def second_rename_fails(src, dst):
        calls.append(Path(dst).name)
        if len(calls) == 3:  # 1: a.txt into the temp folder, 2: old -> backup, 3: new -> folder
            raise OSError(errno.EIO, "I/O error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_rename_fails)
    with pytest.raises(OSError, match="I/O error"), replace_dir(folder) as tmp:
        write_text(tmp / "a.txt", "new")
    monkeypatch.undo()
    assert _files(folder) == {"a.txt": b"old"} and [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_a_crash_between_the_two_renames_is_repaired_by_the_next_save(tmp_path):
    folder = tmp_path / "artifact"
    with replace_dir(folder) as tmp:
        write_text(tmp / "a.txt", "old")
    os.replace(folder, tmp_path / f"{io.TMP_PREFIX}artifact.backup")  # what a kill after rename 1 leaves
    with pytest.raises(RuntimeError), replace_dir(folder):
        raise RuntimeError("this save fails too")
    assert _files(folder) == {"a.txt": b"old"}  # the backup was restored before anything else


# ----------------------------------------------------------------------------- the savers that use it


def _gpt(seed: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("gpt-nano", vocab_size=97, block_size=24))


def test_save_gpt_interrupted_between_its_two_files_leaves_the_previous_model(tmp_path, monkeypatch):
    """Issue 13: save_gpt over a saved model, stopped after the weights and before config.json."""
    folder = tmp_path / "model"
    old = _gpt(0)
    gpt_io.save_gpt(old, folder)
    before = _files(folder)

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gpt_io, "write_json", stop)  # the weights are written, config.json is next
    with pytest.raises(KeyboardInterrupt):
        gpt_io.save_gpt(_gpt(1), folder)
    monkeypatch.undo()
    assert _files(folder) == before and [p.name for p in tmp_path.iterdir()] == ["model"]
    idx = torch.randint(97, (1, 8))
    assert torch.equal(gpt_io.load_gpt(folder).eval()(idx), old.eval()(idx))


def test_save_gpt_on_a_full_disk_names_the_folder(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    gpt_io.save_gpt(_gpt(0), folder)
    before = _files(folder)
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(DiskFullError, match="disk full"):
        gpt_io.save_gpt(_gpt(1), folder)
    monkeypatch.undo()
    assert _files(folder) == before


def test_save_gpt_refuses_to_replace_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no saved model.*new or empty folder"):
        gpt_io.save_gpt(_gpt(0), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_tokenizer_save_goes_through_the_atomic_writer(tmp_path, monkeypatch):
    tok = BPETokenizer.train("the cat sat on the mat " * 20, vocab_size=270)
    path = tok.save(tmp_path / "tok.txt")
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(DiskFullError, match=str(tmp_path)):
        BPETokenizer.train("a different text, a different tokenizer " * 20, vocab_size=270).save(path)
    monkeypatch.undo()
    assert _files(tmp_path) == {"tok.txt": before}
    assert BPETokenizer.load(path).encode("the cat") == tok.encode("the cat")
    assert json.loads(tok.to_hf(tmp_path / "hf").read_text())["model"]["type"] == "BPE"
