"""The audit trail: every read and write of patient data, every export and every refused request.

Successful requests are recorded by the request's own transaction (``AuditTrail.finish`` runs inside ``get_db``
before the commit), so an audit row exists exactly when the change it records does. Rows created during the request
are found from the session's flushes, so no handler has to remember to audit. Refused requests (401, 403, 404) are
recorded in a transaction of their own, because the request's transaction is rolled back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.auth.service import Principal
from app.core.db import InsertedRow, insert_together, log_inserts, new_record_id, table_of, transaction, utcnow

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
        "/fhir/Questionnaire",
        "/fhir/Questionnaire/{questionnaire_id}",
    }
)
"""Routes that touch no patient data (instrument definitions, stateless scoring, health)."""
SKIPPED_TABLES = frozenset({"audit_event", "idempotency_record", "patient_identifier"})
RESOURCE_ID_LENGTH = 100
"""Width of ``audit_event.resource_id``; a path value the caller sent can be longer."""


def route_template(request: Request) -> str | None:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def is_audited(request: Request) -> bool:
    template = route_template(request)
    return template is not None and template not in UNAUDITED_ROUTES


def _resource(template: str, params: dict[str, Any]) -> tuple[str | None, str | None]:
    """The resource a route addresses: the last ``{param}`` of its template, named by the segment before it."""
    segments = [segment for segment in template.split("/") if segment]
    for index in range(len(segments) - 1, -1, -1):
        segment = segments[index]
        if segment.startswith("{") and index > 0:
            return segments[index - 1], _stored_text(str(params.get(segment.strip("{}"))), RESOURCE_ID_LENGTH)
    tail = next((s for s in reversed(segments) if not s.startswith("{")), None)
    return tail, None


def _stored_text(value: str, length: int) -> str:
    """A caller-supplied path value as the audit column can hold it: NUL removed (PostgreSQL refuses it), cut."""
    return value.replace("\x00", "")[:length]


def _patient_id(params: dict[str, Any], principal: Principal | None) -> uuid.UUID | None:
    raw = params.get("patient_id")
    if raw is not None:
        try:
            return uuid.UUID(str(raw))
        except ValueError:
            return None
    return principal.patient_id if principal is not None else None


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@dataclass
class AuditTrail:
    """Collects the rows a request creates, then writes its audit events into the same transaction."""

    request: Request
    inserted: list[InsertedRow] = field(default_factory=list)

    def watch(self, session: Session) -> None:
        self.inserted = log_inserts(session)

    @property
    def created(self) -> list[tuple[str, str, uuid.UUID | None]]:
        """``(table, resource id, patient id)`` of each row the transaction will commit (audit rows excepted)."""
        return [
            (
                table,
                str(values.get("measurement_id") or values.get("id")),
                values.get("id") if table == "patient" else values.get("patient_id"),
            )
            for table, values in self.inserted
            if table not in SKIPPED_TABLES
        ]

    def finish(self, session: Session, *, status_code: int = 200) -> None:
        if not is_audited(self.request):
            return
        created = self.created
        principal: Principal | None = getattr(self.request.state, "principal", None)
        template = route_template(self.request) or self.request.url.path
        params = dict(self.request.path_params)
        resource_type, resource_id = _resource(template, params)
        base = _base(self.request, principal, template, status_code, "success", utcnow())
        rows = [
            {
                **base,
                "id": new_record_id(),
                "resource_type": resource_type,
                "resource_id": resource_id,
                "patient_id": _patient_id(params, principal),
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
                "details": {},
            }
            for table, created_id, patient in created
        )
        # Core, not the ORM's bulk insert: this runs in every audited request and nothing reads the rows back.
        insert_together(session.connection(), _EVENTS, rows)


_EVENTS = table_of(AuditEvent)


def _base(
    request: Request, principal: Principal | None, template: str, status_code: int, outcome: str, now: datetime
) -> dict[str, Any]:
    return {
        "occurred_at": now,
        "clinic_id": principal.clinic_id if principal else None,
        "key_id": principal.key_id if principal else None,
        "role": principal.role.value if principal else None,
        "action": ACTIONS.get(request.method, request.method.lower()),
        "method": request.method,
        "route": template[:200],
        "client_address": _client(request),
        "status_code": status_code,
        "outcome": outcome,
    }


def record_refusal(factory: sessionmaker[Session], request: Request, *, status_code: int, outcome: str) -> None:
    """Record a refused request (bad key, forbidden role, or a record that is missing or another clinic's)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    template = route_template(request) or request.url.path
    if template in UNAUDITED_ROUTES:
        return
    params = dict(request.path_params)
    resource_type, resource_id = _resource(template, params)
    row = AuditEvent(
        **_base(request, principal, template, status_code, outcome, utcnow()),
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=_patient_id(params, principal),
        details={},
    )
    for session in transaction(factory):
        session.add(row)


def list_events(
    session: Session,
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
    return list(session.scalars(query))
