"""Answers of the admin's account management (API.md: agencies, officers, auditors, tokens)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from interface.http.case_schemas import RegionOut


class AgencyOut(msgspec.Struct):
    """An agency: its jurisdiction with region names, and when it was created."""

    agency_id: UUID
    name: str
    jurisdiction: list[RegionOut]
    created_at: datetime


class AgenciesOut(msgspec.Struct):
    """GET /v1/agencies, newest first."""

    agencies: list[AgencyOut]


class OfficerOut(msgspec.Struct):
    """An officer; `active: false` once deactivated. Never a token."""

    officer_id: UUID
    agency_id: UUID
    name: str
    role: str
    active: bool
    created_at: datetime


class OfficersOut(msgspec.Struct):
    """GET /v1/agencies/{agency_id}/officers, newest first."""

    officers: list[OfficerOut]


class AuditorOut(msgspec.Struct):
    """An auditor; `active: false` once deactivated. Never a token."""

    auditor_id: UUID
    name: str
    active: bool
    created_at: datetime


class AuditorsOut(msgspec.Struct):
    """GET /v1/auditors, newest first."""

    auditors: list[AuditorOut]


class TokenOut(msgspec.Struct):
    """201 of a token rotation: the only copy of the new token; the old one stops now."""

    token: str
