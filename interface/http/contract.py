"""The API document: each operation's summary, who may call it, its problem answers per status,
and its request body as the very Struct its handler decodes.

Handlers read their bodies as raw bytes and decode them strictly with `decode_body` (after
the rate limit and the token are checked, as the bare check-in route does too), so litestar
does not see a body to document. `operation(body=Struct)` names the Struct on the route, and
`ContractDocument` adds it to the document served at `/schema/openapi.json` with msgspec's own
JSON Schema of it: the same library and the same type that decode the request describe it,
with its limits, patterns, `additionalProperties: false` and descriptions. A test sends every
documented example to its operation, so a handler that decoded another Struct would fail it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar import Request
from litestar.openapi import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

from interface.http.examples import EXAMPLES
from interface.http.problems import PROBLEM_MEDIA_TYPE, Problem

REQUEST_BODY = "request_body"
OTHER_MEDIA = "other_media"
COMPONENT_REF = "#/components/schemas/{name}"
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
PROBLEM_ANSWERS = {
    400: "Malformed or invalid input; `errors` names each field and what is wrong with it.",
    401: "No bearer token, or one that is not (or no longer) valid.",
    403: "The token's holder may not do this.",
    404: "Unknown, or not the caller's to see: both look the same.",
    409: "Valid, but in conflict with the current state.",
    410: "The data was erased for good.",
    413: "The body is larger than the service accepts.",
    422: "This Idempotency-Key was used before with another body.",
    429: "Too many requests; retry after `Retry-After` seconds.",
    503: "A backing service is unavailable; retry after `Retry-After` seconds.",
}


def problem_answers(statuses: Iterable[int]) -> dict[int, ResponseSpec]:
    """Problem details (`application/problem+json`) documented for each status."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=PROBLEM_ANSWERS[status],
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in sorted(set(statuses))
    }


def operation(
    operation_id: str,
    summary: str,
    *,
    tag: str,
    signed_in: bool = True,
    body: type | None = None,
    problems: Iterable[int] = (),
    answers: dict[int, ResponseSpec] | None = None,
    other_media: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The documentation arguments of a route decorator.

    A signed-in operation needs a bearer token (401 without one, 403 for another role); one
    with a `body` may answer 400 and 413. Every operation may answer 503. `answers` documents
    successful answers that the handler returns as encoded bytes; `other_media` adds media
    types (with their JSON Schema) to an answer that has one already.
    """
    statuses = {503, *problems}
    if signed_in:
        statuses |= {401, 403}
    if body is not None:
        statuses |= {400, 413}
    return {
        "operation_id": operation_id,
        "summary": summary,
        "tags": [tag],
        "security": BEARER if signed_in else None,
        "responses": {**problem_answers(statuses), **(answers or {})},
        "opt": {REQUEST_BODY: body, OTHER_MEDIA: other_media or {}},
    }


def answer(data: type, description: str) -> ResponseSpec:
    """A successful JSON answer of type `data`, for handlers that return encoded bytes."""
    return ResponseSpec(data_container=data, description=description, generate_examples=False)


class ContractDocument(JsonRenderPlugin):
    """`/schema/openapi.json`: litestar's document with the declared request bodies added."""

    def __init__(self) -> None:
        super().__init__()
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The finished document, built once per app."""
        if self._rendered is None:
            routes = [r for r in request.app.routes if isinstance(r, HTTPRoute)]
            self._rendered = msgspec.json.encode(finished_document(openapi_schema, routes))
        return self._rendered


Operation = tuple[str, str, dict[str, Any]]


def finished_document(document: dict[str, Any], routes: Iterable[HTTPRoute]) -> dict[str, Any]:
    """A copy of litestar's `document` with what the routes declare beyond it."""
    operations: list[Operation] = []
    for route in routes:
        for handler in route.route_handlers:
            if handler.resolve_include_in_schema():
                operations += [
                    (route.path_format, m.lower(), handler.opt) for m in handler.http_methods
                ]
    finished = copy.deepcopy(document)
    _add_request_bodies(finished, operations)
    for path, method, opt in operations:
        found = finished["paths"][path][method]
        for status, media in opt.get(OTHER_MEDIA, {}).items():
            content = found["responses"][str(status)]["content"]
            content.update({name: {"schema": schema} for name, schema in media.items()})
        for parameter in found.get("parameters", []):
            if parameter["in"] == "header":
                # A header is absent or a string; litestar reads `str | None` as maybe null.
                parameter["schema"] = _without_null(parameter["schema"])
    return finished


def _add_request_bodies(document: dict[str, Any], operations: list[Operation]) -> None:
    declared = [
        (path, method, opt[REQUEST_BODY])
        for path, method, opt in operations
        if opt.get(REQUEST_BODY)
    ]
    types = list(dict.fromkeys(schema for _, _, schema in declared))
    refs, components = msgspec.json.schema_components(types, ref_template=COMPONENT_REF)
    ref_of = dict(zip(types, refs, strict=True))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in components.items():
        if name in schemas:
            raise ValueError(f"two schemas are named {name}: rename a request or answer Struct")
        schemas[name] = schema
    for path, method, schema in declared:
        content: dict[str, Any] = {"schema": ref_of[schema]}
        if schema in EXAMPLES:
            content["example"] = EXAMPLES[schema]
        document["paths"][path][method]["requestBody"] = {
            "required": True,
            "description": (schema.__doc__ or "").strip(),
            "content": {"application/json": content},
        }


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    kept = [s for s in schema.get("oneOf", []) if s.get("type") != "null"]
    if len(kept) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key != "oneOf"}
    return {**kept[0], **rest}
