"""Fangxin against the CRUD peer of ../shared/bench, on the same machine, in one run.

    python -m bench.compare [--duration 15] [--concurrency 16 64] [--rounds 2]
                            [--only sqlite|postgres|hello]

For each store, the peer and Fangxin are started the same way (uvicorn; one worker on SQLite,
two on PostgreSQL), seeded with the same numbers of visitors and venues by the peer's
`seed.py`, and loaded with the peer's wrk script (`run_load.sh`). Rate limits are off. The
framework's hello ceiling is measured from the same folder.

The speed of this kind of machine drifts by 10-30 % within minutes, so the two are measured
in turns: each round starts a fresh Fangxin deployment and, at each concurrency, loads the
peer (started and seeded afresh by `run_peer.sh`) and Fangxin one right after the other, the
peer first in odd rounds and Fangxin first in even ones.
Prints one JSON line per load, then a table of each row's median over the rounds (requests/s,
p50, p99; non-2xx summed), with Fangxin / peer as the median of the rounds' own ratios and
those ratios listed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
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

from tests.live import free_port, launched

ROOT = Path(__file__).resolve().parents[1]
PEER = (ROOT / ".." / "shared" / "bench").resolve()
PEER_VENV = Path(os.environ.get("VENV", "/tmp/benchvenv"))
PG_URL = os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
VISITORS, VENUES = 2000, 200
FANGXIN = ROOT / ".venv" / "bin" / "fangxin"
# What the bench scrapes /metrics with (each deployment it starts is given it).
METRICS_TOKEN = secrets.token_urlsafe(32)


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


class Deployment(NamedTuple):
    """A running Fangxin: its URL and the process id of its server (workers are its children),
    and the prefix of its Redis keys (production)."""

    url: str
    pid: int
    prefix: str = ""


@contextmanager
def serving(
    command: list[str], port: int, env: dict[str, str], cwd: Path = ROOT
) -> Iterator[Deployment]:
    """A server started by the tests' launcher, once it answers /health; SIGTERM after."""
    with (
        tempfile.TemporaryDirectory(prefix="fangxin-bench-log-") as logs,
        launched(
            command,
            port,
            env,
            Path(logs) / "server.log",
            cwd=cwd,
            stop_signal=signal.SIGTERM,
            clean_exit=False,
        ) as server,
    ):
        yield Deployment(server.base_url, server.pid)


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
        FANGXIN_METRICS_TOKEN=METRICS_TOKEN,
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
    try:
        with serving([str(FANGXIN), "serve"], port, env) as deployment:
            yield deployment._replace(prefix=f"{schema}:" if production else "")
    finally:
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
        text = httpx.get(
            f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5
        ).text
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


def in_turns(
    store: str,
    production: bool,
    concurrencies: list[int],
    duration: int,
    rounds: int,
    **peer_env: str,
) -> list[dict[str, object]]:
    """Rounds of: a fresh Fangxin deployment seeded like the peer; at each concurrency, the
    peer (fresh, seeded) and Fangxin loaded one right after the other, in alternate orders."""
    peer_label, label = f"peer {store}", f"fangxin {store}"
    peer_db = PG_URL if production else str(Path(tempfile.gettempdir()) / "peer-bench.sqlite")
    rows: list[dict[str, object]] = []
    for turn in range(1, rounds + 1):
        kind = "production" if production else "embedded"
        log(f"{store}, round {turn} of {rounds}: a fresh Fangxin deployment ({kind})")
        with fangxin(production) as deployment, tempfile.TemporaryDirectory() as work:
            url = deployment.url
            pairs = seed(url, Path(work))
            for concurrency in concurrencies:
                # Whoever goes second may meet what the first left behind (PostgreSQL's
                # autovacuum of the peer's updated rows, a checkpoint): odd rounds start with
                # the peer, even ones with Fangxin.
                peer_first = turn % 2 == 1
                log(
                    f"{store}, round {turn}, c={concurrency}: "
                    f"{'the peer' if peer_first else 'Fangxin'} first"
                )
                for peer_now in (peer_first, not peer_first):
                    if peer_now:
                        row = peer_row(peer_label, peer_db, concurrency, duration, **peer_env)
                    else:
                        result = load(url, pairs, concurrency, duration)
                        row = {"label": label, "concurrency": concurrency, **result}
                        # The history's follower may have fallen behind under the load (it is
                        # niced, ADR 0014): it catches up before the next load, so that the
                        # peer's turn does not pay for Fangxin's deferred work.
                        row.update(history_settled(url))
                    rows.append({**row, "round": turn})
                    print(json.dumps(rows[-1]), flush=True)
            report_batches(label, url)
    return rows


