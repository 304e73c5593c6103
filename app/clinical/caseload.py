"""The caseload: one row per active patient of a clinic, most in need first.

**Active** patient: one with an unacknowledged alert, or a schedule not ended, or a current measurement in the last
``ACTIVE_WITHIN`` (90 days). A patient with none of these is not shown (discharged or lost to follow-up; their
report is still there).

**Row**: per instrument the latest scored value and band of its primary score (every instrument without one, the
FSCRS, shows its first score), with the change category from the first to the latest scored measurement (the same
comparison as the report: Jacobson–Truax, else the fixed threshold, with the clinic's parameters or the shipped
defaults; none when no parameters exist or fewer than two scores); the open (unacknowledged) alerts counted by
priority; the assessments of the patient's schedules: ``missed`` counts the instruments whose most recent window
closed unanswered, ``due`` those whose window is open now; and the **progress** status of the PHQ-9 total
(``app.clinical.progress``: against the clinic's expected-response table, else the reliable change rule).

**Order of need** (``need_key``): open urgent alerts (risk flags), then any reliable deterioration (``deteriorated``
or ``harmed``), then a course not on track, then missed assessments, then open routine alerts, then assessments due
now; each by count, more first; then the longest since the last measurement; then the patient id (a stable order for
paging).

The page is read in a fixed number of statements whatever the caseload's size (the active patients, their
identifiers, their current measurements, their open alerts, their assessments' latest windows, the clinic's change
parameters): no statement per patient.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Subquery, and_, func, select, union
from sqlalchemy.orm import Session

from app.care.models import AssessmentOccurrence, Schedule
from app.care.windows import CANCELLED, OPEN
from app.clinical.change import Category, Method, Parameters, assess
from app.clinical.defaults import DEFAULTS
from app.clinical.models import ClinicChangeParameters, RiskAlert
from app.clinical.parameters import from_row
from app.clinical.points import Point, in_family
from app.clinical.progress.service import progress_for_patients
from app.clinical.progress.status import Status
from app.clinical.report import REPORT_ORDER
from app.clinical.risk import RISK_FLAGS
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement
from app.patients.models import PatientIdentifier
from app.scoring.definition import InstrumentDefinition, Score

ACTIVE_WITHIN = timedelta(days=90)
PROGRESS_INSTRUMENT = "phq9"
"""The instrument whose course the progress column judges (its total): depression, tracked at every session."""
METHODS = (Method.JACOBSON_TRUAX, Method.FIXED_THRESHOLD)
WORSE = frozenset({Category.DETERIORATED, Category.HARMED})


@dataclass(frozen=True)
class InstrumentLatest:
    instrument: str
    short_name: str
    score: str
    label: str
    direction: str
    value: float
    band: str | None
    measured_at: datetime
    category: Category | None
    """First vs latest; None with fewer than two scores or without change parameters."""
    method: Method | None


@dataclass
class Row:
    patient_id: uuid.UUID
    identifiers: list[str] = field(default_factory=list)
    latest: list[InstrumentLatest] = field(default_factory=list)
    last_measured_at: datetime | None = None
    urgent_alerts: int = 0
    routine_alerts: int = 0
    assessments_missed: int = 0
    assessments_due: int = 0
    progress: str | None = None
    """The progress status of the PHQ-9 total (``progress_statuses``)."""
    with_alerts: bool = True
    """Whether the alert counts are known (the caller's role may read alerts)."""

    @property
    def deteriorated(self) -> bool:
        return any(item.category in WORSE for item in self.latest)


def alert_priority(flag: str) -> str:
    """``urgent`` for a risk flag (item 9), ``routine`` for any other alert kind (a missing item 9, not on track)."""
    return "urgent" if flag in RISK_FLAGS else "routine"


def need_key(row: Row) -> tuple[int, int, int, int, int, int, datetime, str]:
    """Sort key: most in need first (see the module's docstring)."""
    last = row.last_measured_at or datetime.min.replace(tzinfo=None)
    return (
        -row.urgent_alerts,
        -int(row.deteriorated),
        -int(row.progress == Status.NOT_ON_TRACK.value),
        -row.assessments_missed,
        -row.routine_alerts,
        -row.assessments_due,
        last.replace(tzinfo=None),
        str(row.patient_id),
    )


def build(
    db: Session, registry: InstrumentRegistry, *, clinic_id: uuid.UUID, now: datetime, with_alerts: bool
) -> list[Row]:
    """Every active patient's row, most in need first. ``with_alerts``: whether the caller may see alert counts."""
    active = _active_patients(clinic_id, now)
    rows = {
        patient_id: Row(patient_id, with_alerts=with_alerts) for patient_id in db.scalars(select(active.c.patient_id))
    }
    if not rows:
        return []
    in_caseload = select(active.c.patient_id)
    for patient_id, value in db.execute(
        select(PatientIdentifier.patient_id, PatientIdentifier.value)
        .where(PatientIdentifier.clinic_id == clinic_id, PatientIdentifier.patient_id.in_(in_caseload))
        .order_by(PatientIdentifier.patient_id, PatientIdentifier.system, PatientIdentifier.value)
    ):
        rows[patient_id].identifiers.append(value)
    _latest_scores(db, registry, rows, clinic_id=clinic_id, in_caseload=in_caseload)
    if with_alerts:
        for patient_id, flag, count in db.execute(
            select(RiskAlert.patient_id, RiskAlert.flag, func.count())
            .where(
                RiskAlert.clinic_id == clinic_id,
                RiskAlert.acknowledged_at.is_(None),
                RiskAlert.patient_id.in_(in_caseload),
            )
            .group_by(RiskAlert.patient_id, RiskAlert.flag)
        ):
            row = rows[patient_id]
            if alert_priority(flag) == "urgent":
                row.urgent_alerts += count
            else:
                row.routine_alerts += count
    _assessments(db, rows, clinic_id=clinic_id, in_caseload=in_caseload, now=now)
    for patient_id, status in progress_statuses(db, registry, clinic_id=clinic_id, patient_ids=list(rows)).items():
        rows[patient_id].progress = status
    return sorted(rows.values(), key=need_key)


def progress_statuses(
    db: Session, registry: InstrumentRegistry, *, clinic_id: uuid.UUID, patient_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The progress column: each patient's progress status on the PHQ-9 total (``on_track``, ``not_on_track``, ...),
    judged for all the patients in one set-based call."""
    judged = progress_for_patients(
        db,
        clinic_id=clinic_id,
        patient_ids=patient_ids,
        instrument_id=PROGRESS_INSTRUMENT,
        score_key="total",
        registry=registry,
    )
    return {patient_id: progress.status.value for patient_id, progress in judged.items()}


def _active_patients(clinic_id: uuid.UUID, now: datetime) -> Subquery:
    measured = select(Measurement.patient_id).where(
        Measurement.clinic_id == clinic_id,
        Measurement.is_current.is_(True),
        Measurement.measured_at >= now - ACTIVE_WITHIN,
    )
    alerted = select(RiskAlert.patient_id).where(RiskAlert.clinic_id == clinic_id, RiskAlert.acknowledged_at.is_(None))
    scheduled = select(Schedule.patient_id).where(Schedule.clinic_id == clinic_id, Schedule.ended_at.is_(None))
    return union(measured, alerted, scheduled).subquery("active")


def _latest_scores(
    db: Session,
    registry: InstrumentRegistry,
    rows: dict[uuid.UUID, Row],
    *,
    clinic_id: uuid.UUID,
    in_caseload: Select[Any],
) -> None:
    own = {
        (row.instrument_id, row.score_key, row.method): from_row(row)
        for row in db.scalars(select(ClinicChangeParameters).where(ClinicChangeParameters.clinic_id == clinic_id))
    }
    query = (
        select(
            Measurement.patient_id,
            Measurement.instrument_id,
            Measurement.measurement_id,
            Measurement.version,
            Measurement.definition_version,
            Measurement.measured_at,
            Measurement.scores,
            Measurement.flags,
            Measurement.session_id,
        )
        .where(
            Measurement.clinic_id == clinic_id,
            Measurement.is_current.is_(True),
            Measurement.patient_id.in_(in_caseload),
        )
        .order_by(Measurement.patient_id, Measurement.measured_at, Measurement.created_at, Measurement.id)
    )
    series: defaultdict[tuple[uuid.UUID, str], list[tuple[Point, dict[str, object]]]] = defaultdict(list)
    for found in db.execute(query):
        row = rows[found.patient_id]
        if row.last_measured_at is None or found.measured_at > row.last_measured_at:
            row.last_measured_at = found.measured_at
        series[(found.patient_id, found.instrument_id)].append((_point(found), found.scores or {}))
    order = {instrument: index for index, instrument in enumerate(REPORT_ORDER)}
    for (patient_id, instrument), measured in sorted(series.items(), key=lambda item: order.get(item[0][1], 99)):
        definition = registry.definitions.get(instrument)
        if definition is None:
            continue
        score = _shown_score(definition)
        points = [_with_value(point, scores, score.key) for point, scores in measured]
        latest = _latest(definition, score, points, own)
        if latest is not None:
            rows[patient_id].latest.append(latest)


def _shown_score(definition: InstrumentDefinition) -> Score:
    return definition.score(definition.primary_score) if definition.primary_score else definition.scores[0]


def _latest(
    definition: InstrumentDefinition,
    score: Score,
    points: list[Point],
    own: dict[tuple[str, str, str], Parameters],
) -> InstrumentLatest | None:
    scored = in_family(definition, score, points).scored
    if not scored:
        return None
    last = scored[-1]
    assert last.value is not None
    category: Category | None = None
    used: Method | None = None
    if len(scored) >= 2 and scored[0].value is not None:
        for method in METHODS:
            parameters = own.get((definition.id, score.key, method.value)) or DEFAULTS.get(
                (definition.id, score.key, method)
            )
            if parameters is None:
                continue
            found = assess(
                scored[0].value, last.value, direction=score.direction.value, method=method, parameters=parameters
            ).category
            if found is not None:
                category, used = found, method
                break
    return InstrumentLatest(
        instrument=definition.id,
        short_name=definition.short_name,
        score=score.key,
        label=score.label,
        direction=score.direction.value,
        value=last.value,
        band=last.band,
        measured_at=last.measured_at,
        category=category,
        method=used,
    )


def _point(found: object) -> Point:
    return Point(
        measurement_id=found.measurement_id,  # type: ignore[attr-defined]
        version=found.version,  # type: ignore[attr-defined]
        instrument_version=found.definition_version,  # type: ignore[attr-defined]
        measured_at=found.measured_at,  # type: ignore[attr-defined]
        session_id=found.session_id,  # type: ignore[attr-defined]
        session_number=None,
        value=None,
        band=None,
        prorated=False,
        flags=tuple(found.flags),  # type: ignore[attr-defined]
    )


def _with_value(point: Point, scores: dict[str, object], key: str) -> Point:
    """The point with its value, band and prorating on score ``key`` (the caseload reads every score at once)."""
    stored = scores.get(key) or {}
    assert isinstance(stored, dict)
    return replace(
        point,
        session_number=None,
        value=stored.get("value"),
        band=stored.get("band"),
        prorated=bool(stored.get("prorated", False)),
    )


def _assessments(
    db: Session, rows: dict[uuid.UUID, Row], *, clinic_id: uuid.UUID, in_caseload: Select[Any], now: datetime
) -> None:
    """Per patient and instrument, the most recent window that has opened: missed if it closed unanswered, due if
    it is open now (a window function, one statement)."""
    occurrence = AssessmentOccurrence
    recent = (
        select(
            occurrence.patient_id,
            occurrence.state,
            occurrence.due_by,
            func.row_number()
            .over(
                partition_by=(occurrence.patient_id, occurrence.instrument_id),
                order_by=(occurrence.due_from.desc(), occurrence.id.desc()),
            )
            .label("recency"),
        )
        .where(
            occurrence.clinic_id == clinic_id,
            occurrence.patient_id.in_(in_caseload),
            occurrence.due_from <= now,
            occurrence.state != CANCELLED,
        )
        .subquery("recent")
    )
    query = select(recent.c.patient_id, recent.c.due_by).where(and_(recent.c.recency == 1, recent.c.state == OPEN))
    for patient_id, due_by in db.execute(query):
        if due_by <= now:
            rows[patient_id].assessments_missed += 1
        else:
            rows[patient_id].assessments_due += 1
