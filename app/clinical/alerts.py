"""Risk alerts: raised in the transaction that stores a flagged measurement, listed, and acknowledged with a note.

``raise_alerts_for_new`` and ``raise_alerts_for`` are called by ``app.clinical.recording`` right after it stores new
measurements or a new version, the one way every source (API, FHIR, import, re-scoring) stores one.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, case, literal_column, select, update
from sqlalchemy.orm import Session

from app.clinical import clinic_settings, webhooks
from app.clinical.models import RiskAlert
from app.clinical.risk import RISK_FLAGS
from app.clinical.schemas import AlertMeasurement, AlertPatient, AlertRead
from app.core.db import insert_rows, new_record_id, utcnow
from app.core.errors import Conflict, NotFound
from app.measurements.models import Measurement
from app.patients.models import PatientIdentifier
from app.patients.schemas import Identifier


def raise_alerts_for(db: Session, row: Measurement) -> list[dict[str, Any]]:
    """Raise one alert per risk flag of a just-stored measurement version, unless that measurement already has one
    (an amendment keeps the alerts of the version it replaces)."""
    flags = [flag for flag in row.flags if flag in RISK_FLAGS]
    if not flags:
        return []
    if row.id is None:
        db.flush()
    existing = set(db.scalars(select(RiskAlert.flag).where(RiskAlert.measurement_id == row.measurement_id)))
    source = {column: getattr(row, column) for column in _FROM_MEASUREMENT}
    return _raise(db, [_alert(source, flag) for flag in flags if flag not in existing])


def raise_alerts_for_new(db: Session, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Alerts for measurements created in this transaction (given as their column values): none can exist yet, so
    there is no lookup, and one statement stores them all (ingest, FHIR and bulk import)."""
    return _raise(db, [_alert(row, flag) for row in rows for flag in row["flags"] if flag in RISK_FLAGS])


_CLINIC_WEBHOOK_URL: ColumnElement[str | None] = literal_column(
    "(SELECT clinic_settings.webhook_url FROM clinic_settings WHERE clinic_settings.clinic_id = risk_alert.clinic_id)"
)
"""Each new alert's clinic webhook URL, returned by the alerts' own INSERT: no lookup statement per alert. Written
as SQL because SQLAlchemy does not correlate a subquery with the table an INSERT ... RETURNING writes."""

_FROM_MEASUREMENT = ("id", "clinic_id", "patient_id", "measurement_id", "instrument_id", "measured_at")


def _alert(measurement: Mapping[str, Any], flag: str) -> dict[str, Any]:
    return {
        "id": new_record_id(),
        "clinic_id": measurement["clinic_id"],
        "patient_id": measurement["patient_id"],
        "measurement_id": measurement["measurement_id"],
        "measurement_row_id": measurement["id"],
        "instrument_id": measurement["instrument_id"],
        "flag": flag,
        "measured_at": measurement["measured_at"],
        "raised_at": utcnow(),
        "acknowledged_at": None,
        "acknowledged_by_key_id": None,
        "acknowledgement_note": None,
    }


