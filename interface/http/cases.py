"""Agencies' work over HTTP: cases, approval, trajectory, contacts, details, export, exposures."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, QueryParameter, RawBody

from domain.case_reads import Trajectory
from domain.cases import Case, CaseStatus
from domain.errors import InvalidInputError
from domain.ports import Principal
from domain.tracing import ContactRule
from infrastructure.ops.regions import national_regions
from interface.http.auth import (
    IdempotencyKey,
    checked_idempotency_key,
    checked_time,
    provide_officer,
    services_of,
)
from interface.http.bodies import decode_body
from interface.http.case_schemas import (
    Approval,
    CaseOut,
    Closure,
    ContactsOut,
    DetailsOut,
    ExposureCreated,
    NewCase,
    NewExposure,
    TrajectoryOut,
    TrajectoryVenue,
    TrajectoryVisitOut,
    contact_out,
)
from interface.http.contract import operation
from interface.http.exports import (
    CSV_MEDIA_TYPE,
    CaseExportOut,
    RuleOut,
    call_list,
    to_csv,
    to_json,
)
from interface.http.times import maybe_second, to_second, zone

OFFICER = {"officer": Provide(provide_officer, sync_to_thread=False)}
Minutes = Annotated[int, QueryParameter(ge=0, le=24 * 60, description="Minutes, 0 to 1440.")]
Depth = Annotated[
    int,
    QueryParameter(
        ge=1, le=2, description="1: contacts of the index person; 2: their contacts too."
    ),
]
Format = Annotated[
    Literal["csv", "json"],
    QueryParameter(name="format", description="`csv` (a spreadsheet) or `json`."),
]
Details = Annotated[
    bool,
    QueryParameter(
        description="`true` adds each contact's name and phone; each reveal is audited."
    ),
]
Tz = Annotated[
    str,
    QueryParameter(
        min_length=1, max_length=64, description="IANA time zone of the times, e.g. Asia/Shanghai."
    ),
]
TAG = "cases"
CASE_READ_PROBLEMS = (400, 404, 409)


def case_out(case: Case, status: CaseStatus) -> CaseOut:
    """A case's state as its agency sees it."""
    return CaseOut(
        case_id=case.id,
        status=status.value,
        start=to_second(case.start),
        end=to_second(case.end),
        opened_by=case.opened_by,
        approved_by=case.approved_by,
        legal_basis=case.legal_basis,
        index_persons=len(case.index_ids),
        expires_at=maybe_second(case.expires_at),
        opened_at=to_second(case.opened_on),
        index_by=case.index_by or None,
    )


def _answer(request: Request[Any, Any, Any], case: Case) -> CaseOut:
    return case_out(case, services_of(request).casework.status(case))


def trajectory_out(trajectory: Trajectory) -> TrajectoryOut:
    """The trajectory as the agency sees it."""
    return TrajectoryOut(
        visits=[
            TrajectoryVisitOut(
                visit_id=t.visit.visit_id,
                venue=TrajectoryVenue(
                    venue_id=t.venue.venue_id,
                    name=t.venue.name,
                    address=t.venue.address,
                    region=t.venue.region,
                    region_name=national_regions().name(t.venue.region),
                ),
                checked_in_at=to_second(t.visit.checked_in_at),
                checked_out_at=maybe_second(t.visit.checked_out_at),
                checkout_reason=t.visit.checkout_reason,
            )
            for t in trajectory.visits
        ],
        outside_jurisdiction=trajectory.outside_jurisdiction,
    )


@post(
    "/v1/cases",
    status_code=201,
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation("open_case", "Open a case", tag=TAG, body=NewCase, problems=(404, 409)),
)
def open_case(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Principal],
    body: RawBody,
    idempotency: IdempotencyKey = None,
) -> CaseOut:
    """A tracer opens a case for a confirmed person, by phone or visitor id, over a window of
    at most 28 days; it stays `pending` until a supervisor approves it. Audited."""
    req = decode_body(body, NewCase)
    if (req.index.phone is None) == (req.index.visitor_id is None):
        raise InvalidInputError("`index` names exactly one of `phone` and `visitor_id`")
    checked_time(req.start, "from")
    checked_time(req.end, "to")
    case = services_of(request).casework.open_case(
        officer,
        req.index.phone,
        req.index.visitor_id,
        req.start,
        req.end,
        req.legal_basis,
        checked_idempotency_key(idempotency),
    )
    return _answer(request, case)


@post(
    "/v1/cases/{case_id:uuid}/approval",
    status_code=200,
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation(
        "decide_case", "Approve or reject a case", tag=TAG, body=Approval, problems=(404, 409)
    ),
)
def decide_case(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Principal],
    case_id: FromPath[UUID],
    body: RawBody,
) -> CaseOut:
    """A supervisor of the case's agency, never its opener, approves or rejects a pending
    case; an approved case expires 14 days later. Audited."""
    req = decode_body(body, Approval)
    return _answer(
        request, services_of(request).casework.decide(officer, case_id, req.approve, req.reason)
    )


@post(
    "/v1/cases/{case_id:uuid}/closure",
    status_code=200,
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation("close_case", "Close a case", tag=TAG, body=Closure, problems=(404, 409)),
)
def close_case(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Principal],
    case_id: FromPath[UUID],
    body: RawBody,
) -> CaseOut:
    """An officer of the case's agency closes it: every later read of its data answers 409.
    Audited."""
    req = decode_body(body, Closure)
    return _answer(request, services_of(request).casework.close(officer, case_id, req.reason))


@get(
    "/v1/cases/{case_id:uuid}",
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation("show_case", "Show a case", tag=TAG, problems=CASE_READ_PROBLEMS),
)
def show_case(
    request: Request[Any, Any, Any], officer: NamedDependency[Principal], case_id: FromPath[UUID]
) -> CaseOut:
    """An officer of the case's agency reads its state (another agency's case answers 404)."""
    return _answer(request, services_of(request).casework.case(officer, case_id))


