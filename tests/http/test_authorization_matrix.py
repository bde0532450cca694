"""Every tracing endpoint x every role: only the allowed cells answer data; the rest 401/403/404."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from infrastructure.bootstrap import build_services
from infrastructure.settings import load_settings
from interface.http.app import create_app
from tests.conftest import ADMIN_TOKEN, MovableClock, World, bearer

ROLES = [
    "anonymous",
    "visitor",
    "merchant",
    "tracer",
    "supervisor",
    "other_tracer",
    "other_supervisor",
    "admin",
    "auditor",
]


class Matrix:
    """A world with one of each role, an approved case with a listed contact, and a venue."""

    def __init__(self, client: TestClient[Any], clock: MovableClock) -> None:
        self.world = World(client)
        w = self.world
        self.agency = w.agency(["110100"])
        other = w.agency(["110100"], "Neighbouring agency")
        self.tokens: dict[str, str | None] = {"anonymous": None, "admin": ADMIN_TOKEN}
        self.tokens["tracer"] = w.officer(self.agency, "tracer")["token"]
        self.tokens["supervisor"] = w.officer(self.agency, "supervisor")["token"]
        self.tokens["other_tracer"] = w.officer(other, "tracer")["token"]
        self.tokens["other_supervisor"] = w.officer(other, "supervisor")["token"]
        self.tokens["auditor"] = w.auditor()["token"]
        merchant = w.merchant()
        self.tokens["merchant"] = merchant["token"]
        self.venue = w.venue(merchant)
        self.index = w.visitor(phone="+8613911110000")
        self.contact = w.visitor()
        self.tokens["visitor"] = self.contact["token"]
        self.start = clock.now()
        w.check_in(self.index, self.venue)
        w.check_in(self.contact, self.venue)
        clock.advance(timedelta(minutes=70))
        self.case_id = self.new_case()
        self.approve(self.case_id)
        w.client.get(
            f"/v1/cases/{self.case_id}/contacts", headers=bearer(self.tokens["tracer"] or "")
        )

    def new_case(self) -> str:
        response = self.world.client.post(
            "/v1/cases",
            json={
                "index": {"phone": "+8613911110000"},
                "from": (self.start - timedelta(hours=1)).isoformat(),
                "to": (self.start + timedelta(hours=1)).isoformat(),
                "legal_basis": "test basis",
            },
            headers=bearer(self.tokens["tracer"] or ""),
        )
        assert response.status_code == 201, response.text
        case_id: str = response.json()["case_id"]
        return case_id

    def spare_officer(self) -> str:
        officer_id: str = self.world.officer(self.agency, "tracer")["officer_id"]
        return officer_id

    def spare_auditor(self) -> str:
        auditor_id: str = self.world.auditor()["auditor_id"]
        return auditor_id

    def approve(self, case_id: str) -> None:
        response = self.world.client.post(
            f"/v1/cases/{case_id}/approval",
            json={"approve": True},
            headers=bearer(self.tokens["supervisor"] or ""),
        )
        assert response.status_code == 200, response.text


Request = Callable[[Matrix], tuple[str, str, dict[str, Any] | None]]

ENDPOINTS: dict[str, tuple[Request, dict[str, int]]] = {
    "create agency": (
        lambda m: ("POST", "/v1/agencies", {"name": "A", "jurisdiction": ["110000"]}),
        {"admin": 201},
    ),
    "create officer": (
        lambda m: ("POST", f"/v1/agencies/{m.agency}/officers", {"name": "O", "role": "tracer"}),
        {"admin": 201},
    ),
    "create auditor": (lambda m: ("POST", "/v1/auditors", {"name": "A"}), {"admin": 201}),
    "open case": (
        lambda m: (
            "POST",
            "/v1/cases",
            {
                "index": {"visitor_id": m.index["visitor_id"]},
                "from": (m.start - timedelta(hours=1)).isoformat(),
                "to": (m.start + timedelta(hours=1)).isoformat(),
                "legal_basis": "test basis",
            },
        ),
        {"tracer": 201, "other_tracer": 201, "supervisor": 403, "other_supervisor": 403},
    ),
    "approve case": (
        lambda m: ("POST", f"/v1/cases/{m.new_case()}/approval", {"approve": True}),
        {"supervisor": 200, "tracer": 403, "other_tracer": 404, "other_supervisor": 404},
    ),
    "close case": (
        lambda m: ("POST", f"/v1/cases/{m.new_case()}/closure", {"reason": "contained"}),
        {"tracer": 200, "supervisor": 200, "other_tracer": 404, "other_supervisor": 404},
    ),
    "read case": (
        lambda m: ("GET", f"/v1/cases/{m.case_id}", None),
        {"tracer": 200, "supervisor": 200, "other_tracer": 404, "other_supervisor": 404},
    ),
    "trajectory": (
        lambda m: ("GET", f"/v1/cases/{m.case_id}/trajectory", None),
        {"tracer": 200, "supervisor": 200, "other_tracer": 404, "other_supervisor": 404},
    ),
    "contacts": (
        lambda m: ("GET", f"/v1/cases/{m.case_id}/contacts?depth=2", None),
        {"tracer": 200, "supervisor": 200, "other_tracer": 404, "other_supervisor": 404},
    ),
    "details": (
        lambda m: (
            "POST",
            f"/v1/cases/{m.case_id}/contacts/{m.contact['visitor_id']}/details",
            None,
        ),
        {"tracer": 200, "supervisor": 200, "other_tracer": 404, "other_supervisor": 404},
    ),
    "export": (
        lambda m: ("GET", f"/v1/cases/{m.case_id}/export?format=json", None),
        {"tracer": 200, "supervisor": 200, "other_tracer": 404, "other_supervisor": 404},
    ),
    "declare exposure": (
        lambda m: (
            "POST",
            "/v1/exposures",
            {
                "case_id": m.case_id,
                "venue_id": m.venue["venue_id"],
                "from": m.start.isoformat(),
                "to": (m.start + timedelta(minutes=10)).isoformat(),
                "advice": "watch your health",
            },
        ),
        {"tracer": 201, "supervisor": 403, "other_tracer": 404, "other_supervisor": 404},
    ),
    # Case lists and account management; another account's token is the admin's to rotate.
    "list cases": (
        lambda m: ("GET", "/v1/cases?status=pending", None),
        {"tracer": 200, "supervisor": 200, "other_tracer": 200, "other_supervisor": 200},
    ),
    "list agencies": (lambda m: ("GET", "/v1/agencies", None), {"admin": 200}),
    "list officers": (lambda m: ("GET", f"/v1/agencies/{m.agency}/officers", None), {"admin": 200}),
    "list auditors": (lambda m: ("GET", "/v1/auditors", None), {"admin": 200}),
    "rotate an officer's token": (
        lambda m: ("POST", f"/v1/officers/{m.spare_officer()}/token-rotations", None),
        {"admin": 201},
    ),
    "rotate an auditor's token": (
        lambda m: ("POST", f"/v1/auditors/{m.spare_auditor()}/token-rotations", None),
        {"admin": 201},
    ),
    "deactivate an officer": (
        lambda m: ("DELETE", f"/v1/officers/{m.spare_officer()}", None),
        {"admin": 204},
    ),
    "deactivate an auditor": (
        lambda m: ("DELETE", f"/v1/auditors/{m.spare_auditor()}", None),
        {"admin": 204},
    ),
    "audit": (lambda m: ("GET", "/v1/audit", None), {"auditor": 200}),
    "audit verification": (lambda m: ("GET", "/v1/audit/verification", None), {"auditor": 200}),
    "audit checkpoint": (lambda m: ("GET", "/v1/audit/checkpoint", None), {"auditor": 200}),
    # Who may ask comes before whether the checkpoint is any good.
    "audit verification against a bad checkpoint": (
        lambda m: ("GET", "/v1/audit/verification?checkpoint=x", None),
        {"auditor": 400},
    ),
    "my exposures": (lambda m: ("GET", "/v1/me/exposures", None), {"visitor": 200}),
    "metrics": (lambda m: ("GET", "/metrics", None), {"admin": 200}),
    # Sessions answer only to their cookie: a bearer token alone shows or ends none.
    "current session": (
        lambda m: ("GET", "/v1/sessions/current", None),
        dict.fromkeys(ROLES, 401),
    ),
    "sign out": (lambda m: ("DELETE", "/v1/sessions/current", None), dict.fromkeys(ROLES, 401)),
    # Signing in takes the token in the body, whoever the header names.
    "sign in with a wrong token": (
        lambda m: ("POST", "/v1/sessions", {"token": "not-a-token"}),
        dict.fromkeys(ROLES, 401),
    ),
    "regions": (lambda m: ("GET", "/v1/regions?parent=110000", None), dict.fromkeys(ROLES, 200)),
}

# Notices, risk levels, accesses and merchants' token rotations (issue 19).
ENDPOINTS.update(
    {
        "send notice": (
            lambda m: (
                "POST",
                f"/v1/venues/{m.venue['venue_id']}/notices",
                {
                    "message": "hi",
                    "from": m.start.isoformat(),
                    "to": (m.start + timedelta(minutes=10)).isoformat(),
                },
            ),
            {"merchant": 201},
        ),
        "my notices": (lambda m: ("GET", "/v1/me/notices", None), {"visitor": 200}),
        "my accesses": (lambda m: ("GET", "/v1/me/accesses", None), {"visitor": 200}),
        "set risk level": (
            lambda m: ("PUT", "/v1/regions/110105/risk", {"level": "medium", "note": ""}),
            # Both agencies cover 110100: the other agency's supervisor may set it too.
            {"supervisor": 200, "other_supervisor": 200},
        ),
        # Owners only; an unchanged name records nothing, so the row may run for every role.
        "edit venue": (
            lambda m: ("PATCH", f"/v1/venues/{m.venue['venue_id']}", {"name": m.venue["name"]}),
            {"merchant": 200},
        ),
        "show risk level": (
            lambda m: ("GET", "/v1/regions/110105/risk", None),
            {role: 200 for role in ROLES},
        ),
        # Both agencies cover 110100; neither covers Tianjin.
        "risk history": (
            lambda m: ("GET", "/v1/regions/110105/risk/history", None),
            {"tracer": 200, "supervisor": 200, "other_tracer": 200, "other_supervisor": 200},
        ),
        "risk history outside the jurisdiction": (
            lambda m: ("GET", "/v1/regions/120000/risk/history", None),
            {},
        ),
    }
)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    data: Path = tmp_path_factory.mktemp("matrix")
    settings = load_settings({}, data_dir=str(data), admin_token=ADMIN_TOKEN)
    clock = MovableClock()
    services = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=services)) as client:
        yield Matrix(client, clock)
    services.close()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_only_allowed_roles_get_an_answer(matrix: Matrix, endpoint: str, role: str) -> None:
    make, allowed = ENDPOINTS[endpoint]
    method, path, body = make(matrix)
    token = matrix.tokens[role]
    headers = bearer(token) if token else {}
    response = matrix.world.client.request(method, path, json=body, headers=headers)
    expected = allowed.get(role, 401 if role == "anonymous" else 403)
    assert response.status_code == expected, f"{endpoint} as {role}: {response.text}"
    if expected >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        for secret in (matrix.contact["visitor_id"], matrix.index["visitor_id"]):
            assert secret not in response.text


@pytest.mark.parametrize("role", ROLES)
def test_only_a_merchant_rotates_their_token(matrix: Matrix, role: str) -> None:
    # A merchant of its own: rotating the matrix's merchant would change the other rows' token.
    token = matrix.world.merchant()["token"] if role == "merchant" else matrix.tokens[role]
    headers = bearer(token) if token else {}
    response = matrix.world.client.post("/v1/merchants/me/token-rotations", headers=headers)
    expected = {"merchant": 201, "anonymous": 401}.get(role, 403)
    assert response.status_code == expected, f"{role}: {response.text}"
