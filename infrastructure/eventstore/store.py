"""The event store the domain commits aggregates to: eventsourcing's log behind the domain's port.

A commit maps the aggregates' new events (encoded, encrypted), hands them to the group commit,
which inserts them with other writers' in one transaction, and returns once they are durable
and projected into the read models (read-your-writes). A version taken already by a concurrent
writer is the domain's `ConcurrentChangeError`.

The log's persistence (`EventLog`) opens before the store: the projection runner reads it and
the group commit inserts into it, and the store is given both, so nothing is wired afterwards.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import cached_property
from typing import Any, NamedTuple, Protocol, cast, runtime_checkable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    Mapper,
    Notification,
    Recording,
    StoredEvent,
)
from eventsourcing.utils import Environment

from domain.errors import ConcurrentChangeError
from domain.ports import NotStoredError

# Locks per key, shared by hashing: enough that unrelated writers rarely wait on each other.
LOCKS = 256


class ReadModelSync(Protocol):
    """Lets a writer wait until the read models have applied its own events."""

    def written(self, recordings: list[Recording[UUID]]) -> None:
        """Return once these just-recorded events are projected (read-your-writes).

        While the projection is failing, return at once: the events are durable in the log
        and a write is acknowledged; the read models show them once the projection recovers.
        """
        ...

    async def written_async(self, recordings: list[Recording[UUID]]) -> None:
        """`written`, awaited: at once when they are projected already, else in a thread."""
        ...


class Committer(Protocol):
    """Saves events durably, possibly together with other writers' (group commit)."""

    def save(self, events: Sequence[Any]) -> list[Recording[UUID]]:
        """Save; returns once durable."""
        ...

    async def save_async(self, events: Sequence[Any]) -> list[Recording[UUID]]:
        """Save; the returned awaitable completes once durable."""
        ...


@runtime_checkable
class QuickMapper(Protocol):
    """A mapper that can tell whether mapping an event needs no I/O."""

    def maps_at_once(self, domain_event: Any) -> bool:
        """Whether the event's keys are in memory."""
        ...

    def load_keys(self, domain_events: Iterable[Any]) -> None:
        """Bring the events' keys into memory at once (one read for them all)."""
        ...


@runtime_checkable
class RefusingRecorder(Protocol):
    """A recorder that refuses a conflicting writer of a batch, and inserts the rest."""

    def insert_by_writer(
        self, stored_events: Sequence[Any], writers: Sequence[int]
    ) -> list[int | None]:
        """Each event's notification id, None for the events of a refused writer."""
        ...


class Mapped(NamedTuple):
    """A new domain event and its stored form, made by its writer so that the group commit's
    flusher, which every writer of the process waits on, only inserts."""

    event: Any
    stored: StoredEvent

    @property
    def originator_id(self) -> UUID | str:
        """The aggregate's id (what a store's duplicate-key error names)."""
        return self.stored.originator_id

    @property
    def originator_version(self) -> int:
        """The event's version in its aggregate."""
        return self.stored.originator_version


