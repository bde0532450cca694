"""The close-contact search asks its lookups one batch per level (a store's round trip each):
depth 1 the index stays' windows; depth 2 the contacts' stays, then all their windows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from domain.tracing import END_OF_TIME, ContactRule, Stay, Window, close_contacts
from tests.unit.test_tracing import PEOPLE, VENUES, at, exact_lookups, stay


def test_each_level_asks_one_batch_of_the_windows_around_the_traced_stays() -> None:
    world = [
        stay(0, 0, 600, 660),
        stay(1, 0, 650, 700),
        stay(1, 1, 800, 830),
        stay(2, 0, 640, 700),
        stay(2, 2, 900, 960),
    ]
    rule = ContactRule(before=timedelta(minutes=10), after=timedelta(minutes=30))
    at_batches: list[list[Window]] = []
    of_batches: list[list[Window]] = []
    exact_at, exact_of = exact_lookups(world)

    def stays_at_many(windows: Sequence[Window]) -> list[Iterable[Stay]]:
        at_batches.append(list(windows))
        return [exact_at(*window) for window in windows]

    def stays_of_many(windows: Sequence[Window]) -> list[Iterable[Stay]]:
        of_batches.append(list(windows))
        return [exact_of(*window) for window in windows]

    close_contacts(
        world[:1],
        frozenset({PEOPLE[0]}),
        rule,
        2,
        stays_at_many=stays_at_many,
        stays_of_many=stays_of_many,
    )
    # Depth 1: the index stay's window; depth 2: both contacts' stays in one call (from their
    # exposure on), then all their windows in one call.
    assert at_batches[0] == [(VENUES[0], at(590), at(690))]
    assert sorted(of_batches[0]) == sorted(
        [(PEOPLE[1], at(650), END_OF_TIME), (PEOPLE[2], at(640), END_OF_TIME)]
    )
    assert len(of_batches) == 1
    assert sorted(at_batches[1]) == sorted(
        [
            (VENUES[0], at(640), at(730)),
            (VENUES[1], at(790), at(860)),
            (VENUES[0], at(630), at(730)),
            (VENUES[2], at(890), at(990)),
        ]
    )
    assert len(at_batches) == 2


def test_depth_one_asks_no_person_and_nothing_is_asked_without_index_stays() -> None:
    asked: list[str] = []

    def stays_at_many(windows: Sequence[Window]) -> list[Iterable[Stay]]:
        asked.append("at")
        return [[] for _ in windows]

    def stays_of_many(windows: Sequence[Window]) -> list[Iterable[Stay]]:
        asked.append("of")
        return [[] for _ in windows]

    lookups = {"stays_at_many": stays_at_many, "stays_of_many": stays_of_many}
    assert close_contacts([], frozenset({PEOPLE[0]}), ContactRule(), 2, **lookups) == []
    assert asked == []
    assert (
        close_contacts([stay(0, 0, 0, 60)], frozenset({PEOPLE[0]}), ContactRule(), 2, **lookups)
        == []
    )
    assert asked == ["at"]
