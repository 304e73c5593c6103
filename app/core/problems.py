"""Render every error as RFC 9457 ``application/problem+json``: one place, one shape.

A problem document has ``type`` (a relative URI, ``/problems/<slug>``), ``title``, ``status``, ``detail``, ``instance``
and, for invalid input, ``errors``: one entry per field with a JSON ``pointer``, the ``field`` path, a ``detail``, the
offending ``value`` and, where known, the ``allowed`` values. No stack traces or SQL ever appear in a body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import DomainError, FieldError, RateLimited

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemFieldError(BaseModel):
    pointer: str = Field(description="JSON Pointer into the request body, e.g. `#/items/4`.")
    field: str = Field(description="Dotted path of the field, e.g. `items.4`.")
    detail: str
    value: Any = None
    allowed: list[Any] | None = None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemFieldError] = []


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}, "description": description}
    for status, description in {
        400: "Malformed request (the body is not JSON text)",
        401: "Missing or invalid API key",
        403: "The key's role does not allow this",
        404: "Not found (or another clinic's record)",
        409: "Conflict",
        413: "Request body too large",
        422: "Invalid input; nothing was stored",
        429: "Rate limit exceeded; retry after `Retry-After` seconds",
    }.items()
}
"""Declared by reference, not with FastAPI's ``model``: that would file the schema under the route's own media type
(``application/json``, or ``text/html`` for the report), which a problem never has, so a generated client would look
for a body that never comes. ``problem_schemas`` gives the components the references name."""


def problem_schemas() -> dict[str, dict[str, Any]]:
    """``Problem`` and ``ProblemFieldError`` as OpenAPI component schemas (no route names them as its model, so
    FastAPI does not list them itself)."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    nested: dict[str, dict[str, Any]] = schema.pop("$defs", {})
    return {"Problem": schema, **nested}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    slug: str | None,
    detail: str | None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": echoed(detail, ECHOED_DETAIL_CHARACTERS),
        "instance": echoed(request.url.path, ECHOED_DETAIL_CHARACTERS),
    }
    if errors:
        body["errors"] = [_field_error(error) for error in errors]
    body.update(extra)
    return ProblemResponse(_jsonable(body), status_code=status, headers=headers)


def _field_error(error: FieldError) -> dict[str, Any]:
    parts = [part for part in error.field.split(".") if part]
    entry: dict[str, Any] = {
        "pointer": "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts),
        "field": error.field,
        "detail": error.message,
        "value": echoed(error.value),
    }
    if error.allowed is not None:
        entry["allowed"] = error.allowed
    return entry


ECHOED_CHARACTERS = 100
"""Longest input value a problem (or OperationOutcome) repeats; longer ones are cut, with "…"."""
ECHOED_DETAIL_CHARACTERS = 1000
"""Longest ``detail`` (or OperationOutcome diagnostics): a backstop for a message that quotes what the client sent."""


def echoed(value: Any, limit: int = ECHOED_CHARACTERS) -> Any:
    """A value the client sent, as an error may repeat it: text cut at ``limit`` characters, with "…"."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value


def _jsonable(body: dict[str, Any]) -> Any:
    """Round-trip through JSON so any odd value a client sent (huge ints, bytes, lone surrogates) renders safely."""
    text = json.dumps(body, default=str, allow_nan=False, ensure_ascii=False)
    return json.loads(text.encode("utf-8", errors="replace"))


def validation_field_errors(exc: RequestValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in {"body", "query", "path", "header"}:
            where, loc = loc[0], loc[1:]
        else:
            where = "body"
        field = ".".join(loc) if loc else where
        value = error.get("input") if where != "header" else None
        allowed = None
        ctx = error.get("ctx") or {}
        if error.get("type") == "json_invalid":  # the body does not parse (or names a key twice): say why, not where
            errors.append(FieldError(field="body", message=f"not valid JSON: {ctx.get('error', 'invalid')}"))
            continue
        if "expected" in ctx:
            allowed = [part.strip().strip("'") for part in str(ctx["expected"]).replace(" or ", ",").split(",")]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        errors.append(FieldError(field=field, message=message, value=_safe(value), allowed=allowed))
    return errors


def _safe(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None if isinstance(value, dict | list) else str(value)
    if isinstance(value, dict | list) and len(json.dumps(value)) > 200:
        return None
    return value


def domain_problem(request: Request, exc: DomainError) -> ProblemResponse:
    headers = (
        {"WWW-Authenticate": getattr(exc, "challenge", "Bearer")}
        if exc.status == 401
        else {"Retry-After": str(exc.retry_after)}
        if isinstance(exc, RateLimited)
        else {"Retry-After": "1"}
        if exc.status == 503
        else None
    )
    return problem_response(
        request,
        status=exc.status,
        title=exc.title,
        slug=exc.slug,
        detail=exc.detail,
        errors=exc.errors,
        headers=headers,
        **exc.extra,
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> ProblemResponse:
        return domain_problem(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> ProblemResponse:
        errors = validation_field_errors(exc)
        return problem_response(
            request,
            status=422,
            title="Invalid request",
            slug="validation-error",
            detail=f"{len(errors)} invalid field(s); nothing was stored",
            errors=errors,
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> ProblemResponse:
        # The database refused a value the request carried (a NUL character in text, a number out of range).
        logger.warning(
            "database refused a value (%s) on %s %s", type(exc.orig).__name__, request.method, _route(request)
        )
        return problem_response(
            request,
            status=422,
            title="Invalid request",
            slug="validation-error",
            detail="a value in the request cannot be stored (such as a NUL character or a number out of range); "
            "nothing was stored",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        return problem_response(
            request,
            status=exc.status_code,
            title=_reason(exc.status_code),
            slug=None,
            detail=str(exc.detail) if exc.detail else None,
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
        logger.error("unhandled error %s on %s %s", type(exc).__name__, request.method, _route(request))
        return problem_response(
            request,
            status=500,
            title="Internal Server Error",
            slug="internal-error",
            detail="The server could not complete the request; nothing was stored.",
        )


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "?"))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
