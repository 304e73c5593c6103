"""Reads of Tasks: a patient's assessment occurrences (``app.care``) searched and read as SDC Tasks
(``task_mapping``), with what each names (its response, Observation, schedule's end) read once per page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fhir.resources.R4B.task import Task
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.care import service as care
from app.care.models import AssessmentOccurrence, Schedule
from app.care.windows import CANCELLED, COMPLETED
from app.core.errors import NotFound
from app.fhir import questionnaire_responses
from app.fhir.observations import headline_observation_id
from app.fhir.task_mapping import Linked, searched_statuses, task
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement
from app.patients import service as patients


@dataclass(frozen=True)
class FoundTasks:
    tasks: list[Task]
    total: int
    has_more: bool


def search(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    patient: str,
    status: str | None,
    count: int,
    offset: int,
    now: datetime,
) -> FoundTasks:
    """A patient's Tasks, oldest window first, optionally only those with some Task statuses at ``now``."""
    wanted = searched_statuses(status) if status is not None else None
    patient_id = _patient_id(patient)
    patients.ensure_exists(db, clinic_id=clinic_id, patient_id=patient_id)
    if wanted == []:  # only TaskStatus codes no Task here has
        return FoundTasks(tasks=[], total=0, has_more=False)
    rows = care.list_occurrences(
        db,
        clinic_id=clinic_id,
        patient_id=patient_id,
        status=wanted,
        instrument=None,
        due_from_after=None,
        due_from_before=None,
        now=now,
        limit=count + 1,
        offset=offset,
    )
    counted = select(func.count()).where(
        AssessmentOccurrence.clinic_id == clinic_id, AssessmentOccurrence.patient_id == patient_id
    )
    if wanted is not None:
        counted = counted.where(or_(*(care.status_condition(one, now) for one in wanted)))
    page = rows[:count]
    return FoundTasks(
        tasks=_tasks(db, registry, clinic_id, page, now),
        total=db.scalar(counted) or 0,
        has_more=len(rows) > count,
    )


def read(db: Session, registry: InstrumentRegistry, *, clinic_id: uuid.UUID, task_id: str, now: datetime) -> Task:
    """One Task of the clinic's (404 for another clinic's or a missing one, alike)."""
    occurrence_id = _uuid(task_id)
    row = (
        db.scalar(
            select(AssessmentOccurrence).where(
                AssessmentOccurrence.id == occurrence_id, AssessmentOccurrence.clinic_id == clinic_id
            )
        )
        if occurrence_id is not None
        else None
    )
    if row is None:
        raise NotFound(f"no Task/{task_id}")
    [found] = _tasks(db, registry, clinic_id, [row], now)
    return found


def _tasks(
    db: Session, registry: InstrumentRegistry, clinic_id: uuid.UUID, rows: Sequence[AssessmentOccurrence], now: datetime
) -> list[Task]:
    measurement_ids = [row.measurement_id for row in rows if row.state == COMPLETED and row.measurement_id]
    responses = questionnaire_responses.logical_ids(db, clinic_id=clinic_id, measurement_ids=measurement_ids)
    observations = _observation_ids(db, registry, clinic_id, measurement_ids)
    schedule_ids = sorted({row.schedule_id for row in rows if row.state == CANCELLED})
    ended: dict[uuid.UUID, datetime | None] = {}
    if schedule_ids:
        query = select(Schedule.id, Schedule.ended_at).where(
            Schedule.clinic_id == clinic_id, Schedule.id.in_(schedule_ids)
        )
        ended = dict(db.execute(query).all())
    return [
        task(
            row,
            now,
            Linked(
                response_id=responses.get(row.measurement_id) if row.measurement_id else None,
                observation_id=observations.get(row.measurement_id) if row.measurement_id else None,
                schedule_ended_at=ended.get(row.schedule_id),
            ),
        )
        for row in rows
    ]


def _observation_ids(
    db: Session, registry: InstrumentRegistry, clinic_id: uuid.UUID, measurement_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Each completing measurement's headline Observation (its current version's scores)."""
    if not measurement_ids:
        return {}
    rows = db.execute(
        select(Measurement.measurement_id, Measurement.instrument_id, Measurement.scores).where(
            Measurement.clinic_id == clinic_id,
            Measurement.measurement_id.in_(measurement_ids),
            Measurement.is_current.is_(True),
        )
    )
    found: dict[uuid.UUID, str] = {}
    for measurement_id, instrument_id, scores in rows:
        definition = registry.definitions.get(instrument_id)
        observation = headline_observation_id(measurement_id, scores, definition) if definition else None
        if observation is not None:
            found[measurement_id] = observation
    return found


def _patient_id(patient: str) -> uuid.UUID:
    """``Patient/<id>`` or ``<id>``; anything else names no patient of the clinic's (404)."""
    found = _uuid(patient.removeprefix("Patient/"))
    if found is None:
        raise NotFound(f"no Patient/{patient.removeprefix('Patient/')}")
    return found


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
