"""What the read side keeps of notices, risk levels and case reads (both deployments)."""

from __future__ import annotations

from uuid import UUID

from domain.accesses import concerned
from domain.cases import Case
from domain.notices import VenueNotice
from domain.outreach_ports import AccessView, NoticeView, RiskView
from domain.risk import RegionRisk


def notice_view(e: VenueNotice.Sent) -> NoticeView:
    """A notice as visitors read it (no merchant, no count)."""
    return NoticeView(
        notice_id=e.originator_id,
        venue_id=e.venue_id,
        message=e.message,
        start=e.start,
        end=e.end,
        sent_at=e.sent_at,
    )


def risk_view(e: RegionRisk.LevelSet) -> RiskView:
    """A region's level, without the supervisor's note."""
    return RiskView(region=e.region, level=e.level, since=e.at)


def access_of(e: Case.Accessed) -> tuple[AccessView, bool, list[UUID]]:
    """A recorded case read, whether it concerns the index people, and whom else."""
    of_index, people = concerned(e.what, e.subject, list(e.listed))
    access = AccessView(case_id=e.originator_id, version=e.originator_version, what=e.what, at=e.at)
    return access, of_index, people
