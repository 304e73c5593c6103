from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.auth.dependencies import requires
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.care import adherence, service
from app.care.models import AssessmentOccurrence
from app.care.schemas import (
    AdherenceRead,
    AssessmentRead,
    CaseloadItem,
    DeclineRequest,
    DueAssessment,
    ScheduleCreate,
    ScheduleRead,
    Status,
)
from app.care.windows import DUE, MISSED
from app.clinical import reminders
from app.core.db import utcnow
from app.core.errors import InvalidInput
from app.core.lifecycle import AppRoute, Db
from app.core.pagination import PageDep
from app.core.problems import PROBLEM_RESPONSES
from app.core.schemas import FilterTime, Page
from app.idempotency.service import Idempotent
from app.instruments.dependencies import RegistryDep
from app.patients import service as patients

router = APIRouter(route_class=AppRoute, prefix="/v1/patients/{patient_id}", tags=["care"], responses=PROBLEM_RESPONSES)
me_router = APIRouter(route_class=AppRoute, prefix="/v1/me", tags=["patient tokens"], responses=PROBLEM_RESPONSES)
clinic_router = APIRouter(route_class=AppRoute, prefix="/v1/clinic", tags=["care"], responses=PROBLEM_RESPONSES)

InstrumentFilter = Annotated[str | None, Query(min_length=1, max_length=50, description="Instrument id, e.g. `phq9`.")]
DueFrom = Annotated[FilterTime | None, Query(alias="from", description="Windows opening at or after this.")]
DueTo = Annotated[FilterTime | None, Query(alias="to", description="Windows opening at or before this.")]


@router.post("/schedules", status_code=201, response_model=ScheduleRead)
def create_schedule(
    patient_id: uuid.UUID,
    body: ScheduleCreate,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.PATIENTS_WRITE)],
    guard: Idempotent,
) -> Response:
    """Ask the patient to answer instruments every `every_days` days (each window `window_days` long, from the start
    of the local day in `timezone`) or at each therapy session; every occurrence is stored now (a year ahead for an
    open-ended schedule), and measurements already in its windows complete them."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    schedule = service.create_schedule(
        db,
        registry,
        clinic_id=principal.clinic_id,
        patient_id=patient_id,
        data=body,
        key_id=principal.key_id,
        now=utcnow(),
    )
    reminders.raise_soon(db)  # its first open window's assessment.due, without waiting for the next period
    location = f"/v1/patients/{patient_id}/schedules/{schedule.id}"
    return guard.respond(service.schedule_read(schedule), status_code=201, headers={"Location": location})


@router.get("/schedules")
def list_schedules(
    patient_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    page: PageDep,
) -> Page[ScheduleRead]:
    """The patient's schedules, oldest first (ended ones included)."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    rows = service.list_schedules(
        db, clinic_id=principal.clinic_id, patient_id=patient_id, limit=page.limit + 1, offset=page.offset
    )
    return page.page(rows, service.schedule_read)


@router.get("/schedules/{schedule_id}")
def get_schedule(
    patient_id: uuid.UUID,
    schedule_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
) -> ScheduleRead:
    """One schedule of the patient's."""
    schedule = service.get_schedule(db, clinic_id=principal.clinic_id, patient_id=patient_id, schedule_id=schedule_id)
    return service.schedule_read(schedule)


@router.post("/schedules/{schedule_id}/end", response_model=ScheduleRead)
def end_schedule(
    patient_id: uuid.UUID,
    schedule_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.PATIENTS_WRITE)],
    guard: Idempotent,
) -> Response:
    """End a schedule today: its occurrences not yet open are cancelled; the past stays as it was."""
    schedule = service.end_schedule(
        db, clinic_id=principal.clinic_id, patient_id=patient_id, schedule_id=schedule_id, now=utcnow()
    )
    return guard.respond(service.schedule_read(schedule))


