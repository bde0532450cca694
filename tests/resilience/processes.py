"""The worker processes of a running server (and its history follower), read from /proc, so a
test can kill one."""

from __future__ import annotations

import os
from pathlib import Path


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name, which is in parentheses and may hold spaces."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rfind(")") + 2 :].split()


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def children(pid: int) -> list[int]:
    """The live direct children of a process."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return sorted(found)


def workers(supervisor: int) -> list[int]:
    """The supervisor's uvicorn workers: its multiprocessing children, not its helpers."""
    return [pid for pid in children(supervisor) if "spawn_main" in _cmdline(pid) and alive(pid)]


def followers(supervisor: int) -> list[int]:
    """The server's history follower (`fangxin follow`, production): one child, or none."""
    return [pid for pid in children(supervisor) if " follow " in f"{_cmdline(pid)} " and alive(pid)]
