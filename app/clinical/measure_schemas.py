"""The answer of ``GET /v1/clinic/measures/{measure_id}``."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from app.clinical.measures import GapStatus, Rate
from app.patients.schemas import Identifier


class MeasurePeriodRead(BaseModel):
    start: date
    end: date = Field(description="Included.")


class MeasurePatient(BaseModel):
    id: uuid.UUID
    external_id: str | None = Field(description="The clinic's own identifier, if it gave one.")
    identifiers: list[Identifier]


class CareGap(BaseModel):
    patient: MeasurePatient
    index_measured_at: datetime
    index_score: float
    window_opens: date
    window_closes: date = Field(description="Included.")
    status: GapStatus = Field(
        description="`upcoming` (the window opens later), `open` (a PHQ-9 today would count) or `closed` (it closed "
        "with no PHQ-9 in it)."
    )


class MeasureRead(BaseModel):
    measure: str
    title: str
    source: str
    measurement_period: MeasurePeriodRead
    index_period: MeasurePeriodRead = Field(description="The days in which a first PHQ-9 total > 9 is an index.")
    index_period_rule: str
    window_rule: str
    denominator: int = Field(description="Patients with an index in the index period.")
    numerators: dict[Rate, int]
    rates: dict[Rate, float | None] = Field(description="Numerator ÷ denominator; null when the denominator is 0.")
    care_gaps: list[CareGap] = Field(description="Patients with an index and no PHQ-9 in their window, by window.")
    not_applied: list[str] = Field(description="What the measure's source requires and this service cannot check.")
    evaluated_at: datetime