@get(
    "/v1/cases/{case_id:uuid}/trajectory",
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation("trajectory", "Read a case's trajectory", tag=TAG, problems=CASE_READ_PROBLEMS),
)
def trajectory(
    request: Request[Any, Any, Any], officer: NamedDependency[Principal], case_id: FromPath[UUID]
) -> TrajectoryOut:
    """An officer of the agency reads the index person's visits in the case window inside the
    jurisdiction, oldest first; a pending, rejected, closed or expired case answers 409.
    Audited."""
    return trajectory_out(services_of(request).casework.trajectory(officer, case_id))


def rule_of(before: int, after: int, min_overlap: int) -> ContactRule:
    """The close-contact rule from query parameters in minutes."""
    return ContactRule(
        before=timedelta(minutes=before),
        after=timedelta(minutes=after),
        min_overlap=timedelta(minutes=min_overlap),
    )


@get(
    "/v1/cases/{case_id:uuid}/contacts",
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation("contacts", "List a case's close contacts", tag=TAG, problems=CASE_READ_PROBLEMS),
)
def contacts(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Principal],
    case_id: FromPath[UUID],
    min_overlap_minutes: Minutes = 15,
    after_minutes: Minutes = 30,
    before_minutes: Minutes = 0,
    depth: Depth = 1,
) -> ContactsOut:
    """An officer of the agency lists the close contacts of an approved case: visitors whose
    visit overlapped the index person's at a venue by `min_overlap_minutes`, counting from
    `before_minutes` before to `after_minutes` after. Pseudonymous ids only. Audited."""
    services = services_of(request)
    found = services.casework.contacts(
        officer, case_id, rule_of(before_minutes, after_minutes, min_overlap_minutes), depth
    )
    return ContactsOut(contacts=[contact_out(c, services.directory.venue) for c in found])


@post(
    "/v1/cases/{case_id:uuid}/contacts/{visitor_id:uuid}/details",
    status_code=200,
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation(
        "contact_details",
        "Reveal a contact's name and phone",
        tag=TAG,
        problems=(400, 404, 409, 410),
    ),
)
def contact_details(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Principal],
    case_id: FromPath[UUID],
    visitor_id: FromPath[UUID],
) -> DetailsOut:
    """An officer of the agency reads the name and phone of a visitor that a contacts answer
    of this case listed; anyone else answers 404, an erased visitor 410. Audited."""
    details = services_of(request).casework.details(officer, case_id, visitor_id)
    return DetailsOut(name=details.name, phone=details.phone)


@get(
    "/v1/cases/{case_id:uuid}/export",
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation(
        "export_case",
        "Export a case's call list",
        tag=TAG,
        problems=CASE_READ_PROBLEMS,
        answers={
            200: ResponseSpec(
                data_container=CaseExportOut,
                description="`format=json`: the call list and the trajectory. `format=csv` "
                "answers text/csv instead: one table, a row per contact, then the trajectory.",
                generate_examples=False,
            )
        },
        other_media={200: {CSV_MEDIA_TYPE: {"type": "string"}}},
    ),
)
def export_case(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Principal],
    case_id: FromPath[UUID],
    fmt: Format = "csv",
    min_overlap_minutes: Minutes = 15,
    after_minutes: Minutes = 30,
    before_minutes: Minutes = 0,
    depth: Depth = 1,
    details: Details = False,
    tz: Tz = "UTC",
) -> Response[bytes]:
    """An officer of the agency downloads an approved case's call list: a row per contact
    (depth, venue names, first and last overlap, overlap minutes; with `details=true` also
    name and phone, each reveal audited as a details call is, an erased contact marked
    erased), then the trajectory. Times in `tz`, to the second. No CSV cell can start a
    spreadsheet formula. Audited before it is answered."""
    where = zone(tz)
    exported = services_of(request).casework.export(
        officer,
        case_id,
        rule_of(before_minutes, after_minutes, min_overlap_minutes),
        depth,
        details,
    )
    venues = services_of(request).directory.venue
    rule = RuleOut(
        min_overlap_minutes=min_overlap_minutes,
        after_minutes=after_minutes,
        before_minutes=before_minutes,
        depth=depth,
    )
    out = call_list(str(case_id), exported, where, rule, details, venues)
    name = f"case-{case_id}.{fmt}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    }
    if fmt == "json":
        return Response(to_json(out), media_type="application/json", headers=headers)
    return Response(to_csv(out), media_type=CSV_MEDIA_TYPE, headers=headers)


@post(
    "/v1/exposures",
    status_code=201,
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation(
        "declare_exposure", "Declare an exposure", tag=TAG, body=NewExposure, problems=(404, 409)
    ),
)
def declare_exposure(
    request: Request[Any, Any, Any], officer: NamedDependency[Principal], body: RawBody
) -> ExposureCreated:
    """A tracer with an approved case declares an exposure at a venue the index person
    visited, with `advice` (1 to 500 characters): every other visitor whose visit overlaps the
    window is alerted and sees the advice (the index person is not alerted). The window must
    overlap a visit of the index person, else 409. Audited."""
    req = decode_body(body, NewExposure)
    checked_time(req.start, "from")
    checked_time(req.end, "to")
    notice = services_of(request).casework.declare_exposure(
        officer, req.case_id, req.venue_id, req.start, req.end, req.advice
    )
    return ExposureCreated(exposure_id=notice.id, notified=notice.notified)


case_handlers = [
    open_case,
    decide_case,
    close_case,
    show_case,
    trajectory,
    contacts,
    contact_details,
    export_case,
    declare_exposure,
]
