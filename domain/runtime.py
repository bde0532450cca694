"""The command driver: ports, locks, commits through the group commit, and looks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from functools import cached_property
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Mapper,
    Notification,
    Recording,
)

from domain.commands import (
    IdempotencyKeyReusedError,
    Look,
    Mapped,
    Ports,
    Steps,
    T,
    derive_id,
    transcodings,
)
from domain.ports import Committer, QuickMapper, RefusingRecorder, Seen


class Runtime(Application[UUID]):
    """Runs commands: answers their looks, commits what they hand over, retries conflicts."""

    def __init__(
        self, ports: Ports, env: dict[str, str] | None = None, mapper: Mapper[Any] | None = None
    ) -> None:
        self._injected_mapper = mapper
        self.ports = ports
        self.committer: Committer | None = None
        self._locks = [threading.Lock() for _ in range(256)]
        self._async_locks = [asyncio.Lock() for _ in range(256)]
        super().__init__(env)

    # -- wiring ---------------------------------------------------------------------------

    def construct_mapper(self) -> Mapper[Any]:
        """Use the composition root's mapper (scoped encryption) when one is given."""
        if self._injected_mapper is not None:
            return self._injected_mapper
        return super().construct_mapper()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """The library's transcodings, and dates."""
        for transcoding in transcodings():
            transcoder.register(transcoding)

    def _lock(self, key: UUID) -> threading.Lock:
        return self._locks[key.int % len(self._locks)]

    def _async_lock(self, key: UUID) -> asyncio.Lock:
        # Only spares needless conflicts between one person's concurrent check-ins on this
        # event loop; correctness rests on optimistic concurrency, as across processes.
        return self._async_locks[key.int % len(self._async_locks)]

    def commit(self, *aggregates: Aggregate | None) -> None:
        """Append the aggregates' new events durably, then wait for the read models."""
        events = [e for a in aggregates if a is not None for e in a.collect_events()]
        if not events:
            return
        if self.committer is not None:
            recordings = self.committer.save(self.mapped(events))
        else:
            recordings = self.save(*events)
        self.ports.sync.written(recordings)

    def mapped(self, events: Sequence[Any]) -> list[Mapped | Any]:
        """Events with their stored forms where making them needs no I/O (their keys are in
        memory); the others as they are, for `record` to map in the group commit's thread,
        so that a key read never blocks the event loop."""
        mapper = self.mapper
        if not self._maps_quickly:
            return list(events)
        quick = cast(QuickMapper, mapper)
        return [
            Mapped(event, mapper.to_stored_event(event)) if quick.maps_at_once(event) else event
            for event in events
        ]

    @cached_property
    def _maps_quickly(self) -> bool:
        # Asked once: a runtime-checkable protocol's isinstance costs a check per member.
        return isinstance(self.mapper, QuickMapper)

    def record(
        self, *items: Mapped | Any, writers: Sequence[int] | None = None
    ) -> list[Recording[UUID] | None]:
        """Append events in one transaction: what the group commit calls with a batch.

        `EventStore.put` for events that their writers mapped already, mapping the others.
        `writers[i]` names the writer of the i-th event: where the store can refuse one writer
        whose event conflicts and insert the rest, that writer's events get None, not a
        recording. Elsewhere a conflict raises `IntegrityError` for the whole batch.
        """
        to_stored = self.mapper.to_stored_event
        unmapped = [item for item in items if not isinstance(item, Mapped)]
        if unmapped and self._maps_quickly:
            cast(QuickMapper, self.mapper).load_keys(unmapped)
        items = tuple(
            item if isinstance(item, Mapped) else Mapped(item, to_stored(item)) for item in items
        )
        stored_events = [item.stored for item in items]
        ids: Sequence[int | None] | None
        if writers is not None and self._refuses_writers:
            ids = cast(RefusingRecorder, self.recorder).insert_by_writer(stored_events, writers)
        else:
            ids = self.recorder.insert_events(stored_events)
        if not ids:
            return []
        return [
            None
            if notification_id is None
            else Recording(
                event,
                Notification(
                    id=notification_id,
                    originator_id=stored.originator_id,
                    originator_version=stored.originator_version,
                    topic=stored.topic,
                    state=stored.state,
                ),
            )
            for (event, stored), notification_id in zip(items, ids, strict=True)
        ]

    @cached_property
    def _refuses_writers(self) -> bool:
        return isinstance(self.recorder, RefusingRecorder)

    def run(self, steps: Steps[T], conflict: IntegrityError | None = None) -> T:
        """Drive a command: answer its looks, commit what it hands over, throw conflicts back."""
        seen: Seen | None = None
        try:
            while True:
                step = steps.throw(conflict) if conflict else steps.send(seen)
                conflict, seen = None, None
                if isinstance(step, Look):
                    seen = self._look(step)
                    continue
                try:
                    self.commit(*step)
                except IntegrityError as exc:
                    conflict = exc
        except StopIteration as done:
            result: T = done.value
            return result

    async def run_async(self, steps: Steps[T]) -> T:
        """`run` for the event loop: reads and commits are awaited, no thread is held.

        After a conflict the command looks again in the log itself, which blocks: the rest of
        it runs in a thread (conflicts are rare, the first attempt is the hot path).
        """
        seen: Seen | None = None
        try:
            while True:
                step = steps.send(seen)
                seen = None
                if isinstance(step, Look):
                    seen = await self.ports.visits.look(step.people, step.visit_id)
                    continue
                try:
                    await self.commit_async(*step)
                except IntegrityError as exc:
                    return await asyncio.to_thread(self.run, steps, exc)
        except StopIteration as done:
            result: T = done.value
            return result

    def _look(self, look: Look) -> Seen:
        visits = self.ports.visits
        return Seen(
            open_visits={person: visits.open_of(person) for person in look.people},
            visit=None if look.visit_id is None else visits.get(look.visit_id),
        )

    async def commit_async(self, *aggregates: Aggregate | None) -> None:
        """`commit` whose wait for durability is awaited (read models in this process)."""
        events = [e for a in aggregates if a is not None for e in a.collect_events()]
        if not events:
            return
        if self.committer is not None:
            recordings = await self.committer.save_async(self.mapped(events))
        else:
            recordings = self.save(*events)
        await self.ports.sync.written_async(recordings)

    def _new_id(self, kind: str, idempotency_key: str | None) -> UUID:
        if idempotency_key is None:
            return self.ports.ids.new()
        return derive_id(kind, idempotency_key)

    def create(self, aggregate: Aggregate) -> None:
        """Save a new aggregate whose id may derive from an Idempotency-Key."""
        try:
            self.commit(aggregate)
        except IntegrityError:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used already; its answer cannot be repeated"
            ) from None
