"""What a load's answers promised, checked against the log and the read models afterwards."""

from __future__ import annotations

import collections
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.resilience.load import KeyRecord, Registered

# The event's topic ends so wherever the class lives; the log is read by topic.
CHECKED_IN = "%Visit.CheckedIn"
LAG_TIMEOUT_SECONDS = 180


def wait_for_zero_lag(base_url: str) -> dict[str, Any]:
    """/health until it answers 200 with no projection lag three times in a row."""
    deadline = time.monotonic() + LAG_TIMEOUT_SECONDS
    last: dict[str, Any] = {}
    streak = 0
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while time.monotonic() < deadline and streak < 3:
            try:
                response = client.get("/health")
                last = {**response.json(), "http_status": response.status_code}
            except (httpx.HTTPError, ValueError) as exc:
                last = {"error": repr(exc)}
            settled = last.get("http_status") == 200 and last.get("projection_lag") == 0
            streak = streak + 1 if settled else 0
            time.sleep(0.2)
    return last


def checked_in_log(database_url: str, schema: str) -> set[str]:
    """Every visit id with a CheckedIn event in the log."""
    with psycopg.connect(database_url, autocommit=True) as db:
        rows = db.execute(
            f'SELECT DISTINCT originator_id FROM "{schema}".fangxin_events WHERE topic LIKE %s',
            (CHECKED_IN,),
        ).fetchall()
    return {str(uuid.UUID(str(row[0]))) for row in rows}


def listed_visits(
    base_url: str, registered: Registered, visitors: set[int], since: datetime
) -> tuple[set[str], dict[int, str]]:
    """Every visit id GET /v1/me/visits lists for these visitors; failures by visitor."""
    found: set[str] = set()
    failures: dict[int, str] = {}
    window = {
        "from": (since - timedelta(hours=1)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        for v in sorted(visitors):
            headers = {"Authorization": f"Bearer {registered.visitors[v].token}"}
            response = http.get("/v1/me/visits", params=window, headers=headers)
            if response.status_code != 200:
                failures[v] = f"{response.status_code}: {response.text[:200]}"
                continue
            found.update(str(item["visit_id"]) for item in response.json()["visits"])
    return found, failures


@dataclass
class Outcome:
    """The keys sorted by what became of what they were promised."""

    records: list[KeyRecord]
    answered: list[KeyRecord]
    not_in_log: list[KeyRecord]
    not_listed: list[KeyRecord]
    two_visit_ids: list[KeyRecord]
    listing_failures: dict[int, str]
    unanswered_in_log: int

    @property
    def answers(self) -> collections.Counter[str]:
        return collections.Counter(a.label for r in self.records for a in r.answers)

    @property
    def server_errors(self) -> int:
        return sum(n for label, n in self.answers.items() if label.isdigit() and int(label) >= 500)

    def summary(self) -> str:
        def keys(rs: list[KeyRecord]) -> str:
            return "".join(f"\n    {r.key}: {r.trail()}" for r in rs[:5])

        return (
            f"{len(self.records)} keys, {len(self.answered)} answered 201; answers "
            f"{dict(self.answers)}; not in the log {len(self.not_in_log)}{keys(self.not_in_log)}"
            f"; not listed {len(self.not_listed)}{keys(self.not_listed)}; two visit ids "
            f"{len(self.two_visit_ids)}{keys(self.two_visit_ids)}; listing failures "
            f"{self.listing_failures}; in the log without a 201: {self.unanswered_in_log}"
        )


def outcome(
    records: list[KeyRecord],
    registered: Registered,
    base_url: str,
    database_url: str,
    schema: str,
    since: datetime,
) -> Outcome:
    answered = [r for r in records if r.answered_201]
    in_log = checked_in_log(database_url, schema)
    listed, failures = listed_visits(base_url, registered, {r.visitor for r in answered}, since)
    promised = {v for r in answered for v in r.visit_ids_201}
    return Outcome(
        records=records,
        answered=answered,
        not_in_log=[r for r in answered if not r.visit_ids_201 or not r.visit_ids_201 <= in_log],
        not_listed=[r for r in answered if not r.visit_ids_201 or not r.visit_ids_201 <= listed],
        two_visit_ids=[r for r in answered if len(r.visit_ids_201) > 1],
        listing_failures=failures,
        unanswered_in_log=len(in_log - promised),
    )


def log_problems(path: Path, most: int = 30) -> str:
    """The server log's warnings and errors and its workers' lives, grouped, for a failure."""
    lifecycle = ("died", "started server process", "failed to start", "received sig")
    counts: collections.Counter[str] = collections.Counter()
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            if any(w in line.lower() for w in ("error", "exception", "traceback")):
                counts[f"(plain) {line[:200]}"] += 1
            continue
        level = str(entry.get("level", "")).lower()
        message = str(entry.get("message", ""))
        if level in ("warning", "error", "critical") or any(
            w in message.lower() for w in lifecycle
        ):
            counts[f"{level} {entry.get('logger', '')}: {message} {entry.get('error', '')}"] += 1
    return "\n".join(f"  {n} x {text}" for text, n in counts.most_common(most))
