"""Regional risk levels (分区分级): a supervisor sets low, medium or high for a region of the
agency's jurisdiction; anyone may read it, and every check-in answer carries its venue's.

A region without a level of its own takes the nearest ancestor's that has one (a county its
city's, a city its province's): a level set for a city covers its counties until one of them
gets its own. Where no ancestor has one either, the level is `low`, since nobody knows when.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.app import Fangxin
from domain.cases import in_jurisdiction
from domain.errors import ForbiddenError, NotFoundError, UnknownRegionError
from domain.ids import derive_id
from domain.outreach_ports import RiskLevels
from domain.people import OfficerRole
from domain.ports import AuditRecord, AuditTrail, NotStoredError, Principal

MAX_NOTE = 500


class RiskLevel(StrEnum):
    """How much care a region needs."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class RegionRisk(Aggregate):
    """The risk level of one region, as supervisors set it over time."""

    forgotten = False

    class Started(Aggregate.Created):
        """The region's first level is about to be set."""

        region: str

    class LevelSet(Aggregate.Event):
        """A supervisor set the region's level; the note stays in the encrypted log, for the
        officers whose jurisdiction covers the region."""

        region: str
        level: str
        note: str
        by: UUID
        agency_id: UUID
        at: datetime

    @event(Started)
    def __init__(self, id: UUID, region: str) -> None:
        self.region = region
        self.settings: list[RiskSetting] = []

    def set_level(
        self, level: RiskLevel, note: str, by: UUID, agency_id: UUID, at: datetime
    ) -> None:
        """Record a new level."""
        self._level_set(
            region=self.region, level=level.value, note=note, by=by, agency_id=agency_id, at=at
        )

    @event(LevelSet)
    def _level_set(
        self, region: str, level: str, note: str, by: UUID, agency_id: UUID, at: datetime
    ) -> None:
        self.level = level
        self.settings.append(RiskSetting(level, note, at, by))

    def history(self) -> list[RiskSetting]:
        """Every level set for the region, newest first (a shell whose events were forgotten
        has none)."""
        return list(reversed(getattr(self, "settings", [])))


class RiskSetting(msgspec.Struct, frozen=True):
    """One level a supervisor set, with the note kept for the agency's officers."""

    level: str
    note: str
    at: datetime
    by: UUID


class RiskHistory(msgspec.Struct, frozen=True):
    """A region's levels as they were set, newest first."""

    region: str
    name: str
    settings: list[RiskSetting]


class RegionRiskOut(msgspec.Struct, frozen=True):
    """A region's level in force: its own, or the nearest ancestor's (`set_for` says whose)."""

    region: str
    name: str
    level: str
    since: datetime | None
    set_for: str | None


def ancestors(region: str) -> list[str]:
    """The region, then its city and province codes (GB/T 2260), nearest first, each once."""
    found = [region, region[:4] + "00", region[:2] + "0000"]
    return list(dict.fromkeys(found))


def region_risk_id(region: str) -> UUID:
    """The id of a region's risk aggregate."""
    return derive_id("region-risk", region)


class RiskLevelsService:
    """Setting and reading regions' levels; every setting is audited before it is done."""

    def __init__(self, app: Fangxin, audit: AuditTrail, levels: RiskLevels) -> None:
        self.app = app
        self.ports = app.ports
        self.store = app.store
        self.audit = audit
        self.levels = levels

    def set_level(self, officer: Principal, region: str, level: RiskLevel, note: str) -> UUID:
        """A supervisor sets the level of a region inside the agency's jurisdiction."""
        regions = self.ports.regions
        if not regions.is_jurisdiction(region):
            raise UnknownRegionError(
                f"region {region} is not a province, city or county on the national list"
            )
        if officer.role != OfficerRole.SUPERVISOR or officer.agency_id is None:
            raise ForbiddenError("only a supervisor sets risk levels")
        self.check_covers(officer, officer.agency_id, region)
        risk_id = region_risk_id(region)
        now = self.ports.clock.now()
        with self.store.exclusive(risk_id):
            try:
                risk: RegionRisk = self.store.get(risk_id)
            except NotStoredError:
                risk = RegionRisk(id=risk_id, region=region)
            risk.set_level(level, note, officer.id, officer.agency_id, now)
            # On the record before it is done; the note (free text) stays in the log.
            self.audit.record(
                AuditRecord(
                    at=now,
                    actor=str(officer.id),
                    action="set risk level",
                    ref=f"{risk_id}:{risk.version}",
                    subject=f"region {region} {level.value}",
                )
            )
            self.store.commit(risk)
        return risk_id

    def check_covers(self, officer: Principal, agency_id: UUID, region: str) -> None:
        """The officer's account is on the record and the agency's jurisdiction covers the
        region; else 403."""
        if not self.audit.has(f"officer:{officer.id}"):
            raise ForbiddenError("this account's creation is not on the audit record")
        agency = self.ports.directory.agency(agency_id)
        if agency is None:
            raise NotFoundError("no such agency")
        if not in_jurisdiction(agency.jurisdiction, region):
            raise ForbiddenError("this region lies outside the agency's jurisdiction")

    def history_of(self, officer: Principal, region: str) -> RiskHistory:
        """The levels set for a region, newest first, for an officer of an agency whose
        jurisdiction covers it; the notes say why, so nobody else reads them."""
        name = self.ports.regions.name(region)
        if name is None or not self.ports.regions.is_jurisdiction(region):
            raise UnknownRegionError(
                f"region {region} is not a province, city or county on the national list"
            )
        officers = (OfficerRole.TRACER, OfficerRole.SUPERVISOR)
        if officer.role not in officers or officer.agency_id is None:
            raise ForbiddenError("only an agency's officers read the history of risk levels")
        self.check_covers(officer, officer.agency_id, region)
        try:
            risk: RegionRisk = self.store.get(region_risk_id(region))
        except NotStoredError:
            return RiskHistory(region, name, [])
        return RiskHistory(region, name, risk.history())

    def level_of(self, region: str) -> RegionRiskOut:
        """The level in force in a region (400 for a code not on the list)."""
        name = self.ports.regions.name(region)
        if name is None:
            raise UnknownRegionError(f"region {region} is not on the national list (GB/T 2260)")
        return self.in_force(region, name)

    def in_force(self, region: str, name: str = "") -> RegionRiskOut:
        """The region's own level, else its nearest ancestor's, else `low` since nobody knows."""
        chain = ancestors(region)
        for code, own in zip(chain, self.levels.own(chain), strict=True):
            if own is not None:
                return RegionRiskOut(region, name, own.level, own.since, code)
        return RegionRiskOut(region, name, RiskLevel.LOW.value, None, None)
