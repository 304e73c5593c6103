"""Quality measures over a clinic's stored PHQ-9 totals: one query for the days a measure can use, the pure logic of
``app.clinical.measures``, and the answer (REST here; the FHIR MeasureReport in ``app.fhir.measures``)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clinical import clinic_settings
from app.clinical.measure_schemas import CareGap, MeasurePatient, MeasurePeriodRead, MeasureRead
from app.clinical.measures import (
    INDEX_PERIOD_NOTE,
    MEASURE_IDS,
    MEASURES,
    NOT_APPLIED,
    MeasureDefinition,
    MeasureResult,
    Period,
    Total,
    data_days,
    evaluate,
)
from app.core.audit_notes import EntryNote, note_entry
from app.core.errors import FieldError, InvalidInput, NotFound
from app.measurements.models import Measurement
from app.patients.models import PatientIdentifier
from app.patients.schemas import LOCAL_IDENTIFIER_SYSTEM, Identifier

INSTRUMENT = "phq9"
SCORE = "total"
EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)
"""Measurement periods outside these days are refused (422): nothing was measured before 1900, and the calendar
arithmetic stays within Python's dates."""


def resolve(measure_id: str, *, field: str = "measure_id") -> MeasureDefinition:
    measure = MEASURES.get(measure_id)
    if measure is None:
        raise NotFound(
            f"no measure {measure_id!r}; the measures are {', '.join(MEASURE_IDS)}",
            errors=[FieldError(field, "unknown measure", measure_id, allowed=list(MEASURE_IDS))],
        )
    return measure


def period(start: date, end: date, *, fields: tuple[str, str] = ("period_start", "period_end")) -> Period:
    """A measurement period, both days included; its end may not precede its start."""
    for field, day in zip(fields, (start, end), strict=True):
        if not EARLIEST <= day <= LATEST:
            raise InvalidInput(
                f"{field} must be between {EARLIEST} and {LATEST}",
                errors=[FieldError(field, f"must be between {EARLIEST} and {LATEST}", day.isoformat())],
            )
    if end < start:
        raise InvalidInput(
            f"{fields[1]} must not be before {fields[0]}",
            errors=[FieldError(fields[1], f"must not be before {fields[0]} ({start})", end.isoformat())],
        )
    return Period(start, end)


def phq9_totals(
    db: Session, *, clinic_id: uuid.UUID, days: Period, zone: tzinfo = UTC, patient_id: uuid.UUID | None = None
) -> list[Total]:
    """The clinic's current PHQ-9 totals measured on ``days`` (dates in ``zone``), in storage order; unscored ones
    left out. The query reads a day more on each side (no zone is a day from UTC); the dates decide."""
    query = select(
        Measurement.patient_id, Measurement.measurement_id, Measurement.measured_at, Measurement.scores
    ).where(
        Measurement.clinic_id == clinic_id,
        Measurement.instrument_id == INSTRUMENT,
        Measurement.is_current.is_(True),
        Measurement.measured_at >= datetime.combine(days.start - timedelta(days=1), time(), UTC),
        Measurement.measured_at < datetime.combine(days.end + timedelta(days=2), time(), UTC),
    )
    if patient_id is not None:
        query = query.where(Measurement.patient_id == patient_id)
    query = query.order_by(Measurement.patient_id, Measurement.measured_at, Measurement.created_at, Measurement.id)
    totals = []
    for row in db.execute(query):
        value = ((row.scores or {}).get(SCORE) or {}).get("value")
        total = Total(row.patient_id, row.measurement_id, row.measured_at, float(value or 0), zone)
        if value is not None and total.day in days:
            totals.append(total)
    return totals


def evaluate_for_clinic(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    measure: MeasureDefinition,
    measured: Period,
    patient_id: uuid.UUID | None = None,
) -> MeasureResult:
    """The measure over the clinic's PHQ-9s (or one patient's), their days counted in the clinic's time zone."""
    zone = clinic_settings.zone_of(clinic_settings.get(db, clinic_id=clinic_id))
    totals = phq9_totals(db, clinic_id=clinic_id, days=data_days(measure, measured), zone=zone, patient_id=patient_id)
    return evaluate(measure, measured, totals, zone=zone)


def note_named(db: Session, patient_ids: list[uuid.UUID]) -> None:
    """Each patient an answer names gets an audit event of its own (a read), as a FHIR search's page does."""
    for index, patient_id in enumerate(dict.fromkeys(patient_ids)):
        note_entry(db, EntryNote(index, 200, "GET", "Patient", None, patient_id))


def patients(db: Session, *, clinic_id: uuid.UUID, patient_ids: list[uuid.UUID]) -> dict[uuid.UUID, MeasurePatient]:
    """Patients as the clinic knows them: their external identifier and other identifiers."""
    found: defaultdict[uuid.UUID, list[Identifier]] = defaultdict(list)
    if patient_ids:
        for row in db.scalars(
            select(PatientIdentifier)
            .where(PatientIdentifier.clinic_id == clinic_id, PatientIdentifier.patient_id.in_(set(patient_ids)))
            .order_by(PatientIdentifier.system, PatientIdentifier.value)
        ):
            found[row.patient_id].append(Identifier(system=row.system, value=row.value))
    return {
        patient_id: MeasurePatient(
            id=patient_id,
            external_id=next((i.value for i in found[patient_id] if i.system == LOCAL_IDENTIFIER_SYSTEM), None),
            identifiers=[i for i in found[patient_id] if i.system != LOCAL_IDENTIFIER_SYSTEM],
        )
        for patient_id in patient_ids
    }


def to_read(db: Session, *, clinic_id: uuid.UUID, result: MeasureResult, now: datetime) -> MeasureRead:
    measure = result.measure
    gaps = sorted(result.care_gaps, key=lambda gap: (gap.window.start, str(gap.patient_id)))
    named = patients(db, clinic_id=clinic_id, patient_ids=[gap.patient_id for gap in gaps])
    note_named(db, list(named))
    today = result.today(now)
    return MeasureRead(
        measure=measure.id,
        title=measure.title,
        source=measure.source,
        measurement_period=MeasurePeriodRead(start=result.period.start, end=result.period.end),
        index_period=MeasurePeriodRead(start=result.index_period.start, end=result.index_period.end),
        index_period_rule=INDEX_PERIOD_NOTE[measure.id],
        window_rule=measure.window_text,
        denominator=result.denominator,
        numerators={rate: result.numerator(rate) for rate in measure.rates},
        rates={rate: result.rate(rate) for rate in measure.rates},
        care_gaps=[
            CareGap(
                patient=named[gap.patient_id],
                index_measured_at=gap.index.measured_at,
                index_score=gap.index.value,
                window_opens=gap.window.start,
                window_closes=gap.window.end,
                status=gap.gap_status(today),
            )
            for gap in gaps
        ],
        not_applied=list(NOT_APPLIED),
        evaluated_at=now,
    )
