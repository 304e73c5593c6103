"""QuestionnaireResponses in: validate, resolve the form, score on the server, store the measurement (source
``fhir``) and keep the resource verbatim. Safe to resend: conditional create and PUT by id rest on unique
constraints, so concurrent retries store one resource, never two.

Missing-item policy: a response whose answers leave any score of the instrument undefined (more items missing than
the instrument's rule allows: PHQ-9 more than 2, GAD-7 any) is refused with 422, one issue per missing item;
a response is never stored as "incomplete" without a score.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.permissions import Permission
from app.auth.service import Principal
from app.clinical import recording
from app.core.db import insert_rows, new_record_id, utcnow
from app.core.errors import Conflict, NotFound
from app.fhir import form_resolution, kept_versions
from app.fhir.conditional_create import Criteria
from app.fhir.errors import (
    InUse,
    Issue,
    PreconditionFailed,
    ReferenceNotFound,
    UnprocessableResource,
)
from app.fhir.form_resolution import ResolvedForm
from app.fhir.models import FhirResource
from app.fhir.response_answers import ROOT, ResponseAnswers, authored, check_status, read_answers, subject_patient_id
from app.fhir.validation import check_put_id, refuse_if_any, require_type, validate
from app.fhir.verbatim import as_served
from app.fhir.versioning import require_version
from app.fhir.write_context import FhirWrite
from app.instruments import service as scoring
from app.measurements import service as measurements
from app.measurements.models import Measurement
from app.measurements.schemas import Source
from app.patients import service as patients
from app.scoring.engine import ScoreResult

RESOURCE_TYPE = "QuestionnaireResponse"


@dataclass(frozen=True)
class StoredResponse:
    row: FhirResource
    created: bool
    """False when a conditional create matched, or a PUT repeated the stored content: nothing new was stored."""
    warnings: list[Issue] = field(default_factory=list)


def create(write: FhirWrite, *, data: dict[str, Any], text: str, criteria: Criteria | None = None) -> StoredResponse:
    """POST: score and store a new response (server-assigned id); with ``criteria``, a conditional create.

    When the criteria match, the server ignores the post (FHIR conditional create), so a resent feed costs a lookup.
    The match is looked for in the caller's clinic; for a patient token it must also be its own patient's response,
    else the post is refused (``InUse``, 409) as explained in ``_matching``.
    """
    if criteria is not None:
        existing = _matching(write, criteria)
        if existing is not None:
            return StoredResponse(row=existing, created=False)
    prepared = prepare(write, data=data, text=text)
    try:
        with write.db.begin_nested():
            row = store_many(write, [prepared], criteria=criteria)[0]
    except IntegrityError:
        existing = _matching(write, criteria) if criteria is not None else None
        if existing is None:
            raise Conflict("the response was stored concurrently; resend it") from None
        return StoredResponse(row=existing, created=False)
    return StoredResponse(row=FhirResource(**row), created=True, warnings=prepared.scored.warnings)


@dataclass(frozen=True)
class PreparedResponse:
    """A new response validated and scored, not yet stored: everything that can refuse it has run."""

    data: dict[str, Any]
    text: str
    scored: _Scored
    logical_id: str | None = None
    """The client's id (PUT); None for a new server-assigned id."""


def prepare(
    write: FhirWrite, *, data: dict[str, Any], text: str, issues: list[Issue] | None = None
) -> PreparedResponse:
    """Validate and score a new response (reads only), so that many can be stored with one statement each.

    ``issues``: its structural issues when already found (``validation_pool``); else it is validated here.
    """
    if issues is None:
        validate(data, RESOURCE_TYPE)
    else:
        require_type(data, RESOURCE_TYPE)
        refuse_if_any(issues, RESOURCE_TYPE)
    return PreparedResponse(data, text, _score(write, data))


def store_many(
    write: FhirWrite, prepared: Sequence[PreparedResponse], *, criteria: Criteria | None = None
) -> list[dict[str, Any]]:
    """Store prepared responses under new server ids: their measurements (with alerts) and the resources, one
    statement each for all of them; returns each stored resource's column values. All or nothing."""
    db, registry, principal = write.db, write.registry, write.principal
    stored = recording.record(
        db,
        [
            measurements.new_measurement(
                registry,
                response.scored.resolved.definition.id,
                clinic_id=principal.clinic_id,
                patient_id=response.scored.patient_id,
                items=response.scored.answers.items,
                measured_at=response.scored.measured_at,
                source=Source.FHIR,
                declared_total=response.scored.answers.declared_total,
                recorded_by_key_id=principal.key_id,
                scored=response.scored.result,
            )
            for response in prepared
        ],
    )
    now = utcnow()
    rows = [
        _resource_row(principal, response, measurement["measurement_id"], now, criteria)
        for response, measurement in zip(prepared, stored, strict=True)
    ]
    insert_rows(db, FhirResource, rows)
    return rows


