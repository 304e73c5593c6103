from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from app.core.schemas import ClinicalTime, DeclaredTotal, ItemAnswer, ItemAnswers, Schema
from app.instruments.schemas import ScoreOut, WarningOut


class Source(StrEnum):
    API = "api"
    FHIR = "fhir"
    IMPORT = "import"


class MeasurementCreate(Schema):
    instrument: Annotated[str, Field(min_length=1, max_length=50, examples=["phq9"])]
    items: ItemAnswers
    measured_at: ClinicalTime = Field(
        description="When the patient answered, with a time zone; from 1900-01-01 to now plus 5 minutes."
    )
    session_id: uuid.UUID | None = None
    declared_total: DeclaredTotal = None


class MeasurementAmend(Schema):
    items: ItemAnswers
    reason: Annotated[str, Field(min_length=1, max_length=2000, description="Why the record is corrected.")]
    measured_at: ClinicalTime | None = Field(default=None, description="Defaults to the current version's.")
    session_id: uuid.UUID | None = Field(default=None, description="Defaults to the current version's.")
    declared_total: DeclaredTotal = None


class MeasurementRead(BaseModel):
    id: uuid.UUID = Field(description="The measurement's id, stable across amendments.")
    version: int
    current: bool = Field(description="False for a version that a later amendment superseded.")
    patient_id: uuid.UUID
    session_id: uuid.UUID | None
    instrument: str
    instrument_version: str
    scorer_version: str
    measured_at: datetime
    items: dict[str, ItemAnswer]
    complete: bool
    missing_items: list[str]
    scores: dict[str, ScoreOut]
    flags: list[str]
    warnings: list[WarningOut]
    declared_total: float | None
    source: Source
    amendment_reason: str | None
    created_at: datetime
