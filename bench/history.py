"""The PostgreSQL history: contacts of a case at 10^6 and 10^7 stored visits, and rebuild speed.

Run from the repository root (PostgreSQL at FANGXIN_BENCH_DATABASE_URL, default the test one):
    python -m bench.history [--sizes 1000000 10000000] [--events 200000] [--embedded 0]
                            [--person-visits 56] [--depth1 200] [--depth2 50] [--seed 1]
                            [--keep]

Contacts: each size gets a schema of its own, seeded straight into the history's tables
(COPY, rows pseudonymised and sealed as the projection writes them): 28 UTC days of visits,
one venue per 500 visits (busier and quieter ones), people making two visits a day on
average (--person-visits 5 gives bench.trace's sparser world), check-ins between 07:00 and
22:00 China time with meal peaks, dwell log-uniform 5-120 min, 3 % never checked out. A query
traces one random person with a stay in the last 14 days through `close_contacts` (the
default rule), its lookups going through the `PostgresHistory` port as Casework's do: one
batched lookup per level of the search (each read checks the log's head in the same round
trip).

--keep keeps each size's seeded schema (named by size, visits a person, seed and day) and a
later run with --keep reads it again instead of seeding (10^7 visits take minutes to seed);
drop them with `DROP SCHEMA bench_contacts_... CASCADE` when done.

Rebuild: writes --events encrypted events (venues, visitors, visits checked in and out) into
a fresh log, then times `catch_up` from position 0 into an empty history: events/s.
--embedded does the same with SQLite, then times a start (the history opened again resumes
from its position).

Prints figures only; nothing here fails on a timing.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench.trace import percentile, trace
from domain.tracing import ContactRule
from domain.visits import CheckoutReason, Visit
from infrastructure.history import postgres_schema as schema
from infrastructure.history.postgres import PostgresHistory
from infrastructure.history.sealing import RowKeys
from infrastructure.history.sqlite import SQLiteHistory
from infrastructure.readmodels.records import Pseudonyms, Seals
from tests.history_log import Log, postgres_recorder, sqlite_recorder

DATABASE_URL = os.environ.get(
    "FANGXIN_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DAYS = 28
NOW = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = NOW - timedelta(days=DAYS)
WINDOW = timedelta(days=14)
MAX_DWELL_MINUTES = 180
OPEN_SHARE = 0.03
VISITS_PER_VENUE = 500
# Visits a person makes over the 28 days: two a day by default; bench.trace's world has 5.
PERSON_VISITS = DAYS * 2
CHINA = timedelta(hours=8)
ROW_KEYS = RowKeys(Pseudonyms(b"b" * 32), Seals(b"c" * 32))


def _local_minute(rng: random.Random) -> float:
    shape = rng.random()
    if shape < 0.4:
        minute = rng.uniform(7 * 60, 22 * 60)
    elif shape < 0.7:
        minute = rng.gauss(12.5 * 60, 60)
    else:
        minute = rng.gauss(18.5 * 60, 75)
    return min(max(minute, 7 * 60), 22 * 60)


class Place:
    """A schema of its own holding an (empty) log and a history."""

    def __init__(self, label: str, name: str | None = None) -> None:
        self.schema = f"bench_{label}_{name or uuid.uuid4().hex[:8]}"
        with psycopg.connect(DATABASE_URL, autocommit=True) as db:
            self.existed = bool(
                db.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
            )
            db.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        self.keys_dir = Path(tempfile.mkdtemp(prefix="fangxin-bench-"))
        self.log = Log(
            postgres_recorder(conninfo_to_dict(DATABASE_URL), self.schema), self.keys_dir
        )

    def history(self, batch: int = 2000) -> PostgresHistory:
        return PostgresHistory(
            self.log.recorder, self.log.mapper, self.log.keys, row_keys=ROW_KEYS, batch=batch
        )

    def drop(self, keep: bool = False) -> None:
        self.log.close()
        shutil.rmtree(self.keys_dir, ignore_errors=True)
        if keep:
            return
        with psycopg.connect(DATABASE_URL, autocommit=True) as db:
            db.execute(f"DROP SCHEMA {self.schema} CASCADE")


def world(
    n_visits: int, rng: random.Random, person_visits: int
) -> tuple[list[UUID], list[float], list[UUID]]:
    """The venues, their popularity and the people (the first draws of `rng`)."""
    n_venues = max(1, n_visits // VISITS_PER_VENUE)
    n_people = max(1, n_visits // person_visits)
    venues = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(n_venues)]
    popularity = [rng.lognormvariate(0, 0.75) for _ in range(n_venues)]
    people = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(n_people)]
    return venues, popularity, people


def seed(place: Place, n_visits: int, rng: random.Random, person_visits: int) -> list[UUID]:
    """COPY n_visits visit rows into the history; returns the people."""
    place.history()  # makes the tables
    venues, popularity, people = world(n_visits, rng, person_visits)
    n_venues, n_people = len(venues), len(people)
    pseudonyms = [ROW_KEYS.person(p) for p in people]
    with psycopg.connect(DATABASE_URL, autocommit=True) as db:
        days = {(START + timedelta(days=d)).date() for d in range(-1, DAYS + 1)}
        with db.cursor() as cursor:
            schema.create_partitions(cursor, place.schema, days)  # type: ignore[arg-type]
        log_short, log_long = math.log(5), math.log(120)
        columns = (
            "day, visit_id, venue_id, person, guardian, checked_in, checked_out,"
            " dwell_until, ends, via, reason, people"
        )
        copy = f"COPY {place.schema}.{schema.VISITS} ({columns}) FROM STDIN"
        at_venue = rng.choices(range(n_venues), weights=popularity, k=n_visits)
        with db.cursor() as cursor, cursor.copy(copy) as out:
            for venue in at_venue:
                day = START + timedelta(days=rng.randrange(DAYS))
                checked_in = day - CHINA + timedelta(minutes=_local_minute(rng))
                dwell = timedelta(minutes=math.exp(rng.uniform(log_short, log_long)))
                until = checked_in + timedelta(minutes=MAX_DWELL_MINUTES)
                out_at = None if rng.random() < OPEN_SHARE else checked_in + dwell
                who = rng.randrange(n_people)
                visit_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                out.write_row(
                    (
                        checked_in.astimezone(UTC).date(),
                        visit_id,
                        venues[venue],
                        pseudonyms[who],
                        pseudonyms[who],
                        checked_in,
                        out_at,
                        until,
                        out_at or until,
                        "scan",
                        None if out_at is None else "scan",
                        ROW_KEYS.seal_people(visit_id, people[who], people[who]),
                    )
                )
        db.execute(
            f"UPDATE {place.schema}.{schema.STATE} SET longest_seconds = %s",
            (MAX_DWELL_MINUTES * 60 + 1,),
        )
        db.execute(f"ANALYZE {place.schema}.{schema.VISITS}")
    return people


def measure(history: PostgresHistory, people: list[UUID], depth: int, n: int) -> str:
    """Time n queries for random people who were somewhere in the last 14 days."""
    rng = random.Random(depth)
    latencies: list[float] = []
    answers: list[int] = []
    digest = hashlib.sha256()
    while len(latencies) < n:
        person = rng.choice(people)
        if not history.stays_of(person, NOW - WINDOW, NOW, NOW):
            continue
        began = time.perf_counter()
        found = trace(history, person, depth, NOW, WINDOW)
        latencies.append((time.perf_counter() - began) * 1000)
        answers.append(len(found))
        for contact in found:
            digest.update(contact.visitor_id.bytes + bytes([contact.depth]))
            for e in contact.exposures:
                digest.update(f"{e.visit_id}{e.start.isoformat()}{e.end.isoformat()}".encode())
    return (
        f"p50 {percentile(latencies, 0.5):8.2f} ms  p99 {percentile(latencies, 0.99):8.2f} ms"
        f"  contacts/query {sum(answers) / n:6.1f}  answers {digest.hexdigest()[:12]}"
    )


def contacts(
    sizes: list[int],
    seed_value: int,
    depth1: int,
    depth2: int,
    person_visits: int,
    keep: bool = False,
) -> None:
    for size in sizes:
        name = f"{size}_{person_visits}_{seed_value}_{NOW:%Y%m%d}" if keep else None
        place = Place("contacts", name)
        try:
            began = time.perf_counter()
            if place.existed:
                people = world(size, random.Random(seed_value), person_visits)[2]
                print(f"{size:>9} visits  reusing {place.schema} (--keep)")
            else:
                people = seed(place, size, random.Random(seed_value), person_visits)
            seeded = time.perf_counter() - began
            history = place.history()
            # As autovacuum does to the days past: hint bits and the visibility map set (an
            # index-only scan reads no heap page of an all-visible one).
            with psycopg.connect(DATABASE_URL, autocommit=True) as db:
                db.execute(f"VACUUM (ANALYZE) {place.schema}.{schema.VISITS}")
                (total,) = db.execute(
                    "SELECT pg_total_relation_size(%s) + coalesce(sum(pg_total_relation_size("
                    "inhrelid)), 0) FROM pg_inherits WHERE inhparent = %s::regclass",
                    (f"{place.schema}.{schema.VISITS}",) * 2,
                ).fetchone() or (0,)
            print(
                f"{size:>9} visits  {'' if place.existed else f'seeded in {seeded:.0f} s; '}"
                f"history visits {total / size:.0f} bytes/visit (heap and indexes)"
            )
            measure(history, people, 1, 20)  # warm-up
            print(f"{'':>9} depth 1: {measure(history, people, 1, depth1)}")
            print(f"{'':>9} depth 2: {measure(history, people, 2, depth2)}")
        finally:
            place.drop(keep)
            if keep:
                print(f"{'':>9} kept {place.schema}")


def write_log(log: Log, n_events: int, rng: random.Random) -> int:
    """About n_events events in time order, as they reach the log: 200 venues, 2,000
    visitors, then each minute 500 check-ins and the check-outs of those 40 minutes before."""
    venues = [log.venue(max_dwell_minutes=rng.choice([60, 120, 180])) for _ in range(200)]
    people = [log.visitor().id for _ in range(2000)]
    written = 2200
    clock = START
    leaving: list[list[Visit]] = []
    while written < n_events:
        arriving = []
        for _ in range(500):
            at = clock + timedelta(seconds=rng.randrange(60))
            arriving.append(log.new_visit(rng.choice(people), rng.choice(venues).id, at))
        log.save(*arriving)
        leaving.append(arriving)
        if len(leaving) > 40:
            gone = leaving.pop(0)
            for visit in gone:
                visit.check_out(visit.checked_in_at + timedelta(minutes=40), CheckoutReason.SCAN)
            log.save(*gone)
            written += 500
        clock += timedelta(minutes=1)
        written += 500
    return written


def rebuild(n_events: int, seed_value: int) -> None:
    """Write about n_events events, then time a rebuild of the history from position 0."""
    place = Place("rebuild")
    try:
        began = time.perf_counter()
        written = write_log(place.log, n_events, random.Random(seed_value))
        print(f"log: {written} events written in {time.perf_counter() - began:.0f} s")
        history = place.history()
        began = time.perf_counter()
        applied = history.catch_up()
        took = time.perf_counter() - began
        print(f"rebuild: {applied} events in {took:.1f} s = {applied / took:,.0f} events/s")
    finally:
        place.drop()


def embedded(n_events: int, seed_value: int) -> None:
    """The same into SQLite (the embedded deployment); then a start: opening the history
    again, which resumes from its position instead of replaying the log."""
    folder = Path(tempfile.mkdtemp(prefix="fangxin-bench-"))
    log = Log(sqlite_recorder(folder / "events.db"), folder)
    try:
        began = time.perf_counter()
        written = write_log(log, n_events, random.Random(seed_value))
        print(f"embedded log: {written} events written in {time.perf_counter() - began:.0f} s")
        history = SQLiteHistory(log.recorder, log.mapper, log.keys, folder, row_keys=ROW_KEYS)
        began = time.perf_counter()
        applied = history.catch_up()
        took = time.perf_counter() - began
        print(f"embedded rebuild: {applied} events in {took:.1f} s = {applied / took:,.0f} ev/s")
        history.close()
        began = time.perf_counter()
        reopened = SQLiteHistory(log.recorder, log.mapper, log.keys, folder, row_keys=ROW_KEYS)
        assert reopened.catch_up() == 0
        print(f"embedded start: history resumed in {time.perf_counter() - began:.3f} s")
        reopened.close()
    finally:
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--events", type=int, default=200_000, help="0: no rebuild")
    parser.add_argument("--embedded", type=int, default=0, help="events for the SQLite run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--depth1", type=int, default=200)
    parser.add_argument("--depth2", type=int, default=50)
    parser.add_argument(
        "--person-visits", type=int, default=PERSON_VISITS, help="a person's visits in 28 days"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep seeded schemas, and reuse kept ones"
    )
    args = parser.parse_args()
    print(
        f"rule {ContactRule()}; window {WINDOW.days} days;"
        f" {args.person_visits} visits a person in {DAYS} days"
    )
    if args.events:
        rebuild(args.events, args.seed)
    if args.embedded:
        embedded(args.embedded, args.seed)
    contacts(args.sizes, args.seed, args.depth1, args.depth2, args.person_visits, args.keep)


if __name__ == "__main__":
    main()
