"""Atomic writing: the one home for "a reader sees the old file or the new one, never half".

Every saver in `helpers` goes through here:
- `write_bytes` / `write_text` / `write_json`: one file, written to a hidden temporary file in the same
  folder, flushed and fsynced, then `os.replace`d over the target (atomic on POSIX and Windows);
- `replace_dir`: a *multi-file* artifact (a saved model, an adapter, tokenizer files) is written into a
  hidden temporary folder beside the target and swapped in only when every file is complete, so an
  interrupted save leaves the previous version loadable: `with replace_dir(folder) as tmp: save into tmp`;
- `clean_stale`: temporary files and folders left by a killed write (they carry our prefix and the pid
  of the process that made them) are removed at the next save into the same folder.
A full disk is reported as `DiskFullError` naming the folder, instead of the OS's bare errno.
Reading JSONL data files has its home here too (`read_jsonl`): one reader whose errors name the file, the
line and the field, for the FAQ, the privacy test set and the parallel text alike.

Left out on purpose: locking between processes (the course writes each artifact from one process; the
data-parallel loop writes from rank 0 only) and the folder fsync that makes a *rename* durable across a
power cut on some file systems (a killed process, the case we test, never needs it).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".tmp-"  # every temporary name starts with this, then the target's name and our pid


class DiskFullError(OSError):
    """The disk (or the quota) filled up while saving; nothing already saved was touched."""


class DataFormatError(ValueError):
    """A data file line that cannot be used: the message names the file, the line and the field."""


def _tmp_name(target: Path) -> str:
    return f"{TMP_PREFIX}{target.name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists but is not ours (or we cannot tell): leave its files alone
    return True


def clean_stale(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files/folders in `folder` left by a write whose process no longer runs.

    A name looks like `.tmp-model.safetensors.12345.abcd`: 12345 is the writer's pid. Returns what was removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        if not p.name.startswith(TMP_PREFIX) or p.name.endswith(".backup"):
            continue  # not ours, or the previous version of a folder mid-swap (`replace_dir` restores it)
        parts = p.name[len(TMP_PREFIX):].rsplit(".", 2)
        pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
        if pid is not None and _pid_alive(pid):
            continue  # a write in progress (ours or another live process's)
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _raise_disk_full(err: OSError, where: Path) -> None:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(err.errno, f"disk full while saving into {where}: free some space (or choose "
                                       "another folder) and save again; the previous version is untouched") from err


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (temp file in the same folder + fsync + rename). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_name(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        _raise_disk_full(err, path.parent)
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """`write_bytes` for UTF-8 text."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj, indent: int | None = 2) -> Path:
    """`write_bytes` for an object as JSON (UTF-8, non-ASCII kept readable, trailing newline)."""
    return write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


@contextmanager
def replace_dir(folder: str | os.PathLike) -> Iterator[Path]:
    """Build a multi-file artifact in a temporary folder, then swap it in for `folder` as a whole.

    `with replace_dir("artifacts/gpt") as tmp: save(tmp / "model.safetensors"); save(tmp / "config.json")`
    If the block raises (or the process dies), `folder` still holds the previous complete version.
    The swap is two renames (old -> backup, new -> folder); between them, for a few microseconds, the
    folder does not exist, and a crash there leaves the backup beside it, which the next `replace_dir`
    restores before anything else.
    """
    folder = Path(folder)
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    _restore_backup(folder)
    clean_stale(parent)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=_tmp_name(folder)))
    try:
        yield tmp
        for p in tmp.rglob("*"):
            if p.is_file():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
        backup = parent / f"{TMP_PREFIX}{folder.name}.backup"
        if folder.exists():
            os.replace(folder, backup)
        os.replace(tmp, folder)
        shutil.rmtree(backup, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        _restore_backup(folder)  # a failure between the two renames: put the previous version back now
        _raise_disk_full(err, folder)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _restore_backup(folder)
        raise


def _restore_backup(folder: Path) -> None:
    """A crash between `replace_dir`'s two renames leaves only the backup: put it back."""
    backup = folder.parent / f"{TMP_PREFIX}{folder.name}.backup"
    if backup.is_dir():
        if folder.exists():
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(backup, folder)


# ----------------------------------------------------------------------------- reading JSONL


def _jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line; anything but one JSON object per line is an error."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path.name} line {lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{where} is not valid JSON ({err.msg}): write one JSON object per line, "
                                      "or delete the line") from err
            if not isinstance(row, dict):
                raise DataFormatError(f"{where} is a {type(row).__name__}, not a JSON object: "
                                      "write one {...} per line")
            yield lineno, row


def _is_note(row: dict) -> bool:
    """A line whose keys all start with '_' ({"_about": ...}, {"_meta": ...}) describes the file, not data."""
    return bool(row) and all(str(k).startswith("_") for k in row)


def read_jsonl(path: str | os.PathLike, fields: Sequence[str] = ()) -> list[dict]:
    """The data rows of a JSONL file, each checked to have every field in `fields` as a non-empty string.

    Blank lines and note lines (every key starts with '_', e.g. `{"_about": "..."}`) are skipped; read the
    notes with `read_jsonl_notes`. '{"id": "a", "q": "Hi?"}' with fields ("id", "q") -> [{"id": "a", "q": "Hi?"}].
    Raises FileNotFoundError naming the path, and DataFormatError naming file, line and field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass the path of a JSONL file (one JSON object per line)")
    rows = []
    for lineno, row in _jsonl_objects(path):
        if _is_note(row):
            continue
        for name in fields:
            where = f"{path.name} line {lineno}: field {name!r}"
            if name not in row:
                raise DataFormatError(f"{where} is missing (every line needs {list(fields)})")
            if not isinstance(row[name], str):
                raise DataFormatError(f"{where} must be a string, got {type(row[name]).__name__} "
                                      f"{row[name]!r}: quote it")
            if not row[name].strip():
                raise DataFormatError(f"{where} is empty: write the text, or delete the line")
        rows.append(row)
    if not rows:
        raise DataFormatError(f"{path.name} has no data lines: add at least one JSON object")
    return rows


def read_jsonl_notes(path: str | os.PathLike) -> dict:
    """The note lines of a JSONL file merged into one dict: {"_meta": {...}, "_about": "..."} (or {})."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass the path of a JSONL file (one JSON object per line)")
    notes: dict = {}
    for _, row in _jsonl_objects(path):
        if _is_note(row):
            notes.update(row)
    return notes
