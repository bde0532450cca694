"""Contract suites run one set of assertions against every adapter of a port; the production
adapters use the local PostgreSQL and Redis, isolated by schema and key prefix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.integration.conftest import DATABASE_URL, pg_schema, redis_client, redis_prefix

__all__ = ["opened", "pg_schema", "redis_client", "redis_prefix", "schema_dsn", "tables_in"]


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


@pytest.fixture
def schema_dsn(pg_schema: str) -> str:
    """A DSN whose search_path is this test's own schema: the stores' tables have fixed names."""
    return make_conninfo(DATABASE_URL, options=f"-csearch_path={pg_schema}")


def tables_in(dsn: str, schema: str) -> list[str]:
    """The tables of `schema`, asked over `dsn`, whose search_path must lead there."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_schema = %s"
            " ORDER BY table_name",
            (schema,),
        ).fetchall()
    return [name for (name,) in rows]


class Opened:
    """Adapters a test opened over one store, all closed after it."""

    def __init__(self) -> None:
        self._opened: list[Closable] = []

    def track(self, opener: Callable[..., C]) -> Callable[..., C]:
        def open_tracked(*args: object) -> C:
            adapter = opener(*args)
            self._opened.append(adapter)
            return adapter

        return open_tracked

    def close(self) -> None:
        for adapter in self._opened:
            adapter.close()


@pytest.fixture
def opened() -> Iterator[Opened]:
    tracked = Opened()
    yield tracked
    tracked.close()
