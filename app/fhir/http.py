"""FHIR over HTTP: the ``application/fhir+json`` response, OperationOutcome errors, format negotiation, the
route parameters (logical ids, ``Prefer``) and the OpenAPI descriptions. The request body is ``request_body``'s.

Errors under ``/fhir`` are OperationOutcomes, everywhere else problem+json. ``FhirRoute`` swaps the request's
exception handlers for the FHIR ones before the route runs, so an error still unwinds the request's database
transaction (a rollback) before it is rendered: nothing a failed request wrote is ever committed.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import StrEnum
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from app.core.errors import DomainError, FieldError, RateLimited
from app.core.lifecycle import AppRoute
from app.core.problems import ECHOED_DETAIL_CHARACTERS, echoed
from app.fhir.codes import FHIR_ID, FHIR_MEDIA_TYPE
from app.fhir.errors import (
    FhirError,
    Issue,
    IssueType,
    NotAcceptable,
)
from app.idempotency.service import IdempotentReplay

ISSUE_CODE_BY_STATUS: dict[int, IssueType] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "multiple-matches",
    413: "too-costly",
    429: "throttled",
    415: "not-supported",
    422: "processing",
}

JSON_MEDIA_TYPES = frozenset({FHIR_MEDIA_TYPE, "application/json"})
FORMATS = frozenset({"json", "application/json", "application/fhir+json"})


class FHIRResponse(Response):
    media_type = FHIR_MEDIA_TYPE


def fhir_response(
    resource: FHIRResourceModel | dict[str, Any] | None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> FHIRResponse:
    """Serialise a resource: models with ``model_dump_json`` (no nulls), stored JSON as it is."""
    if resource is None:
        content = b""
    elif isinstance(resource, dict):
        content = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        content = resource.model_dump_json().encode()
    return FHIRResponse(content=content, status_code=status_code, headers=headers)


def operation_outcome(issues: Sequence[Issue]) -> OperationOutcome:
    return OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": issue.severity,
                    "code": issue.code,
                    "diagnostics": echoed(issue.diagnostics, ECHOED_DETAIL_CHARACTERS),
                    **({"expression": list(issue.expression)} if issue.expression else {}),
                }
                for issue in issues
            ],
        }
    )


def outcome_response(status: int, issues: Sequence[Issue], headers: dict[str, str] | None = None) -> FHIRResponse:
    return fhir_response(operation_outcome(issues), status_code=status, headers=headers)


def issues_of(exc: DomainError) -> list[Issue]:
    """The issues of any domain error: FHIR errors carry their own, others are translated field by field."""
    if isinstance(exc, FhirError):
        return exc.issues
    code = ISSUE_CODE_BY_STATUS.get(exc.status, "processing")
    if exc.errors:
        return [_field_issue(code, error) for error in exc.errors]
    return [Issue(code, exc.detail)]


def _field_issue(code: IssueType, error: FieldError) -> Issue:
    allowed = f" (allowed: {', '.join(map(str, error.allowed))})" if error.allowed else ""
    return Issue("invalid" if code == "processing" else code, f"{error.field}: {error.message}{allowed}")


def validation_issues(exc: RequestValidationError) -> list[Issue]:
    issues = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        where, name = (loc[0], ".".join(loc[1:])) if loc else ("request", "")
        issues.append(Issue("invalid", f"{where} parameter {name!r}: {error.get('msg', 'invalid')}"))
    return issues


async def _on_domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    headers = dict(exc.headers) if isinstance(exc, FhirError) else {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = getattr(exc, "challenge", "Bearer")
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    status = exc.http_status if isinstance(exc, FhirError) else exc.status
    return outcome_response(status, issues_of(exc), headers or None)


def refusal_outcome(_request: Request, error: DomainError, headers: Mapping[str, str]) -> Response:
    """A refusal made before routing (body too large, rate limited) as an OperationOutcome (``Refusals``)."""
    return outcome_response(error.status, issues_of(error), dict(headers) or None)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return outcome_response(400, validation_issues(exc))


async def _on_http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = str(exc.detail) if exc.detail else HTTPStatus(exc.status_code).phrase
    code = ISSUE_CODE_BY_STATUS.get(exc.status_code, "processing")
    return outcome_response(exc.status_code, [Issue(code, detail)], dict(exc.headers) if exc.headers else None)


async def _on_unstorable(_request: Request, _exc: Exception) -> Response:
    detail = "a value in the request cannot be stored (such as a NUL character or a number out of range)"
    return outcome_response(422, [Issue("value", f"{detail}; nothing was stored")])


async def _on_replay(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    return FHIRResponse(content=exc.body, status_code=exc.status_code, headers=exc.replay_headers())


FHIR_EXCEPTION_HANDLERS = {
    DomainError: _on_domain_error,
    RequestValidationError: _on_validation_error,
    StarletteHTTPException: _on_http_error,
    DataError: _on_unstorable,
    IdempotentReplay: _on_replay,
}


class FhirRoute(AppRoute):
    """A route under ``/fhir``: its errors render as OperationOutcome, after the transaction has unwound.

    Handlers the app registers for particular domain errors (the audit trail records refusals: 401, 403, 404) still
    run for their side effects; only the body they would send is replaced by an OperationOutcome.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handlers, _status_handlers = scope.get("starlette.exception_handlers", ({}, {}))
            scoped: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
                cls: _outcome_after(handler)
                for cls, handler in handlers.items()
                if isinstance(cls, type) and issubclass(cls, DomainError) and cls is not DomainError
            }
            scope["starlette.exception_handlers"] = ({**handlers, **scoped, **FHIR_EXCEPTION_HANDLERS}, {})
        await super().handle(scope, receive, send)


