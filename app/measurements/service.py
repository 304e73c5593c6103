"""Store scored measurements; amend them as new versions; read the current version or the whole history."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clinical.alerts import raise_alerts_for, raise_alerts_for_new
from app.core.db import insert_rows, new_record_id, utcnow
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.instruments import service as scoring
from app.instruments.registry import InstrumentRegistry
from app.instruments.schemas import WarningOut
from app.measurements.models import Measurement
from app.measurements.schemas import MeasurementRead, Source
from app.scoring import SCORER_VERSION
from app.scoring.definition import InstrumentDefinition
from app.scoring.engine import Answer, ScoreResult
from app.therapy_sessions import service as therapy_sessions


@dataclass(frozen=True)
class NewMeasurement:
    """A measurement to score and store, from any source (API, FHIR, import)."""

    clinic_id: uuid.UUID
    patient_id: uuid.UUID
    instrument: str
    items: Mapping[str, Answer]
    measured_at: datetime
    source: Source
    session_id: uuid.UUID | None = None
    declared_total: float | None = None
    recorded_by_key_id: uuid.UUID | None = None
    score: ScoreResult | None = None
    """The result of scoring ``items`` under the instrument's current definition, when the caller already has it
    (FHIR scores a response before storing it, to refuse an unscorable one); scored here otherwise."""


def create(session: Session, registry: InstrumentRegistry, data: NewMeasurement) -> Measurement:
    """Score and store a new measurement of one of the clinic's patients (``create_values``, as an entity)."""
    return Measurement(**create_values(session, registry, data))


def create_values(session: Session, registry: InstrumentRegistry, data: NewMeasurement) -> dict[str, Any]:
    """Score and store a new measurement of one of the clinic's patients; returns the stored row's column values.

    No lookup first: the measurement's foreign key names the patient and the clinic, so the database refuses
    another clinic's patient (or none), reported as NotFound. The other keys (clinic, therapy session, API key) are
    the caller's own or checked before the insert.
    """
    try:
        return create_many(session, registry, [data])[0]
    except IntegrityError:
        raise NotFound(f"no patient {data.patient_id}") from None


