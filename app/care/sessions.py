"""A therapy session recorded through the API, and what it makes due (at-each-session schedules).

``therapy_sessions`` sits below ``care``, so it cannot call care itself: the sessions route records a session
through ``create_session`` here, which stores it and then its occurrences, in the request's transaction. Sessions
that a research import creates make nothing due: they record the past, with the measurements taken at them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from app.care import completion, service
from app.therapy_sessions import service as therapy_sessions
from app.therapy_sessions.models import TherapySession
from app.therapy_sessions.schemas import TherapySessionCreate


def create_session(
    db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, data: TherapySessionCreate, now: datetime
) -> TherapySession:
    """Record a session (``therapy_sessions.service.create``), then one occurrence per instrument of each running
    at-each-session schedule it counts for, due from the session's start for the schedule's ``window_days``."""
    created = therapy_sessions.create(db, clinic_id=clinic_id, patient_id=patient_id, data=data)
    schedules = service.sessions_schedules(db, created)
    for schedule in schedules:
        service.add_for_session(db, schedule, created, now=now)
    if schedules:
        completion.complete_session(db, created.id, now)
    return created
