"""Real PostgreSQL and Redis on 127.0.0.1: with CI set they must be there; without, tests skip."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from infrastructure.readmodels.records import Pseudonyms, Seals
from infrastructure.readmodels.redis.cluster import close_client, open_client
from infrastructure.readmodels.redis.records import RedisRecords

REDIS_URL = os.environ.get("FANGXIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# The URL names one node of a Redis Cluster (`scripts/redis-cluster.sh start` sets both).
REDIS_CLUSTER = os.environ.get("FANGXIN_TEST_REDIS_CLUSTER") == "1"
# Starts a Redis that requires a password, as production's does.
PASSWORD_REDIS = Path(__file__).resolve().parents[2] / "scripts" / "redis-with-password.sh"
DATABASE_URL = os.environ.get(
    "FANGXIN_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def records_of(prefix: str) -> RedisRecords:
    """How a test deployment under this prefix names and seals its records (fixed test keys)."""
    return RedisRecords(prefix, Pseudonyms(b"n" * 32), Seals(b"s" * 32))


def redis_of(url: str = REDIS_URL) -> redis.Redis:
    """A client of the test Redis, or of the test cluster."""
    return open_client(url, REDIS_CLUSTER)


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: integration tests must run")
    pytest.skip(reason)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis_of()
    try:
        client.ping()
    except redis.ConnectionError:
        close_client(client)
        unavailable(f"Redis is not reachable at {REDIS_URL}")
    yield client
    close_client(client)


@pytest.fixture(scope="session")
def password_redis_url() -> Iterator[str]:
    """The URL (password included) of a Redis of this session's own that requires a password."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        unavailable("redis-server is not installed: no Redis with a password to run against")
    done = subprocess.run(
        [str(PASSWORD_REDIS)], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        unavailable(f"{PASSWORD_REDIS.name} could not start a Redis: {done.stderr.strip()}")
    exported = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines())
    pidfile = Path(exported["FANGXIN_TEST_REDIS_PIDFILE"])
    yield exported["FANGXIN_TEST_REDIS_URL"]
    os.kill(int(pidfile.read_text()), signal.SIGTERM)
    shutil.rmtree(pidfile.parent, ignore_errors=True)


@pytest.fixture
def redis_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own, removed afterwards; hash-tagged, so that the read models
    keep it as it is."""
    prefix = f"fxtest:{{{uuid.uuid4().hex}}}:"
    yield prefix
    keys = list(redis_client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of this test's own, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex}"
    try:
        db = psycopg.connect(DATABASE_URL, autocommit=True)
    except psycopg.OperationalError:
        unavailable(f"PostgreSQL is not reachable at {DATABASE_URL}")
        raise
    with db:
        db.execute(f"CREATE SCHEMA {schema}")
    yield schema
    with psycopg.connect(DATABASE_URL, autocommit=True) as db:
        db.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def production(pg_schema: str, redis_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Settings of a production deployment of this test's own (schema and key prefix)."""
    return {
        "data_dir": str(tmp_path / "data"),
        "database_url": DATABASE_URL,
        "database_schema": pg_schema,
        "redis_url": REDIS_URL,
        "redis_prefix": redis_prefix,
        "redis_cluster": "1" if REDIS_CLUSTER else "0",
        "admin_token": "integration-admin-token-0123456789",
    }
