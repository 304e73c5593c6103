from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from app.auth.permissions import Role
from app.core.schemas import ExpiryTime, Schema, shown_once


class ApiKeyCreate(Schema):
    role: Role = Field(description="admin, clinician, integration or researcher (patient tokens come from enrolment).")
    label: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    expires_at: ExpiryTime | None = Field(
        default=None, description="When the key stops working: after now, at most 3653 days ahead; none if omitted."
    )


class ApiKeyRead(Schema):
    id: uuid.UUID
    prefix: str
    role: str
    label: str | None
    patient_id: uuid.UUID | None
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
