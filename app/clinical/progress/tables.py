"""Expected-response tables of a clinic: fitted from its own completed courses, loaded with a citation, read.

A fit reads every current measurement of the instrument in the clinic (one query), keeps the current definition's
version family, makes courses of them (``expected.completed_courses``: what a completed course is), refuses below
``expected.MIN_COURSES`` courses (409, naming how many there are and why they count), and stores the table with its
data cut, fit date, model form, coefficients and counts. Nothing is ever updated: the latest table of a score is its
current one.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from app.clinical.points import version_family
from app.clinical.progress import expected
from app.clinical.progress.models import ExpectedResponseTable
from app.clinical.progress.schemas import (
    CoefficientsRead,
    ExpectedResponseCited,
    ExpectedResponseFit,
    ExpectedResponseRead,
)
from app.core.db import utcnow
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.measurements.models import Measurement
from app.scoring.definition import InstrumentDefinition, Score


def fit_for_clinic(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    key_id: uuid.UUID,
    definition: InstrumentDefinition,
    score: Score,
    data: ExpectedResponseFit,
) -> ExpectedResponseTable:
    now = utcnow()
    family = version_family(definition.version)
    rows = db.execute(
        select(Measurement.patient_id, Measurement.definition_version, Measurement.measured_at, Measurement.scores)
        .where(
            Measurement.clinic_id == clinic_id,
            Measurement.instrument_id == definition.id,
            Measurement.is_current.is_(True),
        )
        .order_by(Measurement.patient_id, Measurement.measured_at, Measurement.created_at, Measurement.id)
    )
    series: defaultdict[uuid.UUID, list[tuple[datetime, float]]] = defaultdict(list)
    for measurement in rows:
        value = ((measurement.scores or {}).get(score.key) or {}).get("value")
        if value is not None and version_family(measurement.definition_version) == family:
            series[measurement.patient_id].append((measurement.measured_at, float(value)))
    found = expected.completed_courses(series.values(), now=now)
    if len(found.courses) < expected.MIN_COURSES:
        raise Conflict(
            f"an expected-response table needs at least {expected.MIN_COURSES} completed courses of "
            f"{definition.short_name} {score.key} (version {family}); the clinic has {len(found.courses)}. A completed "
            f"course has a baseline and at least {expected.MIN_FOLLOW_UPS} later measurements within "
            f"{expected.MAX_WEEKS:g} weeks, the latest at least {expected.COMPLETED_AFTER_DAYS} days ago "
            f"({found.ongoing} courses are ongoing, {found.too_short} too short). Below that number the variances that "
            "set the band's width are too uncertain (docs/progress.md).",
            courses=len(found.courses),
            minimum_courses=expected.MIN_COURSES,
        )
    try:
        fitted = expected.fit(found.courses, band_z=data.band_z)
    except expected.FitFailed as error:
        raise InvalidInput(f"no table was stored: {error}") from None
    table = fitted.table
    row = ExpectedResponseTable(
        clinic_id=clinic_id,
        instrument_id=definition.id,
        score_key=score.key,
        version_family=family,
        source="fitted",
        citation=None,
        model_form=expected.MODEL_FORM,
        time_scale=expected.TIME_SCALE,
        coefficients=_stored(table),
        band_z=table.band_z,
        max_weeks=table.max_weeks,
        courses=fitted.courses,
        measurements=fitted.measurements,
        data_cut_at=found.data_cut_at,
        notices=list(fitted.notices),
        created_by_key_id=key_id,
        created_at=now,
    )
    db.add(row)
    db.flush()
    return row


def load_cited(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    key_id: uuid.UUID,
    definition: InstrumentDefinition,
    score: Score,
    data: ExpectedResponseCited,
) -> ExpectedResponseTable:
    """Store a published table as given, with its citation, for the current definition's version family."""
    c = data.coefficients
    if c.intercept_slope_covariance**2 > c.intercept_variance * c.slope_variance + 1e-12:
        message = "|Cov(u0, u1)| cannot exceed √(Var(u0)·Var(u1))"
        raise InvalidInput(
            message,
            errors=[FieldError("coefficients.intercept_slope_covariance", message, c.intercept_slope_covariance)],
        )
    table = expected.ExpectedResponse(
        coefficients=(c.b0, c.b1, c.b2, c.b3),
        random_effects_covariance=(
            (c.intercept_variance, c.intercept_slope_covariance),
            (c.intercept_slope_covariance, c.slope_variance),
        ),
        residual_variance=c.residual_variance,
        band_z=data.band_z,
        max_weeks=data.max_weeks,
    )
    row = ExpectedResponseTable(
        clinic_id=clinic_id,
        instrument_id=definition.id,
        score_key=score.key,
        version_family=version_family(definition.version),
        source="cited",
        citation=data.citation,
        model_form=expected.MODEL_FORM,
        time_scale=expected.TIME_SCALE,
        coefficients=_stored(table),
        band_z=data.band_z,
        max_weeks=data.max_weeks,
        courses=data.courses,
        measurements=None,
        data_cut_at=None,
        notices=[],
        created_by_key_id=key_id,
        created_at=utcnow(),
    )
    db.add(row)
    db.flush()
    return row