HISTORY_LAG = re.compile(r'^fangxin_projection_lag_events\{projection="history"\} (\d+)', re.M)


def history_settled(url: str, timeout: float = 300.0) -> dict[str, object]:
    """The history's lag right after a load, and the seconds until it is caught up (nothing
    where the deployment has no history)."""
    started = time.perf_counter()
    first: int | None = None
    while True:
        text = httpx.get(
            f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5
        ).text
        match = HISTORY_LAG.search(text)
        if match is None:
            return {}
        lag = int(match.group(1))
        first = lag if first is None else first
        waited = time.perf_counter() - started
        if lag == 0 or waited > timeout:
            return {"history_lag_after": first, "history_caught_up_s": round(waited, 1)}
        time.sleep(0.2)


def report_batches(label: str, url: str) -> None:
    """The group-commit figures of each worker of a deployment, to stderr."""
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


def table(rows: list[dict[str, object]]) -> None:
    """Each row's medians over the rounds, and the Fangxin / peer ratios."""
    by: dict[tuple[str, int], list[dict[str, object]]] = {}
    for r in rows:
        by.setdefault((str(r["label"]), int(str(r["concurrency"]))), []).append(r)
    print()
    print("| row | conc | rps | p50 ms | p99 ms | non-2xx | Fangxin / peer (rps) | by round |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for (label, conc), runs in by.items():
        ratio = by_round = ""
        peers = by.get((label.replace("fangxin", "peer"), conc)) if "fangxin" in label else None
        if peers:
            ratios = [
                _figure(r, "rps") / _figure(p, "rps") for r, p in zip(runs, peers, strict=False)
            ]
            ratio = f"{statistics.median(ratios):.2f}x"
            by_round = " ".join(f"{x:.2f}x" for x in ratios)
        print(
            f"| {label} | {conc} | {_median(runs, 'rps'):.0f} | {_median(runs, 'p50_ms'):.1f} | "
            f"{_median(runs, 'p99_ms'):.1f} | {sum(int(str(r['non2xx'])) for r in runs)} | "
            f"{ratio} | {by_round} |"
        )


def _figure(row: dict[str, object], name: str) -> float:
    return float(str(row[name]))


def _median(runs: list[dict[str, object]], name: str) -> float:
    return statistics.median(_figure(r, name) for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--rounds", type=int, default=2, help="turns of peer and Fangxin")
    ap.add_argument("--only", choices=["hello", "sqlite", "postgres"], default=None)
    a = ap.parse_args()
    rows: list[dict[str, object]] = []
    if a.only in (None, "hello"):
        for c in a.concurrency:
            log(f"hello ceiling c={c}")
            rows.append(peer_row("hello (uvicorn, 2 workers)", "hello", c, a.duration))
            print(json.dumps(rows[-1]), flush=True)
    if a.only in (None, "sqlite"):
        # The peer's SQLite FULL row with one worker, against the embedded Fangxin.
        rows += in_turns(
            "sqlite",
            False,
            a.concurrency,
            a.duration,
            a.rounds,
            WORKERS="1",
            PEER_SQLITE_SYNCHRONOUS="FULL",
        )
    if a.only in (None, "postgres"):
        rows += in_turns("postgresql", True, a.concurrency, a.duration, a.rounds, WORKERS="2")
    table(rows)


if __name__ == "__main__":
    main()
