"""What every application service holds: the ports, and the event store it commits to."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import ConcurrentChangeError
from domain.ids import IdempotencyKeyReusedError, derive_id
from domain.ports import EventStore, Ports


class Service:
    """Commands read the read models through `ports` and write aggregates to `store`."""

    def __init__(self, ports: Ports, store: EventStore) -> None:
        self.ports = ports
        self.store = store

    def _new_id(self, kind: str, idempotency_key: str | None) -> UUID:
        if idempotency_key is None:
            return self.ports.ids.new()
        return derive_id(kind, idempotency_key)

    def create(self, aggregate: Aggregate) -> None:
        """Save a new aggregate whose id may derive from an Idempotency-Key."""
        try:
            self.store.commit(aggregate)
        except ConcurrentChangeError:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used already; its answer cannot be repeated"
            ) from None
