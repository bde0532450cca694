"""Event store persistence: SQLite in the data folder (embedded), or PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID

from infrastructure.eventstore.postgres import TOPIC as RECORDER_TOPIC
from infrastructure.files import private_file
from infrastructure.settings import Settings


def event_store_env(settings: Settings, create_tables: bool = True) -> dict[str, str]:
    """The eventsourcing environment for the configured store.

    PostgreSQL workers run without DDL (`create_tables=False`): `fangxin migrate` made the
    schema once before they start, and several workers creating it at once would collide.
    """
    if settings.uses_postgres:
        url = urlparse(settings.database_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": (url.path or "/postgres").lstrip("/"),
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_LOCK_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "10",
            "POSTGRES_MAX_OVERFLOW": "10",
            "CREATE_TABLE": "y" if create_tables else "n",
            "APPLICATION_RECORDER_TOPIC": RECORDER_TOPIC,
        }
        if settings.database_schema:
            env["POSTGRES_SCHEMA"] = settings.database_schema
        return env
    path = private_file(Path(settings.data_dir) / "events.db")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "10",
    }


# PostgreSQL's detail of a unique violation names the duplicate key (SQLite's does not).
_DUPLICATE_KEY = re.compile(r"\(originator_id, originator_version\)=\(([0-9a-fA-F-]{36}), (\d+)\)")


def blame_duplicate(exc: Exception) -> Callable[[Any], bool] | None:
    """Which events a failed save was about, when the store named the duplicate key.

    The group commit then saves the rest of the batch together and only those items alone.
    """
    detail = getattr(getattr(exc.__cause__, "diag", None), "message_detail", None)
    match = _DUPLICATE_KEY.search(detail or "")
    if match is None:
        return None
    originator_id, version = UUID(match[1]), int(match[2])
    return lambda event: (
        getattr(event, "originator_id", None) == originator_id
        and getattr(event, "originator_version", None) == version
    )
