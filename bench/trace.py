"""Contact-tracing query latency on synthetic visits, at several data-set sizes.

Run from the repository root:
    python -m bench.trace [--sizes 100000 1000000] [--world scaled|fixed] [--seed 1]

Each size gets its own synthetic city: 28 days of visits, check-ins between 07:00 and 22:00
China time (lunch and dinner peaks), dwell log-uniform 5-120 min, 3 % never checked out (they
end at max dwell, 3 h). In the default "scaled" world the city grows with the data set (one
venue per 500 visits, one visitor per 5 visits: 2,000 venues and 200,000 visitors at 10^6), so
the answers stay the same size and the p50 ratio shows what the data-set size alone costs. In
the "fixed" world (2,000 venues and 200,000 visitors at every size) venues get busier as the
data set grows and answers grow with them.

A query traces one random visitor who has a stay in the last 14 days: their stays come from
stays_of, then close_contacts runs with the default rule against the index. Prints figures
only; nothing here fails on a timing.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.tracing import Contact, ContactRule, Stay, Window, close_contacts
from domain.visits import Visit
from infrastructure.readmodels.memory.directory import MemoryDirectory
from infrastructure.readmodels.memory.projection import ReadModelProjector
from infrastructure.readmodels.memory.tracing import MemoryContactIndex, MemoryExposureLog
from infrastructure.readmodels.memory.visits import MemoryVisitLog

START = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 28
NOW = START + timedelta(days=DAYS)
WINDOW = timedelta(days=14)
MAX_DWELL = timedelta(hours=3)
MAX_DWELL_MINUTES = 180
OPEN_SHARE = 0.03
VISITS_PER_VENUE = 500
VISITS_PER_VISITOR = 5
FIXED_VENUES = 2_000
FIXED_VISITORS = 200_000
CHINA = timedelta(hours=8)


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _local_minute(rng: random.Random) -> float:
    """Minute of the local day of a check-in: shops open 07:00-22:00, busiest at meals."""
    shape = rng.random()
    if shape < 0.4:
        minute = rng.uniform(7 * 60, 22 * 60)
    elif shape < 0.7:
        minute = rng.gauss(12.5 * 60, 60)
    else:
        minute = rng.gauss(18.5 * 60, 75)
    return min(max(minute, 7 * 60), 22 * 60)


def build_index(
    n_visits: int,
    seed: int,
    *,
    venues: int | None = None,
    visitors: int | None = None,
) -> tuple[MemoryContactIndex, list[UUID]]:
    """A MemoryContactIndex holding n_visits synthetic visits, and the ids of the visitors."""
    rng = random.Random(seed)
    n_venues = venues or max(1, n_visits // VISITS_PER_VENUE)
    n_visitors = visitors or max(1, n_visits // VISITS_PER_VISITOR)
    venue_ids = [_uuid(rng) for _ in range(n_venues)]
    # Some venues are much busier than others (a mall food court against a corner shop).
    popularity = [rng.lognormvariate(0, 0.75) for _ in range(n_venues)]
    visitor_ids = [_uuid(rng) for _ in range(n_visitors)]
    at_venue = rng.choices(venue_ids, weights=popularity, k=n_visits)
    log_short, log_long = math.log(5), math.log(120)
    visits = []
    for venue in at_venue:
        day = START + timedelta(days=rng.randrange(DAYS))
        checked_in = day - CHINA + timedelta(minutes=_local_minute(rng), seconds=rng.random())
        dwell = timedelta(minutes=math.exp(rng.uniform(log_short, log_long)))
        checked_out = None if rng.random() < OPEN_SHARE else checked_in + dwell
        visits.append((checked_in, venue, visitor_ids[rng.randrange(n_visitors)], checked_out))
    visits.sort(key=lambda visit: visit[0])  # the order a projection replays the log in
    index = MemoryContactIndex()
    # Through the real projection: the events a replay of the log hands to the projector.
    projector = ReadModelProjector(
        MemoryDirectory(), MemoryVisitLog(), index, MemoryExposureLog(), MAX_DWELL_MINUTES
    )
    topic = get_topic(Visit)
    for checked_in, venue, visitor, checked_out in visits:
        visit_id = _uuid(rng)
        projector.apply(
            Visit.CheckedIn(
                originator_id=visit_id,
                originator_version=1,
                timestamp=checked_in,
                originator_topic=topic,
                visitor_id=visitor,
                guardian_id=visitor,
                venue_id=venue,
                at=checked_in,
                via="scan",
            )
        )
        if checked_out is not None:
            projector.apply(
                Visit.CheckedOut(
                    originator_id=visit_id,
                    originator_version=2,
                    timestamp=checked_out,
                    guardian_id=visitor,
                    day=checked_in.date(),
                    at=checked_out,
                    reason="scan",
                )
            )
    return index, visitor_ids


def trace(
    index: Stays, person: UUID, depth: int, now: datetime = NOW, window: timedelta = WINDOW
) -> list[Contact]:
    """One contacts query for the `window` before `now`, as Casework runs it: one batched
    lookup per level of the search (any ContactIndex: memory here, the history in
    bench.history)."""

    def stays_at_many(windows: Sequence[Window]) -> list[list[Stay]]:
        return index.stays_at_many(windows, now)

    def stays_of_many(windows: Sequence[Window]) -> list[list[Stay]]:
        return index.stays_of_many(windows, now)

    return close_contacts(
        index.stays_of(person, now - window, now, now),
        frozenset({person}),
        ContactRule(),
        depth,
        stays_at_many=stays_at_many,
        stays_of_many=stays_of_many,
        until=now,
    )


class Stays(Protocol):
    """What a contacts query reads: a memory ContactIndex, or the history."""

    def stays_of(
        self, visitor_id: UUID, t0: datetime, t1: datetime, now: datetime
    ) -> list[Stay]: ...

    def stays_at_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]: ...

    def stays_of_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]: ...


@dataclass(frozen=True)
class Figures:
    """Latencies (ms) and answer sizes of one batch of queries."""

    p50: float
    p99: float
    contacts: float


def percentile(values: list[float], share: float) -> float:
    """The value at `share` (0.5: the median) of the values, by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def measure(index: MemoryContactIndex, people: list[UUID], depth: int, n: int) -> Figures:
    """Time n queries for random visitors who were somewhere in the last 14 days."""
    rng = random.Random(depth)
    latencies: list[float] = []
    answers: list[int] = []
    while len(latencies) < n:
        visitor = rng.choice(people)
        if not index.stays_of(visitor, NOW - WINDOW, NOW, NOW):
            continue
        began = time.perf_counter()
        found = trace(index, visitor, depth)
        latencies.append((time.perf_counter() - began) * 1000)
        answers.append(len(found))
    latencies.sort()
    return Figures(percentile(latencies, 0.5), percentile(latencies, 0.99), sum(answers) / n)


