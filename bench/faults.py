"""Fault test of the production deployment: check-ins under a killed worker and a Redis restart.

Run from the repository root:
    python -m bench.faults [--duration 30] [--clients 16] [--visitors 200] [--venues 20]

It starts `make run-prod` on a free port of 127.0.0.1 (FANGXIN_WORKERS=2, rate limits off) in a
fresh PostgreSQL schema `faults_<random>` and a fresh Redis key prefix `fxfaults:<random>:`,
registers merchants, venues and visitors over HTTP, and runs a bounded check-in load: every
request carries an Idempotency-Key of its own, and a client retries a request that failed with
a connection error or a 5xx (same key; with --retry-conflicts also a 409 conflict) a few
times, recording every answer. During the load it SIGKILLs one uvicorn worker and later
restarts Redis (which keeps nothing on disk, so the read models are rebuilt from the log).
Afterwards, once /health reports no projection lag, it checks the promises:

- every key answered 201 has its visit in the PostgreSQL log (a `Visit.CheckedIn` event);
- every key answered 201 has its visit in the read models (GET /v1/me/visits of its visitor);
- no key was answered 201 with two different visit ids.

It prints the counts and exits 1 when a promise is broken (2 when the run itself failed). At the
end it stops the server (SIGTERM to its process group), drops the schema, deletes the prefix's
keys, and makes sure Redis is running again, whatever happened. The server's log stays in the
folder it prints, with every key's answers (keys.jsonl). With --strict, a 5xx answer and a
check-in recorded in the log without any 201 fail the run too.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
CHECKED_IN_TOPIC = "domain.visits:Visit.CheckedIn"
VENUES_PER_MERCHANT = 10


def log(message: str) -> None:
    print(f"faults: {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Recording the load
# ---------------------------------------------------------------------------------------------


@dataclass
class Answer:
    """One attempt of a request: its status (None after a connection error) and visit id."""

    at: float
    status: int | None
    visit_id: str | None = None
    error: str | None = None
    body: str = ""

    @property
    def label(self) -> str:
        return str(self.status) if self.status is not None else f"error:{self.error}"


@dataclass
class KeyRecord:
    """Everything answered for one Idempotency-Key."""

    key: str
    visitor: int
    code: str
    answers: list[Answer] = field(default_factory=list)

    @property
    def visit_ids_201(self) -> set[str]:
        return {a.visit_id for a in self.answers if a.status == 201 and a.visit_id}

    @property
    def answered_201(self) -> bool:
        return any(a.status == 201 for a in self.answers)


@dataclass
class Visitor:
    visitor_id: str
    token: str


@dataclass
class World:
    visitors: list[Visitor]
    codes: list[str]


# ---------------------------------------------------------------------------------------------
# The server under test
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def proc_children(pid: int) -> list[int]:
    """The direct children of a process, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the parent pid follows it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


