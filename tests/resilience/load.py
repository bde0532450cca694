"""A bounded check-in load that records every answer, and the registrations it needs.

Every request carries an Idempotency-Key of its own; a client retries (same key) after a
connection error or a 5xx, as the API asks clients to, so the records tell what each key was
finally promised.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

VENUES_PER_MERCHANT = 10
RETRIES = 5
TIMEOUT_SECONDS = 15.0


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

    def trail(self) -> str:
        return ", ".join(f"t={a.at:.1f}s {a.label} {a.visit_id or a.body}" for a in self.answers)


@dataclass(frozen=True)
class Visitor:
    visitor_id: str
    token: str


@dataclass(frozen=True)
class Registered:
    """The visitors and the venue codes the load checks in with."""

    visitors: list[Visitor]
    codes: list[str]


def post_created(
    client: httpx.Client, path: str, body: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    """POST until 201, waiting out a 429 or 503; anything else fails the setup."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers["Idempotency-Key"] = uuid.uuid4().hex
    for attempt in range(5):
        try:
            response = client.post(path, json=body, headers=headers)
        except httpx.TransportError:
            time.sleep(0.2 * (attempt + 1))
            continue
        if response.status_code == 201:
            answer: dict[str, Any] = response.json()
            return answer
        if response.status_code not in (429, 503):
            raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text}")
        time.sleep(float(response.headers.get("Retry-After", 0.2 * (attempt + 1))))
    raise RuntimeError(f"POST {path} failed five times")


def register(base_url: str, visitors: int, venues: int, concurrency: int = 8) -> Registered:
    """Merchants, their venues and the visitors, over HTTP."""
    local = threading.local()
    clients: list[httpx.Client] = []

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base_url, timeout=30.0)
            clients.append(local.client)
        made: httpx.Client = local.client
        return made

    def merchant(i: int) -> dict[str, Any]:
        body = {"name": f"Merchant {i}", "contact_phone": f"+86137{i:08d}"}
        return post_created(client(), "/v1/merchants", body)

    def venue(i: int) -> dict[str, Any]:
        body = {"name": f"Venue {i}", "address": f"{i} Road", "region": "110105", "category": "f"}
        owner = merchants[i // VENUES_PER_MERCHANT]["token"]
        return post_created(client(), "/v1/venues", body, owner)

    def visitor(i: int) -> dict[str, Any]:
        return post_created(client(), "/v1/visitors", {"name": f"V {i}", "phone": f"+86136{i:08d}"})

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            merchants = list(pool.map(merchant, range(-(-venues // VENUES_PER_MERCHANT))))
            made_venues = list(pool.map(venue, range(venues)))
            made_visitors = list(pool.map(visitor, range(visitors)))
    finally:
        for c in clients:
            c.close()
    return Registered(
        [Visitor(v["visitor_id"], v["token"]) for v in made_visitors],
        [v["code"] for v in made_venues],
    )


@dataclass(frozen=True)
class Fault:
    """Something done to the deployment `at` seconds into the load."""

    at: float
    name: str
    action: Callable[[], None]


class Load:
    """Clients checking in with unique keys until the deadline."""

    def __init__(
        self, base_url: str, registered: Registered, clients: int, duration: float, seed: int = 1
    ) -> None:
        self.base_url = base_url
        self.registered = registered
        self.clients = clients
        self.duration = duration
        self.seed = seed
        self.records: list[KeyRecord] = []
        self.injected: list[str] = []
        self.missed: list[str] = []
        self._lock = threading.Lock()
        self.t0 = 0.0

    def _client(self, index: int, deadline: float) -> None:
        rng = random.Random(self.seed * 1000 + index)
        # Each client owns its visitors: one visitor never has two check-ins in flight at once.
        mine = list(range(index, len(self.registered.visitors), self.clients))
        if not mine:
            return
        with httpx.Client(base_url=self.base_url, timeout=TIMEOUT_SECONDS) as http:
            while time.monotonic() < deadline:
                record = KeyRecord(
                    uuid.uuid4().hex, rng.choice(mine), rng.choice(self.registered.codes)
                )
                with self._lock:
                    self.records.append(record)
                self._send(http, record)

    def _send(self, http: httpx.Client, record: KeyRecord) -> None:
        token = self.registered.visitors[record.visitor].token
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": record.key}
        for attempt in range(RETRIES + 1):
            at = time.monotonic() - self.t0
            try:
                response = http.post("/v1/check-ins", json={"code": record.code}, headers=headers)
            except httpx.TransportError as exc:
                record.answers.append(Answer(at, None, error=type(exc).__name__))
            else:
                created = response.status_code == 201
                visit_id = str(response.json().get("visit_id")) if created else None
                body = "" if created else response.text[:160]
                record.answers.append(Answer(at, response.status_code, visit_id, body=body))
                if response.status_code < 500:
                    return
            if attempt < RETRIES:
                time.sleep(min(0.25 * 2**attempt, 2.0))

    def run(self, faults: list[Fault]) -> None:
        """Run the clients and inject each fault at its time; a fault the load outlived is
        recorded as missed."""
        self.t0 = time.monotonic()
        deadline = self.t0 + self.duration
        threads = [
            threading.Thread(target=self._client, args=(i, deadline), daemon=True)
            for i in range(self.clients)
        ]
        for thread in threads:
            thread.start()
        for fault in sorted(faults, key=lambda f: f.at):
            while time.monotonic() < self.t0 + fault.at and any(t.is_alive() for t in threads):
                time.sleep(0.05)
            if not any(t.is_alive() for t in threads):
                self.missed.append(f"{fault.name}: the load ended before {fault.at:.0f} s")
                continue
            fault.action()
            self.injected.append(fault.name)
        for thread in threads:
            thread.join()