def create_many(
    session: Session, registry: InstrumentRegistry, items: Sequence[NewMeasurement]
) -> list[dict[str, Any]]:
    """Score and store new measurements with one statement for all rows (and one for their alerts); returns each
    stored row's column values. All or nothing: the first invalid answer raises before anything is stored."""
    sessions_checked: set[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = set()
    rows: list[dict[str, Any]] = []
    for data in items:
        definition = _definition(registry, data.instrument)
        if data.session_id is not None:
            key = (data.clinic_id, data.patient_id, data.session_id)
            if key not in sessions_checked:
                therapy_sessions.get(session, clinic_id=key[0], patient_id=key[1], session_id=key[2])
                sessions_checked.add(key)
        rows.append(_scored_values(definition, data, measurement_id=new_record_id(), version=1))
    insert_rows(session, Measurement, rows)
    raise_alerts_for_new(session, rows)
    return rows


def amend(
    session: Session,
    registry: InstrumentRegistry,
    *,
    current: Measurement,
    items: Mapping[str, Answer],
    reason: str,
    recorded_by_key_id: uuid.UUID | None,
    measured_at: datetime | None = None,
    session_id: uuid.UUID | None = None,
    declared_total: float | None = None,
) -> Measurement:
    """Supersede ``current`` with a new version scored under the instrument's current definition."""
    definition = _definition(registry, current.instrument_id)
    data = NewMeasurement(
        clinic_id=current.clinic_id,
        patient_id=current.patient_id,
        instrument=current.instrument_id,
        items=items,
        measured_at=measured_at or current.measured_at,
        source=Source(current.source),
        session_id=session_id or current.session_id,
        declared_total=declared_total,
        recorded_by_key_id=recorded_by_key_id,
    )
    if session_id is not None:
        therapy_sessions.get(session, clinic_id=data.clinic_id, patient_id=data.patient_id, session_id=session_id)
    row = _scored_row(definition, data, measurement_id=current.measurement_id, version=current.version + 1)
    row.amendment_reason = reason
    current.is_current = False
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Another amendment took version n+1 first (unique measurement_id + version).
        raise Conflict("the measurement was amended concurrently; read it again and retry") from None
    raise_alerts_for(session, row)
    return row


def get_current(
    session: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, measurement_id: uuid.UUID
) -> Measurement:
    row = session.scalar(
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
    session: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, measurement_id: uuid.UUID
) -> list[Measurement]:
    rows = list(
        session.scalars(
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
    session: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    limit: int,
    offset: int,
    instrument: str | None = None,
    measured_from: datetime | None = None,
    measured_to: datetime | None = None,
) -> list[Measurement]:
    query = select(Measurement).where(
        Measurement.patient_id == patient_id,
        Measurement.clinic_id == clinic_id,
        Measurement.is_current.is_(True),
    )
    if instrument is not None:
        query = query.where(Measurement.instrument_id == instrument)
    if measured_from is not None:
        query = query.where(Measurement.measured_at >= measured_from)
    if measured_to is not None:
        query = query.where(Measurement.measured_at <= measured_to)
    query = query.order_by(Measurement.measured_at, Measurement.created_at, Measurement.id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def to_read(row: Measurement, registry: InstrumentRegistry) -> MeasurementRead:
    return _read(partial(getattr, row), registry)


def values_to_read(values: Mapping[str, Any], registry: InstrumentRegistry) -> MeasurementRead:
    """``to_read`` of a row just stored (``create_values``), without building an entity for it."""
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


def _scored_row(
    definition: InstrumentDefinition, data: NewMeasurement, *, measurement_id: uuid.UUID, version: int
) -> Measurement:
    return Measurement(**_scored_values(definition, data, measurement_id=measurement_id, version=version))


def _scored_values(
    definition: InstrumentDefinition, data: NewMeasurement, *, measurement_id: uuid.UUID, version: int
) -> dict[str, Any]:
    """Every column of a new measurement version, scored under ``definition``."""
    result = data.score
    if result is None or (result.instrument, result.version) != (definition.id, definition.version):
        result = scoring.score_answers(definition, data.items, declared_total=data.declared_total)
    return {
        "id": new_record_id(),
        "measurement_id": measurement_id,
        "version": version,
        "is_current": True,
        "clinic_id": data.clinic_id,
        "patient_id": data.patient_id,
        "session_id": data.session_id,
        "instrument_id": definition.id,
        "definition_version": definition.version,
        "scorer_version": SCORER_VERSION,
        "measured_at": data.measured_at,
        "items": dict(data.items),
        "complete": result.complete,
        "missing_items": list(result.missing_items),
        "scores": scoring.stored_scores(result),
        "flags": list(result.flags),
        "warnings": scoring.stored_warnings(result),
        "declared_total": data.declared_total,
        "source": data.source.value,
        "amendment_reason": None,
        "recorded_by_key_id": data.recorded_by_key_id,
        "created_at": utcnow(),
    }


RESCORE_BATCH = 500


def rescore(
    session: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    instrument_id: str,
    recorded_by_key_id: uuid.UUID,
) -> tuple[int, int]:
    """Amend every current measurement of the clinic scored under an older definition or scorer version.

    Returns (re-scored, already current). All or nothing: answers the new definition refuses abort the whole run.
    """
    definition = registry.get(instrument_id)
    ids = list(
        session.scalars(
            select(Measurement.id)
            .where(
                Measurement.clinic_id == clinic_id,
                Measurement.instrument_id == instrument_id,
                Measurement.is_current.is_(True),
            )
            .order_by(Measurement.measured_at, Measurement.id)
        )
    )
    rescored = 0
    reason = f"re-scored under {definition.id} definition {definition.version} (scorer {SCORER_VERSION})"
    for start in range(0, len(ids), RESCORE_BATCH):
        batch = session.scalars(select(Measurement).where(Measurement.id.in_(ids[start : start + RESCORE_BATCH])))
        for row in list(batch):
            if row.definition_version == definition.version and row.scorer_version == SCORER_VERSION:
                continue
            amend(
                session,
                registry,
                current=row,
                items=row.items,
                reason=reason,
                recorded_by_key_id=recorded_by_key_id,
                declared_total=row.declared_total,
            )
            rescored += 1
    return rescored, len(ids) - rescored