class Server:
    """`make run-prod` in a process group of its own, its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    def start(self) -> None:
        self._log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            ["make", "--no-print-directory", "run-prod"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def supervisor(self) -> int | None:
        """The uvicorn supervisor: `make` execs the shell into `fangxin serve`."""
        if self.proc is None:
            return None
        for pid in proc_children(self.proc.pid):
            if "serve" in cmdline(pid) and "fangxin" in cmdline(pid):
                return pid
        return None

    def workers(self) -> list[int]:
        """The supervisor's worker processes (multiprocessing children, not its helpers)."""
        sup = self.supervisor()
        if sup is None:
            return []
        return [p for p in proc_children(sup) if "spawn_main" in cmdline(p) and alive(p)]

    def stop(self, timeout: float = 30.0) -> str:
        """SIGTERM to the whole group; SIGKILL to what is left of it after `timeout` seconds."""
        if self.proc is None:
            return "never started"
        try:
            started = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            # `make` ends at once; the supervisor and its workers shut down gracefully after it.
            while group_members(self.proc.pid) and time.monotonic() - started < timeout:
                time.sleep(0.1)
            left = group_members(self.proc.pid)
            if left:
                log(f"processes {left} still there {timeout:.0f} s after SIGTERM: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            how = "SIGKILL after SIGTERM" if left else "SIGTERM"
            return f"stopped by {how} in {time.monotonic() - started:.1f} s"
        finally:
            if self._log_file is not None:
                self._log_file.close()


def other_servers(server: Server) -> list[int]:
    """`fangxin serve` processes that are not in this server's process group."""
    ours = set(group_members(server.proc.pid)) if server.proc else set()
    return [
        int(e)
        for e in os.listdir("/proc")
        if e.isdigit()
        and int(e) not in ours
        and "fangxin serve" in cmdline(int(e)).replace(".venv/bin/", "")
    ]


def wait_for_health(
    client: httpx.Client, server: Server, timeout: float, need_zero_lag: bool = False
) -> dict[str, Any]:
    """Poll /health until it answers 200 (and, if asked, lag 0 three times in a row)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    streak = 0
    while time.monotonic() < deadline:
        if not server.running():
            raise RuntimeError(f"the server exited with {server.proc and server.proc.returncode}")
        try:
            r = client.get("/health", timeout=5.0)
            last = {"status_code": r.status_code, **r.json()}
        except (httpx.HTTPError, ValueError) as exc:
            last = {"error": repr(exc)}
            streak = 0
            time.sleep(0.2)
            continue
        if r.status_code == 200 and (not need_zero_lag or last.get("projection_lag") == 0):
            streak += 1
            if streak >= (3 if need_zero_lag else 1):
                return last
        else:
            streak = 0
        time.sleep(0.2)
    raise TimeoutError(f"/health not ready within {timeout:.0f} s; last answer: {last}")


# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------


class RedisControl:
    """Restart the local Redis the way CI does; it keeps nothing on disk."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.url = url
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379

    def ping(self) -> bool:
        """One PING on a fresh socket (redis-py would retry with backoff and blur the timing)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def shutdown(self) -> None:
        subprocess.run(
            ["redis-cli", "-h", self.host, "-p", str(self.port), "shutdown", "nosave"],
            capture_output=True,
            check=False,
            timeout=30,
        )
        deadline = time.monotonic() + 10
        while self.ping() and time.monotonic() < deadline:
            time.sleep(0.05)

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "-::1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "/var/lib/redis",
                "--logfile",
                "/var/log/redis/ci.log",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 10
        while not self.ping():
            if time.monotonic() > deadline:
                raise RuntimeError("Redis did not answer PING within 10 s of starting")
            time.sleep(0.05)

    def ensure_running(self) -> None:
        if not self.ping():
            log("Redis is not running: starting it")
            self.start()

    def delete_prefix(self, prefix: str) -> int:
        client = redis.Redis.from_url(self.url)
        try:
            deleted = 0
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += int(client.delete(*batch))
                    batch.clear()
            if batch:
                deleted += int(client.delete(*batch))
            return deleted
        finally:
            client.close()


# ---------------------------------------------------------------------------------------------
# Seeding over HTTP
# ---------------------------------------------------------------------------------------------


def post_created(
    client: httpx.Client, path: str, body: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers["Idempotency-Key"] = uuid.uuid4().hex
    for attempt in range(5):
        try:
            r = client.post(path, json=body, headers=headers)
        except httpx.TransportError:
            time.sleep(0.2 * (attempt + 1))
            continue
        if r.status_code == 201:
            answer: dict[str, Any] = r.json()
            return answer
        if r.status_code not in (429, 503):
            raise RuntimeError(f"POST {path} answered {r.status_code}: {r.text[:300]}")
        time.sleep(float(r.headers.get("Retry-After", 0.2 * (attempt + 1))))
    raise RuntimeError(f"POST {path} failed five times")


def seed(base_url: str, n_visitors: int, n_venues: int, concurrency: int, run_id: str) -> World:
    n_merchants = max(1, -(-n_venues // VENUES_PER_MERCHANT))
    local = threading.local()
    clients: list[httpx.Client] = []

    def client() -> httpx.Client:
        c: httpx.Client | None = getattr(local, "client", None)
        if c is None:
            c = httpx.Client(base_url=base_url, timeout=30.0)
            local.client = c
            clients.append(c)
        return c

    tag = int(run_id[:6], 16) % 10_000
    with ThreadPoolExecutor(concurrency) as pool:
        merchants = list(
            pool.map(
                lambda i: post_created(
                    client(),
                    "/v1/merchants",
                    {"name": f"Faults merchant {i}", "contact_phone": f"+86137{tag:04d}{i:04d}"},
                ),
                range(n_merchants),
            )
        )
        venues = list(
            pool.map(
                lambda i: post_created(
                    client(),
                    "/v1/venues",
                    {
                        "name": f"Faults venue {i}",
                        "address": f"{i} Fault Road",
                        "region": "110105",
                        "category": "restaurant",
                    },
                    merchants[i // VENUES_PER_MERCHANT]["token"],
                ),
                range(n_venues),
            )
        )
        visitors = list(
            pool.map(
                lambda i: post_created(
                    client(),
                    "/v1/visitors",
                    {"name": f"Faults visitor {i}", "phone": f"+86136{tag:04d}{i:04d}"},
                ),
                range(n_visitors),
            )
        )
    for c in clients:
        c.close()
    return World(
        visitors=[Visitor(v["visitor_id"], v["token"]) for v in visitors],
        codes=[v["code"] for v in venues],
    )


# ---------------------------------------------------------------------------------------------
# The load
# ---------------------------------------------------------------------------------------------


class Load:
    """Clients checking in with unique keys until the deadline or the request budget."""

    def __init__(
        self,
        base_url: str,
        world: World,
        clients: int,
        duration: float,
        max_requests: int,
        retries: int,
        timeout: float,
        rng_seed: int,
        retry_conflicts: bool = False,
    ) -> None:
        self.base_url = base_url
        self.world = world
        self.clients = clients
        self.duration = duration
        self.max_requests = max_requests
        self.retries = retries
        self.timeout = timeout
        self.rng_seed = rng_seed
        self.retry_conflicts = retry_conflicts
        self.records: list[KeyRecord] = []
        self.missed: list[str] = []
        self._lock = threading.Lock()
        self._started = 0
        self.t0 = 0.0

    def _take(self) -> bool:
        with self._lock:
            if self.max_requests and self._started >= self.max_requests:
                return False
            self._started += 1
            return True

    def _client(self, index: int, deadline: float) -> None:
        rng = random.Random(self.rng_seed * 1000 + index)
        # Each client owns its visitors: one visitor never has two check-ins in flight at once.
        mine = list(range(index, len(self.world.visitors), self.clients))
        if not mine:
            return
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as http:
            while time.monotonic() < deadline and self._take():
                v = rng.choice(mine)
                record = KeyRecord(uuid.uuid4().hex, v, rng.choice(self.world.codes))
                with self._lock:
                    self.records.append(record)
                self._send(http, record)

    def _send(self, http: httpx.Client, record: KeyRecord) -> None:
        token = self.world.visitors[record.visitor].token
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": record.key}
        for attempt in range(self.retries + 1):
            at = time.monotonic() - self.t0
            try:
                r = http.post("/v1/check-ins", json={"code": record.code}, headers=headers)
            except httpx.TransportError as exc:
                record.answers.append(Answer(at, None, error=type(exc).__name__))
            else:
                visit_id = None
                if r.status_code == 201:
                    try:
                        visit_id = str(r.json()["visit_id"])
                    except (ValueError, KeyError, TypeError):
                        visit_id = None
                body = "" if r.status_code == 201 else r.text[:160]
                record.answers.append(Answer(at, r.status_code, visit_id, body=body))
                conflict = r.status_code == 409 and "/problems/conflict" in body
                if r.status_code < 500 and not (conflict and self.retry_conflicts):
                    return
            if attempt < self.retries:
                time.sleep(min(0.25 * 2**attempt, 2.0))

    def run(self, faults: list[tuple[float, str, Any]]) -> None:
        """Run the clients; call each fault's function at its offset (seconds from the start)."""
        self.t0 = time.monotonic()
        deadline = self.t0 + self.duration
        threads = [
            threading.Thread(target=self._client, args=(i, deadline), daemon=True)
            for i in range(self.clients)
        ]
        for t in threads:
            t.start()
        for offset, name, action in sorted(faults, key=lambda f: f[0]):
            while time.monotonic() < self.t0 + offset:
                if not any(t.is_alive() for t in threads):
                    break
                time.sleep(0.05)
            if not any(t.is_alive() for t in threads):
                log(f"the load ended before {name} (at {offset:.0f} s): not done")
                self.missed.append(f"{name}: the load ended before {offset:.0f} s")
                continue
            log(f"t={time.monotonic() - self.t0:5.1f} s: {name}")
            action()
        for t in threads:
            t.join()
        log(f"load done in {time.monotonic() - self.t0:.1f} s, {len(self.records)} keys")


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def derived_visit_id(visitor_id: str, key: str) -> str | None:
    """The visit id the service derives from an Idempotency-Key, if this checkout has the rule."""
    try:
        from domain.ids import derive_id
    except ImportError:
        return None
    return str(derive_id(f"visit|{visitor_id}", key))


def visits_in_log(database_url: str, schema: str, visit_ids: set[str]) -> set[str]:
    """The visit ids among these that have a CheckedIn event in the log."""
    if not visit_ids:
        return set()
    ids = [uuid.UUID(v) for v in visit_ids]
    with psycopg.connect(database_url, autocommit=True) as db:
        rows = db.execute(
            f'SELECT DISTINCT originator_id FROM "{schema}".fangxin_events'
            " WHERE topic = %s AND originator_id = ANY(%s)",
            (CHECKED_IN_TOPIC, ids),
        ).fetchall()
    return {str(row[0]) for row in rows}


def log_totals(database_url: str, schema: str) -> tuple[int, int]:
    """(all events, CheckedIn events) in the log."""
    with psycopg.connect(database_url, autocommit=True) as db:
        row = db.execute(
            f'SELECT count(*), count(*) FILTER (WHERE topic = %s) FROM "{schema}".fangxin_events',
            (CHECKED_IN_TOPIC,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def visits_in_read_models(
    base_url: str, world: World, visitors: set[int], since: datetime
) -> tuple[set[str], dict[int, str]]:
    """Every visit id GET /v1/me/visits lists for these visitors; failures by visitor."""
    found: set[str] = set()
    failures: dict[int, str] = {}
    start = (since - timedelta(hours=1)).isoformat()
    end = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        for v in sorted(visitors):
            headers = {"Authorization": f"Bearer {world.visitors[v].token}"}
            try:
                r = http.get("/v1/me/visits", params={"from": start, "to": end}, headers=headers)
            except httpx.HTTPError as exc:
                failures[v] = repr(exc)
                continue
            if r.status_code != 200:
                failures[v] = f"{r.status_code}: {r.text[:200]}"
                continue
            found.update(str(item["visit_id"]) for item in r.json()["visits"])
    return found, failures


def own_frames(traceback: str) -> list[str]:
    """A traceback's frames in the project's code (not site-packages) and its last line."""
    lines = traceback.strip().splitlines()
    kept = []
    for i, line in enumerate(lines):
        if line.strip().startswith(f'File "{ROOT}/') and "/.venv/" not in line:
            kept.append(line)
            if i + 1 < len(lines):
                kept.append(lines[i + 1])
    return [*kept, lines[-1]] if lines else []


def server_log_summary(path: Path) -> list[str]:
    """What the server's log says went wrong, grouped, plus the workers' lives.

    JSON lines of level warning and above are grouped by logger, message, error and route, with
    their count, first and last time and pids, and the last lines of one traceback per group.
    Lines about worker processes (started, died) come whole. Other lines (make's own output, a
    traceback printed outside the logger) come when they mention an error.
    """
    lifecycle = (
        "died",
        "started server process",
        "failed to start",
        "received sig",
        "stopping parent process",
    )
    words = ("error", "exception", "traceback", "killed")
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out: list[str] = []
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            if any(w in line.lower() for w in words):
                out.append(f"(plain) {line[:300]}")
            continue
        level = str(entry.get("level", "")).lower()
        message = str(entry.get("message", ""))
        if any(w in message.lower() for w in lifecycle):
            out.append(f"{entry.get('ts')} {level} {message}")
        elif level in ("warning", "error", "critical"):
            frames = [f for f in own_frames(str(entry.get("traceback", ""))) if "File" in f]
            key = (
                *(str(entry.get(k, "")) for k in ("level", "logger", "message", "error", "route")),
                frames[-1].strip() if frames else "",
            )
            groups.setdefault(key, []).append(entry)
    for (level, logger, message, error, route, _), entries in groups.items():
        pids = sorted({str(e.get("pid", "")) for e in entries})
        where = f" on {route}" if route else ""
        out.append(
            f"{len(entries)} x {level} {logger}: {message!r} error={error}{where}"
            f" from {entries[0].get('ts')} to {entries[-1].get('ts')} (pids {', '.join(pids)})"
        )
        traceback = next((str(e["traceback"]) for e in entries if e.get("traceback")), "")
        if traceback:
            out.extend(f"    {t}" for t in own_frames(traceback))
    return out


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    ap.add_argument(
        "--requests", type=int, default=0, help="stop after this many keys (default 0: no cap)"
    )
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    ap.add_argument("--visitors", type=int, default=200, help="visitors to register (200)")
    ap.add_argument("--venues", type=int, default=20, help="venues to register (20)")
    ap.add_argument("--retries", type=int, default=5, help="retries per key after 5xx/errors (5)")
    ap.add_argument("--timeout", type=float, default=15.0, help="HTTP timeout, seconds (15)")
    ap.add_argument("--kill-at", type=float, default=5.0, help="SIGKILL a worker at (5 s)")
    ap.add_argument("--redis-restart-at", type=float, default=12.0, help="restart Redis at (12 s)")
    ap.add_argument("--no-kill", action="store_true", help="do not kill a worker")
    ap.add_argument("--no-redis-restart", action="store_true", help="do not restart Redis")
    ap.add_argument("--workers", type=int, default=2, help="FANGXIN_WORKERS (2)")
    ap.add_argument("--lag-timeout", type=float, default=180.0, help="wait for lag 0 (180 s)")
    ap.add_argument("--start-timeout", type=float, default=120.0, help="wait for /health (120 s)")
    ap.add_argument(
        "--database-url",
        default=os.environ.get(
            "FANGXIN_FAULTS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    ap.add_argument(
        "--redis-url",
        default=os.environ.get("FANGXIN_FAULTS_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    ap.add_argument("--seed", type=int, default=1, help="random seed of the load (1)")
    ap.add_argument(
        "--retry-conflicts",
        action="store_true",
        help="also retry (same key) a 409 /problems/conflict, which asks the client to retry",
    )
    ap.add_argument(
        "--strict",
        action="store_true",
        help="also fail on any 5xx answer and on check-ins in the log that no key got a 201 for",
    )
    args = ap.parse_args(argv)
    if args.clients < 1 or args.visitors < 1 or args.venues < 1:
        ap.error("need at least one client, visitor and venue")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_id = secrets.token_hex(6)
    schema = f"faults_{run_id}"
    prefix = f"fxfaults:{run_id}:"
    work = Path(tempfile.mkdtemp(prefix=f"fangxin-faults-{run_id}-"))
    log_path = work / "server.log"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    redis_ctl = RedisControl(args.redis_url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FANGXIN_")},
        "FANGXIN_HOST": "127.0.0.1",
        "FANGXIN_PORT": str(port),
        "FANGXIN_WORKERS": str(args.workers),
        "FANGXIN_RATE_LIMIT": "0",
        "FANGXIN_DATABASE_URL": args.database_url,
        "FANGXIN_DATABASE_SCHEMA": schema,
        "FANGXIN_REDIS_URL": args.redis_url,
        "FANGXIN_REDIS_PREFIX": prefix,
        "FANGXIN_DATA_DIR": str(work / "data"),
        "FANGXIN_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "FANGXIN_ADMIN_TOKEN": secrets.token_urlsafe(32),
    }
    log(f"run {run_id}: schema {schema}, Redis prefix {prefix}, {base_url}")
    log(f"server log: {log_path}")
    server = Server(env, log_path)
    schema_made = False
    try:
        if not redis_ctl.ping():
            raise RuntimeError(f"Redis is not reachable at {args.redis_url}")
        with psycopg.connect(args.database_url, autocommit=True) as db:
            db.execute(f'CREATE SCHEMA "{schema}"')
        schema_made = True
        return run(args, server, redis_ctl, base_url, schema, run_id)
    except (
        RuntimeError,
        TimeoutError,
        OSError,
        subprocess.SubprocessError,
        psycopg.Error,
        httpx.HTTPError,
    ) as exc:
        log(f"FAILED to run: {exc}")
        for line in server_log_summary(log_path):
            print(f"  | {line}")
        return 2
    finally:
        log(f"server {server.stop()}")
        try:
            redis_ctl.ensure_running()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            log(f"could not start Redis again: {exc}")
        if schema_made:
            try:
                with psycopg.connect(args.database_url, autocommit=True) as db:
                    db.execute(f'DROP SCHEMA "{schema}" CASCADE')
                log(f"schema {schema} dropped")
            except psycopg.Error as exc:
                log(f"could not drop schema {schema}: {exc}")
        try:
            log(f"{redis_ctl.delete_prefix(prefix)} Redis keys of {prefix} deleted")
        except redis.RedisError as exc:
            log(f"could not delete the keys of {prefix}: {exc}")
        shutil.rmtree(work / "data", ignore_errors=True)


def run(
    args: argparse.Namespace,
    server: Server,
    redis_ctl: RedisControl,
    base_url: str,
    schema: str,
    run_id: str,
) -> int:
    started = time.monotonic()
    server.start()
    with httpx.Client(base_url=base_url) as http:
        health = wait_for_health(http, server, args.start_timeout)
    log(f"server up in {time.monotonic() - started:.1f} s: {health}")
    deadline = time.monotonic() + 30
    while len(server.workers()) < args.workers and time.monotonic() < deadline:
        time.sleep(0.2)
    log(f"supervisor {server.supervisor()}, workers {server.workers()}")
    others = other_servers(server)
    if others:
        log(
            f"note: other fangxin servers run on this machine (pids {others}); the Redis restart"
            " reaches them too, and anything that stops them by name may stop this one"
        )

    started = time.monotonic()
    world = seed(base_url, args.visitors, args.venues, min(args.clients, 16), run_id)
    log(
        f"seeded {len(world.visitors)} visitors, {len(world.codes)} venues"
        f" in {time.monotonic() - started:.1f} s"
    )

    load = Load(
        base_url,
        world,
        args.clients,
        args.duration,
        args.requests,
        args.retries,
        args.timeout,
        args.seed,
        args.retry_conflicts,
    )
    events: list[str] = []
    unreplaced: list[str] = []

    def kill_worker() -> None:
        workers = server.workers()
        if not workers:
            events.append("kill: no worker found")
            load.missed.append("kill a worker: no worker process found")
            log("no worker process found to kill")
            return
        victim = random.Random(args.seed).choice(workers)
        os.kill(victim, signal.SIGKILL)
        at = time.monotonic()
        events.append(f"SIGKILL worker {victim} (workers were {workers})")
        log(f"SIGKILL worker {victim} of supervisor {server.supervisor()} (workers {workers})")

        def watch() -> None:
            while time.monotonic() - at < 60:
                now = [p for p in server.workers() if p != victim]
                if len(now) >= len(workers):
                    gone = time.monotonic() - at
                    events.append(f"worker replaced after {gone:.1f} s: workers {now}")
                    log(f"worker replaced after {gone:.1f} s: workers {now}")
                    return
                time.sleep(0.1)
            events.append("worker NOT replaced within 60 s")
            unreplaced.append("the killed worker was not replaced within 60 s")
            log("worker NOT replaced within 60 s")

        threading.Thread(target=watch, daemon=True).start()

    def restart_redis() -> None:
        at = time.monotonic()
        redis_ctl.shutdown()
        down = time.monotonic() - at
        redis_ctl.start()
        events.append(
            f"Redis restarted (shutdown took {down:.2f} s, answering again after"
            f" {time.monotonic() - at:.2f} s)"
        )
        log(f"Redis shut down (nosave) and started again in {time.monotonic() - at:.2f} s")

    faults: list[tuple[float, str, Any]] = []
    if not args.no_kill:
        faults.append((args.kill_at, "kill a worker", kill_worker))
    if not args.no_redis_restart:
        faults.append((args.redis_restart_at, "restart Redis", restart_redis))
    load_started_at = datetime.now(UTC)
    load.run(faults)

    started = time.monotonic()
    with httpx.Client(base_url=base_url) as http:
        health = wait_for_health(http, server, args.lag_timeout, need_zero_lag=True)
    log(f"projection lag 0 after {time.monotonic() - started:.1f} s: {health}")
    if not args.no_kill and not any("replaced after" in e for e in events):
        # The watcher may still be looking: give it the rest of its minute.
        deadline = time.monotonic() + 60
        while not unreplaced and not any("replaced after" in e for e in events):
            if time.monotonic() > deadline or load.missed:
                break
            time.sleep(0.2)
    return check(args, load, world, base_url, schema, load_started_at, events, server)


def check(
    args: argparse.Namespace,
    load: Load,
    world: World,
    base_url: str,
    schema: str,
    since: datetime,
    events: list[str],
    server: Server,
) -> int:
    records = load.records
    answers = [a for r in records for a in r.answers]
    by_label = collections.Counter(a.label for a in answers)
    final = collections.Counter(r.answers[-1].label if r.answers else "none" for r in records)
    retries = sum(max(0, len(r.answers) - 1) for r in records)
    keys_retried = sum(1 for r in records if len(r.answers) > 1)
    ok = [r for r in records if r.answered_201]
    duplicates = [r for r in ok if len(r.visit_ids_201) > 1]
    no_id = [r for r in ok if not r.visit_ids_201]
    wanted = {vid for r in ok for vid in r.visit_ids_201}

    sequences = collections.Counter(" > ".join(a.label for a in r.answers) for r in records)
    dump = server.log_path.parent / "keys.jsonl"
    with dump.open("w") as f:
        for r in records:
            f.write(
                json.dumps(
                    {
                        "key": r.key,
                        "visitor_id": world.visitors[r.visitor].visitor_id,
                        "answers": [
                            {"t": round(a.at, 3), "answer": a.label, "visit_id": a.visit_id}
                            | ({"body": a.body} if a.body else {})
                            for a in r.answers
                        ],
                    }
                )
                + "\n"
            )

    in_log = visits_in_log(args.database_url, schema, wanted)
    total_events, checked_in_events = log_totals(args.database_url, schema)
    in_models, failures = visits_in_read_models(base_url, world, {r.visitor for r in ok}, since)
    keys_in_log = [r for r in ok if r.visit_ids_201 and r.visit_ids_201 <= in_log]
    # A diagnosis, not a promise: the service derives a visit's id from the visitor and the key
    # (domain.ids.derive_id), so a key that never got its 201 can still be found in the log.
    failed = [r for r in records if not r.answered_201]
    derived = {r.key: derived_visit_id(world.visitors[r.visitor].visitor_id, r.key) for r in failed}
    recorded_anyway = visits_in_log(args.database_url, schema, {v for v in derived.values() if v})
    failed_but_recorded = [r for r in failed if derived[r.key] in recorded_anyway]
    keys_in_models = [r for r in ok if r.visit_ids_201 and r.visit_ids_201 <= in_models]
    missing_log = [r for r in ok if not r.visit_ids_201 <= in_log or not r.visit_ids_201]
    missing_models = [r for r in ok if not r.visit_ids_201 <= in_models or not r.visit_ids_201]

    late_found: list[KeyRecord] = []
    if missing_models:
        # Tell "slow" from "lost": look once more after a pause.
        time.sleep(5)
        again, _ = visits_in_read_models(
            base_url, world, {r.visitor for r in missing_models}, since
        )
        late_found = [r for r in missing_models if r.visit_ids_201 and r.visit_ids_201 <= again]

    print()
    print("== faults ==")
    for e in events:
        print(f"  {e}")
    print("== counts ==")
    print(f"  keys (distinct requests)          {len(records):>7}")
    print(f"  HTTP attempts sent                {len(answers):>7}")
    print(f"  retries (attempts after first)    {retries:>7}  on {keys_retried} keys")
    print(f"  keys answered 201                 {len(ok):>7}")
    print(f"  keys never answered 201           {len(records) - len(ok):>7}")
    print("  answers by status (every attempt):")
    for label, n in sorted(by_label.items()):
        print(f"    {label:<30} {n:>7}")
    print("  keys by last answer:")
    for label, n in sorted(final.items()):
        print(f"    {label:<30} {n:>7}")
    print("  keys by answer sequence (other than a plain 201):")
    for seq, n in sorted(sequences.items(), key=lambda kv: -kv[1]):
        if seq != "201":
            print(f"    {seq:<50} {n:>7}")
    print(f"  distinct visit ids answered 201   {len(wanted):>7}")
    print(f"  keys confirmed in the log         {len(keys_in_log):>7} / {len(ok)}")
    print(f"  keys confirmed in read models     {len(keys_in_models):>7} / {len(ok)}")
    print(f"  keys 201 with two visit ids       {len(duplicates):>7}")
    orphans = checked_in_events - len(in_log)
    print(f"  log: {total_events} events, {checked_in_events} CheckedIn")
    print(f"  CheckedIn in the log, no 201      {orphans:>7}  (recorded, but no key got its 201)")
    print(
        f"  keys never 201, yet in the log    {len(failed_but_recorded):>7}"
        "  (found by the visit id derived from the key)"
    )
    print(f"  workers at the end: {server.workers()}")

    broken: list[str] = []
    if missing_log:
        broken.append(f"{len(missing_log)} keys answered 201 whose visit is not in the log")
    if missing_models:
        broken.append(
            f"{len(missing_models)} keys answered 201 whose visit GET /v1/me/visits does not list"
            f" ({len(late_found)} of them listed 5 s later)"
        )
    if duplicates:
        broken.append(f"{len(duplicates)} keys answered 201 with two different visit ids")
    if no_id:
        broken.append(f"{len(no_id)} answers 201 without a visit_id")
    if failures:
        broken.append(f"GET /v1/me/visits failed for {len(failures)} visitors")
    if not ok:
        broken.append("no check-in was answered 201 at all")
    n5xx = sum(n for k, n in by_label.items() if k.isdigit() and int(k) >= 500)
    if args.strict and n5xx:
        broken.append(f"{n5xx} answers were 5xx (--strict)")
    if args.strict and orphans:
        broken.append(f"{orphans} check-ins are in the log but no key got a 201 (--strict)")
    odd = {k: n for k, n in by_label.items() if k != "201" and not k.startswith("error:")}
    if odd:
        listed = ", ".join(f"{n} x {k}" for k, n in sorted(odd.items()))
        print(f"  note: every request was valid, yet some answers were not 201: {listed}")

    def show(title: str, rs: list[KeyRecord]) -> None:
        if not rs:
            return
        print(f"  {title} ({min(10, len(rs))} of {len(rs)}):")
        for r in rs[:10]:
            trail = ", ".join(
                f"t={a.at:.1f}s {a.label} {a.visit_id or a.body}".strip() for a in r.answers
            )
            print(f"    key {r.key} visitor {world.visitors[r.visitor].visitor_id}: {trail}")

    show("not in the log", missing_log)
    show("not in read models", missing_models)
    show("two visit ids", duplicates)
    errors = [
        r for r in records if any(a.status is not None and a.status >= 500 for a in r.answers)
    ]
    show("keys with a 5xx answer", errors)
    show("keys never answered 201", failed)
    show("keys never answered 201 whose check-in is in the log", failed_but_recorded)
    for v, why in list(failures.items())[:10]:
        print(f"  GET /v1/me/visits of visitor {world.visitors[v].visitor_id}: {why}")

    print(f"  every key's answers: {dump}")
    summary = server_log_summary(server.log_path)
    if summary:
        print(f"== server log: workers, errors and warnings ({server.log_path}) ==")
        for line in summary:
            print(f"  | {line}")

    print("== promises ==")
    broken.extend(e for e in events if "NOT replaced" in e)
    if broken:
        for b in broken:
            print(f"  BROKEN: {b}")
        return 1
    if load.missed:
        for m in load.missed:
            print(f"  NOT TESTED: {m}")
        print("  the promises held, but not every fault was injected: the run proves less")
        return 2
    print("  every 201 is in the log and in the read models; no key got two visit ids: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