def _resource_row(
    principal: Principal,
    response: PreparedResponse,
    measurement_id: uuid.UUID,
    now: datetime,
    criteria: Criteria | None,
) -> dict[str, Any]:
    system, value = _identifier(response.data)
    return {
        "id": new_record_id(),
        "clinic_id": principal.clinic_id,
        "resource_type": RESOURCE_TYPE,
        "logical_id": response.logical_id or str(new_record_id()),
        "version_id": 1,
        "measurement_id": measurement_id,
        "patient_id": response.scored.patient_id,
        "identifier_system": system,
        "identifier_value": value,
        "match_key": criteria.key if criteria is not None else None,
        "raw": response.text,
        "recorded_by_key_id": principal.key_id,
        "created_at": now,
        "updated_at": now,
    }


def put(
    write: FhirWrite, *, logical_id: str, data: dict[str, Any], text: str, if_match: str | None = None
) -> StoredResponse:
    """PUT by id: create with the client's id, repeat (nothing new), or update (a new measurement version).

    A patient token may write only its own patient's responses: an id held by another patient's response is refused
    (``InUse``, 409) whatever the body, even one equal to what is stored, and the answer names nothing of it.
    ``If-Match``: only if the response is at that version (412 otherwise), compared under a lock on its row, which
    every PUT of it takes (``versioning``).
    """
    validate(data, RESOURCE_TYPE)
    check_put_id(data, logical_id, RESOURCE_TYPE)
    what = f"{RESOURCE_TYPE}/{logical_id}"
    existing = find(write.db, write.principal.clinic_id, logical_id, for_update=True)
    if existing is not None:
        _require_reach(write.principal, existing, what, "PUT to a new id, or POST")
        require_version(if_match, str(existing.version_id), what)
        return _update(write, row=existing, data=data, text=text)
    require_version(if_match, None, what)
    prepared = PreparedResponse(data, text, _score(write, data), logical_id)
    try:
        with write.db.begin_nested():
            row = store_many(write, [prepared])[0]
    except IntegrityError:
        existing = find(write.db, write.principal.clinic_id, logical_id)
        if existing is not None:
            _require_reach(write.principal, existing, f"{RESOURCE_TYPE}/{logical_id}", "PUT to a new id, or POST")
        if existing is None or not _same(existing, data):
            raise Conflict(f"{RESOURCE_TYPE}/{logical_id} was written concurrently; read it and retry") from None
        return StoredResponse(row=existing, created=False)
    return StoredResponse(row=FhirResource(**row), created=True, warnings=prepared.scored.warnings)


def get(db: Session, *, clinic_id: uuid.UUID, logical_id: str) -> FhirResource:
    row = find(db, clinic_id, logical_id)
    if row is None:
        raise NotFound(f"no {RESOURCE_TYPE}/{logical_id}")
    return row


def find(db: Session, clinic_id: uuid.UUID, logical_id: str, *, for_update: bool = False) -> FhirResource | None:
    """The clinic's response; ``for_update``: its row locked until the transaction ends (PostgreSQL's
    ``FOR NO KEY UPDATE``, which SQLAlchemy spells ``key_share``), and read afresh."""
    query = select(FhirResource).where(
        FhirResource.clinic_id == clinic_id,
        FhirResource.resource_type == RESOURCE_TYPE,
        FhirResource.logical_id == logical_id,
    )
    if for_update:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    return db.scalar(query)


def served(row: FhirResource) -> dict[str, Any]:
    """The response as received, under its server id and version, its subject resolved to ``Patient/<id>``."""
    return _served(
        row.raw,
        logical_id=row.logical_id,
        version_id=row.version_id,
        updated_at=row.updated_at,
        patient_id=row.patient_id,
    )


def served_new(row: Mapping[str, Any], received: dict[str, Any]) -> dict[str, Any]:
    """``served`` of a response just stored by ``store_many``, from its column values (no entity is built) and
    the response as parsed (not parsed again from ``raw``)."""
    return _served(
        received,
        logical_id=row["logical_id"],
        version_id=row["version_id"],
        updated_at=row["updated_at"],
        patient_id=row["patient_id"],
    )


def _served(
    raw: str | dict[str, Any], *, logical_id: str, version_id: int, updated_at: datetime, patient_id: uuid.UUID | None
) -> dict[str, Any]:
    data = as_served(
        raw, resource_type=RESOURCE_TYPE, logical_id=logical_id, version_id=version_id, updated_at=updated_at
    )
    subject = data.get("subject")
    data["subject"] = {**(subject if isinstance(subject, dict) else {}), "reference": f"Patient/{patient_id}"}
    return data


