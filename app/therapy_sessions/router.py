from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response

from app.auth.dependencies import requires
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.care import sessions as care_sessions
from app.core.db import utcnow
from app.core.lifecycle import AppRoute, Db
from app.core.pagination import PageDep
from app.core.problems import PROBLEM_RESPONSES
from app.core.schemas import Page
from app.idempotency.service import Idempotent
from app.patients import service as patients
from app.therapy_sessions import service
from app.therapy_sessions.schemas import TherapySessionCreate, TherapySessionRead

router = APIRouter(
    route_class=AppRoute, prefix="/v1/patients/{patient_id}/sessions", tags=["sessions"], responses=PROBLEM_RESPONSES
)


@router.post("", status_code=201, response_model=TherapySessionRead)
def create_session(
    patient_id: uuid.UUID,
    body: TherapySessionCreate,
    db: Db,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    guard: Idempotent,
) -> Response:
    """Record a therapy session; measurements can then name it. Each running at-each-session schedule of the
    patient's makes its instruments due from the session's start."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    created = care_sessions.create_session(
        db, clinic_id=principal.clinic_id, patient_id=patient_id, data=body, now=utcnow()
    )
    return guard.respond(TherapySessionRead.model_validate(created), status_code=201)


@router.get("")
def list_sessions(
    patient_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    page: PageDep,
) -> Page[TherapySessionRead]:
    """The patient's sessions in session-number order."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    rows = service.list_for_patient(
        db, clinic_id=principal.clinic_id, patient_id=patient_id, limit=page.limit + 1, offset=page.offset
    )
    return page.page(rows, TherapySessionRead.model_validate)
