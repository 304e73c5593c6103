"""The clinic's view: adherence counts (computed in SQL, never by loading occurrences) and who has not answered.

Adherence follows Sage Bridge: declined is not missed, and completion_rate = completed ÷ (completed + declined +
missed). Windows not yet open (scheduled) and cancelled ones are left out; ``due`` (open now) is counted but is not
in the rate's denominator, since it may still be completed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.care import service
from app.care.models import AssessmentOccurrence
from app.care.schemas import AdherenceRead, AssessmentPatient, CaseloadItem, InstrumentAdherence
from app.care.windows import COMPLETED, DECLINED, DUE, MISSED
from app.patients.models import PatientIdentifier
from app.patients.schemas import Identifier

COUNTED = (COMPLETED, DECLINED, MISSED, DUE)


def adherence(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    due_from_after: datetime | None,
    due_from_before: datetime | None,
    instrument: str | None,
    now: datetime,
) -> AdherenceRead:
    """Counts of the clinic's occurrences whose windows open within [from, to], overall and per instrument."""
    status = service.status_expression(now)
    query = select(
        AssessmentOccurrence.instrument_id,
        *(func.sum(case((status == counted, 1), else_=0)) for counted in COUNTED),
    ).where(AssessmentOccurrence.clinic_id == clinic_id, AssessmentOccurrence.due_from <= now)
    if instrument is not None:
        query = query.where(AssessmentOccurrence.instrument_id == instrument)
    if due_from_after is not None:
        query = query.where(AssessmentOccurrence.due_from >= due_from_after)
    if due_from_before is not None:
        query = query.where(AssessmentOccurrence.due_from <= due_from_before)
    rows = db.execute(query.group_by(AssessmentOccurrence.instrument_id).order_by(AssessmentOccurrence.instrument_id))
    by_instrument = []
    for instrument_id, *values in rows:
        completed, declined, missed, due = (int(value or 0) for value in values)
        by_instrument.append(
            InstrumentAdherence(
                instrument=instrument_id,
                completed=completed,
                declined=declined,
                missed=missed,
                due=due,
                completion_rate=completion_rate(completed, declined, missed),
            )
        )
    completed, declined, missed, due = (sum(getattr(one, name) for one in by_instrument) for name in COUNTED)
    return AdherenceRead(
        completed=completed,
        declined=declined,
        missed=missed,
        due=due,
        completion_rate=completion_rate(completed, declined, missed),
        by_instrument=by_instrument,
    )


def completion_rate(completed: int, declined: int, missed: int) -> float | None:
    """completed ÷ (completed + declined + missed), or None when that is 0 (nothing to rate yet)."""
    rated = completed + declined + missed
    return completed / rated if rated else None


def caseload(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    statuses: list[str],
    instrument: str | None,
    patient_id: uuid.UUID | None = None,
    now: datetime,
    limit: int,
    offset: int,
) -> list[CaseloadItem]:
    """The clinic's occurrences nobody has answered (due, missed, or either), oldest window first, each with its
    patient's identifiers."""
    found = service.list_occurrences(
        db,
        clinic_id=clinic_id,
        patient_id=patient_id,
        status=statuses,
        instrument=instrument,
        due_from_after=None,
        due_from_before=None,
        now=now,
        limit=limit,
        offset=offset,
    )
    identifiers: defaultdict[uuid.UUID, list[Identifier]] = defaultdict(list)
    patient_ids = {occurrence.patient_id for occurrence in found}
    if patient_ids:
        for row in db.scalars(
            select(PatientIdentifier)
            .where(PatientIdentifier.clinic_id == clinic_id, PatientIdentifier.patient_id.in_(patient_ids))
            .order_by(PatientIdentifier.system, PatientIdentifier.value)
        ):
            identifiers[row.patient_id].append(Identifier(system=row.system, value=row.value))
    return [
        CaseloadItem(
            patient=AssessmentPatient(id=occurrence.patient_id, identifiers=identifiers[occurrence.patient_id]),
            assessment=service.to_read(occurrence, now),
        )
        for occurrence in found
    ]
