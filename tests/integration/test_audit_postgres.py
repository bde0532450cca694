"""The audit chain contract against PostgreSQL, each test in a schema of its own.

The tables have fixed names, so every test creates `audit_test_<random>`, points the log's
search_path at it and drops it afterwards; other suites sharing the database see nothing.
Without CI the tests skip when PostgreSQL is unreachable; with CI set they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from infrastructure.audit.chain import AuditLog
from infrastructure.audit.postgres import PostgresAuditLog
from tests.unit.test_audit import KEY, AuditLogContract, Opener, Tamper

pytestmark = pytest.mark.integration

DSN = os.environ.get("FANGXIN_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def schema_dsn() -> Iterator[str]:
    """A DSN whose search_path is a fresh schema, dropped after the test."""
    try:
        admin = psycopg.connect(DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL is unreachable at {DSN}: {error}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    schema = f"audit_test_{uuid.uuid4().hex}"
    with admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield make_conninfo(DSN, options=f"-csearch_path={schema}")
        finally:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


class TestPostgresAuditLog(AuditLogContract):
    TIME_COLUMN = "at"
    SHIFT_TIME = "UPDATE fangxin_audit SET at = at + interval '1 microsecond' WHERE position = ?"

    @pytest.fixture
    def open_log(self, schema_dsn: str) -> Iterator[Opener]:
        opened: list[PostgresAuditLog] = []

        def open_log(key: bytes = KEY) -> AuditLog:
            opened.append(PostgresAuditLog(schema_dsn, key))
            return opened[-1]

        yield open_log
        for log in opened:
            log.close()

    @pytest.fixture
    def tamper(self, schema_dsn: str) -> Tamper:
        def tamper(statement: str, *params: object) -> None:
            with psycopg.connect(schema_dsn, autocommit=True) as conn:
                conn.execute(statement.replace("?", "%s").encode(), params)

        return tamper

    def test_the_tables_are_made_in_the_schema_of_the_dsn(
        self, log: AuditLog, schema_dsn: str
    ) -> None:
        with psycopg.connect(schema_dsn) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_schema LIKE 'audit_test_%'"
                " ORDER BY table_name"
            ).fetchall()

        assert tables == [("fangxin_audit",), ("fangxin_audit_head",)]