def main() -> None:
    """Build each size, run the queries, print p50/p99 and the p50 ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--world", choices=["scaled", "fixed"], default="scaled")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--depth1", type=int, default=200, help="depth-1 queries per size")
    parser.add_argument("--depth2", type=int, default=50, help="depth-2 queries per size")
    args = parser.parse_args()
    fixed = args.world == "fixed"
    rule = ContactRule()
    print(
        f"world: {args.world}; rule: before {rule.before}, after {rule.after},"
        f" min_overlap {rule.min_overlap}; window {WINDOW.days} days"
    )
    results: dict[int, tuple[Figures, Figures]] = {}
    for size in args.sizes:
        began = time.perf_counter()
        index, people = build_index(
            size,
            args.seed,
            venues=FIXED_VENUES if fixed else None,
            visitors=FIXED_VISITORS if fixed else None,
        )
        built = time.perf_counter() - began
        gc.collect()
        measure(index, people, 1, 20)  # warm-up, not reported
        depth1 = measure(index, people, 1, args.depth1)
        depth2 = measure(index, people, 2, args.depth2)
        results[size] = (depth1, depth2)
        print(f"{size:>9} visits  built in {built:.1f} s")
        for depth, figures in ((1, depth1), (2, depth2)):
            print(
                f"{'':>9} depth {depth}: p50 {figures.p50:7.3f} ms  p99 {figures.p99:7.3f} ms"
                f"  contacts/query {figures.contacts:6.1f}"
            )
        del index, people
        gc.collect()
    smallest, largest = min(results), max(results)
    if smallest != largest:
        for depth in (1, 2):
            ratio = results[largest][depth - 1].p50 / results[smallest][depth - 1].p50
            print(f"depth {depth}: p50({largest})/p50({smallest}) = {ratio:.2f}")


if __name__ == "__main__":
    main()
