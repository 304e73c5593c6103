"""Measurements: build a new one (or a new version), scored once; read the current version or the whole history.

Storing is ``app.clinical.recording`` (through ``app.measurements.store``): it also raises what follows from a new
measurement, so every path in stores the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from app.core.db import table_of
from app.core.errors import FieldError, InvalidInput, NotFound
from app.instruments import service as scoring
from app.instruments.registry import InstrumentRegistry
from app.instruments.schemas import WarningOut
from app.measurements.models import Measurement
from app.measurements.schemas import MeasurementRead, Source
from app.scoring import SCORER_VERSION
from app.scoring.definition import InstrumentDefinition
from app.scoring.engine import Answer, ScoreResult


@dataclass(frozen=True)
class NewMeasurement:
    """A new measurement, or a new version of one, scored and ready to store: the one shape every path that stores
    a measurement builds (API, FHIR, import, amendment, re-scoring), always through ``new_measurement``.

    It is stored only through ``app.clinical.recording``, which also does what follows from a new measurement
    (risk alerts and their webhooks) in the same transaction.
    """

    clinic_id: uuid.UUID
    patient_id: uuid.UUID
    definition: InstrumentDefinition
    items: Mapping[str, Answer]
    measured_at: datetime
    source: Source
    result: ScoreResult
    """``items`` scored under ``definition``, the instrument's current definition."""
    session_id: uuid.UUID | None = None
    declared_total: float | None = None
    recorded_by_key_id: uuid.UUID | None = None


def new_measurement(
    registry: InstrumentRegistry,
    instrument_id: str,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    items: Mapping[str, Answer],
    measured_at: datetime,
    source: Source,
    session_id: uuid.UUID | None = None,
    declared_total: float | None = None,
    recorded_by_key_id: uuid.UUID | None = None,
    scored: ScoreResult | None = None,
) -> NewMeasurement:
    """Score ``items`` under the instrument's current definition (InvalidInput, nothing stored, for an unknown
    instrument or invalid answers).

    ``scored``: the caller's own score of these very answers (FHIR and imports score a response before storing it,
    to refuse one that cannot be scored), kept when it is of the current definition, so nothing is scored twice.
    """
    definition = _definition(registry, instrument_id)
    if scored is None or (scored.instrument, scored.version) != (definition.id, definition.version):
        scored = scoring.score_answers(definition, items, declared_total=declared_total)
    return NewMeasurement(
        clinic_id=clinic_id,
        patient_id=patient_id,
        definition=definition,
        items=items,
        measured_at=measured_at,
        source=source,
        result=scored,
        session_id=session_id,
        declared_total=declared_total,
        recorded_by_key_id=recorded_by_key_id,
    )


def new_version(
    registry: InstrumentRegistry,
    current: Measurement,
    *,
    items: Mapping[str, Answer],
    recorded_by_key_id: uuid.UUID | None,
    measured_at: datetime | None = None,
    session_id: uuid.UUID | None = None,
    declared_total: float | None = None,
    scored: ScoreResult | None = None,
) -> NewMeasurement:
    """``new_measurement`` for the next version of ``current``: what the amendment does not give is kept."""
    return new_measurement(
        registry,
        current.instrument_id,
        clinic_id=current.clinic_id,
        patient_id=current.patient_id,
        items=items,
        measured_at=measured_at or current.measured_at,
        source=Source(current.source),
        session_id=session_id or current.session_id,
        declared_total=declared_total,
        recorded_by_key_id=recorded_by_key_id,
        scored=scored,
    )


def get_current(db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, measurement_id: uuid.UUID) -> Measurement:
    row = db.scalar(
        select(Measurement).where(
            Measurement.measurement_id == measurement_id,
            Measurement.patient_id == patient_id,
            Measurement.clinic_id == clinic_id,
            Measurement.is_current.is_(True),
        )
    )
    if row is None:
        raise NotFound(f"no measurement {measurement_id} for this patient")
    return row


def history(
    db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, measurement_id: uuid.UUID
) -> list[Measurement]:
    rows = list(
        db.scalars(
            select(Measurement)
            .where(
                Measurement.measurement_id == measurement_id,
                Measurement.patient_id == patient_id,
                Measurement.clinic_id == clinic_id,
            )
            .order_by(Measurement.version)
        )
    )
    if not rows:
        raise NotFound(f"no measurement {measurement_id} for this patient")
    return rows


def list_current(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    limit: int,
    offset: int,
    instrument: str | None = None,
    measured_from: datetime | None = None,
    measured_to: datetime | None = None,
) -> Sequence[Row[Any]]:
    """The patient's current measurements in time order, as rows of the columns ``to_read`` needs (no entities:
    nothing is changed, and building a hundred entities cost more than the query)."""
    c = _TABLE.c
    query = select(*(c[name] for name in READ_COLUMNS)).where(
        c.patient_id == patient_id,
        c.clinic_id == clinic_id,
        c.is_current.is_(True),
    )
    if instrument is not None:
        query = query.where(c.instrument_id == instrument)
    if measured_from is not None:
        query = query.where(c.measured_at >= measured_from)
    if measured_to is not None:
        query = query.where(c.measured_at <= measured_to)
    query = query.order_by(c.measured_at, c.created_at, c.id)
    return db.connection().execute(query.limit(limit).offset(offset)).all()


