"""The audit trail: every read and write of patient data, every export and every refused request.

Successful requests are recorded by the request's own transaction (``AuditTrail.finish`` runs just before the
commit), so an audit row exists exactly when the change it records does, and it carries the status the response is
sent with (201 for a creation). Rows created during the request are found from the session's flushes, so no handler
has to remember to audit. Every other answer of an audited route (401, 403, 404, 409, 422...) is recorded by
``record_answer`` in a transaction of its own, because the request's transaction is rolled back; it runs when the
response starts, before anything is sent. A Bundle's entries each get an event of their own (``EntryNote``).

Which patient an event names: the ``patient_id`` of the route's path on success (the route found it in the caller's
clinic), the patient of a record the request named (a response, an Observation, an alert, an assessment or its Task, a
query's ``patient_id``, ``subject`` or ``patient``) looked up *in the caller's clinic*, the patient a row created by the
request belongs to, the patient the request noted it read (``$extract``'s response, found in the caller's clinic), or a
patient token's own patient. Another clinic's patient is never named in the caller's trail (the event records the
request, its route and the id as sent, with ``patient_id`` empty): the caller learns nothing from its own trail that a
missing record would not also show. An unauthenticated request (no clinic) keeps the path's ``patient_id`` as sent;
one that presented a report link (``app.clinical.report_links``) is recorded in the link's clinic, naming the link
(``report_link`` and its id, never the token) and its patient.
A POST that only reads (``READ_ROUTES``) is recorded as a read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.service import Principal
from app.care.models import AssessmentOccurrence, Schedule
from app.clinical.models import RiskAlert
from app.core.audit_notes import EntryNote, LinkUse, entry_notes, links_used, patients_read
from app.core.db import InsertedRow, insert_together, log_inserts, new_record_id, table_of, transaction, utcnow
from app.core.state import state_of
from app.fhir.codes import FHIR_ID
from app.fhir.models import FhirResource
from app.fhir.observations import parse_observation_id
from app.measurements.models import Measurement
from app.patients.models import Patient

ACTIONS = {"GET": "read", "POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
UNAUDITED_ROUTES = frozenset(
    {
        "/health",
        "/livez",
        "/v1/instruments",
        "/v1/instruments/{instrument_id}",
        "/v1/instruments/{instrument_id}/text",
        "/v1/score/{instrument_id}",
        "/fhir/metadata",
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
        "/fhir/Questionnaire",
        "/fhir/Questionnaire/{questionnaire_id}",
        "/fhir/Questionnaire/{questionnaire_id}/_history",
        "/fhir/Questionnaire/{questionnaire_id}/_history/{version_id}",
    }
)
"""Routes that touch no patient data (instrument definitions, stateless scoring, health)."""
UNAUDITED_ROUTE_NAMES = frozenset({"unsupported"})
"""Route handlers that touch no data: ``/fhir``'s answer to interactions it does not support (404 or 405)."""
READ_ROUTES = frozenset({"/fhir/QuestionnaireResponse/$extract"})
"""POST routes that only read: they answer from the body and store nothing, so their events are reads."""
REFUSALS = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
UNRECORDED_STATUSES = frozenset({429, 503})
"""Load shedding (rate limited, the database busy): nothing was looked at, and writing an event would add load."""
SKIPPED_TABLES = frozenset({"audit_event", "idempotency_record", "patient_identifier"})
SECRET_PATH_PARAMETERS = frozenset({"token"})
"""Path parameters that carry a secret (a report link's token): never written to the trail."""
RESOURCE_ID_LENGTH = 100
"""Width of ``audit_event.resource_id``; a path value the caller sent can be longer."""


def route_template(request: Request) -> str | None:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def is_audited(request: Request) -> bool:
    template = route_template(request)
    name = getattr(request.scope.get("route"), "name", None)
    return template is not None and template not in UNAUDITED_ROUTES and name not in UNAUDITED_ROUTE_NAMES


def outcome_of(status_code: int) -> str:
    """``success`` (2xx, 3xx), a refusal (``unauthenticated``, ``forbidden``, ``not_found``), else ``rejected``."""
    if status_code < 400:
        return "success"
    return REFUSALS.get(status_code, "rejected" if status_code < 500 else "error")


