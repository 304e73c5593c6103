"""A patient's series of one score read from the record: current measurements in time order, with session numbers
and version families (the values themselves are ``app.clinical.points``).

Only scores of the same key and the same instrument version family (the MAJOR part of the definition version) are
ever compared; a series keeps the family of the patient's latest measurement.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from app.clinical.points import Point, Series, in_family
from app.clinical.risk import risk_first
from app.core.errors import FieldError, InvalidInput
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement
from app.scoring.definition import InstrumentDefinition, Score
from app.therapy_sessions.models import TherapySession


def resolve_definition(registry: InstrumentRegistry, instrument: str) -> InstrumentDefinition:
    definition = registry.definitions.get(instrument)
    if definition is None:
        raise InvalidInput(
            f"unknown instrument {instrument!r}",
            errors=[FieldError("instrument", f"unknown instrument {instrument!r}", instrument, registry.ids())],
        )
    return definition


def resolve_score(
    registry: InstrumentRegistry, instrument: str, score: str | None
) -> tuple[InstrumentDefinition, Score]:
    """The instrument and score a query names; the score defaults to the instrument's primary score."""
    definition = resolve_definition(registry, instrument)
    keys = [spec.key for spec in definition.scores]
    key = score or definition.primary_score
    if key is None or key not in keys:
        message = f"{definition.short_name} has no score {key!r}" if key else f"{definition.short_name}: name a score"
        raise InvalidInput(message, errors=[FieldError("score", message, score, keys)])
    return definition, definition.score(key)


def load_points(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    definition: InstrumentDefinition,
    score: Score,
) -> list[Point]:
    """Every current measurement of the instrument for the patient, all version families, in time order.

    Reads only the columns a point needs, as rows (no entities: the answers, warnings and the rest of each stored
    version would be decoded for nothing)."""
    query = (
        select(*POINT_COLUMNS, TherapySession.session_number)
        .outerjoin(TherapySession, TherapySession.id == Measurement.session_id)
        .where(
            Measurement.clinic_id == clinic_id,
            Measurement.patient_id == patient_id,
            Measurement.instrument_id == definition.id,
            Measurement.is_current.is_(True),
        )
        .order_by(Measurement.measured_at, Measurement.created_at, Measurement.id)
    )
    rows = db.connection().execute(query).all()  # Core: the ORM's execution path costs more than the query
    return [to_point(row, score.key) for row in rows]


POINT_COLUMNS = (
    Measurement.measurement_id,
    Measurement.version,
    Measurement.definition_version,
    Measurement.measured_at,
    Measurement.session_id,
    Measurement.scores,
    Measurement.flags,
)
"""What ``to_point`` reads of a stored version."""


def load(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    definition: InstrumentDefinition,
    score: Score,
) -> Series:
    """The patient's series in the version family of the latest measurement."""
    points = load_points(db, clinic_id=clinic_id, patient_id=patient_id, definition=definition, score=score)
    return in_family(definition, score, points)


def to_point(row: Row[Any], key: str) -> Point:
    """A row of ``POINT_COLUMNS`` and the session's number as a point of the score ``key``."""
    stored: dict[str, Any] = row.scores.get(key) or {}
    return Point(
        measurement_id=row.measurement_id,
        version=row.version,
        instrument_version=row.definition_version,
        measured_at=row.measured_at,
        session_id=row.session_id,
        session_number=row.session_number,
        value=stored.get("value"),
        band=stored.get("band"),
        prorated=bool(stored.get("prorated", False)),
        flags=risk_first(row.flags),
    )
