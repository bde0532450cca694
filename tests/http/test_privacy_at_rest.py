"""A leak of the data folder reveals nothing: no name, phone or venue name in any file."""

from __future__ import annotations

from pathlib import Path

from infrastructure.bootstrap import build_services
from infrastructure.keys.crypto import normalise_phone
from infrastructure.settings import Settings
from tests.conftest import World, bearer

NAMES = ["王秀英", "Zhang Wei", "小明宝宝", "老王面馆", "Golden Dragon Teahouse", "李奶奶"]
PHONES = ["+8613912345678", "+8618687654321", "+8613700001111"]


def every_byte(folder: Path, settings: Settings) -> bytes:
    """Every file of the data folder and, in production, every row of the database schema."""
    files = b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())
    if not settings.uses_postgres:
        return files
    import psycopg

    rows = []
    with psycopg.connect(settings.pg_dsn) as db:
        tables = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (settings.database_schema,),
        ).fetchall()
        for (table,) in tables:
            query = f'COPY (SELECT * FROM "{table}") TO STDOUT (FORMAT binary)'
            with db.cursor().copy(query) as copy:
                rows.extend(bytes(chunk) for chunk in copy)
    return files + b"".join(rows)


def forms(text: str) -> list[bytes]:
    # UTF-8, UTF-16 (either order) and, for phones, the digits without the country code.
    out = [text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-16-be")]
    if text.startswith("+"):
        out.append(text[3:].encode())
        out.append(normalise_phone(text).encode())
    return out


def test_the_data_folder_holds_no_name_phone_or_venue_name_in_plain_text(
    world: World, settings: Settings, data_dir: Path
) -> None:
    merchant = world.merchant(name="Golden Dragon Teahouse")
    venue = world.venue(merchant, name="老王面馆")
    other = world.venue(merchant, name="Golden Dragon Teahouse")
    shopper = world.visitor(name="王秀英", phone=PHONES[0], dependents=["小明宝宝"])
    world.visitor(name="Zhang Wei", phone=PHONES[1])
    world.check_in(shopper, venue, party=["小明宝宝"])
    world.client.post(
        "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(shopper["token"])
    )
    world.check_in(shopper, other)
    world.client.post(
        f"/v1/venues/{venue['venue_id']}/assisted-check-ins",
        json={"name": "李奶奶", "phone": PHONES[2]},
        headers=bearer(merchant["token"]),
    )
    dump = every_byte(data_dir, settings)
    assert len(dump) > 10_000  # the log, the keys and the master key are there
    for secret in [*NAMES, *PHONES, shopper["token"], merchant["token"], "Test Road"]:
        for form in forms(secret):
            assert form not in dump, f"{secret!r} found in plain text"


def test_the_master_key_file_is_readable_by_its_owner_only(world: World, data_dir: Path) -> None:
    world.visitor()
    assert (data_dir / "master.key").stat().st_mode & 0o777 == 0o600
    if (data_dir / "keys.db").exists():
        assert (data_dir / "keys.db").stat().st_mode & 0o077 == 0


def test_every_data_file_and_the_data_folder_are_the_owners_alone(
    world: World, data_dir: Path
) -> None:
    # Given a world that wrote to every store: visits, keys, and the audit trail.
    visitor, venue = world.visitor(), world.venue(world.merchant())
    world.check_in(visitor, venue)
    world.agency(["110000"])
    assert data_dir.stat().st_mode & 0o777 == 0o700
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"master.key"}
    loose = {path.name: oct(path.stat().st_mode & 0o777) for path in files}
    assert {name: mode for name, mode in loose.items() if mode != "0o600"} == {}


def test_a_data_folder_made_world_readable_before_is_closed_at_start(
    settings: Settings, data_dir: Path
) -> None:
    data_dir.mkdir(mode=0o755, parents=True)
    (data_dir / "audit.db").touch(mode=0o644)
    build_services(settings).close()
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert (data_dir / "audit.db").stat().st_mode & 0o777 == 0o600
