"""Fangxin against the CRUD peer of ../shared/bench, on the same machine, in one run.

    python -m bench.compare [--duration 15] [--concurrency 16 64] [--only sqlite|postgres|hello]

For each store, the peer and Fangxin are started the same way (uvicorn; one worker on SQLite,
two on PostgreSQL), seeded with the same numbers of visitors and venues by the peer's
`seed.py`, and loaded with the peer's wrk script (`run_load.sh`). Rate limits are off. Prints
one JSON line per run, then a table with requests/s, p50, p99, non-2xx and Fangxin / peer.
The framework's hello ceiling is measured from the same folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

ROOT = Path(__file__).resolve().parents[1]
PEER = (ROOT / ".." / "shared" / "bench").resolve()
PEER_VENV = Path(os.environ.get("VENV", "/tmp/benchvenv"))
PG_URL = os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
VISITORS, VENUES = 2000, 200
FANGXIN = ROOT / ".venv" / "bin" / "fangxin"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def load(url: str, pairs: Path, concurrency: int, duration: int) -> dict[str, float]:
    """The peer's wrk script against any server; one JSON result."""
    env = {**os.environ, "DURATION": str(duration), "CONCURRENCY": str(concurrency)}
    out = subprocess.run(
        [str(PEER / "run_load.sh"), url, str(pairs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def peer_row(
    label: str, store: str, concurrency: int, duration: int, **env: str
) -> dict[str, object]:
    """`run_peer.sh` (start, seed, load, stop) with the given settings."""
    args = ["hello"] if store == "hello" else ["peer", store]
    run_env = {
        **os.environ,
        "DURATION": str(duration),
        "CONCURRENCY": str(concurrency),
        "SERVER": "uvicorn",
        "VENV": str(PEER_VENV),
        "PORT": "8801",
        **env,
    }
    out = subprocess.run(
        [str(PEER / "run_peer.sh"), *args],
        env=run_env,
        capture_output=True,
        text=True,
        check=True,
    )
    row: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    row["label"] = label
    return row


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Deployment(NamedTuple):
    """A running Fangxin: its URL and the process id of its server (workers are its children)."""

    url: str
    pid: int


@contextmanager
def fangxin(production: bool) -> Iterator[Deployment]:
    """A Fangxin deployment of its own: a fresh data folder, or a fresh schema and key prefix."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="fangxin-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANGXIN_")}
    env.update(
        FANGXIN_PORT=str(port),
        FANGXIN_DATA_DIR=str(data),
        FANGXIN_RATE_LIMIT="0",
        FANGXIN_LOG_LEVEL="warning",
        FANGXIN_WORKERS="2" if production else "1",
    )
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    if production:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as db:
            db.execute(f"CREATE SCHEMA {schema}")
        env.update(
            FANGXIN_DATABASE_URL=PG_URL,
            FANGXIN_DATABASE_SCHEMA=schema,
            FANGXIN_REDIS_URL=REDIS_URL,
            FANGXIN_REDIS_PREFIX=f"{schema}:",
        )
        subprocess.run([str(FANGXIN), "migrate"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [str(FANGXIN), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield Deployment(url, server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
        if production:
            import psycopg
            import redis

            with psycopg.connect(PG_URL, autocommit=True) as db:
                db.execute(f"DROP SCHEMA {schema} CASCADE")
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(match=f"{schema}:*", count=1000):
                client.delete(key)
            client.close()


def batch_sizes(url: str) -> dict[str, dict[str, float]]:
    """Group-commit figures of each worker, asked until every worker has answered once."""
    found: dict[str, dict[str, float]] = {}
    pattern = re.compile(
        r'^fangxin_group_commit_(\w+?)(?:_total)?\{pid="(\d+)"(?:,le="(\d+)")?\} (\S+)'
    )
    for _ in range(20):
        text = httpx.get(f"{url}/metrics", timeout=5).text
        for line in text.splitlines():
            match = pattern.match(line)
            if match:
                name, pid, le, value = match.groups()
                key = f"le{le}" if le else name
                found.setdefault(pid, {})[key] = float(value)
    return found


def seed(url: str, folder: Path, python: Path = PEER_VENV / "bin" / "python") -> Path:
    """The peer's `seed.py` against a server: the (token, code) pairs file it wrote."""
    pairs = folder / "pairs.json"
    subprocess.run(
        [str(python), str(PEER / "seed.py"), url, str(VISITORS), str(VENUES), str(pairs)],
        check=True,
        capture_output=True,
    )
    return pairs


def fangxin_row(
    label: str, production: bool, concurrencies: list[int], duration: int
) -> list[dict[str, object]]:
    """Seed one Fangxin deployment like the peer, then load it at each concurrency."""
    rows: list[dict[str, object]] = []
    with fangxin(production) as (url, _), tempfile.TemporaryDirectory() as work:
        pairs = seed(url, Path(work))
        for concurrency in concurrencies:
            result = load(url, pairs, concurrency, duration)
            rows.append({"label": label, "concurrency": concurrency, **result})
            print(json.dumps(rows[-1]), flush=True)
        batches = batch_sizes(url)
        for pid, figures in batches.items():
            mean = figures.get("items", 0) / max(figures.get("batches", 1), 1)
            sizes = {k: int(v) for k, v in figures.items() if k.startswith("le")}
            log(
                f"{label}: worker {pid}: {int(figures.get('batches', 0))} batches, "
                f"mean size {mean:.1f}, by size {sizes}, writers refused for a conflict "
                f"{int(figures.get('refused', 0))}, saved again alone "
                f"{int(figures.get('retried_alone', 0))}"
            )
    return rows


def table(rows: list[dict[str, object]]) -> None:
    """The results and the Fangxin / peer ratios."""
    by = {(str(r["label"]), int(str(r["concurrency"]))): r for r in rows}
    print()
    print("| row | conc | rps | p50 ms | p99 ms | non-2xx | Fangxin / peer (rps) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (label, conc), r in by.items():
        ratio = ""
        if label.startswith("fangxin"):
            peer = by.get((label.replace("fangxin", "peer"), conc))
            if peer:
                ratio = f"{float(str(r['rps'])) / float(str(peer['rps'])):.2f}x"
        print(
            f"| {label} | {conc} | {float(str(r['rps'])):.0f} | {float(str(r['p50_ms'])):.1f} | "
            f"{float(str(r['p99_ms'])):.1f} | {r['non2xx']} | {ratio} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--only", choices=["hello", "sqlite", "postgres"], default=None)
    a = ap.parse_args()
    rows: list[dict[str, object]] = []
    sqlite_path = Path(tempfile.gettempdir()) / "peer-bench.sqlite"
    if a.only in (None, "hello"):
        for c in a.concurrency:
            log(f"hello ceiling c={c}")
            rows.append(peer_row("hello (uvicorn, 2 workers)", "hello", c, a.duration))
            print(json.dumps(rows[-1]), flush=True)
    if a.only in (None, "sqlite"):
        for c in a.concurrency:
            log(f"peer SQLite FULL, 1 worker, c={c}")
            rows.append(
                peer_row(
                    "peer sqlite",
                    str(sqlite_path),
                    c,
                    a.duration,
                    WORKERS="1",
                    PEER_SQLITE_SYNCHRONOUS="FULL",
                )
            )
            print(json.dumps(rows[-1]), flush=True)
        log("Fangxin embedded (SQLite, one process)")
        rows += fangxin_row("fangxin sqlite", False, a.concurrency, a.duration)
    if a.only in (None, "postgres"):
        for c in a.concurrency:
            log(f"peer PostgreSQL, 2 workers, c={c}")
            rows.append(peer_row("peer postgresql", PG_URL, c, a.duration, WORKERS="2"))
            print(json.dumps(rows[-1]), flush=True)
        log("Fangxin production (PostgreSQL + Redis, 2 workers)")
        rows += fangxin_row("fangxin postgresql", True, a.concurrency, a.duration)
    table(rows)


if __name__ == "__main__":
    main()
