"""Schemathesis fuzzes every operation of the OpenAPI document, as each role, against a real
server: no answer is a server error, and every answer matches the schema documented for its
status and media type.

Bodies, query strings and headers come from the document (valid ones, and invalid ones that
must be refused); path ids are those of real venues, cases and visitors, so the handlers get
past "not found". The run is deterministic and bounded (`FANGXIN_FUZZ_EXAMPLES` examples per
operation and role), so it takes a minute or two and never flakes; raise it to look harder.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.live import Server, deployed_server

ADMIN = "contract-admin-token-0123456789abcdef"
EXAMPLES = int(os.environ.get("FANGXIN_FUZZ_EXAMPLES", "20"))
# Set to draw new inputs on every run (to look harder; a failure then may not repeat).
RANDOM = bool(os.environ.get("FANGXIN_FUZZ_RANDOM"))
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
]
# An event stream never ends: it is read for this long, then judged on what came.
STREAM_SECONDS = 1.0
REQUEST_SECONDS = 30.0
# Whose operations they are: each must answer its own role more than 401 or 403.
OWNED_BY = {
    "anonymous": {
        "health",
        "register_visitor",
        "register_merchant",
        "list_regions",
        "sign_in",
        "current_session",
        "sign_out",
    },
    "visitor": {"check_in", "check_out", "my_visits", "erase_me", "my_exposures", "my_events"},
    "merchant": {
        "register_venue",
        "list_venues",
        "show_venue",
        "edit_venue",
        "poster_svg",
        "poster_png",
        "rotate_codes",
        "assisted_check_in",
        "till_check_out",
        "venue_stats",
        "occupancy",
    },
    "tracer": {
        "open_case",
        "close_case",
        "show_case",
        "trajectory",
        "contacts",
        "contact_details",
        "export_case",
        "declare_exposure",
        "list_cases",
    },
    "supervisor": {"decide_case"},
    "auditor": {"audit_entries", "audit_checkpoint", "audit_verification"},
    "admin": {
        "create_agency",
        "create_officer",
        "create_auditor",
        "list_agencies",
        "list_officers",
        "list_auditors",
        "rotate_officer_token",
        "rotate_auditor_token",
        "deactivate_officer",
        "deactivate_auditor",
    },
}
# Notices, risk levels, accesses and merchants' token rotations (issue 19).
OWNED_BY["anonymous"] |= {"show_risk_level"}
OWNED_BY["visitor"] |= {"my_notices", "my_accesses"}
OWNED_BY["merchant"] |= {"send_notice", "rotate_merchant_token"}
OWNED_BY["supervisor"] |= {"set_risk_level"}
OWNED_BY["tracer"] |= {"risk_history"}


# Answered only to a session cookie, which generated requests never carry.
COOKIE_ONLY = {"current_session", "sign_out"}


@dataclass
class Cast:
    """A token per role, and the ids of real things to put in paths."""

    base_url: str
    tokens: dict[str, str | None] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    # Operations that use up what they touch get things of their own.
    ids_by_operation: dict[str, dict[str, str]] = field(default_factory=dict)

    def call(self, method: str, path: str, token: str | None, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=10) as client:
            response = client.request(method, path, json=body)
        assert response.status_code in (200, 201), f"{path}: {response.text}"
        return response.json()

    def visitor(self, phone: str) -> dict[str, str]:
        made: dict[str, str] = self.call(
            "POST", "/v1/visitors", None, {"name": "V", "phone": phone}
        )
        return made

    def new_case(self, phone: str, start: datetime) -> str:
        body = {
            "index": {"phone": phone},
            "from": (start - timedelta(hours=1)).isoformat(),
            "to": datetime.now(UTC).isoformat(),
            "legal_basis": "contract test",
        }
        case_id: str = self.call("POST", "/v1/cases", self.tokens["tracer"], body)["case_id"]
        return case_id

    def approve(self, case_id: str) -> None:
        path = f"/v1/cases/{case_id}/approval"
        self.call("POST", path, self.tokens["supervisor"], {"approve": True})


def cast_in(server: Server) -> Cast:
    """One of each role, an approved case whose index person met a contact at a venue."""
    cast = Cast(server.base_url, tokens={"anonymous": None, "admin": ADMIN})
    agency = cast.call("POST", "/v1/agencies", ADMIN, {"name": "A", "jurisdiction": ["110000"]})
    officers = f"/v1/agencies/{agency['agency_id']}/officers"
    for role in ("tracer", "supervisor"):
        cast.tokens[role] = cast.call("POST", officers, ADMIN, {"name": role, "role": role})[
            "token"
        ]
    cast.tokens["auditor"] = cast.call("POST", "/v1/auditors", ADMIN, {"name": "Au"})["token"]
    merchant = cast.call("POST", "/v1/merchants", None, {"name": "M", "contact_phone": "+86 139"})
    cast.tokens["merchant"] = merchant["token"]
    venue = {"name": "面馆", "address": "1 Rd", "region": "110105", "category": "food"}
    venue_id = cast.call("POST", "/v1/venues", merchant["token"], venue)["venue_id"]
    code = cast.call("GET", f"/v1/venues/{venue_id}", merchant["token"])["code"]
    index_phone = "+86 138 0000 0001"
    index, contact = cast.visitor(index_phone), cast.visitor("+86 138 0000 0002")
    cast.tokens["visitor"] = contact["token"]
    start = datetime.now(UTC)
    for person in (index, contact):
        cast.call("POST", "/v1/check-ins", person["token"], {"code": code})
    # The case window ends now, after the visits began.
    time.sleep(1)
    case_id, pending, closable = (cast.new_case(index_phone, start) for _ in range(3))
    for approved in (case_id, closable):
        cast.approve(approved)
    cast.call("GET", f"/v1/cases/{case_id}/contacts", cast.tokens["tracer"])
    cast.ids = {
        "venue_id": venue_id,
        "case_id": case_id,
        "visitor_id": contact["visitor_id"],
        "agency_id": agency["agency_id"],
        "region": "110105",
    }
    # Accounts of their own for the operations that replace tokens or close accounts.
    spare = {
        operation: cast.call("POST", path, ADMIN, body)
        for operation, path, body in (
            ("rotate_officer_token", officers, {"name": "R", "role": "tracer"}),
            ("deactivate_officer", officers, {"name": "D", "role": "tracer"}),
            ("rotate_auditor_token", "/v1/auditors", {"name": "R"}),
            ("deactivate_auditor", "/v1/auditors", {"name": "D"}),
        )
    }
    cast.ids_by_operation = {
        "decide_case": {"case_id": pending},
        "close_case": {"case_id": closable},
        **{
            operation: {key: value for key, value in made.items() if key != "token"}
            for operation, made in spare.items()
        },
    }
    return cast


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service on its own data (or schema and key prefix), with a known admin token."""
    data: Path = tmp_path_factory.mktemp("contract") / "data"
    with deployed_server(data, FANGXIN_ADMIN_TOKEN=ADMIN) as running:
        yield running


