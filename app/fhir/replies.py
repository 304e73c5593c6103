"""Replies to writes: status, Location/ETag/Last-Modified, the body the client preferred, and the Idempotency-Key
record that lets a retried POST replay the same reply."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any

from app.fhir.codes import FHIR_MEDIA_TYPE
from app.fhir.errors import Issue
from app.fhir.http import FHIRResponse, ReturnPreference, fhir_response, operation_outcome
from app.fhir.writes import Outcome
from app.idempotency.service import IdempotencyGuard


def written(outcome: Outcome, prefer: ReturnPreference | None, guard: IdempotencyGuard | None = None) -> FHIRResponse:
    """The reply to a create or update: the resource, nothing (``return=minimal``) or an OperationOutcome."""
    headers = {"Location": f"/fhir/{outcome.location}"}
    if outcome.version is not None:
        headers["ETag"] = f'W/"{outcome.version}"'
    if outcome.last_modified is not None:
        headers["Last-Modified"] = format_datetime(outcome.last_modified, usegmt=True)
    body: Any
    if prefer is ReturnPreference.MINIMAL:
        body = None
    elif prefer is ReturnPreference.OUTCOME:
        done = "created" if outcome.status == 201 else "matched an existing resource; nothing new was stored"
        issues = outcome.warnings or [Issue("informational", f"{outcome.location} {done}", (), "information")]
        body = operation_outcome(issues).model_dump(mode="json", exclude_none=True)
    else:
        body = outcome.resource
    if guard is None:
        return fhir_response(body, status_code=outcome.status, headers=headers)
    return remembered(guard, body, outcome.status, headers)


def remembered(guard: IdempotencyGuard, body: Any, status: int, headers: dict[str, str]) -> FHIRResponse:
    """Answer through the Idempotency-Key guard, so a retried POST replays this response.

    A ``return=minimal`` answer has no body; its replay carries an OperationOutcome saying what was done. A replay
    repeats the headers too (Location, ETag, Last-Modified, the FHIR media type).
    """
    if body is None:
        done = Issue("informational", f"{headers.get('Location', '')} stored", (), "information")
        guard.respond(
            operation_outcome([done]).model_dump(mode="json", exclude_none=True),
            status_code=status,
            headers=headers,
            media_type=FHIR_MEDIA_TYPE,
        )
        return FHIRResponse(content=b"", status_code=status, headers=headers)
    if not isinstance(body, dict):
        body = body.model_dump(mode="json", exclude_none=True)
    recorded = guard.respond(body, status_code=status, headers=headers, media_type=FHIR_MEDIA_TYPE)
    return FHIRResponse(content=recorded.body, status_code=status, headers=headers)
