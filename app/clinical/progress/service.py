"""A patient's progress on one score, and many patients' at once (the caseload), read from the record.

Each patient's course is their current measurements of the instrument in the version family of their latest one
(``app.clinical.series``), scored on the chosen score; the clinic's current expected-response table of that score is
used when it describes that family, otherwise the reliable change rule (``status``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clinical import parameters as change_parameters
from app.clinical import series
from app.clinical.change import Method, Parameters
from app.clinical.points import Point, in_family
from app.clinical.progress import status as progress_status
from app.clinical.progress import tables
from app.clinical.progress.models import ExpectedResponseTable
from app.clinical.progress.schemas import ProgressPoint, ProgressRead, TableRef
from app.clinical.progress.status import Judgement, MethodKind, Observation, Rule, Status
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement
from app.scoring.definition import InstrumentDefinition, Score
from app.therapy_sessions.models import TherapySession


@dataclass(frozen=True)
class Progress:
    """A course's progress: ``status`` and ``method`` (the caseload's column), and how they were reached."""

    status: Status
    method: MethodKind
    provisional: bool
    reasons: tuple[str, ...]
    judgement: Judgement
    family: str | None
    table: ExpectedResponseTable | None
    change_method: Method


@dataclass(frozen=True)
class Context:
    """What judging a course of one score needs besides its points: read once for any number of patients."""

    definition: InstrumentDefinition
    score: Score
    table: ExpectedResponseTable | None
    change_method: Method
    parameters: Parameters | None

    def rule(self, family: str | None) -> Rule:
        model = note = None
        if self.table is not None:
            if family is None or family == self.table.version_family:
                model = tables.model_of(self.table)
            else:
                note = (
                    f"the clinic's expected-response table describes version {self.table.version_family} of "
                    f"{self.definition.short_name}; this course is in version {family}"
                )
        return Rule(
            direction=self.score.direction.value,
            short_name=self.definition.short_name,
            change_method=self.change_method,
            parameters=self.parameters,
            table=model,
            table_note=note,
        )

    def judge(self, points: Sequence[Point]) -> Progress:
        data = in_family(self.definition, self.score, list(points))
        observations = observations_of(data.scored)
        rule = self.rule(data.family)
        judgement = progress_status.judge(observations, rule)
        if not observations:
            judgement = Judgement(
                Status.INSUFFICIENT_DATA,
                False,
                judgement.method,
                (f"no scored {self.definition.short_name} measurement ({self.score.key})",),
                (),
            )
        return Progress(
            status=judgement.status,
            method=judgement.method,
            provisional=judgement.provisional,
            reasons=judgement.reasons,
            judgement=judgement,
            family=data.family,
            table=self.table if rule.table is not None else None,
            change_method=self.change_method,
        )


def observations_of(points: Sequence[Point]) -> list[Observation]:
    return [Observation(p.measurement_id, p.measured_at, float(p.value)) for p in points if p.value is not None]


def context(db: Session, *, clinic_id: uuid.UUID, definition: InstrumentDefinition, score: Score) -> Context:
    """The clinic's current table of the score, and the change parameters: Jacobson–Truax when they allow reliable
    change, else the fixed threshold (GAD-7 ships only that)."""
    table = tables.current(db, clinic_id=clinic_id, instrument=definition.id, score=score.key)
    method, parameters = Method.JACOBSON_TRUAX, None
    for candidate in Method:
        found, _ = change_parameters.resolve(
            db, clinic_id=clinic_id, instrument=definition.id, score=score.key, method=candidate
        )
        if found is not None and _gives_reliable_change(found):
            method, parameters = candidate, found
            break
    return Context(definition, score, table, method, parameters)


def _gives_reliable_change(p: Parameters) -> bool:
    if p.method is Method.JACOBSON_TRUAX:
        return p.reliability is not None and p.clinical_sd is not None
    return p.minimum_change is not None


def patient_progress(
    db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, definition: InstrumentDefinition, score: Score
) -> Progress:
    points = series.load_points(db, clinic_id=clinic_id, patient_id=patient_id, definition=definition, score=score)
    return context(db, clinic_id=clinic_id, definition=definition, score=score).judge(points)


def progress_for_patients(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_ids: Sequence[uuid.UUID],
    instrument_id: str,
    score_key: str,
    registry: InstrumentRegistry,
) -> dict[uuid.UUID, Progress]:
    """Every named patient's progress on one score, set-based: one query for all their series, the table and the
    parameters read once. Patients of another clinic, or without a measurement, get ``insufficient_data``."""
    definition = registry.get(instrument_id)
    score = definition.score(score_key)
    ctx = context(db, clinic_id=clinic_id, definition=definition, score=score)
    by_patient = load_many(db, clinic_id=clinic_id, patient_ids=patient_ids, instrument_id=instrument_id, key=score_key)
    return {patient_id: ctx.judge(by_patient.get(patient_id, [])) for patient_id in patient_ids}


def load_many(
    db: Session, *, clinic_id: uuid.UUID, patient_ids: Sequence[uuid.UUID], instrument_id: str, key: str
) -> dict[uuid.UUID, list[Point]]:
    """The series of many patients (every version family), in one query over the patient/instrument/time index."""
    by_patient: defaultdict[uuid.UUID, list[Point]] = defaultdict(list)
    if not patient_ids:
        return by_patient
    query = (
        select(Measurement.patient_id, *series.POINT_COLUMNS, TherapySession.session_number)
        .outerjoin(TherapySession, TherapySession.id == Measurement.session_id)
        .where(
            Measurement.clinic_id == clinic_id,
            Measurement.patient_id.in_(set(patient_ids)),
            Measurement.instrument_id == instrument_id,
            Measurement.is_current.is_(True),
        )
        .order_by(Measurement.patient_id, Measurement.measured_at, Measurement.created_at, Measurement.id)
    )
    for row in db.connection().execute(query):
        by_patient[row.patient_id].append(series.to_point(row, key))
    return by_patient


def to_read(patient_id: uuid.UUID, progress: Progress, ctx: Context) -> ProgressRead:
    j = progress.judgement
    table = progress.table
    return ProgressRead(
        patient_id=patient_id,
        instrument=ctx.definition.id,
        score=ctx.score.key,
        direction=ctx.score.direction.value,
        version_family=progress.family,
        status=progress.status,
        provisional=progress.provisional,
        method=progress.method,
        table=TableRef(
            id=table.id,
            source="cited" if table.source == "cited" else "fitted",
            fitted_at=table.created_at,
            courses=table.courses,
            citation=table.citation,
        )
        if table is not None
        else None,
        change_method=progress.change_method,
        minimum_measurements=progress_status.MIN_MEASUREMENTS,
        reasons=list(progress.reasons),
        points=[
            ProgressPoint(
                measurement_id=p.measurement_id,
                measured_at=p.measured_at,
                value=p.value,
                weeks_since_baseline=p.weeks,
                expected=p.expected,
                lower=p.lower,
                upper=p.upper,
                band=p.band,
                band_reason=p.band_reason,
                change=p.change,
            )
            for p in j.points
        ],
    )
