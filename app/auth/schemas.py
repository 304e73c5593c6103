from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from app.auth.permissions import Role
from app.core.schemas import ExpiryTime, Schema, shown_once


class ApiKeyCreate(Schema):
    role: Role = Field(description="admin, clinician, integration or researcher (patient tokens come from enrolment).")
    label: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    expires_at: ExpiryTime | None = Field(
        default=None, description="When the key stops working: after now, at most 3653 days ahead; none if omitted."
    )
    research_project_id: uuid.UUID | None = Field(
        default=None,
        description="For a researcher key: the research project its exports and analyses are of (a researcher key "
        "without one cannot export).",
    )


class ApiKeyRead(Schema):
    id: uuid.UUID
    prefix: str
    role: str
    label: str | None
    patient_id: uuid.UUID | None
    research_project_id: uuid.UUID | None = None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyRead):
    key: str = shown_once("The secret: shown this once, stored only as a keyed hash.")


class EnrolmentCreate(Schema):
    valid_hours: Annotated[int, Field(strict=True, ge=1, le=24 * 30)] = Field(
        default=72, description="How long the code may be exchanged."
    )
    token_days: Annotated[int, Field(strict=True, ge=1, le=730)] = Field(
        default=180, description="How long the patient token it becomes stays valid."
    )


class EnrolmentIssued(Schema):
    id: uuid.UUID
    patient_id: uuid.UUID
    code: str = shown_once("One-time code for the patient's app; shown once.")
    enrolment_uri: str = shown_once(
        "The enrolment link for a QR code, `<PUBLIC_BASE_URL>/enrol#code=<code>`: the patient's app takes the "
        "service's address and the code from it and posts the code to `/v1/enrolments/exchange` there; shown once."
    )
    expires_at: datetime


class EnrolmentExchange(Schema):
    code: Annotated[str, Field(min_length=4, max_length=40)]


class PatientToken(Schema):
    token: str = shown_once("Bearer token for this patient only; shown once.")
    patient_id: uuid.UUID
    expires_at: datetime


class Jwks(Schema):
    keys: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=10,
        description="Public JWKs, each with a `kid`: RSA (2048 to 8192 bits) for RS384, or EC on P-384 for ES384. "
        "Private members (`d`, `p`, `q`, …) and symmetric (`oct`) keys are refused.",
    )


class SmartClientCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    jwks: Jwks = Field(description="The client's public key set, given inline (this service fetches no URL).")
    scopes: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1,
        max_length=50,
        description="The system scopes it may be granted, e.g. `system/QuestionnaireResponse.c`, "
        "`system/Observation.rs`, `system/*.rs` (v1 `.read`/`.write` understood).",
    )


class SmartClientRead(Schema):
    id: uuid.UUID = Field(description="The OAuth client_id: its assertions' `iss` and `sub`.")
    key_id: uuid.UUID = Field(
        description="The key id its access tokens act under: the client's `key_id` in the audit trail."
    )
    name: str
    scopes: list[str]
    jwks: dict[str, Any]
    created_at: datetime
    revoked_at: datetime | None


class SmartToken(Schema):
    access_token: str = shown_once("A bearer token for `/fhir`; shown once, stored only as a keyed hash.")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_in: int = Field(description="Seconds it stays valid.")
    scope: str = Field(description="The scopes granted, space-separated (possibly fewer than asked).")


class OAuthErrorBody(Schema):
    """An OAuth 2.0 error (RFC 6749 §5.2)."""

    error: Literal["invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type", "invalid_scope"]
    error_description: str


class SmartConfiguration(Schema):
    """SMART App Launch 2.2 discovery, for Backend Services (client_credentials with private_key_jwt) only."""

    token_endpoint: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    scopes_supported: list[str]
    capabilities: list[str]
