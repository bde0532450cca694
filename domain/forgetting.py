"""Crypto-shredding seen from the domain: an event whose key was destroyed is *forgotten*."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import AggregateEvent
from eventsourcing.utils import resolve_topic


@dataclass(frozen=True)
class Forgotten(AggregateEvent):
    """Stands in for a stored event that can no longer be decrypted (its key was destroyed).

    Replaying it keeps the aggregate's version sequence intact and marks the aggregate as
    forgotten, so aggregates and projections keep working after an erasure or retention.
    """

    original_topic: str
    aggregate_topic: str

    def mutate(self, aggregate: Any) -> Any:
        """Create an empty shell of the aggregate, or advance an existing one."""
        if aggregate is None:
            cls = resolve_topic(self.aggregate_topic)
            aggregate = cls.__new__(cls)
            aggregate.__base_init__(
                originator_id=self.originator_id,
                originator_version=self.originator_version,
                timestamp=self.timestamp,
            )
        else:
            aggregate.version = self.originator_version
            aggregate.modified_on = self.timestamp
        aggregate.forgotten = True
        return aggregate