def _resource(template: str, params: dict[str, Any]) -> tuple[str | None, str | None]:
    """The resource a route addresses: the last ``{param}`` of its template, named by the segment before it (a
    version's route, ``…/{id}/_history/{vid}``, addresses the resource)."""
    segments = [segment for segment in template.partition("/_history")[0].split("/") if segment]
    for index in range(len(segments) - 1, -1, -1):
        segment = segments[index]
        if segment.startswith("{") and index > 0:
            name = segment.strip("{}")
            if name in SECRET_PATH_PARAMETERS:
                return segments[index - 1], None
            return segments[index - 1], _stored_text(str(params.get(name)), RESOURCE_ID_LENGTH)
    tail = next((s for s in reversed(segments) if not s.startswith("{")), None)
    return tail, None


def _stored_text(value: str, length: int) -> str:
    """A caller-supplied path value as the audit column can hold it: NUL removed (PostgreSQL refuses it), cut."""
    return value.replace("\x00", "")[:length]


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _by_patient(value: str) -> Select[Any] | None:
    """``Patient/{id}``, ``{id}``, or an absolute ``…/Patient/{id}`` (FHIR searches take all three)."""
    patient = _uuid(value.rpartition("Patient/")[2])
    return None if patient is None else select(Patient.id).where(Patient.id == patient)


def _by_response(value: str) -> Select[Any] | None:
    """Only a well-formed FHIR id is looked up: a refusal's own audit row must not fail on what was refused (a NUL
    character, which PostgreSQL refuses in any statement)."""
    if not FHIR_ID.fullmatch(value):
        return None
    return select(FhirResource.patient_id).where(
        FhirResource.resource_type == "QuestionnaireResponse", FhirResource.logical_id == value
    )


def _by_measurement(value: str) -> Select[Any] | None:
    measurement = _uuid(value)
    return (
        None if measurement is None else select(Measurement.patient_id).where(Measurement.measurement_id == measurement)
    )


def _by_observation(value: str) -> Select[Any] | None:
    ref = parse_observation_id(value)
    return (
        None if ref is None else select(Measurement.patient_id).where(Measurement.measurement_id == ref.measurement_id)
    )


def _by_alert(value: str) -> Select[Any] | None:
    alert = _uuid(value)
    return None if alert is None else select(RiskAlert.patient_id).where(RiskAlert.id == alert)


def _by_assessment(value: str) -> Select[Any] | None:
    occurrence = _uuid(value)
    return (
        None
        if occurrence is None
        else select(AssessmentOccurrence.patient_id).where(AssessmentOccurrence.id == occurrence)
    )


def _by_schedule(value: str) -> Select[Any] | None:
    schedule = _uuid(value)
    return None if schedule is None else select(Schedule.patient_id).where(Schedule.id == schedule)


PATIENT_LOOKUPS = {
    "patient_id": (_by_patient, Patient.clinic_id),
    "subject": (_by_patient, Patient.clinic_id),
    "patient": (_by_patient, Patient.clinic_id),
    "measurement_id": (_by_measurement, Measurement.clinic_id),
    "response_id": (_by_response, FhirResource.clinic_id),
    "observation_id": (_by_observation, Measurement.clinic_id),
    "alert_id": (_by_alert, RiskAlert.clinic_id),
    "assessment_id": (_by_assessment, AssessmentOccurrence.clinic_id),
    "task_id": (_by_assessment, AssessmentOccurrence.clinic_id),
    "schedule_id": (_by_schedule, Schedule.clinic_id),
}
"""Path and query parameters that name a patient's record, and how to find its patient within one clinic."""
LOCATIONS = {"/fhir/QuestionnaireResponse/": "response_id", "/fhir/Patient/": "patient_id"}
"""What a write's ``Location`` names (a conditional create that matched an existing resource creates no row)."""


def _lookup(db: Session, clinic_id: uuid.UUID, name: str, value: str) -> uuid.UUID | None:
    build, clinic_column = PATIENT_LOOKUPS[name]
    query = build(value)
    if query is None:
        return None
    found = db.execute(query.where(clinic_column == clinic_id).limit(1)).scalar()
    return found if isinstance(found, uuid.UUID) else None