def _raise(db: Session, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store the alerts (returned as their column values); write a webhook delivery (and its job) per alert when its
    clinic has a webhook.

    One alert (an ingest) returns its clinic's URL from its own INSERT. Many (a Bundle, an import) are inserted
    plainly and their clinics' URLs read with one lookup: RETURNING for many rows makes SQLAlchemy send them as
    one multi-row statement, whose text psycopg parses anew each time (bench/README.md, change 30).
    """
    if not values:
        return []
    if len(values) == 1:
        urls = insert_rows(db, RiskAlert, values, returning=_CLINIC_WEBHOOK_URL)
    else:
        insert_rows(db, RiskAlert, values)
        by_clinic = {clinic_id: _webhook_url(db, clinic_id) for clinic_id in {alert["clinic_id"] for alert in values}}
        urls = [by_clinic[alert["clinic_id"]] for alert in values]
    for alert, url in zip(values, urls, strict=True):
        if url:
            webhooks.enqueue_alert(db, RiskAlert(**alert), url=url)
    return values


def _webhook_url(db: Session, clinic_id: uuid.UUID) -> str | None:
    settings = clinic_settings.get(db, clinic_id=clinic_id)
    return settings.webhook_url if settings else None


def list_alerts(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    limit: int,
    offset: int,
    acknowledged: bool | None = None,
    patient_id: uuid.UUID | None = None,
) -> list[tuple[RiskAlert, Measurement]]:
    """Unacknowledged first, then the most recently raised."""
    query = (
        select(RiskAlert, Measurement)
        .join(Measurement, Measurement.id == RiskAlert.measurement_row_id)
        .where(RiskAlert.clinic_id == clinic_id)
    )
    if acknowledged is not None:
        query = query.where(
            RiskAlert.acknowledged_at.is_not(None) if acknowledged else RiskAlert.acknowledged_at.is_(None)
        )
    if patient_id is not None:
        query = query.where(RiskAlert.patient_id == patient_id)
    query = query.order_by(
        case((RiskAlert.acknowledged_at.is_(None), 0), else_=1),
        RiskAlert.raised_at.desc(),
        RiskAlert.id,
    )
    return [(alert, measurement) for alert, measurement in db.execute(query.limit(limit).offset(offset))]


def get(db: Session, *, clinic_id: uuid.UUID, alert_id: uuid.UUID) -> tuple[RiskAlert, Measurement]:
    found = db.execute(
        select(RiskAlert, Measurement)
        .join(Measurement, Measurement.id == RiskAlert.measurement_row_id)
        .where(RiskAlert.id == alert_id, RiskAlert.clinic_id == clinic_id)
    ).first()
    if found is None:
        raise NotFound(f"no alert {alert_id}")
    return found[0], found[1]


def acknowledge(
    db: Session, *, clinic_id: uuid.UUID, alert_id: uuid.UUID, key_id: uuid.UUID, note: str
) -> tuple[RiskAlert, Measurement]:
    """Record who acknowledged the alert, when, and their note; an alert is acknowledged once."""
    result = db.execute(
        update(RiskAlert)
        .where(RiskAlert.id == alert_id, RiskAlert.clinic_id == clinic_id, RiskAlert.acknowledged_at.is_(None))
        .values(acknowledged_at=utcnow(), acknowledged_by_key_id=key_id, acknowledgement_note=note)
        .execution_options(synchronize_session=False)
    )
    alert, measurement = get(db, clinic_id=clinic_id, alert_id=alert_id)
    if getattr(result, "rowcount", 0) != 1:
        raise Conflict(f"alert {alert_id} was already acknowledged")
    db.refresh(alert)
    return alert, measurement


def to_reads(db: Session, *, clinic_id: uuid.UUID, found: list[tuple[RiskAlert, Measurement]]) -> list[AlertRead]:
    """API shapes for alerts, with each patient's identifiers and the clinic's crisis text."""
    patient_ids = {alert.patient_id for alert, _ in found}
    identifiers: defaultdict[uuid.UUID, list[Identifier]] = defaultdict(list)
    if patient_ids:
        for row in db.scalars(
            select(PatientIdentifier)
            .where(PatientIdentifier.patient_id.in_(patient_ids))
            .order_by(PatientIdentifier.system, PatientIdentifier.value)
        ):
            identifiers[row.patient_id].append(Identifier(system=row.system, value=row.value))
    settings = clinic_settings.get(db, clinic_id=clinic_id)
    crisis_text = settings.crisis_text if settings else None
    return [
        AlertRead(
            id=alert.id,
            flag=alert.flag,
            instrument=alert.instrument_id,
            raised_at=alert.raised_at,
            patient=AlertPatient(id=alert.patient_id, identifiers=identifiers[alert.patient_id]),
            measurement=AlertMeasurement(
                id=alert.measurement_id,
                version=measurement.version,
                current=measurement.is_current,
                instrument=measurement.instrument_id,
                measured_at=measurement.measured_at,
                flags=list(measurement.flags),
            ),
            acknowledged=alert.acknowledged_at is not None,
            acknowledged_at=alert.acknowledged_at,
            acknowledged_by_key_id=alert.acknowledged_by_key_id,
            acknowledgement_note=alert.acknowledgement_note,
            crisis_text=crisis_text,
        )
        for alert, measurement in found
    ]