@router.get("/assessments")
def list_assessments(
    patient_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    page: PageDep,
    status: Annotated[Status | None, Query(description="The status at the time of the request.")] = None,
    instrument: InstrumentFilter = None,
    due_from: DueFrom = None,
    due_to: DueTo = None,
) -> Page[AssessmentRead]:
    """The patient's assessments (stored occurrences of their schedules), oldest window first. The status is that of
    now: a window that closed with nothing in it is `missed`."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    now = utcnow()
    rows = service.list_occurrences(
        db,
        clinic_id=principal.clinic_id,
        patient_id=patient_id,
        status=status,
        instrument=instrument,
        due_from_after=due_from,
        due_from_before=due_to,
        now=now,
        limit=page.limit + 1,
        offset=page.offset,
    )
    return page.page(rows, lambda row: service.to_read(row, now))


@router.post("/assessments/{assessment_id}/decline", response_model=AssessmentRead)
def decline_assessment(
    patient_id: uuid.UUID,
    assessment_id: uuid.UUID,
    body: DeclineRequest,
    db: Db,
    principal: Annotated[Principal, requires(Permission.PATIENTS_WRITE)],
    guard: Idempotent,
) -> Response:
    """Record, for the patient, that they decline a due or missed assessment (409 for any other status)."""
    now = utcnow()
    occurrence = service.decline(
        db,
        clinic_id=principal.clinic_id,
        patient_id=patient_id,
        occurrence_id=assessment_id,
        reason=body.reason,
        actor="clinician",
        key_id=principal.key_id,
        now=now,
    )
    return guard.respond(service.to_read(occurrence, now))


@me_router.get("/assessments")
def list_own_due_assessments(
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    page: PageDep,
) -> Page[DueAssessment]:
    """For a patient token: what its patient should answer now (due), soonest closing first in each window, with
    what the app needs to show it: the instrument's title and version, and links to its definition and its FHIR
    Questionnaire."""
    patient_id = _own_patient(principal)
    now = utcnow()
    rows = service.list_occurrences(
        db,
        clinic_id=principal.clinic_id,
        patient_id=patient_id,
        status=DUE,
        instrument=None,
        due_from_after=None,
        due_from_before=None,
        now=now,
        limit=page.limit + 1,
        offset=page.offset,
    )

    def due(row: AssessmentOccurrence) -> DueAssessment:
        definition = registry.get(row.instrument_id)
        return DueAssessment(
            id=row.id,
            instrument=definition.id,
            title=definition.name,
            version=definition.version,
            due_from=row.due_from,
            due_by=row.due_by,
            status="due",
            definition=f"/v1/instruments/{definition.id}",
            questionnaire=f"/fhir/Questionnaire/{definition.id}",
        )

    return page.page(rows, due)


@me_router.post("/assessments/{assessment_id}/decline", response_model=AssessmentRead)
def decline_own_assessment(
    assessment_id: uuid.UUID,
    body: DeclineRequest,
    db: Db,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    guard: Idempotent,
) -> Response:
    """For a patient token: decline one of its own patient's due or missed assessments (another's is a 404)."""
    now = utcnow()
    occurrence = service.decline(
        db,
        clinic_id=principal.clinic_id,
        patient_id=_own_patient(principal),
        occurrence_id=assessment_id,
        reason=body.reason,
        actor="patient",
        key_id=principal.key_id,
        now=now,
    )
    return guard.respond(service.to_read(occurrence, now))


def _own_patient(principal: Principal) -> uuid.UUID:
    if principal.patient_id is None:
        raise InvalidInput("only a patient token has assessments of its own; use /v1/patients/{patient_id}/assessments")
    return principal.patient_id


@clinic_router.get("/adherence")
def get_adherence(
    db: Db,
    principal: Annotated[Principal, requires(Permission.OUTCOMES_READ)],
    due_from: DueFrom = None,
    due_to: DueTo = None,
    instrument: InstrumentFilter = None,
) -> AdherenceRead:
    """Completed, declined, missed and due counts of the clinic's assessments whose windows opened within [from, to],
    and completion_rate = completed ÷ (completed + declined + missed); overall and per instrument."""
    return adherence.adherence(
        db,
        clinic_id=principal.clinic_id,
        due_from_after=due_from,
        due_from_before=due_to,
        instrument=instrument,
        now=utcnow(),
    )


@clinic_router.get("/assessments")
def list_unanswered(
    db: Db,
    principal: Annotated[Principal, requires(Permission.OUTCOMES_READ)],
    page: PageDep,
    status: Annotated[
        Literal["due", "missed"] | None, Query(description="Due now, or missed; both when left out.")
    ] = None,
    instrument: InstrumentFilter = None,
    patient_id: Annotated[uuid.UUID | None, Query(description="Only this patient's.")] = None,
) -> Page[CaseloadItem]:
    """Who has not answered: the clinic's due or missed assessments, oldest window first, with each patient's
    identifiers."""
    found = adherence.caseload(
        db,
        clinic_id=principal.clinic_id,
        statuses=[status] if status else [DUE, MISSED],
        instrument=instrument,
        patient_id=patient_id,
        now=utcnow(),
        limit=page.limit + 1,
        offset=page.offset,
    )
    return page.page(found, lambda item: item)
