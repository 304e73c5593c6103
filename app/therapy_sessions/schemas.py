from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from app.core.schemas import ClinicalTime, Schema


class TherapySessionCreate(Schema):
    started_at: ClinicalTime = Field(
        description="When the session began, with a time zone; from 1900-01-01 to now plus 5 minutes."
    )
    session_number: Annotated[int, Field(strict=True, ge=1, le=100_000)] | None = Field(
        default=None, description="Defaults to one more than the patient's highest session number."
    )
    episode: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="An episode of care, e.g. `inpatient-2026`."
    )
    label: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class TherapySessionRead(Schema):
    id: uuid.UUID
    patient_id: uuid.UUID
    session_number: int
    started_at: datetime
    episode: str | None
    label: str | None
    created_at: datetime