def logical_ids(db: Session, *, clinic_id: uuid.UUID, measurement_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The response each measurement was scored from (for Observation.derivedFrom)."""
    if not measurement_ids:
        return {}
    rows = db.execute(
        select(FhirResource.measurement_id, FhirResource.logical_id).where(
            FhirResource.clinic_id == clinic_id,
            FhirResource.resource_type == RESOURCE_TYPE,
            FhirResource.measurement_id.in_(measurement_ids),
        )
    )
    return {measurement_id: logical_id for measurement_id, logical_id in rows if measurement_id is not None}


@dataclass(frozen=True)
class _Scored:
    patient_id: uuid.UUID
    resolved: ResolvedForm
    answers: ResponseAnswers
    measured_at: datetime
    result: ScoreResult
    """Scored once, here: to refuse an unscorable response before anything is stored, and then to store it."""
    warnings: list[Issue]


def _score(write: FhirWrite, data: dict[str, Any]) -> _Scored:
    """Everything that can refuse a response, before anything is written."""
    principal = write.principal
    check_status(data)
    measured_at = authored(data)
    if principal.patient_id is not None and data.get("subject") is None:
        # A patient token (mobile app) acts for one patient: the subject is implied.
        data["subject"] = {"reference": f"Patient/{principal.patient_id}"}
    patient_id = subject_patient_id(data)
    if principal.patient_id is not None and patient_id != principal.patient_id:
        reference = f"Patient/{patient_id}"
        raise ReferenceNotFound(
            f"no {reference} in this clinic",
            issues=[Issue("not-found", f"no {reference} in this clinic", (f"{ROOT}.subject",))],
        )
    _require_patient(write, patient_id)
    resolved = _form(write, data)
    answers = read_answers(data, resolved.form)
    result = scoring.score_answers(resolved.definition, answers.items, declared_total=answers.declared_total)
    unscorable = sorted(
        {number for value in result.scores.values() if value.value is None for number in value.missing_items},
        key=int,
    )
    if unscorable:
        short_name = resolved.definition.short_name
        raise UnprocessableResource(
            f"{len(unscorable)} item(s) unanswered: more than {short_name}'s missing-item rule allows",
            issues=[_missing_issue(resolved, number) for number in unscorable],
        )
    warnings = [
        Issue("business-rule", warning.message, (), "warning")
        for warning in result.warnings
        if warning.code == "declared_total_mismatch"
    ]
    return _Scored(
        patient_id=patient_id,
        resolved=resolved,
        answers=answers,
        measured_at=measured_at,
        result=result,
        warnings=warnings,
    )


def _form(write: FhirWrite, qr: dict[str, Any]) -> ResolvedForm:
    """The form a response answers (contained forms are resolved each time: they belong to one response)."""
    lookups = write.lookups
    reference = qr.get("questionnaire")
    if isinstance(reference, str) and reference in lookups.forms:
        return lookups.forms[reference]
    with write.db.begin_nested() if lookups.per_entry else nullcontext():
        resolved = form_resolution.resolve(write.db, write.registry, clinic_id=write.principal.clinic_id, qr=qr)
    if isinstance(reference, str) and not reference.startswith("#"):
        lookups.forms[reference] = resolved
    return resolved


def _require_patient(write: FhirWrite, patient_id: uuid.UUID) -> None:
    """404 (at ``subject``) unless the patient is the clinic's."""
    if patient_id in write.lookups.patients:
        return
    try:
        patients.ensure_exists(write.db, clinic_id=write.principal.clinic_id, patient_id=patient_id)
    except NotFound:
        reference = f"Patient/{patient_id}"
        raise ReferenceNotFound(
            f"no {reference} in this clinic",
            issues=[Issue("not-found", f"no {reference} in this clinic", (f"{ROOT}.subject",))],
        ) from None
    write.lookups.patients.add(patient_id)


def _missing_issue(resolved: ResolvedForm, number: str) -> Issue:
    definition = resolved.definition
    link_id = resolved.form.link_id_of(number) or number
    spec = definition.score(definition.primary_score) if definition.primary_score else definition.scores[0]
    rule = spec.missing.source if spec.missing else ""
    allowed = spec.missing.max_missing if spec.missing else 0
    return Issue(
        "required",
        f"item {link_id!r} ({definition.short_name} item {number}) is unanswered; {definition.short_name} allows "
        f"at most {allowed} missing item(s) ({rule.split('.')[0]})",
        (f"{ROOT}.item.where(linkId='{link_id}')",),
    )


def _update(write: FhirWrite, *, row: FhirResource, data: dict[str, Any], text: str) -> StoredResponse:
    if _same(row, data):
        return StoredResponse(row=row, created=False)
    db, registry, principal = write.db, write.registry, write.principal
    principal.require(Permission.MEASUREMENTS_AMEND)
    scored = _score(write, data)
    if scored.patient_id != row.patient_id:
        raise UnprocessableResource(
            "a response cannot move to another patient",
            issues=[
                Issue(
                    "business-rule",
                    "subject differs from the stored response's; post a new response",
                    (f"{ROOT}.subject",),
                )
            ],
        )
    current = db.scalar(
        select(Measurement).where(
            Measurement.measurement_id == row.measurement_id,
            Measurement.clinic_id == principal.clinic_id,
            Measurement.is_current.is_(True),
        )
    )
    if current is None or current.instrument_id != scored.resolved.definition.id:
        raise Conflict(f"{RESOURCE_TYPE}/{row.logical_id} answers another instrument; post a new response")
    new = measurements.new_version(
        registry,
        current,
        items=scored.answers.items,
        recorded_by_key_id=principal.key_id,
        measured_at=scored.measured_at,
        declared_total=scored.answers.declared_total,
        scored=scored.result,
    )
    amended = recording.record_version(db, current, new, reason=f"FHIR update of {RESOURCE_TYPE}/{row.logical_id}")
    kept_versions.keep(db, row, resource_type=RESOURCE_TYPE)
    row.measurement_id = amended.measurement_id
    row.identifier_system, row.identifier_value = _identifier(data)
    row.raw = text
    row.version_id += 1
    row.updated_at = utcnow()
    row.recorded_by_key_id = principal.key_id
    db.flush()
    return StoredResponse(row=row, created=False, warnings=scored.warnings)


def _same(row: FhirResource, data: dict[str, Any]) -> bool:
    return bool(json.loads(row.raw) == data)


def _identifier(data: dict[str, Any]) -> tuple[str | None, str | None]:
    identifier = data.get("identifier")
    if not isinstance(identifier, dict):
        return None, None
    system, value = identifier.get("system"), identifier.get("value")
    return (system if isinstance(system, str) else None, value if isinstance(value, str) else None)


def _matching(write: FhirWrite, criteria: Criteria) -> FhirResource | None:
    """The one response of the caller's clinic the criteria match (an earlier conditional create's key, or the
    identifier); 412 if many.

    A patient token matches only its own patient's responses. When the criteria match another patient's response,
    the post is refused with 409 (``InUse``), before any other outcome, saying only that the identifier is in use by a
    response this token cannot read: never that response, its id, subject or answers, and nothing is stored.
    Treating such a match as "no match" would not hide more: storing the post would either hit the unique match key
    (a 409 anyway) or put a second response under the other patient's identifier, so that the other patient's own
    resends would no longer match one response (412) -- a change to that patient's records. What the refusal does
    reveal, that the identifier is taken in the clinic, is what any FHIR server with compartment-scoped access
    reveals (HAPI's authorization interceptor answers 403 to a conditional create matching a resource out of reach).

    Two indexed lookups rather than one ``OR``, which SQLite would answer by scanning the clinic's responses.
    """
    db, principal = write.db, write.principal
    scope = (FhirResource.clinic_id == principal.clinic_id, FhirResource.resource_type == RESOURCE_TYPE)
    by_key = db.scalar(select(FhirResource).where(*scope, FhirResource.match_key == criteria.key))
    query = select(FhirResource).where(*scope, FhirResource.identifier_value == criteria.value)
    if not criteria.any_system:
        query = query.where(
            FhirResource.identifier_system == criteria.system
            if criteria.system is not None
            else FhirResource.identifier_system.is_(None)
        )
    found = {row.id: row for row in [*([by_key] if by_key else []), *db.scalars(query.limit(2))]}
    for row in found.values():
        _require_reach(principal, row, criteria.key, "send the response under an identifier of its own")
    if len(found) > 1:
        raise PreconditionFailed(
            f"the criteria {criteria.key} match more than one {RESOURCE_TYPE}",
            issues=[
                Issue("multiple-matches", f"{criteria.key} matches more than one {RESOURCE_TYPE}; be more selective")
            ],
        )
    return next(iter(found.values()), None)


def _require_reach(principal: Principal, row: FhirResource, what: str, instead: str) -> None:
    """Refuse (409, ``InUse``) a patient token's use of a response of another patient. ``what`` is the caller's own
    words (its criteria, or the id it sent); the answer carries nothing of the stored response."""
    if principal.patient_id is None or row.patient_id == principal.patient_id:
        return
    detail = f"{what} is in use in this clinic by a {RESOURCE_TYPE} this token cannot read; nothing was stored"
    raise InUse(detail, issues=[Issue("duplicate", f"{detail}; {instead}")])
