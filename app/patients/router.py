from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.auth.dependencies import requires
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.core.lifecycle import AppRoute, Db
from app.core.pagination import PageDep
from app.core.problems import PROBLEM_RESPONSES
from app.core.schemas import Page
from app.idempotency.service import Idempotent
from app.patients import service
from app.patients.schemas import PatientCreate, PatientRead

router = APIRouter(route_class=AppRoute, prefix="/v1/patients", tags=["patients"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, response_model=PatientRead)
def create_patient(
    body: PatientCreate,
    db: Db,
    principal: Annotated[Principal, requires(Permission.PATIENTS_WRITE)],
    guard: Idempotent,
) -> Response:
    """Register a patient of the caller's clinic, optionally with external identifiers (no name is needed)."""
    patient = service.create(db, clinic_id=principal.clinic_id, data=body)
    return guard.respond(service.to_read(patient), status_code=201, headers={"Location": f"/v1/patients/{patient.id}"})


@router.get("")
def list_patients(
    db: Db,
    principal: Annotated[Principal, requires(Permission.PATIENTS_READ)],
    page: PageDep,
    external_id: Annotated[str | None, Query(max_length=300, description="Find by the clinic's own id.")] = None,
    identifier: Annotated[
        str | None, Query(max_length=601, description="Find by identifier, `system|value` or `value`.")
    ] = None,
) -> Page[PatientRead]:
    """The clinic's patients, oldest first; filter by an identifier to find an EHR's patient."""
    rows = service.list_patients(
        db,
        clinic_id=principal.clinic_id,
        limit=page.limit + 1,
        offset=page.offset,
        external_id=external_id,
        identifier=identifier,
    )
    return page.page(rows, service.to_read)


@router.get("/{patient_id}")
def get_patient(
    patient_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.PATIENTS_READ)],
) -> PatientRead:
    """One patient of the caller's clinic (another clinic's patient is a 404)."""
    return service.to_read(service.get(db, clinic_id=principal.clinic_id, patient_id=patient_id))
