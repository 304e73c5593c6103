"""Alerts: raised in the transaction that stores a flagged measurement, listed, and acknowledged with a note.

``raise_alerts_for_new`` and ``raise_alerts_for`` are called by ``app.clinical.recording`` right after it stores new
measurements or a new version, the one way every source (API, FHIR, Bundles, imports, re-scoring) stores one, so
the rules below hold on every path: an item-9 risk flag raises an urgent alert carrying the answer; a missing item 9
raises a routine ``item9_missing`` prompt; an alert whose measurement is older than the clinic's
``historical_alert_days`` when it is recorded (imported history) is ``historical`` and never paged.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, literal_column, select, update
from sqlalchemy.orm import Session

from app.clinical import clinic_settings, risk, webhooks
from app.clinical.models import ClinicSettings, RiskAlert
from app.clinical.risk import ALERT_FLAGS, RISK_FLAGS
from app.clinical.schemas import AlertMeasurement, AlertPatient, AlertRead
from app.core.db import insert_rows, new_record_id, utcnow
from app.core.errors import Conflict, NotFound
from app.measurements.models import Measurement
from app.patients.models import PatientIdentifier
from app.patients.schemas import Identifier


def raise_alerts_for(db: Session, row: Measurement) -> list[dict[str, Any]]:
    """Alerts for a just-stored version of a measurement that may have alerts already (an amendment, a re-scoring).

    The rule (issue 21, "alerts that never miss"): a risk flag raises a new alert only when the version's item-9
    answer is higher than every item-9 value already alerted for this measurement (1 → 3 raises a second alert,
    whether or not the first was acknowledged; an unchanged or lower value raises nothing; an alert stored without
    a value, from before values were kept, counts as none). ``item9_missing`` raises its prompt once per
    measurement. Nothing is ever cleared: earlier alerts stay, acknowledged or not, whatever the new version says.
    """
    flags = [flag for flag in row.flags if flag in ALERT_FLAGS]
    if not flags:
        return []
    if row.id is None:
        db.flush()
    existing = db.execute(
        select(RiskAlert.flag, RiskAlert.item_value).where(RiskAlert.measurement_id == row.measurement_id)
    ).all()
    source = {column: getattr(row, column) for column in _FROM_MEASUREMENT}
    value = risk.item_value(row.items)
    new = []
    for flag in flags:
        alerted = [alerted_value for kind, alerted_value in existing if kind == flag]
        if flag in RISK_FLAGS:
            highest = max((known for known in alerted if known is not None), default=None)
            if alerted and (value is None or (highest is not None and value <= highest)):
                continue
        elif alerted:
            continue
        new.append(_alert(source, flag, value))
    return _raise(db, new)


def raise_alerts_for_new(db: Session, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Alerts for measurements created in this transaction (given as their column values): none can exist yet, so
    there is no lookup, and one statement stores them all (ingest, FHIR and bulk import)."""
    return _raise(
        db,
        [
            _alert(row, flag, risk.item_value(row["items"]))
            for row in rows
            for flag in row["flags"]
            if flag in ALERT_FLAGS
        ],
    )


_CLINIC_WEBHOOK_URL: ColumnElement[str | None] = literal_column(
    "(SELECT clinic_settings.webhook_url FROM clinic_settings WHERE clinic_settings.clinic_id = risk_alert.clinic_id)"
)
"""Each new alert's clinic webhook URL, returned by the alerts' own INSERT: no lookup statement per alert. Written
as SQL because SQLAlchemy does not correlate a subquery with the table an INSERT ... RETURNING writes."""

_FROM_MEASUREMENT = ("id", "clinic_id", "patient_id", "measurement_id", "instrument_id", "measured_at")