def _named(request: Request) -> list[tuple[str, str]]:
    """The patient-bound parameters the request names: path first (the innermost last), then the query."""
    path = [(name, str(value)) for name, value in request.path_params.items() if name in PATIENT_LOOKUPS]
    query = [(name, request.query_params[name]) for name in PATIENT_LOOKUPS if name in request.query_params]
    return path[::-1] + query


def _patient_id(
    db: Session,
    request: Request,
    principal: Principal | None,
    *,
    succeeded: bool,
    created: list[uuid.UUID] | None = None,
    location: str | None = None,
    read: list[uuid.UUID] | None = None,
) -> uuid.UUID | None:
    """The patient an event is about, never one of another clinic (see the module's docstring)."""
    params = request.path_params
    single_created = created[0] if created and len(set(created)) == 1 else None
    if principal is None:  # what the path names as sent (no clinic sees the event), or what a public route created
        return _uuid(params["patient_id"]) if "patient_id" in params else single_created
    if succeeded and "patient_id" in params:
        return _uuid(params["patient_id"])  # the route found it in the caller's clinic
    for name, value in _named(request):
        found = _lookup(db, principal.clinic_id, name, value)
        if found is not None:
            return found
    if single_created is not None:
        return single_created
    if succeeded and location:
        path = urlsplit(location).path  # absolute, and naming the version: {base}/{type}/{id}/_history/{vid}
        for prefix, name in LOCATIONS.items():
            if prefix in path:
                found = _lookup(db, principal.clinic_id, name, path.partition(prefix)[2].partition("/")[0])
                if found is not None:
                    return found
    if read and len(set(read)) == 1:
        return read[0]  # noted by the request only once found in the caller's clinic
    return principal.patient_id


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@dataclass
class AuditTrail:
    """Collects the rows a request creates, then writes its audit events into the same transaction."""

    request: Request
    inserted: list[InsertedRow] = field(default_factory=list)
    entries: list[EntryNote] = field(default_factory=list)
    read: list[uuid.UUID] = field(default_factory=list)
    links: list[LinkUse] = field(default_factory=list)

    def watch(self, db: Session) -> None:
        self.inserted = log_inserts(db)
        self.entries = entry_notes(db)
        self.read = patients_read(db)
        self.links = links_used(db)
        self.request.state.audit_trail = self

    @property
    def created(self) -> list[tuple[str, str, uuid.UUID | None, uuid.UUID | None]]:
        """``(table, resource id, patient id, clinic id)`` of each row the transaction will commit (audit rows
        excepted)."""
        return [
            (
                table,
                str(values.get("measurement_id") or values.get("id")),
                values.get("id") if table == "patient" else values.get("patient_id"),
                values.get("clinic_id"),
            )
            for table, values in self.inserted
            if table not in SKIPPED_TABLES
        ]

    def finish(self, db: Session, *, status_code: int = 200, location: str | None = None) -> None:
        """Write the request's events: the request itself with the status it is answered with, one per row it
        created, one per noted part (a Bundle's entries)."""
        if not is_audited(self.request):
            return
        self.request.state.audit_written = True
        created = self.created
        principal: Principal | None = getattr(self.request.state, "principal", None)
        template = route_template(self.request) or self.request.url.path
        resource_type, resource_id = _resource(template, dict(self.request.path_params))
        base = _base(self.request, principal, template, status_code)
        if principal is None:  # a public route (an enrolment code's exchange): the clinic of what it created
            clinics = {clinic for _table, _id, _patient, clinic in created if clinic is not None}
            base["clinic_id"] = clinics.pop() if len(clinics) == 1 else None
        patients = [patient for _table, _id, patient, _clinic in created if patient is not None]
        no_details: dict[str, Any] = {}  # one object for every row without details: it is encoded once
        rows = [
            {
                **base,
                "id": new_record_id(),
                "resource_type": resource_type,
                "resource_id": resource_id,
                "patient_id": _patient_id(
                    db, self.request, principal, succeeded=True, created=patients, location=location, read=self.read
                ),
                "details": {"created": len(created)} if created else {},
            }
        ]
        rows.extend(
            {
                **base,
                "id": new_record_id(),
                "action": "create",
                "resource_type": table,
                "resource_id": created_id,
                "patient_id": patient,
                "details": no_details,
            }
            for table, created_id, patient, _clinic in created
        )
        rows.extend(_entry_row(base, entry) for entry in self.entries)
        _by_link(rows, self.links)
        # Core, not the ORM's bulk insert: this runs in every audited request and nothing reads the rows back.
        insert_together(db.connection(), _EVENTS, rows)


