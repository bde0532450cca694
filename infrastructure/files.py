"""Data files readable by their owner only: the folder 0700, each file 0600, from the start."""

from __future__ import annotations

import os
from pathlib import Path

# SQLite makes a database's -wal and -shm files with the database file's own mode.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_folder(path: Path) -> Path:
    """Create the folder (and its parents) if needed, and make it owner-only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Create the file empty if needed (never readable by others, not even for a moment)."""
    private_folder(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    for candidate in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
        if candidate.exists():
            candidate.chmod(0o600)
    return path


def close_folder(path: Path) -> Path:
    """Make the data folder owner-only, and every file already in it (an older release's)."""
    private_folder(path)
    for entry in path.iterdir():
        if entry.is_file() and not entry.is_symlink():
            entry.chmod(0o600)
    return path
