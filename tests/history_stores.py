"""Fixtures that open every history store over a log of the test's own: the contract suite
and the integration tests share them (`history_fixtures`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infrastructure.history.memory import MemoryHistory
from infrastructure.history.port import History
from infrastructure.history.sealing import RowKeys
from infrastructure.readmodels.records import Pseudonyms, Seals
from tests.history_log import Log, World, postgres_datastore, postgres_recorder, sqlite_recorder
from tests.integration.conftest import DATABASE_URL

HistoryOpener = Callable[[], History]
# Fixed test keys (production takes them from the key store's service keys).
NAMES_KEY = b"h" * 32
SEALS_KEY = b"s" * 32
DUMPED = ("visits", "log_rows", "exposures", "venues")
# Which batch wrote a venue differs with the batch size; what it holds must not.
COLUMNS = {"venues": "venue_id, max_dwell_minutes"}


class Stores:
    """Where one test's log and history live; opens histories over them, closes them after."""

    def __init__(self, kind: str, tmp_path: Path, schema: str | None) -> None:
        self.kind = kind
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.dsn = make_conninfo(DATABASE_URL, options=f"-csearch_path={schema}") if schema else ""
        if schema is None:
            recorder: Any = sqlite_recorder(self.data_dir / "events.db")
        else:
            recorder = postgres_recorder(conninfo_to_dict(DATABASE_URL), schema)
        self.log = Log(recorder, tmp_path)
        self.opened: list[Any] = []
        self.rebuilds = 0
        self.schemas: list[str] = []
        self.datastores: list[Any] = []

    def open(self, catch_up: bool = True, **extra: Any) -> Any:
        history = self.make(**extra)
        self.opened.append(history)
        if catch_up:
            history.catch_up()
        return history

    def rebuild(self) -> Any:
        """A history rebuilt from position 0 in a place of its own, over the same log."""
        self.rebuilds += 1
        if self.kind == "sqlite":
            place = self.data_dir.parent / f"rebuild{self.rebuilds}"
            place.mkdir()
            return self.open(data_dir=place)
        assert self.kind == "postgres"
        schema = f"{self.schema}_r{self.rebuilds}"
        with psycopg.connect(DATABASE_URL, autocommit=True) as db:
            db.execute(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        datastore = postgres_datastore(conninfo_to_dict(DATABASE_URL), schema)
        self.datastores.append(datastore)
        return self.open(datastore=datastore)

    def dump(self, history: Any, tables: tuple[str, ...] = DUMPED) -> dict[str, list[Any]]:
        """Every row of the history's tables (not its state row: retention marks it)."""
        if self.kind == "sqlite":
            db = sqlite3.connect(history.path)
            try:
                return {
                    t: db.execute(f"SELECT {COLUMNS.get(t, '*')} FROM {t} ORDER BY 1, 2").fetchall()
                    for t in tables
                }
            finally:
                db.close()
        with history._ds.get_connection() as conn:
            return {
                t: conn.execute(
                    sql.SQL("SELECT {0} FROM {1} ORDER BY 1, 2").format(
                        sql.SQL(COLUMNS.get(t, "*")),
                        sql.Identifier(history._ds.schema, f"history_{t}"),
                    )
                ).fetchall()
                for t in tables
            }

    def make(self, data_dir: Path | None = None, **extra: Any) -> Any:
        log = self.log
        if self.kind == "memory":
            return MemoryHistory(log.recorder, log.mapper, **extra)
        row_keys = RowKeys(Pseudonyms(NAMES_KEY), Seals(SEALS_KEY))

        if self.kind == "sqlite":
            from infrastructure.history.sqlite import SQLiteHistory

            return SQLiteHistory(
                log.recorder,
                log.mapper,
                log.keys,
                data_dir or self.data_dir,
                row_keys=row_keys,
                **extra,
            )
        from infrastructure.history.postgres import PostgresHistory

        return PostgresHistory(log.recorder, log.mapper, log.keys, row_keys=row_keys, **extra)

    def close(self) -> None:
        for history in self.opened:
            close = getattr(history, "close", None)
            if close is not None:
                close()
        for datastore in self.datastores:
            datastore.close()
        self.log.close()
        for schema in self.schemas:
            with psycopg.connect(DATABASE_URL, autocommit=True) as db:
                db.execute(f"DROP SCHEMA {schema} CASCADE")


def history_fixtures(kinds: list[str]) -> tuple[Any, Any, Any]:
    """The `stores`, `log` and `open_history` fixtures, parametrized over `kinds`."""
    params = [
        pytest.param(kind, marks=pytest.mark.integration) if kind == "postgres" else kind
        for kind in kinds
    ]

    @pytest.fixture(params=params)
    def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
        schema = request.getfixturevalue("pg_schema") if request.param == "postgres" else None
        placed = Stores(request.param, tmp_path, schema)
        yield placed
        placed.close()

    @pytest.fixture
    def log(stores: Stores) -> Log:
        return stores.log

    @pytest.fixture
    def open_history(stores: Stores) -> HistoryOpener:
        return stores.open

    return stores, log, open_history


def reads_of(history: History, world: World, start: datetime, end: datetime) -> dict[str, Any]:
    """Everything the port answers about the world's people and venues in [start, end]."""
    now = end
    return {
        "of_guardian": [history.of_guardian(p, start, end) for p in world.people],
        "stays_of": [history.stays_of(p, start, end, now) for p in world.people],
        "at_venue": [history.at_venue(v, start, end) for v in world.venues],
        "stays_at": [
            sorted(history.stays_at(v, start, end, now), key=lambda s: (s.start, s.visit_id))
            for v in world.venues
        ],
        "exposures_at": [history.exposures_at(v, start, end) for v in world.venues],
    }
