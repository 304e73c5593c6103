from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from app.auth import enrolment, scopes, service, smart_clients, smart_tokens
from app.auth.dependencies import EnrolmentAttemptDep, forget_when_committed, requires
from app.auth.models import ApiKey, SmartClient
from app.auth.permissions import STAFF_ROLES, Permission, Role
from app.auth.schemas import (
    ApiKeyCreate,
    ApiKeyIssued,
    ApiKeyRead,
    EnrolmentCreate,
    EnrolmentExchange,
    EnrolmentIssued,
    OAuthErrorBody,
    PatientToken,
    SmartClientCreate,
    SmartClientRead,
    SmartConfiguration,
    SmartToken,
)
from app.auth.service import Principal
from app.core.config import Settings
from app.core.errors import FieldError, InvalidInput, NotAuthenticated
from app.core.lifecycle import AppRoute, Db, SettingsDep
from app.core.pagination import PageDep
from app.core.problems import PROBLEM_RESPONSES
from app.core.schemas import Page
from app.core.state import state_of
from app.idempotency.service import Idempotent
from app.patients import service as patients
from app.research import projects as research_projects

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
    if body.role is Role.RESEARCHER and body.research_project_id is None:
        raise InvalidInput(
            "a researcher key is issued for one research project",
            errors=[FieldError(field="research_project_id", message="required for role researcher")],
        )
    if body.research_project_id is not None:
        research_projects.get(db, clinic_id=principal.clinic_id, project_id=body.research_project_id)
    issued = service.issue_api_key(
        db,
        clinic=service.get_clinic(db, principal.clinic_id),
        role=body.role,
        pepper=settings.api_key_pepper.get_secret_value(),
        label=body.label,
        expires_at=body.expires_at,
        created_by_key_id=principal.key_id,
        research_project_id=body.research_project_id,
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


def _client(client: SmartClient) -> SmartClientRead:
    return SmartClientRead(
        id=client.id,
        key_id=client.key_id,
        name=client.name,
        scopes=client.scopes.split(),
        jwks=client.jwks,
        created_at=client.created_at,
        revoked_at=client.revoked_at,
    )


@router.post("/smart-clients", status_code=201, response_model=SmartClientRead, tags=["smart"])
def register_smart_client(
    body: SmartClientCreate,
    db: Db,
    principal: Annotated[Principal, requires(Permission.KEYS_MANAGE)],
    guard: Idempotent,
) -> Response:
    """Register a SMART Backend Services client of the caller's clinic: its public keys (inline JWKS) and the system
    scopes it may be granted. Its `id` is the client_id its assertions name."""
    client = smart_clients.register(
        db,
        clinic_id=principal.clinic_id,
        name=body.name,
        jwks=body.jwks.model_dump(),
        allowed_scopes=body.scopes,
        created_by_key_id=principal.key_id,
    )
    return guard.respond(_client(client), status_code=201)


@router.get("/smart-clients", tags=["smart"])
def list_smart_clients(
    db: Db,
    principal: Annotated[Principal, requires(Permission.KEYS_MANAGE)],
    page: PageDep,
) -> Page[SmartClientRead]:
    """The clinic's SMART clients, revoked ones included."""
    rows = smart_clients.listed(db, clinic_id=principal.clinic_id, limit=page.limit + 1, offset=page.offset)
    return page.page(rows, _client)


@router.get("/smart-clients/{client_id}", tags=["smart"])
def read_smart_client(
    client_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.KEYS_MANAGE)],
) -> SmartClientRead:
    return _client(smart_clients.get(db, clinic_id=principal.clinic_id, client_id=client_id))


@router.post("/smart-clients/{client_id}/revoke", response_model=SmartClientRead, tags=["smart"])
def revoke_smart_client(
    client_id: uuid.UUID,
    request: Request,
    db: Db,
    principal: Annotated[Principal, requires(Permission.KEYS_MANAGE)],
    guard: Idempotent,
) -> Response:
    """Revoke a client at once: its access tokens stop working and the token endpoint refuses it."""
    revoked = smart_clients.revoke(db, clinic_id=principal.clinic_id, client_id=client_id)
    forget_when_committed(request, db, revoked.key_id)
    return guard.respond(_client(revoked))