_TABLE = table_of(Measurement)
READ_COLUMNS = (
    "measurement_id",
    "version",
    "is_current",
    "patient_id",
    "session_id",
    "instrument_id",
    "definition_version",
    "scorer_version",
    "measured_at",
    "items",
    "complete",
    "missing_items",
    "scores",
    "flags",
    "warnings",
    "declared_total",
    "source",
    "amendment_reason",
    "created_at",
)
"""The columns a ``MeasurementRead`` is built from."""


def to_read(row: Measurement | Row[Any], registry: InstrumentRegistry) -> MeasurementRead:
    """A stored version as answered: an entity, or a row of ``READ_COLUMNS`` (``list_current``)."""
    return _read(partial(getattr, row), registry)


def read_values(row: Sequence[Any], registry: InstrumentRegistry) -> dict[str, Any]:
    """``to_read`` of a row of ``READ_COLUMNS`` as plain values (``core.responses.values_response``), with no model:
    a page of 100 ``MeasurementRead`` models cost more CPU than the rest of the request. The same fields in the same
    order, each value as the model would hold it: the same JSON, byte for byte (tests/measurements/test_read_values.py).
    """
    (
        measurement_id,
        version,
        is_current,
        patient_id,
        session_id,
        instrument_id,
        definition_version,
        scorer_version,
        measured_at,
        items,
        complete,
        missing_items,
        scores,
        flags,
        warnings,
        declared_total,
        source,
        amendment_reason,
        created_at,
    ) = row
    definition = registry.definitions.get(instrument_id)
    return {
        "id": measurement_id,
        "version": version,
        "current": is_current,
        "patient_id": patient_id,
        "session_id": session_id,
        "instrument": instrument_id,
        "instrument_version": definition_version,
        "scorer_version": scorer_version,
        "measured_at": measured_at,
        "items": items,
        "complete": complete,
        "missing_items": missing_items,
        "scores": scoring.scores_values(definition, scores) if definition else {},
        "flags": flags,
        "warnings": [
            {"code": warning["code"], "message": warning["message"], "details": warning.get("details", {})}
            for warning in warnings
        ],
        "declared_total": None if declared_total is None else float(declared_total),
        "source": Source(source),
        "amendment_reason": amendment_reason,
        "created_at": created_at,
    }


def values_to_read(values: Mapping[str, Any], registry: InstrumentRegistry) -> MeasurementRead:
    """``to_read`` of a row just stored (``recording.record_one``), without building an entity for it."""
    return _read(values.__getitem__, registry)


def _read(column: Callable[[str], Any], registry: InstrumentRegistry) -> MeasurementRead:
    definition = registry.definitions.get(column("instrument_id"))
    scores = scoring.scores_out(definition, column("scores")) if definition else {}
    return MeasurementRead(
        id=column("measurement_id"),
        version=column("version"),
        current=column("is_current"),
        patient_id=column("patient_id"),
        session_id=column("session_id"),
        instrument=column("instrument_id"),
        instrument_version=column("definition_version"),
        scorer_version=column("scorer_version"),
        measured_at=column("measured_at"),
        items=column("items"),
        complete=column("complete"),
        missing_items=column("missing_items"),
        scores=scores,
        flags=column("flags"),
        warnings=[WarningOut.model_validate(warning) for warning in column("warnings")],
        declared_total=column("declared_total"),
        source=Source(column("source")),
        amendment_reason=column("amendment_reason"),
        created_at=column("created_at"),
    )


def _definition(registry: InstrumentRegistry, instrument_id: str) -> InstrumentDefinition:
    definition = registry.definitions.get(instrument_id)
    if definition is None:
        raise InvalidInput(
            f"unknown instrument {instrument_id!r}; nothing was stored",
            errors=[
                FieldError(
                    field="instrument",
                    message=f"unknown instrument {instrument_id!r}",
                    value=instrument_id,
                    allowed=registry.ids(),
                )
            ],
        )
    return definition


RESCORE_BATCH = 500


def outdated(
    db: Session, registry: InstrumentRegistry, *, clinic_id: uuid.UUID, instrument_id: str
) -> tuple[list[Measurement], int]:
    """The clinic's current measurements of the instrument scored under an older definition or scorer version,
    oldest first, and how many current measurements there are in all (read in batches of ``RESCORE_BATCH``)."""
    definition = registry.get(instrument_id)
    ids = list(
        db.scalars(
            select(Measurement.id)
            .where(
                Measurement.clinic_id == clinic_id,
                Measurement.instrument_id == instrument_id,
                Measurement.is_current.is_(True),
            )
            .order_by(Measurement.measured_at, Measurement.id)
        )
    )
    stale: list[Measurement] = []
    for start in range(0, len(ids), RESCORE_BATCH):
        batch = db.scalars(
            select(Measurement)
            .where(Measurement.id.in_(ids[start : start + RESCORE_BATCH]))
            .order_by(Measurement.measured_at, Measurement.id)
        )
        stale.extend(
            row for row in batch if row.definition_version != definition.version or row.scorer_version != SCORER_VERSION
        )
    return stale, len(ids)