def _alert(measurement: Mapping[str, Any], flag: str, value: int | None) -> dict[str, Any]:
    return {
        "id": new_record_id(),
        "clinic_id": measurement["clinic_id"],
        "patient_id": measurement["patient_id"],
        "measurement_id": measurement["measurement_id"],
        "measurement_row_id": measurement["id"],
        "instrument_id": measurement["instrument_id"],
        "flag": flag,
        "item_value": value if flag in RISK_FLAGS else None,
        "priority": risk.priority_of(flag),
        "historical": False,
        "measured_at": measurement["measured_at"],
        "raised_at": utcnow(),
        "acknowledged_at": None,
        "acknowledged_by_key_id": None,
        "acknowledgement_note": None,
    }


_PAGING_SETTINGS = select(
    ClinicSettings.webhook_url, ClinicSettings.historical_alert_days, ClinicSettings.item9_missing_pages
).where(ClinicSettings.clinic_id == bindparam("clinic_id"))
"""Built once: building a statement costs more than running it, in the writer's turn of every older measurement."""


@dataclass(frozen=True)
class _Paging:
    """What a clinic's settings say about paging its alerts."""

    url: str | None
    historical_before: datetime
    item9_missing_pages: bool

    @classmethod
    def read(cls, db: Session, clinic_id: uuid.UUID) -> _Paging:
        """The three settings, as plain values (no entity: this runs in the writer's turn of an import's alerts)."""
        settings = db.connection().execute(_PAGING_SETTINGS, {"clinic_id": clinic_id}).first()
        days = settings.historical_alert_days if settings else risk.HISTORICAL_ALERT_DAYS
        return cls(
            url=settings.webhook_url if settings else None,
            historical_before=utcnow() - timedelta(days=days),
            item9_missing_pages=settings.item9_missing_pages if settings else False,
        )

    def pages(self, alert: Mapping[str, Any]) -> bool:
        if not self.url or alert["historical"]:
            return False
        return alert["priority"] == risk.URGENT or (alert["flag"] == risk.ITEM9_MISSING and self.item9_missing_pages)


def _raise(db: Session, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store the alerts (returned as their column values), each marked ``historical`` when its measurement is older
    than its clinic's ``historical_alert_days``; write a webhook delivery (and its job) per alert that pages: the
    clinic has a webhook, the alert is not historical, and it is urgent (or an ``item9_missing`` prompt where the
    clinic's ``item9_missing_pages`` says so).

    One urgent alert measured within the last day (a live ingest: it cannot be historical whatever the setting, at
    least a day) returns its clinic's URL from its own INSERT; otherwise the clinics' settings are read with one
    lookup each: RETURNING for many rows makes SQLAlchemy send them as one multi-row statement, whose text psycopg
    parses anew each time (bench/README.md, change 30).
    """
    if not values:
        return []
    if (
        len(values) == 1
        and values[0]["priority"] == risk.URGENT
        and values[0]["measured_at"] >= utcnow() - timedelta(days=risk.HISTORICAL_ALERT_DAYS_MIN)
    ):
        [url] = insert_rows(db, RiskAlert, values, returning=_CLINIC_WEBHOOK_URL)
        if url:
            webhooks.enqueue_alert(db, RiskAlert(**values[0]), url=url)
        return values
    paging = {clinic_id: _Paging.read(db, clinic_id) for clinic_id in {alert["clinic_id"] for alert in values}}
    for alert in values:
        alert["historical"] = alert["measured_at"] < paging[alert["clinic_id"]].historical_before
    insert_rows(db, RiskAlert, values)
    for alert in values:
        clinic = paging[alert["clinic_id"]]
        if clinic.url and clinic.pages(alert):
            webhooks.enqueue_alert(db, RiskAlert(**alert), url=clinic.url)
    return values


def list_alerts(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    limit: int,
    offset: int,
    acknowledged: bool | None = None,
    patient_id: uuid.UUID | None = None,
    kind: str | None = None,
    priority: str | None = None,
    historical: bool | None = None,
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
    if kind is not None:
        query = query.where(RiskAlert.flag == kind)
    if priority is not None:
        query = query.where(RiskAlert.priority == priority)
    if historical is not None:
        query = query.where(RiskAlert.historical.is_(historical))
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
            kind=alert.flag,
            item_value=alert.item_value,
            priority=alert.priority,
            historical=alert.historical,
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
