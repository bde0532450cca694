"""The OpenAPI document says what the handlers really do: bodies, problems, words for people."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from infrastructure.services import Services
from infrastructure.settings import Settings
from interface.http.app import create_app
from interface.http.examples import EXAMPLES
from tests.conftest import ADMIN_TOKEN, World, bearer

METHODS = ("get", "post", "put", "patch", "delete")
# Who may send each operation that takes a body: its example must get past authentication.
SENDER = {
    "register_visitor": "anyone",
    "register_merchant": "anyone",
    "sign_in": "anyone",
    "check_in": "visitor",
    "check_out": "visitor",
    "register_venue": "merchant",
    "edit_venue": "merchant",
    "assisted_check_in": "merchant",
    "till_check_out": "merchant",
    "create_agency": "admin",
    "create_officer": "admin",
    "create_auditor": "admin",
    "open_case": "tracer",
    "decide_case": "supervisor",
    "close_case": "tracer",
    "declare_exposure": "tracer",
    "send_notice": "merchant",
    "set_risk_level": "supervisor",
}


@pytest.fixture
def document(client: TestClient[Any]) -> dict[str, Any]:
    answer = client.get("/schema/openapi.json")
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if not ref:
        return schema
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return found


def test_every_operation_that_reads_a_body_documents_it(
    settings: Settings, services: Services, document: dict[str, Any]
) -> None:
    # given every route whose handler reads the raw body
    app = create_app(settings, services=services).app
    reading = {
        (route.path_format, method.lower())
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if "body" in handler.parsed_fn_signature.parameters
        for method in handler.http_methods
    }
    assert len(reading) == 18  # 14, sign-in, a notice, a risk level and a venue edit

    # then each documents a required JSON body, with its schema and one example
    for path, method in reading:
        body = document["paths"][path][method].get("requestBody")
        assert body is not None, f"{method.upper()} {path} documents no body"
        assert body["required"] is True
        content = body["content"]["application/json"]
        schema = resolved(document, content["schema"])
        assert schema["additionalProperties"] is False
        assert schema["description"]
        assert all(field.get("description") for field in schema["properties"].values()), path
        assert content["example"]


def test_every_documented_example_gets_past_the_body_check(
    world: World, document: dict[str, Any]
) -> None:
    # given a token for each kind of sender
    agency = world.agency(["110000"])
    tokens = {
        "anyone": None,
        "visitor": world.visitor()["token"],
        "merchant": world.merchant()["token"],
        "admin": ADMIN_TOKEN,
        "tracer": world.officer(agency, "tracer")["token"],
        "supervisor": world.officer(agency, "supervisor")["token"],
    }
    with_body = [(p, m, o) for p, m, o in operations(document) if "requestBody" in o]
    assert len(with_body) == len(SENDER)
    for path, method, operation in with_body:
        body = operation["requestBody"]
        # when its documented example is sent by someone allowed to
        ids = {name: uuid.uuid4() for name in ("venue_id", "case_id", "agency_id")}
        url = path.format(**ids, region="110105")
        token = tokens[SENDER[operation["operationId"]]]
        answer = world.client.request(
            method.upper(),
            url,
            content=msgspec.json.encode(body["content"]["application/json"]["example"]),
            headers={"Content-Type": "application/json", **(bearer(token) if token else {})},
        )
        # then the handler decodes it: the Struct it reads is the one documented
        # (A sign-in's example token is made up: its 401 comes after the body decoded.)
        refused = (403, 500) if operation["operationId"] == "sign_in" else (401, 403, 500)
        assert answer.status_code not in refused, f"{path}: {answer.text}"
        if answer.status_code == 400:
            assert answer.json()["type"] != "/problems/invalid-body", f"{path}: {answer.text}"


def test_every_example_decodes_with_its_struct() -> None:
    for schema, example in EXAMPLES.items():
        msgspec.json.decode(msgspec.json.encode(example), type=schema, strict=True)


def test_every_refusal_is_documented_as_a_problem(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, answer in operation["responses"].items():
            if int(status) < 400 or path == "/health":
                continue
            content = answer["content"]
            assert list(content) == ["application/problem+json"], f"{method} {path} {status}"
            assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")


def test_every_operation_has_an_id_a_sentence_and_a_description(document: dict[str, Any]) -> None:
    ids = set()
    for path, method, operation in operations(document):
        summary = operation["summary"]
        assert " " in summary, f"{method} {path}: {summary}"
        assert summary[0].isupper(), f"{method} {path}: {summary}"
        assert len(operation.get("description", "")) > 40, f"{method} {path}"
        assert operation["operationId"].isidentifier()
        ids.add(operation["operationId"])
    assert len(ids) == len(operations(document))


def test_signed_in_operations_name_the_bearer_scheme(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        if path.startswith("/v1/sessions"):
            # Signing in takes the token in the body; the session answers to its cookie.
            expected = None if method == "post" else [{"session": []}]
            assert operation.get("security") == expected, f"{method} {path}"
        elif "401" in operation["responses"]:
            assert operation["security"] == [{"bearer": []}], f"{method} {path}"
        else:
            assert "security" not in operation, f"{method} {path}"


def test_answers_sent_as_encoded_bytes_are_documented_as_what_they_hold(
    document: dict[str, Any],
) -> None:
    created = {
        ("/v1/visitors", "post"): "VisitorCreated",
        ("/v1/merchants", "post"): "MerchantCreated",
        ("/v1/check-ins", "post"): "CheckInOut",
        ("/v1/auditors", "post"): "AuditorCreated",
        ("/v1/agencies/{agency_id}/officers", "post"): "OfficerCreated",
    }
    for (path, method), name in created.items():
        content = document["paths"][path][method]["responses"]["201"]["content"]
        assert content["application/json"]["schema"]["$ref"].endswith(f"/{name}")
    export = document["paths"]["/v1/cases/{case_id}/export"]["get"]["responses"]["200"]["content"]
    assert export["application/json"]["schema"]["$ref"].endswith("/CaseExportOut")
    assert export["text/csv"]["schema"] == {"type": "string"}


def test_the_idempotency_key_is_a_documented_header(document: dict[str, Any]) -> None:
    operation = document["paths"]["/v1/venues"]["post"]
    (header,) = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key"
    assert header["schema"]["type"] == "string"
    assert not header["required"]
