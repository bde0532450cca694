"""The visit log of the production deployment: open visits in Redis, every visit in the history.

Redis keeps what check-ins and automatic check-outs read on every request (a person's open
visits, occupancy, deadlines); visits by guardian or venue, and closed ones, are read from the
history (`infrastructure/history`), which catches up to the log's head before it answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import redis

from domain.ports import (
    Seen,
    VisitView,
)
from infrastructure.history.port import History
from infrastructure.readmodels.history_reads import drop_history
from infrastructure.readmodels.redis.args import epoch
from infrastructure.readmodels.redis.loop import Gathered, LoopClients
from infrastructure.readmodels.redis.projection import LOOK_SCRIPT, LOOK_SHA, RedisProjector
from infrastructure.readmodels.redis.records import RedisRecords, read_visits, texts

# One check-in's look: the people whose open visits it needs, and a visit by id (or None).
_Look = tuple[Sequence[UUID], UUID | None]


class RedisVisitLog:
    """Open visits and their deadlines in Redis; visits by guardian and venue in the history.

    Redis entries are visit pseudonyms; each visit's own record names (sealed) whose and where
    it is, so an entry moved to another person's set is left out.
    """

    def __init__(
        self,
        client: redis.Redis,
        records: RedisRecords,
        projector: RedisProjector,
        history: History,
        loop_clients: LoopClients | None = None,
    ) -> None:
        self._r = client
        self._history = history
        self._records = records
        self._p = records.prefix
        self._projector = projector
        self._loop_clients = loop_clients
        self._look = client.register_script(LOOK_SCRIPT)
        self._looks: Gathered[_Look, Seen] = Gathered(self._look_all)

    def _visits(self, replies: Any) -> list[VisitView]:
        return read_visits(self._r, self._records, replies)

    def get(self, visit_id: UUID) -> VisitView | None:
        """One visit: its record in Redis while it is open, else the history's."""
        pseudonym = self._records.pseudonyms.of(visit_id)
        raw = self._r.get(f"{self._p}visit:{pseudonym}")
        found = None if raw is None else self._records.visit(pseudonym, raw)
        if found is not None and found.visit_id == visit_id:
            return found
        return self._history.visit(visit_id)

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and dependents that began in [start, end), oldest first."""
        return self._history.of_guardian(guardian_id, start, end)

    def open_of(self, visitor_id: UUID) -> list[VisitView]:
        """Open visits of one person (one round trip)."""
        replies = self._look(keys=[self._records.name("open", visitor_id)], args=[self._p, ""])
        return self._seen([([visitor_id], None)], replies)[0].open_visits[visitor_id]

    async def look(self, people: Sequence[UUID], visit_id: UUID | None) -> Seen:
        """Open visits of these people and one visit, awaited; concurrent looks of this
        worker share one round trip."""
        return await self._looks.ask((people, visit_id))

    async def _look_all(self, looks: list[_Look]) -> list[Seen]:
        assert self._loop_clients is not None, "built without clients for the event loop"
        client = self._loop_clients.client()
        name, of = self._records.name, self._records.pseudonyms.of
        keys = [name("open", person) for people, _ in looks for person in people]
        args = [self._p, *("" if visit_id is None else of(visit_id) for _, visit_id in looks)]
        try:
            replies = await client.evalsha(LOOK_SHA, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:  # a restarted Redis: send it the script itself
            replies = await client.eval(LOOK_SCRIPT, len(keys), *keys, *args)
        return self._seen(looks, replies)

    def _seen(self, looks: list[_Look], replies: list[Any]) -> list[Seen]:
        """Split the LOOK script's replies into what each look asked for."""
        of = self._records.pseudonyms.of
        at = len(looks)
        answers: list[Seen] = []
        for i, (people, visit_id) in enumerate(looks):
            visit = None
            if visit_id is not None and replies[i] is not None:
                visit = self._records.visit(of(visit_id), replies[i])
            open_visits: dict[UUID, list[VisitView]] = {}
            for person in people:
                count = int(replies[at])
                pairs = replies[at + 1 : at + 1 + 2 * count]
                at += 1 + 2 * count
                views = _found_visits(self._records, pairs[0::2], pairs[1::2])
                open_visits[person] = [
                    v for v in views if v.checked_out_at is None and v.visitor_id == person
                ]
            answers.append(Seen(open_visits=open_visits, visit=visit))
        return answers

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits at a venue that began in [start, end), oldest first."""
        return self._history.at_venue(venue_id, start, end)

    def occupancy(self, venue_id: UUID) -> int:
        """Open visits at a venue."""
        raw = self._r.get(self._records.name("occ", venue_id))
        return int(raw) if raw else 0

    def due(self, now: datetime, limit: int) -> list[VisitView]:
        """Open visits past their deadline, earliest first."""
        ids = self._r.zrangebyscore(f"{self._p}due", "-inf", epoch(now), start=0, num=limit)
        return [v for v in self._visits(ids) if v.checked_out_at is None]

    def drop_before(self, cutoff: datetime) -> int:
        """Retention: drop the history's days before the cutoff's (UTC), whole, and the open
        visits that began before the cutoff from Redis; returns how many days went."""
        days = drop_history(self._history, cutoff)
        self._projector.drop_before(cutoff)
        return days


def _found_visits(records: RedisRecords, pseudonyms: Any, raws: Any) -> list[VisitView]:
    """The authentic visits among records read under these pseudonyms."""
    found = (records.visit(p, raw) for p, raw in zip(texts(pseudonyms), raws, strict=True) if raw)
    return [f for f in found if f is not None]