def current(db: Session, *, clinic_id: uuid.UUID, instrument: str, score: str) -> ExpectedResponseTable | None:
    return db.scalar(
        select(ExpectedResponseTable)
        .where(
            ExpectedResponseTable.clinic_id == clinic_id,
            ExpectedResponseTable.instrument_id == instrument,
            ExpectedResponseTable.score_key == score,
        )
        .order_by(ExpectedResponseTable.created_at.desc(), ExpectedResponseTable.id.desc())
        .limit(1)
    )


def get_current(db: Session, *, clinic_id: uuid.UUID, instrument: str, score: str) -> ExpectedResponseTable:
    row = current(db, clinic_id=clinic_id, instrument=instrument, score=score)
    if row is None:
        raise NotFound(f"the clinic has no expected-response table for {instrument} {score}")
    return row


def list_current(db: Session, *, clinic_id: uuid.UUID) -> list[ExpectedResponseTable]:
    """The current table of every score the clinic has one for."""
    latest = (
        select(
            ExpectedResponseTable.instrument_id,
            ExpectedResponseTable.score_key,
            func.max(ExpectedResponseTable.created_at),
        )
        .where(ExpectedResponseTable.clinic_id == clinic_id)
        .group_by(ExpectedResponseTable.instrument_id, ExpectedResponseTable.score_key)
    )
    rows = db.scalars(
        select(ExpectedResponseTable)
        .where(
            ExpectedResponseTable.clinic_id == clinic_id,
            tuple_(
                ExpectedResponseTable.instrument_id,
                ExpectedResponseTable.score_key,
                ExpectedResponseTable.created_at,
            ).in_(latest),
        )
        .order_by(ExpectedResponseTable.instrument_id, ExpectedResponseTable.score_key, ExpectedResponseTable.id)
    )
    return _one_per_score(rows)


def _one_per_score(rows: Iterable[ExpectedResponseTable]) -> list[ExpectedResponseTable]:
    seen: dict[tuple[str, str], ExpectedResponseTable] = {}
    for row in rows:
        seen.setdefault((row.instrument_id, row.score_key), row)
    return list(seen.values())


def model_of(row: ExpectedResponseTable) -> expected.ExpectedResponse:
    c = row.coefficients
    fixed = c.get("coefficients_covariance")
    return expected.ExpectedResponse(
        coefficients=(c["b0"], c["b1"], c["b2"], c["b3"]),
        random_effects_covariance=(
            (c["intercept_variance"], c["intercept_slope_covariance"]),
            (c["intercept_slope_covariance"], c["slope_variance"]),
        ),
        residual_variance=c["residual_variance"],
        band_z=row.band_z,
        coefficients_covariance=tuple(tuple(r) for r in fixed) if fixed is not None else None,
        max_weeks=row.max_weeks,
    )


def to_read(row: ExpectedResponseTable) -> ExpectedResponseRead:
    c = row.coefficients
    return ExpectedResponseRead(
        id=row.id,
        instrument=row.instrument_id,
        score=row.score_key,
        version_family=row.version_family,
        source="cited" if row.source == "cited" else "fitted",
        citation=row.citation,
        model_form=row.model_form,
        time_scale=row.time_scale,
        coefficients=CoefficientsRead(**{name: c[name] for name in CoefficientsRead.model_fields}),
        coefficients_covariance=c.get("coefficients_covariance"),
        band_z=row.band_z,
        max_weeks=row.max_weeks,
        courses=row.courses,
        measurements=row.measurements,
        data_cut_at=row.data_cut_at,
        fitted_at=row.created_at,
        notices=list(row.notices),
    )


def _stored(table: expected.ExpectedResponse) -> dict[str, Any]:
    b0, b1, b2, b3 = table.coefficients
    (var_u0, cov), (_, var_u1) = table.random_effects_covariance
    fixed = table.coefficients_covariance
    return {
        "b0": b0,
        "b1": b1,
        "b2": b2,
        "b3": b3,
        "intercept_variance": var_u0,
        "slope_variance": var_u1,
        "intercept_slope_covariance": cov,
        "residual_variance": table.residual_variance,
        "coefficients_covariance": [list(r) for r in fixed] if fixed is not None else None,
    }
