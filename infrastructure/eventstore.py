"""Event store persistence: SQLite in the data folder (embedded), or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

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
        }
        if settings.database_schema:
            env["POSTGRES_SCHEMA"] = settings.database_schema
        return env
    path = Path(settings.data_dir) / "events.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "10",
    }
