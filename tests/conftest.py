"""Shared fixtures: a fresh data folder per test, the app over HTTP, a clock tests can move."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from infrastructure.bootstrap import build_services
from infrastructure.keys.keystore import KeyBackend
from infrastructure.services import Services
from infrastructure.settings import Settings, load_settings
from interface.http.app import create_app

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"


class CountingBackend:
    """A backend that counts its reads."""

    def __init__(self, inner: KeyBackend) -> None:
        self.inner = inner
        self.reads: list[str] = []

    def get(self, key_id: bytes) -> tuple[bytes | None, int] | None:
        self.reads.append("get")
        return self.inner.get(key_id)

    def get_many(self, key_ids: list[bytes]) -> dict[bytes, tuple[bytes | None, int]]:
        self.reads.append(f"get_many {len(key_ids)}")
        return self.inner.get_many(key_ids)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class MovableClock:
    """A clock the test moves by hand; starts at real time so day keys are today's."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


# `FANGXIN_TEST_DEPLOYMENT=production` runs the same tests on PostgreSQL and Redis, each test
# in its own PostgreSQL schema and under its own Redis key prefix.
PRODUCTION = os.environ.get("FANGXIN_TEST_DEPLOYMENT") == "production"
TEST_DATABASE_URL = os.environ.get(
    "FANGXIN_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TEST_REDIS_URL = os.environ.get("FANGXIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_REDIS_CLUSTER = os.environ.get("FANGXIN_TEST_REDIS_CLUSTER") == "1"


@pytest.fixture
def deployment() -> Iterator[dict[str, str]]:
    """Settings that place this test's data: a data folder, or a schema and a key prefix."""
    with placed_deployment() as placed:
        yield placed


@contextmanager
def placed_deployment() -> Iterator[dict[str, str]]:
    """`deployment`'s settings for any scope: nothing, or a new schema and key prefix."""
    if not PRODUCTION:
        yield {}
        return
    import psycopg

    from infrastructure.readmodels.redis.cluster import close_client, open_client

    schema = f"t_{uuid.uuid4().hex}"
    prefix = f"fxt:{schema}:"
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    yield {
        "database_url": TEST_DATABASE_URL,
        "database_schema": schema,
        "redis_url": TEST_REDIS_URL,
        "redis_prefix": prefix,
        "redis_cluster": "1" if TEST_REDIS_CLUSTER else "0",
    }
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as db:
        db.execute(f"DROP SCHEMA {schema} CASCADE")
    client = open_client(TEST_REDIS_URL, TEST_REDIS_CLUSTER)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    close_client(client)


@pytest.fixture
def settings(data_dir: Path, deployment: dict[str, str]) -> Settings:
    return load_settings(
        {},
        data_dir=str(data_dir),
        public_base_url="https://fangxin.test",
        admin_token=ADMIN_TOKEN,
        auto_checkout_interval_seconds=3600,
        **deployment,
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def services(settings: Settings, clock: MovableClock) -> Iterator[Services]:
    built = build_services(settings, clock=clock)
    yield built
    built.close()


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(settings, services=services)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    """Helpers that act as users over HTTP."""

    client: TestClient[Any]
    counter: int = 0

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def visitor(
        self, name: str | None = None, phone: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        n = self._next()
        body = {"name": name or f"Visitor {n}", "phone": phone or f"+86138{n:08d}", **extra}
        response = self.client.post("/v1/visitors", json=body)
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def merchant(self, name: str | None = None) -> dict[str, Any]:
        n = self._next()
        response = self.client.post(
            "/v1/merchants",
            json={"name": name or f"Merchant {n}", "contact_phone": f"+86139{n:08d}"},
        )
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def venue(
        self, merchant: dict[str, Any], name: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        n = self._next()
        body = {
            "name": name or f"Venue {n}",
            "address": f"{n} Test Road",
            "region": "110105",
            "category": "restaurant",
            **extra,
        }
        response = self.client.post("/v1/venues", json=body, headers=bearer(merchant["token"]))
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def check_in(
        self, visitor: dict[str, Any], venue: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        response = self.client.post(
            "/v1/check-ins", json={"code": venue["code"], **extra}, headers=bearer(visitor["token"])
        )
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def visits(self, visitor: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.client.get("/v1/me/visits", headers=bearer(visitor["token"]))
        assert response.status_code == 200, response.text
        visits: list[dict[str, Any]] = response.json()["visits"]
        return visits

    def agency(self, jurisdiction: list[str], name: str = "Health Commission") -> str:
        response = self.client.post(
            "/v1/agencies",
            json={"name": name, "jurisdiction": jurisdiction},
            headers=bearer(ADMIN_TOKEN),
        )
        assert response.status_code == 201, response.text
        agency_id: str = response.json()["agency_id"]
        return agency_id

    def officer(self, agency_id: str, role: str) -> dict[str, Any]:
        n = self._next()
        response = self.client.post(
            f"/v1/agencies/{agency_id}/officers",
            json={"name": f"Officer {n}", "role": role},
            headers=bearer(ADMIN_TOKEN),
        )
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def approved_case(
        self,
        tracer: dict[str, Any],
        supervisor: dict[str, Any],
        phone: str,
        start: datetime,
        end: datetime,
    ) -> str:
        """A case opened by the tracer on the index person's phone, approved by the supervisor."""
        opened = self.client.post(
            "/v1/cases",
            json={
                "index": {"phone": phone},
                "from": start.isoformat(),
                "to": end.isoformat(),
                "legal_basis": "confirmed by lab",
            },
            headers=bearer(tracer["token"]),
        )
        assert opened.status_code == 201, opened.text
        case_id: str = opened.json()["case_id"]
        approved = self.client.post(
            f"/v1/cases/{case_id}/approval",
            json={"approve": True},
            headers=bearer(supervisor["token"]),
        )
        assert approved.status_code == 200, approved.text
        return case_id

    def auditor(self) -> dict[str, Any]:
        response = self.client.post(
            "/v1/auditors", json={"name": "Auditor"}, headers=bearer(ADMIN_TOKEN)
        )
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer


@pytest.fixture
def world(client: TestClient[Any]) -> World:
    return World(client)


def tamper_audit(settings: Settings, data_dir: Path, statement: str, *params: object) -> None:
    """SQL straight into the audit store (`?` placeholders), as its operator can."""
    if settings.uses_postgres:
        import psycopg

        with psycopg.connect(settings.pg_dsn, autocommit=True) as pg:
            pg.execute(statement.replace("?", "%s").encode(), params)
    else:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(data_dir / "audit.db")) as db, db:
            db.execute(statement, params)
