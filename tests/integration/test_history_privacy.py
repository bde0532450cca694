"""What a copy of the history's tables shows: no person's id, only keyed pseudonyms and times.

A person's id is the log's plain originator id of their registration, so a history row that
held it would link their visits to it; the rows hold an HMAC pseudonym instead and the id only
sealed. Venue ids are plain on purpose (public places): finding them proves the search finds
what is there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
from psycopg import sql

from tests.history_log import populate
from tests.history_stores import Stores, history_fixtures
from tests.integration.conftest import DATABASE_URL

stores, log, open_history = history_fixtures(["sqlite", "postgres"])

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAYS = [TODAY - timedelta(days=2), TODAY - timedelta(days=1)]


def forms(ident: UUID) -> list[bytes]:
    """The ways an id can be written: its 16 bytes, its canonical text and its hex."""
    return [ident.bytes, str(ident).encode(), ident.hex.encode()]


def postgres_dump(schema: str) -> bytes:
    """Every row of the history's tables as PostgreSQL writes it as text (bytea as hex)."""
    with psycopg.connect(DATABASE_URL) as db:
        tables = db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE 'history%%'",
            (schema,),
        ).fetchall()
        rows = []
        for (table,) in tables:
            statement = sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier(schema, table))
            rows += [row[0] for row in db.execute(statement).fetchall()]
    return "\n".join(rows).encode()


def test_a_copy_of_the_history_holds_no_persons_id(stores: Stores) -> None:
    world = populate(stores.log, DAYS)
    history = stores.open()
    if stores.kind == "postgres":
        assert stores.schema is not None
        dump = postgres_dump(stores.schema)
        first_form = 1  # text dumps write bytea as hex: a raw id in a bytea shows as its hex
    else:
        wal = history.path.with_name(history.path.name + "-wal")
        dump = history.path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        first_form = 0

    def found(ident: UUID) -> bool:
        return any(form in dump for form in forms(ident)[first_form:])

    assert all(found(venue) for venue in world.venues)
    assert [person for person in world.people if found(person)] == []
