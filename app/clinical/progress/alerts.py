"""The ``not_on_track`` alert: raised when new measurements turn a course not on track, once until acknowledged.

Called by ``app.clinical.recording`` for every measurement stored (ingest, FHIR, Bundles, imports, amendments,
re-scoring). Kept cheap and set-based:

- only instruments with a progress definition are looked at, on their primary score: those with shipped change
  parameters (PHQ-9, GAD-7) without a query, others only when the clinic has a table or its own change parameters
  for that score (one query per batch and instrument);
- one indexed query reads the series of every patient of the batch; a course with fewer than
  ``status.MIN_MEASUREMENTS`` scored measurements cannot be ``not_on_track`` and costs nothing more;
- the table and the change parameters are read once per batch and instrument, only when some course is long enough.

A course *turns* not on track at the measurement from which its status stays ``not_on_track`` through its latest
one, when the status before the first new measurement was something else. The alert is attached to that
measurement when it is one of the new ones (else to the latest new one, which revealed the turn), with
flag ``not_on_track``, and is raised only when the patient has no unacknowledged ``not_on_track`` alert of the
instrument: one per course until a clinician acknowledges it; after that, only a new turn (back on track, then off
it again) raises another. Routine priority: no webhook is paged for it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from app.clinical.defaults import DEFAULTS
from app.clinical.models import ClinicChangeParameters, RiskAlert
from app.clinical.points import in_family
from app.clinical.progress import status as progress_status
from app.clinical.progress.models import ExpectedResponseTable
from app.clinical.progress.service import Context, context, load_many, observations_of
from app.clinical.progress.status import Status
from app.core.db import insert_rows, new_record_id, utcnow
from app.scoring.definition import InstrumentDefinition

FLAG = "not_on_track"
_SHIPPED = {(instrument, score) for instrument, score, _ in DEFAULTS}


def raise_for(
    db: Session, rows: Sequence[Mapping[str, Any]], definitions: Mapping[str, InstrumentDefinition]
) -> list[dict[str, Any]]:
    """Alerts for courses that the just-stored measurements (their column values) turned not on track."""
    batches: defaultdict[tuple[uuid.UUID, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        batches[(row["clinic_id"], row["instrument_id"])].append(row)
    raised: list[dict[str, Any]] = []
    for (clinic_id, instrument_id), new in batches.items():
        definition = definitions.get(instrument_id)
        if definition is not None and definition.primary_score is not None:
            raised += _raise_for_instrument(db, clinic_id, definition, new)
    if raised:
        insert_rows(db, RiskAlert, raised)
    return raised


def _raise_for_instrument(
    db: Session, clinic_id: uuid.UUID, definition: InstrumentDefinition, new: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    score = definition.score(definition.primary_score or "")
    if (definition.id, score.key) not in _SHIPPED and not _has_own_definition(db, clinic_id, definition.id, score.key):
        return []
    new_by_patient: defaultdict[uuid.UUID, dict[uuid.UUID, Mapping[str, Any]]] = defaultdict(dict)
    for row in new:
        new_by_patient[row["patient_id"]][row["measurement_id"]] = row
    series = load_many(
        db, clinic_id=clinic_id, patient_ids=list(new_by_patient), instrument_id=definition.id, key=score.key
    )
    ctx: Context | None = None
    candidates: dict[uuid.UUID, Mapping[str, Any]] = {}
    for patient_id, points in series.items():
        data = in_family(definition, score, points)
        observations = observations_of(data.scored)
        if len(observations) < progress_status.MIN_MEASUREMENTS:
            continue
        ctx = ctx or context(db, clinic_id=clinic_id, definition=definition, score=score)
        statuses = progress_status.history(observations, ctx.rule(data.family))
        new_rows = new_by_patient[patient_id]
        new_indexes = [i for i, o in enumerate(observations) if o.measurement_id in new_rows]
        if not new_indexes or statuses[-1] is not Status.NOT_ON_TRACK:
            continue
        turned = len(statuses) - 1
        while turned > 0 and statuses[turned - 1] is Status.NOT_ON_TRACK:
            turned -= 1
        if turned < new_indexes[0]:
            continue  # already not on track before these measurements
        turning_id = observations[turned].measurement_id
        candidates[patient_id] = new_rows.get(turning_id) or new_rows[observations[new_indexes[-1]].measurement_id]
    if not candidates:
        return []
    blocked = set(
        db.scalars(
            select(RiskAlert.patient_id).where(
                RiskAlert.clinic_id == clinic_id,
                RiskAlert.patient_id.in_(list(candidates)),
                RiskAlert.instrument_id == definition.id,
                RiskAlert.flag == FLAG,
                or_(
                    RiskAlert.acknowledged_at.is_(None),
                    RiskAlert.measurement_id.in_([row["measurement_id"] for row in candidates.values()]),
                ),
            )
        )
    )
    return [_alert(row) for patient_id, row in candidates.items() if patient_id not in blocked]


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


def _alert(measurement: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": new_record_id(),
        "clinic_id": measurement["clinic_id"],
        "patient_id": measurement["patient_id"],
        "measurement_id": measurement["measurement_id"],
        "measurement_row_id": measurement["id"],
        "instrument_id": measurement["instrument_id"],
        "flag": FLAG,
        "measured_at": measurement["measured_at"],
        "raised_at": utcnow(),
        "acknowledged_at": None,
        "acknowledged_by_key_id": None,
        "acknowledgement_note": None,
    }
