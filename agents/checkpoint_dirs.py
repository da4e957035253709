"""Checkpoint directories written atomically: the whole directory is written beside its
path and swapped in by renames, and what a killed save leaves behind is cleaned up by the
next save or load."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
from pathlib import Path


def file_sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def checkpoint_sibling(path: Path, tag: str) -> Path:
    """``.NAME.old`` (the checkpoint being replaced) or ``.NAME.tmp-PID-XXXX`` (one being written)."""
    return path.with_name(f".{path.name}.{tag}")


def heal_checkpoint_dir(path: Path) -> None:
    """Repair what a save killed midway leaves beside checkpoint ``path``: an old checkpoint
    moved aside to ``.NAME.old`` (always complete) goes back if ``path`` is missing and is
    deleted otherwise; temporaries of saves whose process is gone are deleted."""
    old = checkpoint_sibling(path, "old")
    if old.exists():
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, path)
    for tmp in path.parent.glob(glob.escape(checkpoint_sibling(path, "tmp").name) + "*"):
        if not _writer_running(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _writer_running(tmp: Path) -> bool:
    """Whether another live process is writing temporary ``tmp`` (named ``...tmp-PID-...``)."""
    pid = tmp.name.rpartition(".tmp-")[2].partition("-")[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True
