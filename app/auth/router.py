from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth import enrolment, service
from app.auth.dependencies import EnrolmentAttemptDep, forget_when_committed, requires
from app.auth.models import ApiKey
from app.auth.permissions import STAFF_ROLES, Permission
from app.auth.schemas import (
    ApiKeyCreate,
    ApiKeyIssued,
    ApiKeyRead,
    EnrolmentCreate,
    EnrolmentExchange,
    EnrolmentIssued,
    PatientToken,
)
from app.auth.service import Principal
from app.core.errors import FieldError, InvalidInput, NotAuthenticated
from app.core.lifecycle import AppRoute, Db, SettingsDep
from app.core.pagination import PageDep
from app.core.problems import PROBLEM_RESPONSES
from app.core.schemas import Page
from app.idempotency.service import Idempotent
from app.patients import service as patients

router = APIRouter(route_class=AppRoute, prefix="/v1", responses=PROBLEM_RESPONSES)


def _read(api_key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead.model_validate(api_key)


@router.post("/api-keys", status_code=201, response_model=ApiKeyIssued, tags=["api keys"])
def create_api_key(
    body: ApiKeyCreate,
    db: Db,
    settings: SettingsDep,
    principal: Annotated[Principal, requires(Permission.KEYS_MANAGE)],
    guard: Idempotent,
) -> Response:
    """Issue a staff key for the caller's clinic; the secret is in this response only."""
    if body.role not in STAFF_ROLES:
        raise InvalidInput(
            "patient tokens come from an enrolment code",
            errors=[
                FieldError(field="role", message="not a staff role", value=body.role.value, allowed=list(STAFF_ROLES))
            ],
        )
    issued = service.issue_api_key(
        db,
        clinic=service.get_clinic(db, principal.clinic_id),
        role=body.role,
        pepper=settings.api_key_pepper.get_secret_value(),
        label=body.label,
        expires_at=body.expires_at,
        created_by_key_id=principal.key_id,
    )
    payload = ApiKeyIssued(**_read(issued.api_key).model_dump(), key=issued.key)
    return guard.respond(payload, status_code=201)


@router.get("/api-keys", tags=["api keys"])
def list_api_keys(
    db: Db,
    principal: Annotated[Principal, requires(Permission.KEYS_MANAGE)],
    page: PageDep,
) -> Page[ApiKeyRead]:
    """The clinic's staff keys (never their secrets)."""
    rows = service.list_keys(db, clinic_id=principal.clinic_id, limit=page.limit + 1, offset=page.offset)
    return page.page(rows, _read)


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyRead, tags=["api keys"])
def revoke_api_key(
    key_id: uuid.UUID,
    request: Request,
    db: Db,
    principal: Annotated[Principal, requires(Permission.KEYS_MANAGE)],
    guard: Idempotent,
) -> Response:
    """Revoke a staff key at once."""
    revoked = service.revoke_key(db, clinic_id=principal.clinic_id, key_id=key_id)
    forget_when_committed(request, db, revoked.id)
    return guard.respond(_read(revoked))


@router.post(
    "/patients/{patient_id}/enrolments", status_code=201, response_model=EnrolmentIssued, tags=["patient tokens"]
)
def create_enrolment(
    patient_id: uuid.UUID,
    body: EnrolmentCreate,
    db: Db,
    settings: SettingsDep,
    principal: Annotated[Principal, requires(Permission.ENROLMENTS_MANAGE)],
    guard: Idempotent,
) -> Response:
    """A one-time code the patient's app exchanges for a token for this patient only, and the same as a link for a
    QR code (``<PUBLIC_BASE_URL>/enrol#code=<code>``: the app reads the service's address and the code from it and
    posts the code to ``/v1/enrolments/exchange`` there)."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    issued = enrolment.create(
        db,
        clinic_id=principal.clinic_id,
        patient_id=patient_id,
        created_by_key_id=principal.key_id,
        valid_hours=body.valid_hours,
        token_days=body.token_days,
        pepper=settings.api_key_pepper.get_secret_value(),
    )
    payload = EnrolmentIssued(
        id=issued.enrolment.id,
        patient_id=patient_id,
        code=issued.code,
        enrolment_uri=enrolment.link(settings.public_base, issued.code),
        expires_at=issued.enrolment.expires_at,
    )
    return guard.respond(payload, status_code=201)


@router.post("/patients/{patient_id}/enrolments/{enrolment_id}/revoke", status_code=204, tags=["patient tokens"])
def revoke_enrolment(
    patient_id: uuid.UUID,
    enrolment_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.ENROLMENTS_MANAGE)],
) -> Response:
    """Withdraw an unused enrolment code."""
    enrolment.revoke(db, clinic_id=principal.clinic_id, patient_id=patient_id, enrolment_id=enrolment_id)
    return Response(status_code=204)


@router.get("/patients/{patient_id}/tokens", tags=["patient tokens"])
def list_patient_tokens(
    patient_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.ENROLMENTS_MANAGE)],
    page: PageDep,
) -> Page[ApiKeyRead]:
    """The patient tokens issued for this patient."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    rows = service.list_keys(
        db, clinic_id=principal.clinic_id, patient_id=patient_id, limit=page.limit + 1, offset=page.offset
    )
    return page.page(rows, _read)


@router.post("/patients/{patient_id}/tokens/{key_id}/revoke", response_model=ApiKeyRead, tags=["patient tokens"])
def revoke_patient_token(
    patient_id: uuid.UUID,
    key_id: uuid.UUID,
    request: Request,
    db: Db,
    principal: Annotated[Principal, requires(Permission.ENROLMENTS_MANAGE)],
    guard: Idempotent,
) -> Response:
    """Revoke a patient's token (a lost phone): the app gets 401 from then on."""
    revoked = service.revoke_key(db, clinic_id=principal.clinic_id, key_id=key_id, patient_id=patient_id)
    forget_when_committed(request, db, revoked.id)
    return guard.respond(_read(revoked))


@router.post("/enrolments/exchange", status_code=201, name="exchange_enrolment_code", tags=["patient tokens"])
def exchange_enrolment_code(
    body: EnrolmentExchange, attempt: EnrolmentAttemptDep, db: Db, settings: SettingsDep
) -> PatientToken:
    """The app spends the one-time code (no other credentials) and receives its patient token.

    Attempts are limited per client address, and wrong codes from all addresses together (429 with Retry-After)."""
    try:
        exchanged = enrolment.exchange(db, code=body.code, pepper=settings.api_key_pepper.get_secret_value())
    except NotAuthenticated:
        attempt.failed()
        raise
    return PatientToken(token=exchanged.token, patient_id=exchanged.patient_id, expires_at=exchanged.expires_at)
