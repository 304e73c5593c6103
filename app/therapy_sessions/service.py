from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Conflict, NotFound
from app.therapy_sessions.models import TherapySession
from app.therapy_sessions.schemas import TherapySessionCreate


def create(db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, data: TherapySessionCreate) -> TherapySession:
    """Record a session for a patient already checked to belong to ``clinic_id``."""
    number = data.session_number
    if number is None:
        highest = db.scalar(
            select(func.max(TherapySession.session_number)).where(TherapySession.patient_id == patient_id)
        )
        number = (highest or 0) + 1
    therapy_session = TherapySession(
        clinic_id=clinic_id,
        patient_id=patient_id,
        session_number=number,
        started_at=data.started_at,
        episode=data.episode,
        label=data.label,
    )
    db.add(therapy_session)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:
        raise Conflict(f"this patient already has a session number {number}") from None
    return therapy_session


def get(db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, session_id: uuid.UUID) -> TherapySession:
    found = db.scalar(
        select(TherapySession).where(
            TherapySession.id == session_id,
            TherapySession.patient_id == patient_id,
            TherapySession.clinic_id == clinic_id,
        )
    )
    if found is None:
        raise NotFound(f"no session {session_id} for this patient")
    return found


def list_for_patient(
    db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, limit: int, offset: int
) -> list[TherapySession]:
    return list(
        db.scalars(
            select(TherapySession)
            .where(TherapySession.patient_id == patient_id, TherapySession.clinic_id == clinic_id)
            .order_by(TherapySession.session_number)
            .limit(limit)
            .offset(offset)
        )
    )
