from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.auth.dependencies import requires
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.clinical import recording
from app.core.errors import InvalidInput
from app.core.lifecycle import AppRoute, BoundedReadDb, BoundedWriteDb, Db
from app.core.pagination import PageDep
from app.core.problems import PROBLEM_RESPONSES
from app.core.responses import values_response
from app.core.schemas import FilterTime, Page
from app.idempotency.service import IdempotencyGuard, Idempotent
from app.instruments.dependencies import RegistryDep
from app.instruments.registry import InstrumentRegistry
from app.measurements import service
from app.measurements.schemas import MeasurementAmend, MeasurementCreate, MeasurementRead, Source
from app.patients import service as patients

router = APIRouter(
    route_class=AppRoute,
    prefix="/v1/patients/{patient_id}/measurements",
    tags=["measurements"],
    responses=PROBLEM_RESPONSES,
)


me_router = APIRouter(route_class=AppRoute, prefix="/v1/me", tags=["patient tokens"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, response_model=MeasurementRead)
def create_measurement(
    patient_id: uuid.UUID,
    body: MeasurementCreate,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    guard: Idempotent,
    db: BoundedWriteDb,
) -> Response:
    """Score and store one administration of an instrument; invalid answers store nothing."""
    return _store(patient_id, body, db, registry, principal, guard)


@me_router.post("/measurements", status_code=201, response_model=MeasurementRead)
def create_own_measurement(
    body: MeasurementCreate,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    guard: Idempotent,
    db: BoundedWriteDb,
) -> Response:
    """For a patient token: store the token's own patient's response (the patient is implied)."""
    if principal.patient_id is None:
        raise InvalidInput("only a patient token implies a patient; post to /v1/patients/{patient_id}/measurements")
    return _store(principal.patient_id, body, db, registry, principal, guard)


def _store(
    patient_id: uuid.UUID,
    body: MeasurementCreate,
    db: Session,
    registry: InstrumentRegistry,
    principal: Principal,
    guard: IdempotencyGuard,
) -> Response:
    new = service.new_measurement(
        registry,
        body.instrument,
        clinic_id=principal.clinic_id,
        patient_id=patient_id,
        items=body.items,
        measured_at=body.measured_at,
        session_id=body.session_id,
        declared_total=body.declared_total,
        source=Source.API,
        recorded_by_key_id=principal.key_id,
    )
    row = recording.record_one(db, new)
    location = f"/v1/patients/{patient_id}/measurements/{row['measurement_id']}"
    return guard.respond(service.values_to_read(row, registry), status_code=201, headers={"Location": location})


@router.get("", response_model=Page[MeasurementRead])
def list_measurements(
    patient_id: uuid.UUID,
    db: BoundedReadDb,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    page: PageDep,
    instrument: Annotated[str | None, Query(max_length=50)] = None,
    measured_from: Annotated[FilterTime | None, Query(alias="from")] = None,
    measured_to: Annotated[FilterTime | None, Query(alias="to")] = None,
) -> Response:
    """The patient's current measurements in time order, optionally one instrument within [from, to]."""
    rows = service.list_current(
        db,
        clinic_id=principal.clinic_id,
        patient_id=patient_id,
        limit=page.limit + 1,
        offset=page.offset,
        instrument=instrument,
        measured_from=measured_from,
        measured_to=measured_to,
    )
    if not rows:  # a row of the clinic's is of its patient (the foreign key): only none leaves the patient in doubt
        patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    return values_response(page.page_values(rows, lambda row: service.read_values(row, registry)))


@router.get("/{measurement_id}")
def get_measurement(
    patient_id: uuid.UUID,
    measurement_id: uuid.UUID,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
) -> MeasurementRead:
    """The current version of a measurement."""
    row = service.get_current(db, clinic_id=principal.clinic_id, patient_id=patient_id, measurement_id=measurement_id)
    return service.to_read(row, registry)


@router.post("/{measurement_id}/amend", status_code=201, response_model=MeasurementRead)
def amend_measurement(
    patient_id: uuid.UUID,
    measurement_id: uuid.UUID,
    body: MeasurementAmend,
    db: BoundedWriteDb,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_AMEND)],
    guard: Idempotent,
) -> Response:
    """Correct a measurement: a new version supersedes the current one, and both stay in the history."""
    current = service.get_current(
        db, clinic_id=principal.clinic_id, patient_id=patient_id, measurement_id=measurement_id
    )
    new = service.new_version(
        registry,
        current,
        items=body.items,
        recorded_by_key_id=principal.key_id,
        measured_at=body.measured_at,
        session_id=body.session_id,
        declared_total=body.declared_total,
    )
    row = recording.record_version(db, current, new, reason=body.reason)
    return guard.respond(service.to_read(row, registry), status_code=201)


@router.get("/{measurement_id}/history")
def measurement_history(
    patient_id: uuid.UUID,
    measurement_id: uuid.UUID,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
) -> list[MeasurementRead]:
    """Every version of a measurement, oldest first; the last one is current."""
    rows = service.history(db, clinic_id=principal.clinic_id, patient_id=patient_id, measurement_id=measurement_id)
    return [service.to_read(row, registry) for row in rows]
