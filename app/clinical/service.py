"""Trajectories, a patient's change (first vs latest, or two chosen measurements) and the clinic's outcome rates."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import clinic_is_synthetic
from app.clinical import parameters as change_parameters
from app.clinical import series
from app.clinical.change import (
    CATEGORY_ORDER,
    Assessment,
    Category,
    CutoffType,
    Method,
    Parameters,
    assess,
    missing_parameters,
)
from app.clinical.points import Point, Series, in_family
from app.clinical.schemas import (
    ChangePoint,
    ChangeRead,
    MissingParameterRead,
    OutcomesRead,
    ParametersRead,
)
from app.core.errors import FieldError, InvalidInput, NotFound
from app.measurements.models import Measurement
from app.scoring.definition import InstrumentDefinition, Score


def trajectory_values(patient_id: uuid.UUID, data: Series) -> dict[str, Any]:
    """A ``TrajectoryRead`` as plain values (``core.responses.values_response``), with no model per point: the same
    fields in the same order, each value as the model would hold it, so the same JSON byte for byte
    (tests/clinical/test_trajectory_values.py)."""
    first = data.points[0].measured_at if data.points else None
    spec = data.score
    return {
        "patient_id": patient_id,
        "instrument": data.definition.id,
        "score": spec.key,
        "label": spec.label,
        "direction": spec.direction.value,
        "minimum": float(spec.minimum),
        "maximum": float(spec.maximum),
        "bands": [
            {"label": band.label, "lower": float(band.lower), "lower_inclusive": band.lower_inclusive}
            for band in spec.bands
        ],
        "version_family": data.family,
        "points": [
            {
                "measurement_id": point.measurement_id,
                "version": point.version,
                "instrument_version": point.instrument_version,
                "measured_at": point.measured_at,
                "session_id": point.session_id,
                "session_number": point.session_number,
                "days_since_first": (point.measured_at - first).total_seconds() / 86400 if first else 0.0,
                "value": None if point.value is None else float(point.value),
                "band": point.band,
                "prorated": point.prorated,
                "flags": list(point.flags),
            }
            for point in data.points
        ],
        "points_in_other_version_families": data.other_family_points,
    }


@dataclass(frozen=True)
class Change:
    series: Series
    method: Method
    baseline: Point
    latest: Point
    parameters: Parameters | None
    parameters_updated_at: datetime | None
    assessment: Assessment


def patient_change(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    definition: InstrumentDefinition,
    score: Score,
    method: Method,
    baseline_id: uuid.UUID | None = None,
    latest_id: uuid.UUID | None = None,
) -> Change:
    """First vs latest scored measurement of the latest version family, or the chosen ones (of one family)."""
    points = series.load_points(db, clinic_id=clinic_id, patient_id=patient_id, definition=definition, score=score)
    chosen = {
        field: _chosen(points, measurement_id, field, definition)
        for field, measurement_id in (("from", baseline_id), ("to", latest_id))
        if measurement_id is not None
    }
    families = {point.family for point in chosen.values()}
    if len(families) > 1:
        raise InvalidInput(
            "the two measurements were scored under different major versions of the definition and are not compared",
            errors=[FieldError("to", "another instrument version family than `from`", str(latest_id))],
        )
    data = in_family(definition, score, points, families.pop() if families else None)
    scored = data.scored
    if len(scored) < 2:
        raise InvalidInput(
            f"change needs two scored {definition.short_name} measurements ({score.key}) of one version family; "
            f"found {len(scored)}"
        )
    baseline = chosen.get("from", scored[0])
    latest = chosen.get("to", scored[-1])
    if data.points.index(baseline) >= data.points.index(latest):
        raise InvalidInput(
            "the baseline must be measured before the latest measurement",
            errors=[FieldError("from", "must be measured before `to`", str(baseline.measurement_id))],
        )
    parameters, updated_at = change_parameters.resolve(
        db, clinic_id=clinic_id, instrument=definition.id, score=score.key, method=method
    )
    assessment = assess(
        _value(baseline), _value(latest), direction=score.direction.value, method=method, parameters=parameters
    )
    return Change(
        series=data,
        method=method,
        baseline=baseline,
        latest=latest,
        parameters=parameters,
        parameters_updated_at=updated_at,
        assessment=assessment,
    )


def change_read(patient_id: uuid.UUID, change: Change) -> ChangeRead:
    a = change.assessment
    data = change.series
    assert data.family is not None
    return ChangeRead(
        patient_id=patient_id,
        instrument=data.definition.id,
        score=data.score.key,
        method=change.method,
        version_family=data.family,
        baseline=_change_point(change.baseline),
        latest=_change_point(change.latest),
        difference=a.difference,
        rci=a.rci,
        reliable_change_threshold=a.reliable_change_threshold,
        caseness_baseline=a.caseness_baseline,
        caseness_latest=a.caseness_latest,
        category=a.category,
        response=a.response,
        response_reason=a.response_reason,
        remission=a.remission,
        remission_reason=a.remission_reason,
        parameters=_parameters_read(change.parameters, data.definition, data.score, change.parameters_updated_at, a),
        missing_parameters=_missing_read(a),
    )


def clinic_outcomes(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    definition: InstrumentDefinition,
    score: Score,
    method: Method,
    measured_from: datetime | None = None,
    measured_to: datetime | None = None,
) -> OutcomesRead:
    """Each patient's first vs latest scored measurement in the window (latest version family), counted by category."""
    query = select(
        Measurement.patient_id,
        Measurement.measurement_id,
        Measurement.version,
        Measurement.definition_version,
        Measurement.measured_at,
        Measurement.scores,
        Measurement.flags,
        Measurement.session_id,
    ).where(
        Measurement.clinic_id == clinic_id,
        Measurement.instrument_id == definition.id,
        Measurement.is_current.is_(True),
    )
    if measured_from is not None:
        query = query.where(Measurement.measured_at >= measured_from)
    if measured_to is not None:
        query = query.where(Measurement.measured_at <= measured_to)
    query = query.order_by(Measurement.patient_id, Measurement.measured_at, Measurement.created_at, Measurement.id)

    by_patient: defaultdict[uuid.UUID, list[Point]] = defaultdict(list)
    for row in db.execute(query):
        stored = (row.scores or {}).get(score.key) or {}
        by_patient[row.patient_id].append(
            Point(
                measurement_id=row.measurement_id,
                version=row.version,
                instrument_version=row.definition_version,
                measured_at=row.measured_at,
                session_id=row.session_id,
                session_number=None,
                value=stored.get("value"),
                band=stored.get("band"),
                prorated=bool(stored.get("prorated", False)),
                flags=tuple(row.flags),
            )
        )

    parameters, updated_at = change_parameters.resolve(
        db, clinic_id=clinic_id, instrument=definition.id, score=score.key, method=method
    )
    direction = score.direction.value
    assessments: list[Assessment] = []
    measured = 0
    for points in by_patient.values():
        scored = in_family(definition, score, points).scored
        measured += bool(scored)
        if len(scored) >= 2:
            first, last = _value(scored[0]), _value(scored[-1])
            assessments.append(assess(first, last, direction=direction, method=method, parameters=parameters))

    missing = missing_parameters(parameters, method, direction)
    undefined = {output for item in missing for output in item.needed_for}
    categories = Counter(assessment.category for assessment in assessments)
    counts = (
        {
            category: categories[category]
            for category in CATEGORY_ORDER
            if category.value not in undefined or category not in (Category.RECOVERED, Category.HARMED)
        }
        if "category" not in undefined
        else {}
    )
    assessed = len(assessments)
    cases = None if "caseness_baseline" in undefined else sum(bool(a.caseness_baseline) for a in assessments)
    by_caseness = parameters is not None and parameters.cutoff_type is CutoffType.CASENESS
    response_defined = score.direction.value == "lower_is_better" and "response" not in undefined and by_caseness
    remission_defined = score.direction.value == "lower_is_better" and "remission" not in undefined and by_caseness
    return OutcomesRead(
        instrument=definition.id,
        score=score.key,
        method=method,
        measured_from=measured_from,
        measured_to=measured_to,
        patients_measured=measured,
        patients_assessed=assessed,
        counts=counts,
        rates={category: n / assessed for category, n in counts.items()} if assessed else {},
        cases_at_baseline=cases,
        recovery_rate_of_cases=counts.get(Category.RECOVERED, 0) / cases if cases else None,
        responses=sum(bool(a.response) for a in assessments) if response_defined else None,
        remissions=sum(bool(a.remission) for a in assessments) if remission_defined else None,
        parameters=_parameters_read(parameters, definition, score, updated_at, None),
        missing_parameters=[MissingParameterRead(name=m.name, needed_for=list(m.needed_for)) for m in missing],
        synthetic=clinic_is_synthetic(db, clinic_id=clinic_id),
    )


