"""Erasure is final in what PostgreSQL keeps on disk: the key table's files at once, and the WAL
(with whatever was copied from it) once the master key version in force at erasure is retired.

These tests read the server's own files (`SHOW data_directory`, `pg_wal`), so they need a
server on this machine and a user that may read its data directory (root, or postgres).
Without CI they skip otherwise; with CI set they fail.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from domain.people import Visitor
from domain.visits import Visit
from infrastructure.bootstrap import build_services
from infrastructure.keys.crypto import DecryptionError, unseal
from infrastructure.keys.keystore import KEY_ID_BYTES, KeyStore, _wrap_context
from infrastructure.keys.masterkeys import MasterKeys
from infrastructure.keys.postgres import PostgresKeyBackend
from infrastructure.settings import load_settings
from interface.cli import main
from tests.checkins import check_in
from tests.conftest import MovableClock
from tests.integration.conftest import DATABASE_URL, unavailable

pytestmark = pytest.mark.integration

# A wrapped key: AES-GCM nonce, the 32-byte key, the tag.
WRAPPED_BYTES = 12 + 32 + 16


class ServerFiles:
    """The files of the PostgreSQL server the tests use, read directly."""

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        self._db = db
        row = db.execute("SHOW data_directory").fetchone()
        assert row is not None
        self.root = Path(row[0])
        if not os.access(self.root / "pg_wal", os.R_OK | os.X_OK):
            unavailable(f"the PostgreSQL data directory {self.root} is not readable here")

    def checkpoint(self) -> None:
        """Write every changed page to the table files."""
        self._db.execute("CHECKPOINT")

    def key_table(self, schema: str) -> bytes:
        """Every file of every partition of the key table in `schema`."""
        paths = self._db.execute(
            "SELECT pg_relation_filepath(inhrelid) FROM pg_inherits WHERE inhparent = %s::regclass",
            (f"{schema}.fangxin_keys",),
        ).fetchall()
        assert len(paths) > 1
        chunks = []
        for (path,) in paths:
            segment, number = self.root / path, 0
            while segment.exists():  # a relation's file, then its 1 GB segments .1, .2, ...
                chunks.append(segment.read_bytes())
                number += 1
                segment = self.root / f"{path}.{number}"
        return b"".join(chunks)

    def wal(self) -> bytes:
        """Every WAL segment in pg_wal, recycled ones included."""
        segments = sorted(p for p in (self.root / "pg_wal").iterdir() if len(p.name) == 24)
        return b"".join(p.read_bytes() for p in segments)


@pytest.fixture
def files() -> Iterator[ServerFiles]:
    try:
        db = psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        unavailable(f"PostgreSQL is not reachable at {DATABASE_URL}")
        raise
    # A replication slot holds every WAL segment from now on: a checkpoint would otherwise
    # remove or recycle the segments that hold what the test looks for, depending on how much
    # WAL the server expects to need (a quiet server keeps fewer), and the test would fail
    # by chance.
    slot = f"fangxin_wal_{uuid.uuid4().hex[:12]}"
    with db:
        try:
            db.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
            try:
                yield ServerFiles(db)
            finally:
                db.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        except psycopg.errors.InsufficientPrivilege as error:
            unavailable(f"reading the server's files needs more rights: {error}")


def unwrappable(blob: bytes, key_id: bytes, master: MasterKeys) -> set[bytes]:
    """Every key that some master key version unwraps from a wrapped-key-sized run of bytes
    near an occurrence of `key_id` (a row stores the id, then the wrapping).

    Tried at every offset up to 64 bytes after each occurrence, under every configured version
    and every version number the wrapping could name."""
    found: set[bytes] = set()
    start = blob.find(key_id)
    while start >= 0:
        end = start + KEY_ID_BYTES
        for offset in range(end, end + 64):
            candidate = blob[offset : offset + WRAPPED_BYTES]
            for master_key in master.keys.values():
                for version in range(1, max(master.keys) + 2):
                    with contextlib.suppress(DecryptionError):
                        found.add(unseal(master_key, candidate, _wrap_context(key_id, version)))
        start = blob.find(key_id, start + 1)
    return found


def compacted(keys: KeyStore) -> None:
    """Compact the key table, waiting out transactions of other tests that began earlier."""
    deadline = time.monotonic() + 30
    while not keys.backend.compact():
        assert time.monotonic() < deadline, "the key table was not compacted"
        time.sleep(0.2)


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def schema_dsn(schema: str) -> str:
    return make_conninfo(DATABASE_URL, options=f"-csearch_path={schema}")


def stored_key(dsn: str, key_id: bytes) -> bytes:
    with psycopg.connect(dsn) as db:
        row = db.execute("SELECT wrapped FROM fangxin_keys WHERE key_id = %s", (key_id,)).fetchone()
    assert row is not None
    wrapped: bytes = row[0]
    return wrapped


def test_a_destroyed_key_leaves_no_copy_of_its_wrapping_in_the_key_tables_files(
    files: ServerFiles, pg_schema: str
) -> None:
    dsn = schema_dsn(pg_schema)
    master = MasterKeys({1: secrets.token_bytes(32)}, 1)
    keys = KeyStore(PostgresKeyBackend(dsn, pool_size=2), master)
    try:
        scopes = [f"visitor:{uuid.uuid4()}" for _ in range(50)]
        for scope in scopes:
            keys.key_for(scope)
        erased = scopes[-1]  # the newest row of its page: a plain VACUUM leaves it be
        wrapped = stored_key(dsn, keys.key_id(erased))
        files.checkpoint()
        assert wrapped in files.key_table(pg_schema)

        keys.destroy([erased])
        compacted(keys)
        files.checkpoint()

        assert wrapped not in files.key_table(pg_schema)
        assert wrapped in files.wal()  # what retiring the master key version is for
    finally:
        keys.close()


def test_compaction_waits_for_a_transaction_that_could_still_see_the_destroyed_key(
    files: ServerFiles, pg_schema: str
) -> None:
    dsn = schema_dsn(pg_schema)
    keys = KeyStore(PostgresKeyBackend(dsn, pool_size=2), MasterKeys({1: b"k" * 32}, 1))
    scope = f"visitor:{uuid.uuid4()}"
    keys.key_for(scope)
    wrapped = stored_key(dsn, keys.key_id(scope))
    try:
        with psycopg.connect(dsn) as reader:
            reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            reader.execute("SELECT count(*) FROM fangxin_keys").fetchone()  # takes its snapshot
            keys.destroy([scope])

            assert keys.backend.compact() == 0
            files.checkpoint()
            assert wrapped in files.key_table(pg_schema)
            row = reader.execute(
                "SELECT wrapped FROM fangxin_keys WHERE key_id = %s", (keys.key_id(scope),)
            ).fetchone()
            assert row == (wrapped,)  # why: that snapshot still reads the key

        compacted(keys)
        files.checkpoint()
        assert wrapped not in files.key_table(pg_schema)
    finally:
        keys.close()


def test_after_rotation_and_retirement_no_configured_key_unwraps_an_erased_visitors_key(
    files: ServerFiles,
    pg_schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, new = new_master_key(), new_master_key()
    environment = {
        "data_dir": str(tmp_path / "data"),
        "database_url": DATABASE_URL,
        "database_schema": pg_schema,
        "admin_token": "erasure-admin-token-0123456789abcdef",
    }
    settings = load_settings({}, master_key=f"1:{old}", **environment)
    services = build_services(settings, clock=MovableClock())
    app = services.app
    merchant = app.register_merchant("Tea House", "+8613900000001", None)
    venue_id = app.register_venue(merchant.id, "Tea", "1 Road", "110105", "cafe", None, 180, None)
    venue = services.directory.venue(venue_id)
    assert venue is not None
    kept = app.register_visitor("王秀英", "+8613912345678", [], None).id
    erased = app.register_visitor("张伟", "+8613987654321", [], None).id
    kept_visit = check_in(services, kept, app.codes_of(venue).code).visit_id
    erased_visit = check_in(services, erased, app.codes_of(venue).code).visit_id
    erased_key_id = services.keys.key_id(f"visitor:{erased}")
    erased_key = services.keys.key_by_id(erased_key_id)
    wrapped = stored_key(settings.pg_dsn, erased_key_id)

    app.erase_visitor(erased)
    compacted(services.keys)
    services.close()
    files.checkpoint()

    assert wrapped not in files.key_table(pg_schema)
    wal = files.wal()
    assert wrapped in wal
    assert unwrappable(wal, erased_key_id, MasterKeys.parse(f"1:{old}")) == {erased_key}

    # The operator gives every worker the new version, rotates, then retires the old one.
    for name, value in environment.items():
        monkeypatch.setenv(f"FANGXIN_{name.upper()}", value)
    monkeypatch.setenv("FANGXIN_MASTER_KEY", f"2:{new},1:{old}")
    assert main(["keys", "rotate-master"]) == 0
    capsys.readouterr()
    assert main(["keys", "retire-master"]) == 0
    retired = capsys.readouterr().out.strip()
    assert MasterKeys.parse(retired).keys == {2: base64.b64decode(new)}

    restarted = build_services(load_settings({}, master_key=retired, **environment))
    try:
        visitor: Visitor = restarted.store.repository.get(kept)
        assert visitor.name == "王秀英"
        visit: Visit = restarted.store.repository.get(kept_visit)
        assert visit.visitor_id == kept
        assert restarted.store.repository.get(erased).forgotten
        assert restarted.store.repository.get(erased_visit).forgotten
        actions = [entry.action for entry in restarted.audit.entries()]
        assert actions.count("rotate master key") == 1
        assert actions.count("retire master key version") == 1
        assert restarted.keys.versions() == {2: sum(restarted.keys.versions().values())}
    finally:
        restarted.close()
    files.checkpoint()
    everything = files.wal() + files.key_table(pg_schema)
    assert wrapped in everything  # still there, and useless:
    assert unwrappable(everything, erased_key_id, MasterKeys.parse(retired)) == set()