def _outcome_after(handler: Callable[..., Any]) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def render(request: Request, exc: Exception) -> Response:
        result = handler(request, exc)
        if inspect.isawaitable(result):
            await result
        return await _on_domain_error(request, exc)

    return render


def negotiate_format(
    request: Request,
    format_: Annotated[
        str | None,
        Query(alias="_format", max_length=100, description="Only JSON: `json` or `application/fhir+json`."),
    ] = None,
) -> None:
    """Honour ``_format`` and ``Accept``: this server speaks JSON only (406 for XML or anything else)."""
    if format_ is not None and format_.split(";")[0].strip() not in FORMATS:
        raise NotAcceptable(f"_format={format_} is not supported; this server speaks application/fhir+json only")
    accept = request.headers.get("accept")
    if accept and not any(_acceptable(part) for part in accept.split(",")):
        raise NotAcceptable(f"cannot answer with {accept}; this server speaks application/fhir+json only")


def _acceptable(media_range: str) -> bool:
    media_type = media_range.split(";")[0].strip().lower()
    return media_type in {"*/*", "application/*", *JSON_MEDIA_TYPES} or media_type.endswith("+json")


LogicalId = Annotated[str, Path(pattern=f"^{FHIR_ID.pattern}$", description=f"A FHIR logical id: `{FHIR_ID.pattern}`.")]
InstrumentOrLogicalId = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9\-._]{1,64}$",
        description=r"A FHIR logical id (`[A-Za-z0-9\-.]{1,64}`), or an instrument's own id (`scs_sf` for `scs-sf`).",
    ),
]


class ReturnPreference(StrEnum):
    MINIMAL = "minimal"
    REPRESENTATION = "representation"
    OUTCOME = "OperationOutcome"


def return_preference(
    prefer: Annotated[
        str | None,
        Header(
            description="`return=minimal`, `return=representation` or `return=OperationOutcome`. Single "
            "resources default to representation, Bundle responses to minimal (no resources)."
        ),
    ] = None,
) -> ReturnPreference | None:
    for part in (prefer or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            try:
                return ReturnPreference(value.strip().strip('"'))
            except ValueError:
                return None
    return None


PreferDep = Annotated[ReturnPreference | None, Depends(return_preference)]

FHIR_BODY_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object", "required": ["resourceType"]}}},
    }
}
OPERATION_OUTCOME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A FHIR R4 OperationOutcome (https://hl7.org/fhir/R4/operationoutcome.html): what went wrong.",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string", "description": "http://hl7.org/fhir/issue-type"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
"""Listed under ``components/schemas`` by the app (``app.core.openapi``); every FHIR error response refers to it."""


def _outcomes(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": description,
            "content": {FHIR_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}},
        }
        for status, description in descriptions.items()
    }


FHIR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The resource (or Bundle, or OperationOutcome when asked for with Prefer)",
        "content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object"}}},
    },
    201: {
        "description": "Created: the resource as stored (or an OperationOutcome when asked for with Prefer)",
        "content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object"}}},
    },
    **_outcomes(
        {
            400: "Malformed JSON or an invalid R4 resource (OperationOutcome)",
            401: "Missing or invalid API key or access token (OperationOutcome; `WWW-Authenticate: Bearer`)",
            403: "The key's role does not allow this (OperationOutcome)",
            404: "Not found, or another clinic's record (OperationOutcome)",
            406: "Only application/fhir+json is served (OperationOutcome)",
            413: "Request body too large (OperationOutcome)",
            422: "A business rule failed; nothing was stored (OperationOutcome)",
            429: "Rate limit exceeded; retry after `Retry-After` seconds (OperationOutcome)",
        }
    ),
}
"""What every FHIR route may answer (the middleware's 413 and 429 too, which under ``/fhir`` are OperationOutcomes)."""

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: If-None-Match named the current version (no body; the ETag is sent)"}
}
"""Reads of one resource (and vreads) honour ``If-None-Match``."""

FHIR_BODY_RESPONSES: dict[int | str, dict[str, Any]] = _outcomes(
    {415: "The body is not application/fhir+json or application/json (OperationOutcome)"}
)
"""What a route taking a FHIR body may also answer."""

FHIR_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **FHIR_BODY_RESPONSES,
    **_outcomes(
        {409: "In use, or stored concurrently, or an Idempotency-Key resent with another request (OperationOutcome)"}
    ),
}
"""What a route that stores may also answer."""

PRECONDITION_FAILED: dict[int | str, dict[str, Any]] = _outcomes(
    {412: "If-Match named another version, or If-None-Exist matched more than one resource (OperationOutcome)"}
)
"""Updates with ``If-Match`` and conditional creates with ``If-None-Exist``."""