smart_router = APIRouter(
    route_class=AppRoute, tags=["smart"], responses={status: PROBLEM_RESPONSES[status] for status in (413, 429)}
)
"""SMART discovery and the token endpoint: public (the token endpoint authenticates the client by its assertion).
Included before the FHIR router, whose catch-all would otherwise answer ``/fhir/.well-known/...``."""

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
TOKEN_BODY_OPENAPI: dict[str, object] = {
    "requestBody": {
        "required": True,
        "content": {
            smart_tokens.FORM_MEDIA_TYPE: {
                "schema": {
                    "type": "object",
                    "required": ["grant_type", "scope", "client_assertion_type", "client_assertion"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": [smart_tokens.GRANT_TYPE]},
                        "scope": {"type": "string", "example": "system/QuestionnaireResponse.c system/Observation.rs"},
                        "client_assertion_type": {"type": "string", "enum": [smart_tokens.ASSERTION_TYPE]},
                        "client_assertion": {"type": "string", "description": "A JWT signed RS384 or ES384."},
                        "client_id": {"type": "string"},
                    },
                }
            }
        },
    }
}


def smart_configuration_of(settings: Settings) -> SmartConfiguration:
    return SmartConfiguration(
        token_endpoint=f"{settings.public_base}{smart_tokens.TOKEN_PATH}",
        grant_types_supported=[smart_tokens.GRANT_TYPE],
        token_endpoint_auth_methods_supported=["private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported=sorted(smart_clients.ALGORITHMS.values(), reverse=True),
        scopes_supported=list(scopes.SUPPORTED_SCOPES),
        capabilities=["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    )


FHIR_REFUSALS: dict[int | str, dict[str, object]] = {
    status: {
        "description": PROBLEM_RESPONSES[status]["description"] + " (OperationOutcome)",
        "content": {"application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}},
    }
    for status in (413, 429)
}
"""The middleware's refusals under ``/fhir`` are OperationOutcomes, the discovery document's there too (spelled out:
``app.fhir``, which has them, is a layer above this one)."""


@smart_router.get("/.well-known/smart-configuration", name="smart_configuration")
@smart_router.get("/fhir/.well-known/smart-configuration", name="fhir_smart_configuration", responses=FHIR_REFUSALS)
def smart_configuration(settings: SettingsDep) -> SmartConfiguration:
    """SMART App Launch 2.2 discovery: Backend Services only (client_credentials with private_key_jwt)."""
    return smart_configuration_of(settings)


async def verified_token_request(request: Request) -> smart_tokens.VerifiedRequest:
    """The token request, its client authenticated by its assertion and its scopes granted, before the handler (so a
    refused request never waits for a writer); on a read connection of its own, like an API key's lookup. Refusals
    are ``OAuthError``s, which the app renders as RFC 6749 errors (``oauth_error_response``)."""
    form = smart_tokens.parse_form(request.headers.get("content-type"), await request.body())
    state = state_of(request)
    endpoint = smart_configuration_of(state.settings).token_endpoint
    lookups = state.database.lookups

    def verify() -> smart_tokens.VerifiedRequest:
        with lookups.connect() as connection:
            return smart_tokens.verify(connection, form, token_endpoint=endpoint)

    return verify() if lookups.dialect.name == "sqlite" else await run_in_threadpool(verify)


async def oauth_error_response(_request: Request, exc: Exception) -> Response:
    """An ``OAuthError`` as RFC 6749 §5.2 has it: 400, ``application/json``, ``{"error", "error_description"}``."""
    assert isinstance(exc, smart_tokens.OAuthError)
    refused = OAuthErrorBody.model_validate({"error": exc.error, "error_description": exc.detail})
    return JSONResponse(refused.model_dump(), status_code=400, headers=NO_STORE)


@smart_router.post(
    smart_tokens.TOKEN_PATH,
    response_model=SmartToken,
    responses={400: {"model": OAuthErrorBody, "description": "An OAuth 2.0 error (RFC 6749 §5.2)"}},
    openapi_extra=TOKEN_BODY_OPENAPI,
)
def issue_smart_token(
    verified: Annotated[smart_tokens.VerifiedRequest, Depends(verified_token_request)],
    request: Request,
    db: Db,
    settings: SettingsDep,
) -> Response:
    """SMART Backend Services token endpoint: `client_credentials` with a `private_key_jwt` client assertion (RS384
    or ES384, `aud` = this URL as discovery gives it, `exp` at most 5 minutes ahead, a `jti` never used before). The
    access token works on `/fhir` only, for the scopes granted, for `expires_in` seconds."""
    request.state.principal = verified.principal  # the audit trail names the client
    issued = smart_tokens.issue(db, verified, pepper=settings.api_key_pepper.get_secret_value())
    answer = SmartToken(access_token=issued.token, expires_in=issued.expires_in, scope=issued.scope)
    return JSONResponse(answer.model_dump(), headers=NO_STORE)
