"""Where a check-in's CPU goes: one deployment under the peer's wrk load, every process measured.

    python -m bench.probe [--production] [--peer] [--concurrency 64] [--duration 10] [--spy DIR]

Starts Fangxin like `bench.compare` does (embedded, or PostgreSQL + Redis with two workers),
seeds it with the peer's `seed.py`, warms it up, then loads it with the peer's `checkin.lua`.
Prints requests/s, p50 and p99, and the CPU microseconds per request of each group of
processes: Fangxin's server and workers, PostgreSQL, Redis and wrk itself. With `--spy`, py-spy
samples each worker (only while it holds the GIL) and the heaviest functions are printed, by
their own time and with what they call. This is how the README's profile figures were taken.

With `--peer`, the CRUD peer of ../shared/bench is measured the same way instead (started as its
`run_peer.sh` starts it: uvicorn, two workers on PostgreSQL, one on SQLite FULL), so that the
CPU each spends per check-in can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.compare import (
    PEER,
    PEER_VENV,
    PG_URL,
    Deployment,
    fangxin,
    seed,
    serving,
)
from tests.live import free_port

TICKS = os.sysconf("SC_CLK_TCK")
GROUPS = ("fangxin", "postgres", "redis-server")


def children(pid: int) -> list[int]:
    """The process and all its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [pid], [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        todo += kids
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def by_group(server: int) -> dict[str, list[int]]:
    """The processes to measure: the deployment's tree, and the servers it talks to."""
    groups: dict[str, list[int]] = {"fangxin": children(server), "postgres": [], "redis-server": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("postgres"):
            groups["postgres"].append(int(entry.name))
        elif name == "redis-server":
            groups["redis-server"].append(int(entry.name))
    return groups


def usage(groups: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}


def wrk(url: str, pairs: Path, concurrency: int, duration: int) -> tuple[dict[str, float], float]:
    """One wrk run with the peer's script: its JSON line, and wrk's own CPU seconds."""
    process = subprocess.Popen(
        [
            "wrk",
            "-t2",
            f"-c{concurrency}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(PEER / "checkin.lua"),
            url,
            "--",
            str(pairs),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, rusage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    line = next(line for line in reversed(out.splitlines()) if line.startswith("{"))
    result: dict[str, float] = json.loads(line)
    return result, rusage.ru_utime + rusage.ru_stime


def spy(pids: list[int], duration: int, folder: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy on each worker for the measured run, raw stacks to FOLDER/PID.txt."""
    spy_bin = Path(sys.executable).with_name("py-spy")
    return [
        subprocess.Popen(
            [
                str(spy_bin),
                "record",
                "--gil",
                "--nonblocking",
                "-r",
                "200",
                "-d",
                str(duration),
                "-f",
                "raw",
                "-p",
                str(pid),
                "-o",
                str(folder / f"{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def heaviest(folder: Path, top: int) -> None:
    """The functions that held the GIL longest, by own time and with their callees."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for file in folder.glob("*.txt"):
        for line in file.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            n = int(count)
            samples += n
            frames = [
                f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].split(":")[0]
                for f in stack.split(";")
            ]
            own[frames[-1]] += n
            for frame in set(frames):
                total[frame] += n
    if not samples:
        print("probe: py-spy took no samples")
        return
    for title, counter in (("own time", own), ("with callees", total)):
        print(f"\n{title} (% of {samples} GIL samples)")
        for frame, n in counter.most_common(top):
            print(f"{100 * n / samples:6.1f}  {frame}")


@contextmanager
def peer(production: bool, work: Path) -> Iterator[Deployment]:
    """The CRUD peer, started as `run_peer.sh` starts it, on fresh tables."""
    port = free_port()
    env = {**os.environ, "PEER_SQLITE_SYNCHRONOUS": "FULL"}
    if production:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as db:
            db.execute(
                "DROP TABLE IF EXISTS peer_visits, peer_venues, peer_visitors, peer_merchants"
            )
        env["PEER_DATABASE_URL"] = PG_URL
    else:
        env["PEER_DATABASE_URL"] = str(work / "peer.sqlite")
    workers = 2 if production else 1
    options = (
        f"--host 127.0.0.1 --port {port} --workers {workers} --no-access-log --log-level warning"
        " --loop uvloop --http httptools --factory peer_app:create_app"
    )
    command = [str(PEER_VENV / "bin" / "uvicorn"), *options.split()]
    with serving(command, port, env, cwd=PEER) as deployment:
        yield deployment


def probe(
    production: bool,
    concurrency: int,
    duration: int,
    spy_to: Path | None,
    top: int,
    the_peer: bool = False,
) -> None:
    with tempfile.TemporaryDirectory() as work:
        server = peer(production, Path(work)) if the_peer else fangxin(production)
        with server as deployment:
            run(deployment, Path(work), concurrency, duration, spy_to, top)


def run(
    deployment: Deployment,
    work: Path,
    concurrency: int,
    duration: int,
    spy_to: Path | None,
    top: int,
) -> None:
    pairs = seed(deployment.url, work, python=PEER_VENV / "bin" / "python")
    wrk(deployment.url, pairs, concurrency, 3)
    groups = by_group(deployment.pid)
    workers = [pid for pid in groups["fangxin"] if pid != deployment.pid] or [deployment.pid]
    spies = spy(workers, duration, spy_to) if spy_to else []
    before = usage(groups)
    result, wrk_cpu = wrk(deployment.url, pairs, concurrency, duration)
    after = usage(groups)
    for process in spies:
        process.wait()
    requests = result["requests"]
    print(
        f"rps {result['rps']:.0f}  p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
        f"max {result['max_ms']:.0f} ms  non-2xx {result['non2xx']:.0f}  "
        f"({len(workers)} worker(s), c={concurrency})"
    )
    spent = {name: after[name] - before[name] for name in GROUPS} | {"wrk": wrk_cpu}
    for name, seconds in spent.items():
        shown = name if name != "fangxin" else "server"
        print(f"{shown:>14}: {1e6 * seconds / requests:6.0f} µs CPU per request")
    print(f"{'all':>14}: {1e6 * sum(spent.values()) / requests:6.0f} µs CPU per request")
    if spy_to:
        time.sleep(0.5)
        heaviest(spy_to, top)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--production", action="store_true", help="PostgreSQL + Redis, two workers")
    ap.add_argument("--peer", action="store_true", help="measure the CRUD peer instead")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--spy", type=Path, default=None, help="a folder for py-spy's raw stacks")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    if a.spy:
        a.spy.mkdir(parents=True, exist_ok=True)
    probe(a.production, a.concurrency, a.duration, a.spy, a.top, the_peer=a.peer)


if __name__ == "__main__":
    main()
