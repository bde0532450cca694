"""Fixtures that open every history store over a log of the test's own: the contract suite
and the integration tests share them (`history_fixtures`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infrastructure.history.memory import MemoryHistory
from infrastructure.history.port import History
from tests.history_log import Log, postgres_recorder, sqlite_recorder
from tests.integration.conftest import DATABASE_URL

HistoryOpener = Callable[[], History]
# Fixed test keys (production takes them from the key store's service keys).
NAMES_KEY = b"h" * 32
SEALS_KEY = b"s" * 32


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

    def open(self, catch_up: bool = True, **extra: Any) -> Any:
        history = self.make(**extra)
        self.opened.append(history)
        if catch_up:
            history.catch_up()
        return history

    def make(self, **extra: Any) -> Any:
        log = self.log
        if self.kind == "memory":
            return MemoryHistory(log.recorder, log.mapper, **extra)
        from infrastructure.readmodels.records import Pseudonyms, Seals

        if self.kind == "sqlite":
            from infrastructure.history.sqlite import SQLiteHistory

            return SQLiteHistory(
                log.recorder,
                log.mapper,
                self.data_dir,
                Pseudonyms(NAMES_KEY),
                Seals(SEALS_KEY),
                key_id=log.keys.key_id,
                **extra,
            )
        from infrastructure.history.postgres import PostgresHistory

        return PostgresHistory(
            log.recorder,
            log.mapper,
            self.dsn,
            Pseudonyms(NAMES_KEY),
            Seals(SEALS_KEY),
            key_id=log.keys.key_id,
            **extra,
        )

    def close(self) -> None:
        for history in self.opened:
            close = getattr(history, "close", None)
            if close is not None:
                close()
        self.log.close()


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
