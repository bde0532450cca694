"""Before `fangxin rebuild`: the PostgreSQL history's tables and tracking position go, so that a
fresh store applies the whole log again from position 0.

What retention dropped stays dropped: the one-row state table keeps the first day retention
kept (`dropped_before`), whose earlier days a rebuild must not bring back (their log rows are
gone, and what little of them is left in the log is skipped).
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from infrastructure.history import postgres_schema as schema


def reset_postgres(datastore: PostgresDatastore) -> None:
    """Drop the history's tables (not its state) and its position, under its writers' lock."""
    names = schema.names(datastore.schema)
    tracking = Identifier(datastore.schema, schema.TRACKING)
    lock_key = f"{datastore.schema}.{schema.TRACKING}"
    with datastore.transaction(commit=True) as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_key,))
        cursor.execute(
            SQL("DROP TABLE IF EXISTS {visits}, {log_rows}, {exposures}, {venues} CASCADE").format(
                **names
            )
        )
        cursor.execute(SQL("DROP TABLE IF EXISTS {0}").format(tracking))
        cursor.execute(SQL("UPDATE {state} SET longest_seconds = 0").format(**names))
