"""Which measurement completes which assessment occurrence: set-based statements, run in the caller's transaction.

The rule, wherever a measurement comes from (REST ingest, FHIR QuestionnaireResponse or Bundle, research import,
amendment), and whenever it arrives (a late upload completes a window that already reads ``missed``):

- a current measurement completes an occurrence of its patient and instrument whose window [due_from, due_by)
  holds its ``measured_at`` and which is not completed yet: ``open`` (scheduled, due or missed) or ``declined``
  (a patient who declined and then answered after all has answered: the measurement is the truth; the decline is
  kept on the row and still shown);
- of several such windows (two schedules of one instrument whose windows overlap) the earliest one;
- a measurement completes at most one occurrence, and an occurrence takes the earliest measurement of its window
  that completes no other;
- a measurement already stored when a schedule (or a session's occurrences) is created completes its window too.

Each call is one UPDATE over the occurrences it may concern (``_COMPLETE`` below), whatever the number of
measurements: an import of thousands of rows costs one statement per chunk of ``CHUNK`` patients, and an ingest with
no schedule one index probe that finds nothing.

An amendment whose new ``measured_at`` leaves the window it completed reopens that occurrence (``open`` again, or
``declined`` if it had been declined), then the same rule runs for the patient's occurrences of that instrument:
the amended measurement may complete the window it moved into, and the reopened one may be completed by another
measurement of its window.

Overlapping windows are decided within one statement: PostgreSQL sees the occurrences as they were when it began,
so a later window whose only measurement also lies in an earlier open window stays open until another arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Update, and_, bindparam, case, exists, literal_column, or_, select, update
from sqlalchemy.orm import Session

from app.care.models import AssessmentOccurrence
from app.care.windows import COMPLETED, DECLINED, OPEN
from app.core.db import UTCDateTime, table_of, utcnow
from app.measurements.models import Measurement

CHUNK = 500
"""Patients per completion statement of a batch (bounds the statement's parameters on every database)."""
UNCOMPLETED = (OPEN, DECLINED)

_OCCURRENCE = table_of(AssessmentOccurrence)
_MEASUREMENT = table_of(Measurement)
_EARLIER = _OCCURRENCE.alias("earlier")
_LINKED = _OCCURRENCE.alias("linked")


def _uncompleted(state: ColumnElement[str]) -> ColumnElement[bool]:
    """Open or declined. Not ``IN (...)``: SQLAlchemy renders an IN list anew at every execution, which cost an
    ingest's completion statement more than running it (SQLite: about 160 microseconds with it, 75 without)."""
    return or_(*(state == one for one in UNCOMPLETED))


def _free_measurement() -> Select[tuple[uuid.UUID]]:
    """The occurrence's first measurement: current, in its window, completing no other occurrence, and in no earlier
    uncompleted window of the same patient and instrument (correlated with the occurrence being updated)."""
    occurrence, measurement = _OCCURRENCE.c, _MEASUREMENT.c
    in_earlier_window = (
        exists()
        .where(
            _EARLIER.c.patient_id == occurrence.patient_id,
            _EARLIER.c.instrument_id == occurrence.instrument_id,
            _uncompleted(_EARLIER.c.state),
            _EARLIER.c.due_from <= measurement.measured_at,
            _EARLIER.c.due_by > measurement.measured_at,
            or_(
                _EARLIER.c.due_from < occurrence.due_from,
                and_(_EARLIER.c.due_from == occurrence.due_from, _EARLIER.c.id < occurrence.id),
            ),
        )
        .correlate(_OCCURRENCE, _MEASUREMENT)
    )  # two levels down: the occurrence updated, the measurement selected
    return (
        select(measurement.measurement_id)
        .where(
            measurement.clinic_id == occurrence.clinic_id,
            measurement.patient_id == occurrence.patient_id,
            measurement.instrument_id == occurrence.instrument_id,
            measurement.is_current.is_(True),
            measurement.measured_at >= occurrence.due_from,
            measurement.measured_at < occurrence.due_by,
            ~exists().where(_LINKED.c.measurement_id == measurement.measurement_id),
            ~in_earlier_window,
        )
        .order_by(measurement.measured_at, measurement.id)
        .limit(1)
        .correlate(_OCCURRENCE)
    )


def _complete(scope: ColumnElement[bool]) -> Update:
    """Complete every uncompleted occurrence within ``scope`` that has a free measurement in its window."""
    first = _free_measurement()
    return (
        update(_OCCURRENCE)
        .where(scope, _uncompleted(_OCCURRENCE.c.state), first.exists())
        .values(
            state=COMPLETED,
            measurement_id=first.scalar_subquery(),
            completed_at=bindparam("b_now", type_=UTCDateTime()),
        )
    )


_IN_WINDOW = and_(
    _OCCURRENCE.c.patient_id == bindparam("b_patient_id"),
    _OCCURRENCE.c.instrument_id == bindparam("b_instrument_id"),
    _OCCURRENCE.c.due_from <= bindparam("b_measured_at"),
    _OCCURRENCE.c.due_by > bindparam("b_measured_at"),
)
_COMPLETE_ONE = _complete(_IN_WINDOW)
"""Built once: an ingest stores one measurement, and building a statement costs more than running it."""
_CANDIDATE: Select[tuple[Any]] = (
    select(literal_column("1"))
    .select_from(_OCCURRENCE)
    .where(
        _OCCURRENCE.c.patient_id == bindparam("b_patient_id"),
        _OCCURRENCE.c.instrument_id == bindparam("b_instrument_id"),
        _OCCURRENCE.c.due_from <= bindparam("b_measured_at"),
        _OCCURRENCE.c.due_by > bindparam("b_measured_at"),
        or_(*(_OCCURRENCE.c.state == literal_column(f"'{state}'") for state in UNCOMPLETED)),
    )
    .limit(literal_column("1"))
)
"""Whether an ingest's measurement falls in any uncompleted window: most fall in none (no schedule), and this index
probe costs almost nothing beside ``_COMPLETE_ONE``'s correlated UPDATE, which an ingest on SQLite runs inside the
single writer's turn (states written as SQL literals: a bound list is rendered anew on every execution)."""
_COMPLETE_MANY = _complete(
    and_(
        _OCCURRENCE.c.patient_id.in_(bindparam("b_patient_ids", expanding=True)),
        _OCCURRENCE.c.instrument_id.in_(bindparam("b_instrument_ids", expanding=True)),
        _OCCURRENCE.c.due_from <= bindparam("b_latest"),
        _OCCURRENCE.c.due_by > bindparam("b_earliest"),
    )
)
_COMPLETE_PATIENT_INSTRUMENT = _complete(
    and_(
        _OCCURRENCE.c.patient_id == bindparam("b_patient_id"),
        _OCCURRENCE.c.instrument_id == bindparam("b_instrument_id"),
    )
)
_COMPLETE_SCHEDULE = _complete(_OCCURRENCE.c.schedule_id == bindparam("b_schedule_id"))
_COMPLETE_SESSION = _complete(_OCCURRENCE.c.session_id == bindparam("b_session_id"))
_REOPEN = (
    update(_OCCURRENCE)
    .where(
        _OCCURRENCE.c.measurement_id == bindparam("b_measurement_id"),
        or_(
            _OCCURRENCE.c.due_from > bindparam("b_measured_at"),
            _OCCURRENCE.c.due_by <= bindparam("b_measured_at"),
        ),
    )
    .values(
        state=case((_OCCURRENCE.c.declined_at.is_not(None), DECLINED), else_=OPEN),
        measurement_id=None,
        completed_at=None,
    )
)
_LINKED_TO = select(_OCCURRENCE.c.id).where(_OCCURRENCE.c.measurement_id == bindparam("b_measurement_id")).limit(1)


def complete_for(db: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Complete the occurrences that measurements just stored (their column values) fall in."""
    if not rows:
        return
    connection = db.connection()
    now = utcnow()
    if len(rows) == 1:
        row = rows[0]
        window = {
            "b_patient_id": row["patient_id"],
            "b_instrument_id": row["instrument_id"],
            "b_measured_at": row["measured_at"],
        }
        if connection.execute(_CANDIDATE, window).first() is not None:
            connection.execute(_COMPLETE_ONE, {**window, "b_now": now})
        return
    patients = sorted({row["patient_id"] for row in rows})
    for start in range(0, len(patients), CHUNK):
        chunk = set(patients[start : start + CHUNK])
        mine = [row for row in rows if row["patient_id"] in chunk]
        connection.execute(
            _COMPLETE_MANY,
            {
                "b_patient_ids": sorted(chunk),
                "b_instrument_ids": sorted({row["instrument_id"] for row in mine}),
                "b_earliest": min(row["measured_at"] for row in mine),
                "b_latest": max(row["measured_at"] for row in mine),
                "b_now": now,
            },
        )


def complete_version(db: Session, row: Measurement) -> None:
    """After an amendment: reopen the occurrence its new ``measured_at`` left, then complete what it now falls in
    (and what the reopened window may hold)."""
    if row.id is None:
        db.flush()
    connection = db.connection()
    measured = {"b_measurement_id": row.measurement_id, "b_measured_at": row.measured_at}
    reopened = connection.execute(_REOPEN, measured).rowcount
    if not reopened and connection.scalar(_LINKED_TO, measured) is not None:
        return
    connection.execute(
        _COMPLETE_PATIENT_INSTRUMENT,
        {"b_patient_id": row.patient_id, "b_instrument_id": row.instrument_id, "b_now": utcnow()},
    )


def complete_schedule(db: Session, schedule_id: uuid.UUID, now: datetime) -> None:
    """A new schedule's occurrences whose windows already hold a measurement are completed by it."""
    db.connection().execute(_COMPLETE_SCHEDULE, {"b_schedule_id": schedule_id, "b_now": now})


def complete_session(db: Session, session_id: uuid.UUID, now: datetime) -> None:
    """A session's new occurrences whose windows already hold a measurement are completed by it."""
    db.connection().execute(_COMPLETE_SESSION, {"b_session_id": session_id, "b_now": now})
