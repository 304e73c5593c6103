"""The ``not_on_track`` alert: raised when a course turns not on track, once until acknowledged.

Judged by a background job, not in the transaction that stores a measurement: ``app.clinical.recording`` calls
``defer_checks`` for every measurement stored (ingest, FHIR, Bundles, imports, amendments, re-scoring), which defers
one ``CHECK_TASK`` job per patient and instrument, due ``CHECK_DELAY`` later, with a queueing lock per patient and
instrument: however many measurements arrive meanwhile (a Bundle, an import, a retrying app), one job waits and
judges the course once, as it stands when it runs. Judging reads the patient's whole series of the instrument, which
in the writer's turn of every ingest would cost in proportion to the series' length; a routine alert a minute later
costs nothing a clinician notices (the progress endpoint and the caseload judge the course live).

The job (``check``) judges the course at each measurement (``status``) and finds where it *turned* not on track:
the measurement from which its status stays ``not_on_track`` through its latest one. It raises an alert attached to
that measurement (flag ``not_on_track``, routine priority, no webhook) unless the patient has an unacknowledged
``not_on_track`` alert of the instrument, or that measurement already has one: one alert per course until a clinician
acknowledges it; after that, only a new turn (back on track, then off it again) raises another. Only instruments
with a progress definition are judged, on their primary score: those with shipped change parameters (PHQ-9, GAD-7),
and others when the clinic has a table or its own change parameters for that score.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Exists, exists, or_, select
from sqlalchemy.orm import Session

from app.clinical import series
from app.clinical.defaults import DEFAULTS
from app.clinical.models import ClinicChangeParameters, RiskAlert
from app.clinical.points import in_family
from app.clinical.progress import status as progress_status
from app.clinical.progress.models import ExpectedResponseTable
from app.clinical.progress.service import context, observations_of
from app.core.db import insert_rows, new_record_id, utcnow
from app.core.jobs import JobRun, defer, waiting_locks
from app.instruments.registry import InstrumentRegistry, load_registry
from app.measurements.models import Measurement
from app.scoring.definition import InstrumentDefinition

FLAG = "not_on_track"
PRIORITY = "routine"
CHECK_TASK = "clinical.check_progress"
CHECK_DELAY = timedelta(minutes=1)
"""How long after a measurement its course is judged: what arrives meanwhile is judged by the same job."""
_SHIPPED = {(instrument, score) for instrument, score, _ in DEFAULTS}


def defer_checks(
    db: Session, rows: Sequence[Mapping[str, Any]], definitions: Mapping[str, InstrumentDefinition]
) -> None:
    """Defer the judging of every course the just-stored measurements (their column values) belong to."""
    courses = {
        (row["clinic_id"], row["patient_id"], row["instrument_id"])
        for row in rows
        if (definition := definitions.get(row["instrument_id"])) is not None and definition.primary_score is not None
    }
    due = utcnow() + CHECK_DELAY
    locks = {course: f"{CHECK_TASK}:{course[1]}:{course[2]}" for course in courses}
    waiting = waiting_locks(db, locks.values()) if len(locks) > 1 else set()  # one query for a batch's courses
    for (clinic_id, patient_id, instrument_id), lock in sorted(locks.items()):
        if lock not in waiting:
            defer(
                db,
                CHECK_TASK,
                args={"clinic_id": str(clinic_id), "patient_id": str(patient_id), "instrument_id": instrument_id},
                scheduled_at=due,
                queueing_lock=lock,
            )


def check(run: JobRun, *, clinic_id: str, patient_id: str, instrument_id: str) -> None:
    """The task function of ``CHECK_TASK``: judge the course, raise its alert if it turned not on track.

    The course is judged in a read transaction (``run.reads``): a long series must not hold SQLite's single writer
    while it is read. Only raising the alert takes a short write transaction, which checks again that nothing blocks
    it."""
    registry = _registry(run.settings.scales_dir)
    if instrument_id not in registry.definitions:
        return
    definition = registry.get(instrument_id)
    clinic, patient = uuid.UUID(clinic_id), uuid.UUID(patient_id)
    with Session(run.reads) as db, db.begin():
        if db.scalar(select(_course_alerts(clinic, patient, definition.id, RiskAlert.acknowledged_at.is_(None)))):
            return  # nothing could be raised: the series need not be read
        turning = turned_not_on_track(db, clinic, patient, definition)
    if turning is None:
        return
    with Session(run.engine) as db, db.begin():
        raise_for_turn(db, clinic, patient, definition, turning)


def turned_not_on_track(
    db: Session, clinic_id: uuid.UUID, patient_id: uuid.UUID, definition: InstrumentDefinition
) -> uuid.UUID | None:
    """The measurement from which the course stays not on track through its latest one (None if it does not end so,
    or the instrument has no progress definition for the clinic)."""
    if definition.primary_score is None:
        return None
    score = definition.score(definition.primary_score)
    if (definition.id, score.key) not in _SHIPPED and not _has_own_definition(db, clinic_id, definition.id, score.key):
        return None
    points = series.load_points(db, clinic_id=clinic_id, patient_id=patient_id, definition=definition, score=score)
    data = in_family(definition, score, points)
    observations = observations_of(data.scored)
    if len(observations) < progress_status.MIN_MEASUREMENTS:
        return None
    ctx = context(db, clinic_id=clinic_id, definition=definition, score=score)
    turned = progress_status.turned_not_on_track(observations, ctx.rule(data.family))
    return None if turned is None else observations[turned].measurement_id


def raise_for_turn(
    db: Session, clinic_id: uuid.UUID, patient_id: uuid.UUID, definition: InstrumentDefinition, turning: uuid.UUID
) -> dict[str, Any] | None:
    """Raise the ``not_on_track`` alert on ``turning`` unless the patient has an unacknowledged one of the instrument
    or that measurement already has one (see the module's docstring)."""
    blocking = or_(RiskAlert.acknowledged_at.is_(None), RiskAlert.measurement_id == turning)
    if db.scalar(select(_course_alerts(clinic_id, patient_id, definition.id, blocking))):
        return None
    row = db.execute(
        select(Measurement.id, Measurement.measured_at).where(
            Measurement.clinic_id == clinic_id, Measurement.measurement_id == turning, Measurement.is_current.is_(True)
        )
    ).one()
    alert = _alert(clinic_id, patient_id, definition.id, turning, row.id, row.measured_at)
    insert_rows(db, RiskAlert, [alert])
    return alert


def _course_alerts(
    clinic_id: uuid.UUID, patient_id: uuid.UUID, instrument_id: str, condition: ColumnElement[bool]
) -> Exists:
    """The patient has a ``not_on_track`` alert of the instrument that meets ``condition``."""
    return exists().where(
        RiskAlert.clinic_id == clinic_id,
        RiskAlert.patient_id == patient_id,
        RiskAlert.instrument_id == instrument_id,
        RiskAlert.flag == FLAG,
        condition,
    )


@cache
def _registry(scales_dir: Path) -> InstrumentRegistry:
    return load_registry(scales_dir)


def _has_own_definition(db: Session, clinic_id: uuid.UUID, instrument: str, score: str) -> bool:
    """A table or change parameters of the clinic's own for the score: one query."""
    table = exists().where(
        ExpectedResponseTable.clinic_id == clinic_id,
        ExpectedResponseTable.instrument_id == instrument,
        ExpectedResponseTable.score_key == score,
    )
    own = exists().where(
        ClinicChangeParameters.clinic_id == clinic_id,
        ClinicChangeParameters.instrument_id == instrument,
        ClinicChangeParameters.score_key == score,
    )
    return bool(db.scalar(select(or_(table, own))))


def _alert(
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    instrument_id: str,
    measurement_id: uuid.UUID,
    row_id: uuid.UUID,
    measured_at: Any,
) -> dict[str, Any]:
    return {
        "id": new_record_id(),
        "clinic_id": clinic_id,
        "patient_id": patient_id,
        "measurement_id": measurement_id,
        "measurement_row_id": row_id,
        "instrument_id": instrument_id,
        "flag": FLAG,
        "item_value": None,
        "priority": PRIORITY,
        "historical": False,
        "measured_at": measured_at,
        "raised_at": utcnow(),
        "acknowledged_at": None,
        "acknowledged_by_key_id": None,
        "acknowledgement_note": None,
    }
