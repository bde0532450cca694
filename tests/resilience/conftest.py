"""A production deployment of each test's own: two workers on a fresh PostgreSQL schema and a
Redis server that the test may restart. With CI set, a missing PostgreSQL or redis-server
fails the run; elsewhere the suite skips, as the integration suite does."""

from __future__ import annotations

import base64
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import DATABASE_URL, pg_schema, unavailable
from tests.live import Server, free_port, migrate, running_server
from tests.resilience.redis_server import RedisServer

WORKERS = 2


@dataclass(frozen=True)
class Deployment:
    """The running server and what it stands on."""

    server: Server
    redis: RedisServer
    database_url: str
    schema: str


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        unavailable("redis-server is not installed")
    own = RedisServer(free_port(), tmp_path / "redis")
    own.start()
    yield own
    own.close()


@pytest.fixture
def deployment(tmp_path: Path, redis_server: RedisServer, pg_schema: str) -> Iterator[Deployment]:
    """`fangxin serve` with two workers, rate limits off; stopped by SIGINT, exiting with 0."""
    env = {
        "FANGXIN_WORKERS": str(WORKERS),
        "FANGXIN_RATE_LIMIT": "0",
        "FANGXIN_DATABASE_URL": DATABASE_URL,
        "FANGXIN_DATABASE_SCHEMA": pg_schema,
        "FANGXIN_REDIS_URL": redis_server.url,
        "FANGXIN_REDIS_PREFIX": f"fxresilience:{pg_schema}:",
        "FANGXIN_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "FANGXIN_ADMIN_TOKEN": secrets.token_urlsafe(32),
    }
    data = tmp_path / "data"
    migrate(data, **env)
    with running_server(data, **env) as server:
        yield Deployment(server, redis_server, DATABASE_URL, pg_schema)


__all__ = ["pg_schema"]  # the integration suite's fixture, used here too
