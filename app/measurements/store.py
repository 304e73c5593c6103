"""Writing measurements into the record: new ones (one statement for many) and new versions (amendments).

Only ``app.clinical.recording`` calls these (an import-linter contract says so): it stores a measurement and does
what follows from it in the same transaction, so no path can store one and forget its alerts. Read that module to
see everything that happens when a measurement is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db import insert_rows, new_record_id, utcnow
from app.core.errors import Conflict, NotFound
from app.instruments import service as scoring
from app.measurements.models import Measurement
from app.measurements.service import NewMeasurement
from app.scoring import SCORER_VERSION
from app.therapy_sessions import service as therapy_sessions


def insert(db: Session, new: Sequence[NewMeasurement]) -> list[dict[str, Any]]:
    """Store new measurements with one statement for all rows; returns each stored row's column values.

    The therapy sessions named are checked (once each); the patients are not: the measurement's foreign key names
    the patient and the clinic, so the database refuses another clinic's patient (or none). The other keys (clinic,
    API key) are the caller's own.
    """
    sessions_checked: set[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = set()
    for data in new:
        if data.session_id is not None:
            key = (data.clinic_id, data.patient_id, data.session_id)
            if key not in sessions_checked:
                therapy_sessions.get(db, clinic_id=key[0], patient_id=key[1], session_id=key[2])
                sessions_checked.add(key)
    rows = [_values(data, measurement_id=new_record_id(), version=1) for data in new]
    insert_rows(db, Measurement, rows)
    return rows


def insert_one(db: Session, new: NewMeasurement) -> dict[str, Any]:
    """``insert`` of one measurement, with no lookup of its patient first: one the database refuses (another
    clinic's, or none) is reported as NotFound."""
    try:
        return insert(db, [new])[0]
    except IntegrityError:
        raise NotFound(f"no patient {new.patient_id}") from None


def insert_version(db: Session, current: Measurement, new: NewMeasurement, *, reason: str) -> Measurement:
    """Supersede ``current`` with ``new`` as its next version (both stay in the history)."""
    if new.session_id is not None and new.session_id != current.session_id:
        therapy_sessions.get(db, clinic_id=new.clinic_id, patient_id=new.patient_id, session_id=new.session_id)
    row = Measurement(**_values(new, measurement_id=current.measurement_id, version=current.version + 1))
    row.amendment_reason = reason
    current.is_current = False
    db.add(row)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:
        # Another amendment took version n+1 first (unique measurement_id + version).
        raise Conflict("the measurement was amended concurrently; read it again and retry") from None
    return row


def _values(data: NewMeasurement, *, measurement_id: uuid.UUID, version: int) -> dict[str, Any]:
    """Every column of a new measurement version."""
    result = data.result
    return {
        "id": new_record_id(),
        "measurement_id": measurement_id,
        "version": version,
        "is_current": True,
        "clinic_id": data.clinic_id,
        "patient_id": data.patient_id,
        "session_id": data.session_id,
        "instrument_id": data.definition.id,
        "definition_version": data.definition.version,
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