@pytest.fixture(scope="module")
def cast(server: Server) -> Cast:
    return cast_in(server)


@pytest.fixture(scope="module")
def contract(server: Server) -> Any:
    """The document the server serves, as schemathesis reads it."""
    loaded = schemathesis.openapi.from_url(f"{server.base_url}/schema/openapi.json")
    loaded.config.generation.update(with_security_parameters=False)
    return loaded


def headers_for(role: str, operation_id: str, cast: Cast) -> dict[str, str]:
    token = cast.tokens[role]
    if role == "visitor" and operation_id == "erase_me":
        # Erasing must not take the shared visitor away from the operations after it.
        token = cast.visitor(f"+86 137 {uuid.uuid4().int % 10**8:08d}")["token"]
    if role == "merchant" and operation_id == "rotate_merchant_token":
        # Rotating must not take the shared merchant's token away either.
        body = {"name": "Rotating", "contact_phone": "+86 139 0000 0000"}
        token = cast.call("POST", "/v1/merchants", None, body)["token"]
    return {"Authorization": f"Bearer {token}"} if token else {}


def fuzz(operation: Any, mode: GenerationMode, role: str, server: Server, cast: Cast) -> set[int]:
    """`EXAMPLES` generated requests of one operation, sent as `role`: the statuses answered;
    raises on a failed check."""
    operation_id = operation.definition.raw.get("operationId", "")
    ids = {**cast.ids, **cast.ids_by_operation.get(operation_id, {})}
    names = {p.name for p in operation.path_parameters}
    streams = operation_id == "my_events"

    @given(case=operation.as_strategy(mode, path_parameters={n: ids[n] for n in names}))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Any) -> None:
        answer = case.call_and_validate(
            base_url=server.base_url,
            headers=headers_for(role, operation_id, cast),
            checks=CHECKS,
            timeout=STREAM_SECONDS if streams else REQUEST_SECONDS,
        )
        statuses.add(answer.status_code)

    statuses: set[int] = set()
    send()
    return statuses


def answers_within_the_contract(role: str, contract: Any, server: Server, cast: Cast) -> None:
    """Every operation, valid and invalid requests: the failures of all operations, or none."""
    failures: list[str] = []
    answered: dict[str, set[int]] = {}
    for result in contract.get_all_operations():
        operation = result.ok()
        seen = answered.setdefault(operation.definition.raw["operationId"], set())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                seen |= fuzz(operation, mode, role, server, cast)
            except Unsatisfiable:
                # Nothing to make invalid: no body, query or header (and fixed path ids).
                assert mode is GenerationMode.NEGATIVE
            except Exception as failure:  # every operation is tried; all failures are reported
                failures.append(f"{operation.label} ({mode.value}) as {role}:\n{failure}")
    assert not failures, "\n\n".join(failures)
    assert len(answered) == sum(len(owned) for owned in OWNED_BY.values())
    unreached = [op for op in OWNED_BY[role] - COOKIE_ONLY if not answered[op] - {401, 403}]
    assert unreached == [], f"{role} never got past authentication on {unreached}"


def test_anonymous_callers_get_answers_within_the_contract(
    contract: Any, server: Server, cast: Cast
) -> None:
    answers_within_the_contract("anonymous", contract, server, cast)


def test_a_visitor_gets_answers_within_the_contract(
    contract: Any, server: Server, cast: Cast
) -> None:
    answers_within_the_contract("visitor", contract, server, cast)


def test_a_merchant_gets_answers_within_the_contract(
    contract: Any, server: Server, cast: Cast
) -> None:
    answers_within_the_contract("merchant", contract, server, cast)


def test_a_tracer_gets_answers_within_the_contract(
    contract: Any, server: Server, cast: Cast
) -> None:
    answers_within_the_contract("tracer", contract, server, cast)


def test_a_supervisor_gets_answers_within_the_contract(
    contract: Any, server: Server, cast: Cast
) -> None:
    answers_within_the_contract("supervisor", contract, server, cast)


def test_an_auditor_gets_answers_within_the_contract(
    contract: Any, server: Server, cast: Cast
) -> None:
    answers_within_the_contract("auditor", contract, server, cast)


def test_the_admin_gets_answers_within_the_contract(
    contract: Any, server: Server, cast: Cast
) -> None:
    answers_within_the_contract("admin", contract, server, cast)