class EventLog:
    """The log's recorder and mapper, and the batch insert the group commit calls."""

    def __init__(self, env: dict[str, str], mapper: Mapper[Any]) -> None:
        # As eventsourcing's application reads it: the process environment, then `env`.
        self.env = Environment(LogStore.name, {**os.environ, **env})
        self.factory = InfrastructureFactory.construct(self.env)
        self.recorder: ApplicationRecorder = self.factory.application_recorder()
        self.mapper = mapper

    def mapped(self, events: Sequence[Any]) -> list[Mapped | Any]:
        """Events with their stored forms where making them needs no I/O (their keys are in
        memory); the others as they are, mapped by `record` in the group commit's thread, so
        that a key read never blocks the event loop."""
        if not self._maps_quickly:
            return list(events)
        mapper = self.mapper
        quick = cast(QuickMapper, mapper)
        return [
            Mapped(event, mapper.to_stored_event(event)) if quick.maps_at_once(event) else event
            for event in events
        ]

    @cached_property
    def _maps_quickly(self) -> bool:
        # Asked once: a runtime-checkable protocol's isinstance checks every member.
        return isinstance(self.mapper, QuickMapper)

    @cached_property
    def _refuses_writers(self) -> bool:
        return isinstance(self.recorder, RefusingRecorder)

    def record(
        self, *items: Mapped | Any, writers: Sequence[int] | None = None
    ) -> list[Recording[UUID] | None]:
        """Append events in one transaction: what the group commit calls with a batch.

        `writers[i]` names the writer of the i-th event: where the recorder can refuse one
        writer whose event conflicts and insert the rest, that writer's events get None, not a
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


class LogStore(Application[UUID]):
    """The domain's `EventStore` over eventsourcing's recorder and repository.

    Without a `committer` each commit is its own transaction.
    """

    name = "fangxin"

    def __init__(
        self, event_log: EventLog, sync: ReadModelSync, committer: Committer | None = None
    ) -> None:
        self.event_log = event_log
        self.sync = sync
        self.committer = committer
        self._locks = [threading.Lock() for _ in range(LOCKS)]
        self._async_locks = [asyncio.Lock() for _ in range(LOCKS)]
        super().__init__(event_log.env)

    def construct_env(self, name: str, env: Any = None) -> Environment:
        """The log's environment, read once when it opened."""
        return self.event_log.env

    def construct_factory(self, env: Environment) -> InfrastructureFactory:
        """The log's factory: one set of connections for the store and its readers."""
        return self.event_log.factory

    def construct_recorder(self) -> ApplicationRecorder:
        """The log's recorder, which the projection runner follows too."""
        return self.event_log.recorder

    def construct_mapper(self) -> Mapper[Any]:
        """The composition root's mapper (scoped encryption), not the library's."""
        return self.event_log.mapper

    # -- the domain's port ----------------------------------------------------------------

    def get(self, aggregate_id: UUID) -> Any:
        """The aggregate as its events in the log make it."""
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotStoredError(aggregate_id) from None

    @contextmanager
    def exclusive(self, key: UUID) -> Iterator[None]:
        """One writer of `key` at a time among this process's threads."""
        with self._locks[key.int % LOCKS]:
            yield

    @asynccontextmanager
    async def exclusive_async(self, key: UUID) -> AsyncIterator[None]:
        """One writer of `key` at a time among this event loop's tasks."""
        async with self._async_locks[key.int % LOCKS]:
            yield

    def commit(self, *aggregates: Aggregate | None) -> None:
        """Append the aggregates' new events durably, then wait for the read models."""
        events = [e for a in aggregates if a is not None for e in a.collect_events()]
        if not events:
            return
        try:
            if self.committer is not None:
                recordings = self.committer.save(self.mapped(events))
            else:
                recordings = self.save(*events)
        except IntegrityError as exc:
            raise ConcurrentChangeError("a concurrent change got there first; retry") from exc
        self.sync.written(recordings)

    async def commit_async(self, *aggregates: Aggregate | None) -> None:
        """`commit` whose wait for durability is awaited (read models in this process)."""
        events = [e for a in aggregates if a is not None for e in a.collect_events()]
        if not events:
            return
        try:
            if self.committer is not None:
                recordings = await self.committer.save_async(self.mapped(events))
            else:
                recordings = self.save(*events)
        except IntegrityError as exc:
            raise ConcurrentChangeError("a concurrent change got there first; retry") from exc
        await self.sync.written_async(recordings)

    def mapped(self, events: Sequence[Any]) -> list[Mapped | Any]:
        """The log's `mapped`: what a commit hands the group commit."""
        return self.event_log.mapped(events)

    def record(
        self, *items: Mapped | Any, writers: Sequence[int] | None = None
    ) -> list[Recording[UUID] | None]:
        """The log's batch insert."""
        return self.event_log.record(*items, writers=writers)
