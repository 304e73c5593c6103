from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field

from app.care.windows import LONGEST_PERIOD_DAYS
from app.core.schemas import Schema
from app.patients.schemas import Identifier

Status = Literal["scheduled", "due", "completed", "declined", "missed", "cancelled"]
Period = Annotated[int, Field(strict=True, ge=1, le=LONGEST_PERIOD_DAYS)]


class ScheduleCreate(Schema):
    instruments: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        min_length=1, max_length=10, description="Instrument ids, e.g. `phq9`; each is due in every window."
    )
    starts_on: date | None = Field(
        default=None,
        description="The local day the first window opens (required for a recurring schedule); for one at each "
        "session, the first day whose sessions count (default: today). At most 366 days ago or ahead.",
    )
    every_days: Period | None = Field(default=None, description="A window opens every this many days.")
    at_each_session: bool = Field(
        default=False, strict=True, description="A window opens at each therapy session instead (not with every_days)."
    )
    window_days: Period = Field(
        description="How many days each window stays open; at most every_days, so a schedule's windows never overlap."
    )
    ends_on: date | None = Field(default=None, description="The last local day a window may open on (inclusive).")
    timezone: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="IANA time zone of the patient's calendar, e.g. `Europe/Oslo` (required for a recurring "
        "schedule; UTC by default at each session).",
    )


class ScheduleRead(Schema):
    id: uuid.UUID
    patient_id: uuid.UUID
    instruments: list[str]
    at_each_session: bool
    starts_on: date | None
    every_days: int | None
    window_days: int
    ends_on: date | None
    timezone: str
    ended_at: datetime | None
    created_at: datetime


class DeclineRequest(Schema):
    reason: Annotated[str, Field(min_length=1, max_length=2000)] = Field(
        description="Why the assessment is declined, in the patient's or clinician's words."
    )


class Decline(Schema):
    reason: str | None
    actor: Literal["patient", "clinician"]
    at: datetime


class AssessmentRead(Schema):
    id: uuid.UUID
    schedule_id: uuid.UUID
    session_id: uuid.UUID | None
    instrument: str
    due_from: datetime
    due_by: datetime
    status: Status
    measurement_id: uuid.UUID | None
    decline: Decline | None


class DueAssessment(Schema):
    """What a patient's app needs to show an assessment that is due now."""

    id: uuid.UUID
    instrument: str
    title: str
    version: str
    due_from: datetime
    due_by: datetime
    status: Status
    definition: str = Field(description="The instrument definition (`GET /v1/instruments/{id}`).")
    questionnaire: str = Field(description="Its FHIR Questionnaire (`GET /fhir/Questionnaire/{id}`).")


class AssessmentPatient(Schema):
    id: uuid.UUID
    identifiers: list[Identifier]


class CaseloadItem(Schema):
    """An assessment nobody has answered, with its patient as risk alerts show one."""

    patient: AssessmentPatient
    assessment: AssessmentRead


class AdherenceCounts(Schema):
    completed: int
    declined: int
    missed: int
    due: int
    completion_rate: float | None = Field(
        description="completed ÷ (completed + declined + missed); null when nothing was completed, declined or missed."
    )


class InstrumentAdherence(AdherenceCounts):
    instrument: str


class AdherenceRead(AdherenceCounts):
    """Windows opening in [from, to] (scheduled and cancelled ones excluded), overall and per instrument."""

    by_instrument: list[InstrumentAdherence]
