"""Regional risk levels (分区分级): set by a supervisor, read by anyone."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, RawBody

from domain.errors import UnknownRegionError
from domain.ports import Principal
from domain.risk import RegionRiskOut as RiskInForce
from domain.risk import RiskLevel
from interface.http.auth import services_of
from interface.http.bodies import decode_body
from interface.http.cases import OFFICER
from interface.http.contract import operation
from interface.http.notice_schemas import (
    NewRiskLevel,
    RegionRiskOut,
    RiskHistoryOut,
    RiskSettingOut,
)
from interface.http.schemas import RiskOut
from interface.http.times import to_second

_REGION = re.compile(r"[0-9]{6}")


def checked_region(region: str) -> str:
    """A six-digit code (whether it is on the list is the domain's to say); else 400."""
    if not _REGION.fullmatch(region):
        raise UnknownRegionError("a region is a six-digit code of the national list (GB/T 2260)")
    return region


def region_out(risk: RiskInForce) -> RegionRiskOut:
    """A region's level as the API answers it."""
    return RegionRiskOut(
        region=risk.region, name=risk.name, level=risk.level, since=risk.since, set_for=risk.set_for
    )


def risk_out(risk: RiskInForce) -> RiskOut:
    """What a check-in answer carries of its venue region's level."""
    return RiskOut(level=risk.level, since=risk.since)


@put(
    "/v1/regions/{region:str}/risk",
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation("set_risk_level", "Set a region's risk level", tag="cases", body=NewRiskLevel),
)
def set_risk_level(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Principal],
    region: FromPath[str],
    body: RawBody,
) -> RegionRiskOut:
    """A supervisor sets the level of a province, city or county inside the agency's
    jurisdiction (another region answers 403; a code not on the list 400). It is recorded as
    an event, and on the audit trail before it is done; the note stays encrypted in the log."""
    req = decode_body(body, NewRiskLevel)
    risk = services_of(request).outreach.risk
    code = checked_region(region)
    risk.set_level(officer, code, RiskLevel(req.level), req.note)
    return region_out(risk.level_of(code))


@get(
    "/v1/regions/{region:str}/risk",
    sync_to_thread=True,
    **operation(
        "show_risk_level",
        "Show a region's risk level",
        tag="service",
        signed_in=False,
        problems=(400,),
    ),
)
def show_risk_level(request: Request[Any, Any, Any], region: FromPath[str]) -> RegionRiskOut:
    """Anyone may ask. A region without a level of its own has its nearest ancestor's (a
    county its city's, then its province's; `set_for` names whose); without any, `low` with
    `since: null`."""
    return region_out(services_of(request).outreach.risk.level_of(checked_region(region)))


@get(
    "/v1/regions/{region:str}/risk/history",
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation("risk_history", "Show the levels set for a region", tag="cases", problems=(400,)),
)
def risk_history(
    request: Request[Any, Any, Any], officer: NamedDependency[Principal], region: FromPath[str]
) -> RiskHistoryOut:
    """The levels set for the region itself, newest first, with their notes: for the tracers
    and supervisors of an agency whose jurisdiction covers the region (403 for anyone else;
    400 for a code that is not a province, city or county on the list)."""
    risk = services_of(request).outreach.risk
    found = risk.history_of(officer, checked_region(region))
    history = [
        RiskSettingOut(level=s.level, note=s.note, at=to_second(s.at), by=str(s.by))
        for s in found.settings
    ]
    return RiskHistoryOut(region=found.region, name=found.name, history=history)


risk_handlers = [set_risk_level, show_risk_level, risk_history]