_EVENTS = table_of(AuditEvent)


def _by_link(rows: list[dict[str, Any]], links: list[LinkUse]) -> None:
    """A request made with a report link (no key): its event is the link's clinic's, about the link's patient."""
    if not links:
        return
    link = links[-1]
    rows[0].update(
        clinic_id=link.clinic_id,
        patient_id=link.patient_id,
        resource_type="report_link",
        resource_id=str(link.link_id),
        details={**rows[0]["details"], "report_link": str(link.link_id)},
    )


def _entry_row(base: dict[str, Any], entry: EntryNote) -> dict[str, Any]:
    return {
        **base,
        "id": new_record_id(),
        "action": ACTIONS.get(entry.method, entry.method.lower()),
        "status_code": entry.status_code,
        "outcome": outcome_of(entry.status_code),
        "resource_type": entry.resource_type,
        "resource_id": None if entry.resource_id is None else _stored_text(entry.resource_id, RESOURCE_ID_LENGTH),
        "patient_id": entry.patient_id,
        "details": {"entry": entry.index},
    }


def _base(request: Request, principal: Principal | None, template: str, status_code: int) -> dict[str, Any]:
    return {
        "occurred_at": utcnow(),
        "clinic_id": principal.clinic_id if principal else None,
        "key_id": principal.key_id if principal else None,
        "role": principal.role.value if principal else None,
        "action": "read" if template in READ_ROUTES else ACTIONS.get(request.method, request.method.lower()),
        "method": request.method,
        "route": template[:200],
        "client_address": _client(request),
        "status_code": status_code,
        "outcome": outcome_of(status_code),
    }


async def observe_answer(request: Request, status_code: int) -> None:
    """As an audited route's response starts: record it unless its transaction did (``record_answer``)."""
    if status_code in UNRECORDED_STATUSES or getattr(request.state, "audit_written", False) or not is_audited(request):
        return
    request.state.audit_written = True
    await run_in_threadpool(record_answer, request, status_code)


def record_answer(request: Request, status_code: int) -> None:
    """Record an answer its request's transaction did not: a refusal (bad key, forbidden role, a record that is
    missing or another clinic's), a rejected request (409, 422...), a replay, a route without a transaction; with the
    status it is sent with, and the failed entries of a Bundle.

    Runs in a transaction of its own (the request's was rolled back, or there was none).
    """
    principal: Principal | None = getattr(request.state, "principal", None)
    template = route_template(request) or request.url.path
    resource_type, resource_id = _resource(template, dict(request.path_params))
    trail: AuditTrail | None = getattr(request.state, "audit_trail", None)
    failed_entries = [entry for entry in (trail.entries if trail else []) if entry.status_code >= 400]
    succeeded = status_code < 400
    base = _base(request, principal, template, status_code)
    for db in transaction(state_of(request).write_sessions):
        rows = [
            {
                **base,
                "id": new_record_id(),
                "resource_type": resource_type,
                "resource_id": resource_id,
                "patient_id": _patient_id(
                    db, request, principal, succeeded=succeeded, read=trail.read if trail else None
                ),
                "details": {},
            }
        ]
        rows.extend(_entry_row(base, entry) for entry in failed_entries)
        _by_link(rows, trail.links if trail else [])
        insert_together(db.connection(), _EVENTS, rows)


def list_events(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    limit: int,
    offset: int,
    patient_id: uuid.UUID | None = None,
    key_id: uuid.UUID | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.clinic_id == clinic_id)
    for column, value in (
        (AuditEvent.patient_id, patient_id),
        (AuditEvent.key_id, key_id),
        (AuditEvent.action, action),
        (AuditEvent.outcome, outcome),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEvent.occurred_at <= until)
    query = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id).limit(limit).offset(offset)
    return list(db.scalars(query))
