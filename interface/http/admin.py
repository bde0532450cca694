"""The platform admin: agencies, officers, auditors. The admin reads no case data."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter, RawBody

from domain.errors import ConflictError
from domain.people import OfficerRole
from infrastructure.audit.chain import AuditChainError
from infrastructure.audit.checkpoint import checkpoint_signer
from interface.http.auth import (
    IdempotencyKey,
    checked_idempotency_key,
    parse_time,
    provide_admin,
    provide_auditor,
    services_of,
)
from interface.http.bodies import decode_body
from interface.http.case_schemas import (
    AgencyCreated,
    AuditEntryOut,
    AuditorCreated,
    AuditOut,
    CheckpointCheckOut,
    CheckpointOut,
    NewAgency,
    NewAuditor,
    NewOfficer,
    OfficerCreated,
    RegionOut,
    VerificationOut,
)
from interface.http.contract import answer, operation
from interface.http.idempotency import ResponseCache
from interface.http.visitors import created

ADMIN = {"admin_id": Provide(provide_admin, sync_to_thread=False)}
AUDITOR = {"auditor_id": Provide(provide_auditor, sync_to_thread=False)}
From = Annotated[
    str | None,
    QueryParameter(name="from", required=False, description="RFC 3339 time with an offset."),
]
To = Annotated[
    str | None,
    QueryParameter(name="to", required=False, description="RFC 3339 time with an offset."),
]
CheckpointParam = Annotated[
    str | None,
    QueryParameter(
        name="checkpoint",
        required=False,
        description="The compact `checkpoint` of an earlier GET /v1/audit/checkpoint.",
    ),
]
ADMIN_TAG = "accounts"
AUDIT_TAG = "audit"


class AuditChainBrokenError(ConflictError):
    """No checkpoint is signed for a chain whose head disagrees with its last entry."""

    kind = "audit-chain-broken"


@post(
    "/v1/agencies",
    status_code=201,
    dependencies=ADMIN,
    sync_to_thread=True,
    **operation(
        "create_agency", "Create an agency", tag=ADMIN_TAG, body=NewAgency, problems=(409,)
    ),
)
def create_agency(
    request: Request[Any, Any, Any],
    admin_id: NamedDependency[UUID],
    body: RawBody,
    idempotency: IdempotencyKey = None,
) -> AgencyCreated:
    """The admin creates a health agency with its jurisdiction: province, city or county
    codes that exist (`000000` and unknown codes answer 400). Audited."""
    req = decode_body(body, NewAgency)
    services = services_of(request)
    agency_id = services.casework.create_agency(
        req.name, list(req.jurisdiction), checked_idempotency_key(idempotency)
    )
    # The recorded jurisdiction: a retry with the same key answers the agency it made first.
    agency = services.directory.agency(agency_id)
    codes = agency.jurisdiction if agency is not None else sorted(set(req.jurisdiction))
    name = services.app.ports.regions.name
    return AgencyCreated(
        agency_id=agency_id,
        jurisdiction=[RegionOut(region=code, name=name(code) or "") for code in codes],
    )


def _replayable(
    request: Request[Any, Any, Any], scope: str, key: str | None, body: bytes, make: Any
) -> Response[bytes]:
    cache: ResponseCache = request.app.state.responses

    def encoded(key: str | None) -> bytes:
        return msgspec.json.encode(make(key))

    return created(cache.answer_once(scope, checked_idempotency_key(key), body, encoded))


@post(
    "/v1/agencies/{agency_id:uuid}/officers",
    status_code=201,
    dependencies=ADMIN,
    sync_to_thread=True,
    **operation(
        "create_officer",
        "Create an officer",
        tag=ADMIN_TAG,
        body=NewOfficer,
        problems=(404, 409, 422),
        answers={201: answer(OfficerCreated, "The new officer and their bearer token.")},
    ),
)
def create_officer(
    request: Request[Any, Any, Any],
    admin_id: NamedDependency[UUID],
    agency_id: FromPath[UUID],
    body: RawBody,
    idempotency: IdempotencyKey = None,
) -> Response[bytes]:
    """The admin creates a tracer or a supervisor of an agency; the answer holds the only copy
    of their token. Audited."""
    req = decode_body(body, NewOfficer)
    casework = services_of(request).casework

    def make(key: str | None) -> OfficerCreated:
        made = casework.create_officer(agency_id, req.name, OfficerRole(req.role), key)
        return OfficerCreated(officer_id=made.id, token=made.token)

    return _replayable(request, f"officers|{agency_id}", idempotency, body, make)


@post(
    "/v1/auditors",
    status_code=201,
    dependencies=ADMIN,
    sync_to_thread=True,
    **operation(
        "create_auditor",
        "Create an auditor",
        tag=ADMIN_TAG,
        body=NewAuditor,
        problems=(409, 422),
        answers={201: answer(AuditorCreated, "The new auditor and their bearer token.")},
    ),
)
def create_auditor(
    request: Request[Any, Any, Any],
    admin_id: NamedDependency[UUID],
    body: RawBody,
    idempotency: IdempotencyKey = None,
) -> Response[bytes]:
    """The admin creates an auditor, who reads the audit trail and nothing else; the answer
    holds the only copy of their token. Audited."""
    req = decode_body(body, NewAuditor)
    casework = services_of(request).casework

    def make(key: str | None) -> AuditorCreated:
        made = casework.create_auditor(req.name, key)
        return AuditorCreated(auditor_id=made.id, token=made.token)

    return _replayable(request, "auditors", idempotency, body, make)


@get(
    "/v1/audit",
    dependencies=AUDITOR,
    sync_to_thread=True,
    **operation("audit_entries", "Read the audit trail", tag=AUDIT_TAG, problems=(400,)),
)
def audit_entries(
    request: Request[Any, Any, Any],
    auditor_id: NamedDependency[UUID],
    start: From = None,
    end: To = None,
) -> AuditOut:
    """An auditor reads the audit trail, oldest first: who did what, when, on which case.
    Reads only."""
    since = parse_time(start, "from") if start else None
    until = parse_time(end, "to") if end else None
    entries = services_of(request).audit.entries(since, until)
    return AuditOut(
        entries=[
            AuditEntryOut(
                at=e.at,
                actor=e.actor,
                action=e.action,
                case_id=e.case_id,
                subject=e.subject,
                position=e.position,
            )
            for e in entries
        ]
    )


@get(
    "/v1/audit/checkpoint",
    dependencies=AUDITOR,
    sync_to_thread=True,
    **operation("audit_checkpoint", "Sign the audit trail's head", tag=AUDIT_TAG, problems=(409,)),
)
def audit_checkpoint(
    request: Request[Any, Any, Any], auditor_id: NamedDependency[UUID]
) -> CheckpointOut:
    """An auditor gets the hash chain's head, signed by this deployment, to keep outside it
    and check later with `/v1/audit/verification`. A broken chain answers 409."""
    services = services_of(request)
    try:
        head = services.audit.head()
    except AuditChainError:
        raise AuditChainBrokenError(
            "the audit head does not match the last entry; verify the chain"
        ) from None
    signer = checkpoint_signer(services.keys)
    signed = signer.issue(head, services.app.ports.clock.now())
    return CheckpointOut(
        entries=head.entries,
        head=head.mac.hex(),
        issued_at=signed.issued_at,
        signature=signed.signature.hex(),
        public_key=signer.public_key.hex(),
        checkpoint=signed.compact(),
    )


@get(
    "/v1/audit/verification",
    dependencies=AUDITOR,
    sync_to_thread=True,
    **operation("audit_verification", "Verify the audit trail", tag=AUDIT_TAG, problems=(400,)),
)
def audit_verification(
    request: Request[Any, Any, Any],
    auditor_id: NamedDependency[UUID],
    checkpoint: CheckpointParam = None,
) -> VerificationOut:
    """An auditor has the hash chain recomputed; `valid: false` names the first bad position.
    With a checkpoint (its compact form), also whether every entry up to it is unchanged."""
    services = services_of(request)
    signer = checkpoint_signer(services.keys)
    # A checkpoint not signed here is refused before the chain is read.
    given = None if checkpoint is None else signer.read(checkpoint)
    result = services.audit.verify(None if given is None else given.head)
    against = None
    if given is not None and result.checkpoint is not None:
        against = CheckpointCheckOut(
            valid=result.checkpoint.valid,
            entries=given.head.entries,
            head=given.head.mac.hex(),
            issued_at=given.issued_at,
            reason=result.checkpoint.reason,
        )
    return VerificationOut(
        valid=result.valid,
        entries=result.entries,
        first_bad_position=result.first_bad_position,
        checkpoint=against,
        public_key=signer.public_key.hex(),
    )


admin_handlers = [
    create_agency,
    create_officer,
    create_auditor,
    audit_entries,
    audit_checkpoint,
    audit_verification,
]
