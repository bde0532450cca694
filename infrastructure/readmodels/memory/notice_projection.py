"""The embedded projection of notices, risk levels, case reads and merchants' new tokens.

It runs beside `ReadModelProjector` (one more projector of the same runner), on the same events
in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from domain.cases import Case
from domain.notices import VenueNotice
from domain.outreach_ports import NoticeView
from domain.people import Merchant, Visitor
from domain.ports import Principal
from domain.risk import RegionRisk
from infrastructure.readmodels.memory.accesses import MemoryAccessIndex
from infrastructure.readmodels.memory.directory import MemoryDirectory
from infrastructure.readmodels.memory.notices import MemoryNoticeLog, MemoryRiskLevels
from infrastructure.readmodels.notice_views import access_of, notice_view, risk_view


class NoticeProjector:
    """Applies the events of issue 19's read models; forgotten events change nothing."""

    def __init__(
        self,
        directory: MemoryDirectory,
        notices: MemoryNoticeLog,
        risks: MemoryRiskLevels,
        accesses: MemoryAccessIndex,
    ) -> None:
        self.directory = directory
        self.notices = notices
        self.risks = risks
        self.accesses = accesses
        self._dependents: dict[UUID, list[UUID]] = {}
        self._listeners: list[Callable[[NoticeView], None]] = []

    def on_notice(self, listener: Callable[[NoticeView], None]) -> None:
        """Call `listener` for every notice sent from now on (server-sent events)."""
        self._listeners.append(listener)

    def apply(self, event: DomainEventProtocol[UUID]) -> None:
        """Update the read models with one event."""
        e: object = event
        if isinstance(e, VenueNotice.Sent):
            notice = notice_view(e)
            self.notices.add(notice)
            for listener in self._listeners:
                listener(notice)
        elif isinstance(e, RegionRisk.LevelSet):
            self.risks.put(risk_view(e))
        elif isinstance(e, Case.Opened):
            self.accesses.opened(e.originator_id, e.index_ids)
        elif isinstance(e, Case.Accessed):
            self.accesses.read(*access_of(e))
        elif isinstance(e, Visitor.Registered):
            self._dependents[e.originator_id] = list(e.dependent_ids)
        elif isinstance(e, Visitor.Erased):
            people = [e.originator_id, *self._dependents.pop(e.originator_id, [])]
            self.accesses.forget(people)
        elif isinstance(e, Merchant.TokenRotated):
            self.directory.remove_tokens_of(e.originator_id)
            self.directory.add_token(e.token_hash, Principal(role="merchant", id=e.originator_id))
