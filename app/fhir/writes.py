"""The write interactions (create, conditional create, update), shared by the single-resource routes and Bundles,
and the reply to each.

Each interaction returns an ``Outcome``: the HTTP status, the resource as the server now holds it, its location and
version, and any warnings (a declared total that differs from the computed one, tolerated defects of a registered
form). ``written`` turns it into the reply (status, Location/ETag/Last-Modified, the body the client preferred), and
``remembered`` keeps that reply under the Idempotency-Key so a retried POST replays it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel

from app.fhir import patients as fhir_patients
from app.fhir import questionnaire_responses, registered_questionnaires
from app.fhir.capability import SUPPORTED
from app.fhir.codes import FHIR_MEDIA_TYPE
from app.fhir.conditional_create import criteria
from app.fhir.errors import Issue
from app.fhir.http import FHIRResponse, ReturnPreference, fhir_response, operation_outcome
from app.fhir.versioning import etag, version_of
from app.fhir.write_context import FhirWrite
from app.idempotency.service import IdempotencyGuard


@dataclass(frozen=True)
class Outcome:
    status: int
    resource: FHIRResourceModel | dict[str, Any]
    location: str
    version: str | None
    last_modified: datetime | None
    warnings: list[Issue] = field(default_factory=list)


def create_response(write: FhirWrite, *, data: dict[str, Any], text: str, if_none_exist: str | None = None) -> Outcome:
    stored = questionnaire_responses.create(write, data=data, text=text, criteria=criteria(if_none_exist))
    return _response_outcome(stored, 201 if stored.created else 200)


def put_response(
    write: FhirWrite, *, logical_id: str, data: dict[str, Any], text: str, if_match: str | None = None
) -> Outcome:
    stored = questionnaire_responses.put(write, logical_id=logical_id, data=data, text=text, if_match=if_match)
    return _response_outcome(stored, 201 if stored.created else 200)


def created_response(row: dict[str, Any], prepared: questionnaire_responses.PreparedResponse) -> Outcome:
    """The outcome of a response stored in bulk (``questionnaire_responses.store_many``), from its column values:
    what ``_response_outcome`` answers for the stored row, without building an entity per entry."""
    return Outcome(
        status=201,
        resource=questionnaire_responses.served_new(row, prepared.data),
        location=f"QuestionnaireResponse/{row['logical_id']}",
        version=str(row["version_id"]),
        last_modified=row["updated_at"],
        warnings=prepared.scored.warnings,
    )


def _response_outcome(stored: questionnaire_responses.StoredResponse, status: int) -> Outcome:
    row = stored.row
    return Outcome(
        status=status,
        resource=questionnaire_responses.served(row),
        location=f"QuestionnaireResponse/{row.logical_id}",
        version=str(row.version_id),
        last_modified=row.updated_at,
        warnings=stored.warnings,
    )


def create_patient(write: FhirWrite, *, data: dict[str, Any], if_none_exist: str | None = None) -> Outcome:
    stored = fhir_patients.create(write, data=data, criteria=criteria(if_none_exist))
    return _patient_outcome(stored, 201 if stored.created else 200)


def put_patient(write: FhirWrite, *, logical_id: str, data: dict[str, Any], if_match: str | None = None) -> Outcome:
    stored = fhir_patients.put(write, logical_id=logical_id, data=data, if_match=if_match)
    return _patient_outcome(stored, 201 if stored.created else 200)


def _patient_outcome(stored: fhir_patients.StoredPatient, status: int) -> Outcome:
    patient = stored.patient
    resource = fhir_patients.to_fhir(patient)
    return Outcome(
        status=status,
        resource=resource,
        location=f"Patient/{patient.id}",
        version=version_of(resource),
        last_modified=patient.created_at,
    )


def register_questionnaire(
    write: FhirWrite, *, data: dict[str, Any], text: str, logical_id: str | None = None, if_match: str | None = None
) -> Outcome:
    registration = registered_questionnaires.register(
        write, data=data, text=text, logical_id=logical_id, if_match=if_match
    )
    row = registration.row
    return Outcome(
        status=201 if registration.created else 200,
        resource=registered_questionnaires.served(row),
        location=f"Questionnaire/{row.logical_id}",
        version=str(row.version_id),
        last_modified=row.updated_at,
        warnings=registration.warnings,
    )


def written(write: FhirWrite, outcome: Outcome, *, base: str) -> FHIRResponse:
    """The reply to a create or update: the resource, nothing (``return=minimal``) or an OperationOutcome; kept under
    the Idempotency-Key when the write has a guard (POST). ``base``: this server's FHIR base URL, for the absolute
    ``Location``, naming the version written (``{base}/{type}/{id}/_history/{vid}``) where it can be read back."""
    headers = {"Location": f"{base}/{outcome.location}"}
    if outcome.version is not None:
        if "vread" in SUPPORTED[outcome.location.partition("/")[0]].interactions:
            headers["Location"] += f"/_history/{outcome.version}"
        headers["ETag"] = etag(outcome.version)
    if outcome.last_modified is not None:
        headers["Last-Modified"] = format_datetime(outcome.last_modified, usegmt=True)
    body: Any
    if write.prefer is ReturnPreference.MINIMAL:
        body = None
    elif write.prefer is ReturnPreference.OUTCOME:
        done = "created" if outcome.status == 201 else "matched an existing resource; nothing new was stored"
        issues = outcome.warnings or [Issue("informational", f"{outcome.location} {done}", (), "information")]
        body = operation_outcome(issues).model_dump(mode="json", exclude_none=True)
    else:
        body = outcome.resource
    if write.guard is None:
        return fhir_response(body, status_code=outcome.status, headers=headers)
    return remembered(write.guard, body, outcome.status, headers)


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