def _chosen(points: list[Point], measurement_id: uuid.UUID, field: str, definition: InstrumentDefinition) -> Point:
    point = next((point for point in points if point.measurement_id == measurement_id), None)
    if point is None:
        raise NotFound(f"no current {definition.id} measurement {measurement_id} for this patient")
    if point.value is None:
        raise InvalidInput(
            "the chosen measurement has no value for this score (too many items missing)",
            errors=[FieldError(field, "has no value for this score", str(measurement_id))],
        )
    return point


def _value(point: Point) -> float:
    """The value of a point already known to be scored."""
    if point.value is None:
        raise ValueError("an unscored point cannot be compared")
    return point.value


def _change_point(point: Point) -> ChangePoint:
    return ChangePoint(
        measurement_id=point.measurement_id,
        measured_at=point.measured_at,
        instrument_version=point.instrument_version,
        value=_value(point),
        band=point.band,
        prorated=point.prorated,
    )


def _parameters_read(
    parameters: Parameters | None,
    definition: InstrumentDefinition,
    score: Score,
    updated_at: datetime | None,
    assessment: Assessment | None,
) -> ParametersRead | None:
    if parameters is None:
        return None
    return change_parameters.to_read(
        parameters, instrument=definition.id, score=score, updated_at=updated_at, assessment=assessment
    )


def _missing_read(assessment: Assessment) -> list[MissingParameterRead]:
    return [MissingParameterRead(name=m.name, needed_for=list(m.needed_for)) for m in assessment.missing]
