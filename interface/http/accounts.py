"""Account management over HTTP: the admin lists agencies, officers and auditors, replaces a
token or closes an account; an officer or auditor replaces their own token."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath

from domain.accounts import AccountEntry, AccountKind
from domain.ports import Principal
from interface.http.account_schemas import (
    AgenciesOut,
    AgencyOut,
    AuditorOut,
    AuditorsOut,
    OfficerOut,
    OfficersOut,
    TokenOut,
)
from interface.http.admin import ADMIN, ADMIN_TAG
from interface.http.auth import OFFICER_ROLES, principal_of, services_of
from interface.http.case_schemas import RegionOut
from interface.http.contract import operation
from interface.http.times import to_second

ACCOUNT_HOLDERS = ("admin", "auditor", *OFFICER_ROLES)


def provide_account_holder(request: Request[Any, Any, Any]) -> Principal:
    """The admin, an officer or an auditor (who may act on their own account)."""
    principal = principal_of(request)
    if principal.role not in ACCOUNT_HOLDERS:
        raise PermissionDeniedException("only the admin, officers and auditors manage accounts")
    return principal


HOLDER = {"holder": Provide(provide_account_holder, sync_to_thread=False)}


def _officer(entry: AccountEntry) -> OfficerOut:
    assert entry.agency_id is not None
    return OfficerOut(
        officer_id=entry.id,
        agency_id=entry.agency_id,
        name=entry.name,
        role=entry.role,
        active=entry.active,
        created_at=to_second(entry.created_at),
    )


@get(
    "/v1/agencies",
    dependencies=ADMIN,
    sync_to_thread=True,
    **operation("list_agencies", "List agencies", tag=ADMIN_TAG),
)
def list_agencies(request: Request[Any, Any, Any], admin_id: NamedDependency[UUID]) -> AgenciesOut:
    """The admin lists every agency with its jurisdiction, newest first. Reads no case data."""
    services = services_of(request)
    name = services.app.ports.regions.name
    return AgenciesOut(
        agencies=[
            AgencyOut(
                agency_id=a.agency.agency_id,
                name=a.agency.name,
                jurisdiction=[
                    RegionOut(region=code, name=name(code) or "") for code in a.agency.jurisdiction
                ],
                created_at=to_second(a.created_at),
            )
            for a in services.casework.agencies()
        ]
    )


@get(
    "/v1/agencies/{agency_id:uuid}/officers",
    dependencies=ADMIN,
    sync_to_thread=True,
    **operation("list_officers", "List an agency's officers", tag=ADMIN_TAG, problems=(400, 404)),
)
def list_officers(
    request: Request[Any, Any, Any], admin_id: NamedDependency[UUID], agency_id: FromPath[UUID]
) -> OfficersOut:
    """The admin lists an agency's tracers and supervisors, newest first, deactivated ones
    marked `active: false`. Never a token."""
    found = services_of(request).casework.officers_of(agency_id)
    return OfficersOut(officers=[_officer(e) for e in found])


@get(
    "/v1/auditors",
    dependencies=ADMIN,
    sync_to_thread=True,
    **operation("list_auditors", "List auditors", tag=ADMIN_TAG),
)
def list_auditors(request: Request[Any, Any, Any], admin_id: NamedDependency[UUID]) -> AuditorsOut:
    """The admin lists every auditor, newest first, deactivated ones marked `active: false`."""
    return AuditorsOut(
        auditors=[
            AuditorOut(
                auditor_id=e.id,
                name=e.name,
                active=e.active,
                created_at=to_second(e.created_at),
            )
            for e in services_of(request).casework.auditors()
        ]
    )


@post(
    "/v1/officers/{officer_id:uuid}/token-rotations",
    status_code=201,
    dependencies=HOLDER,
    sync_to_thread=True,
    **operation(
        "rotate_officer_token", "Replace an officer's token", tag=ADMIN_TAG, problems=(400, 404)
    ),
)
def rotate_officer_token(
    request: Request[Any, Any, Any], holder: NamedDependency[Principal], officer_id: FromPath[UUID]
) -> TokenOut:
    """The admin, or the officer themself, replaces the officer's token: the answer holds the
    only copy of the new one, and the old one answers 401 from now on, on every worker.
    Audited before it is done."""
    return TokenOut(
        token=services_of(request).casework.rotate_token(holder, AccountKind.OFFICER, officer_id)
    )


@post(
    "/v1/auditors/{auditor_id:uuid}/token-rotations",
    status_code=201,
    dependencies=HOLDER,
    sync_to_thread=True,
    **operation(
        "rotate_auditor_token", "Replace an auditor's token", tag=ADMIN_TAG, problems=(400, 404)
    ),
)
def rotate_auditor_token(
    request: Request[Any, Any, Any], holder: NamedDependency[Principal], auditor_id: FromPath[UUID]
) -> TokenOut:
    """The admin, or the auditor themself, replaces the auditor's token: the answer holds the
    only copy of the new one, and the old one answers 401 from now on. Audited first."""
    return TokenOut(
        token=services_of(request).casework.rotate_token(holder, AccountKind.AUDITOR, auditor_id)
    )


@delete(
    "/v1/officers/{officer_id:uuid}",
    dependencies=ADMIN,
    sync_to_thread=True,
    **operation("deactivate_officer", "Deactivate an officer", tag=ADMIN_TAG, problems=(400, 404)),
)
def deactivate_officer(
    request: Request[Any, Any, Any], admin_id: NamedDependency[UUID], officer_id: FromPath[UUID]
) -> None:
    """The admin closes an officer's account: its token answers 401 from now on, its past
    actions stay in the audit trail. Closing it again changes nothing. Audited first."""
    services_of(request).casework.deactivate(AccountKind.OFFICER, officer_id)


@delete(
    "/v1/auditors/{auditor_id:uuid}",
    dependencies=ADMIN,
    sync_to_thread=True,
    **operation("deactivate_auditor", "Deactivate an auditor", tag=ADMIN_TAG, problems=(400, 404)),
)
def deactivate_auditor(
    request: Request[Any, Any, Any], admin_id: NamedDependency[UUID], auditor_id: FromPath[UUID]
) -> None:
    """The admin closes an auditor's account: its token answers 401 from now on, its past
    actions stay in the audit trail. Closing it again changes nothing. Audited first."""
    services_of(request).casework.deactivate(AccountKind.AUDITOR, auditor_id)


account_handlers = [
    list_agencies,
    list_officers,
    list_auditors,
    rotate_officer_token,
    rotate_auditor_token,
    deactivate_officer,
    deactivate_auditor,
]
