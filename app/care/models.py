"""Tables of the care domain: a patient's assessment schedules and their stored occurrences."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, new_record_id, utcnow

# Foreign keys name their type (Uuid): a key's type is otherwise taken from the column it points at once that table is
# known, and ``app.care.completion`` builds its statements at import, when it may not be.


class Schedule(Base):
    """What a patient is asked to answer, and when: every ``every_days`` days from ``starts_on`` (until ``ends_on``),
    or at each therapy session (``at_each_session``), each time within ``window_days`` days.

    The schedule is the per-patient record; its occurrences are stored (``AssessmentOccurrence``), so what was due
    stays true when the schedule ends or changes.
    """

    __tablename__ = "schedule"
    __table_args__ = (
        ForeignKeyConstraint(["patient_id", "clinic_id"], ["patient.id", "patient.clinic_id"], ondelete="RESTRICT"),
        Index("ix_schedule_clinic_patient", "clinic_id", "patient_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clinic.id", ondelete="RESTRICT"))
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    instruments: Mapped[list[str]] = mapped_column(JSONType)
    at_each_session: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_on: Mapped[date | None] = mapped_column(Date)
    """The local day the first window opens (recurring), or the first day whose sessions count (at each session)."""
    every_days: Mapped[int | None] = mapped_column(Integer)
    window_days: Mapped[int] = mapped_column(Integer)
    ends_on: Mapped[date | None] = mapped_column(Date)
    """The last local day a window may open on (inclusive); set when the schedule is ended."""
    timezone: Mapped[str] = mapped_column(String(64))
    generated_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Every window opening before this is stored (recurring schedules; ``windows.HORIZON``)."""
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("api_key.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AssessmentOccurrence(Base):
    """One instrument due in one window of one schedule: stored when the schedule (or the session) is created.

    ``state`` is what happened (open, completed, declined, cancelled); the status the API answers is derived from it
    and the time (``app.care.windows.status_at``): an open occurrence whose window closed reads ``missed``.
    """

    __tablename__ = "assessment_occurrence"
    __table_args__ = (
        UniqueConstraint("schedule_id", "instrument_id", "due_from"),
        ForeignKeyConstraint(["patient_id", "clinic_id"], ["patient.id", "patient.clinic_id"], ondelete="RESTRICT"),
        Index("ix_assessment_occurrence_patient_instrument_due", "patient_id", "instrument_id", "due_from"),
        Index("ix_assessment_occurrence_clinic_due", "clinic_id", "due_from"),
        Index("ix_assessment_occurrence_clinic_patient_due", "clinic_id", "patient_id", "due_from"),
        Index(
            "ix_assessment_occurrence_due_reminder_pending",
            "due_from",
            sqlite_where=text("state = 'open' AND due_reminded_at IS NULL"),
            postgresql_where=text("state = 'open' AND due_reminded_at IS NULL"),
        ),
        Index(
            "ix_assessment_occurrence_overdue_reminder_pending",
            "due_by",
            sqlite_where=text("state = 'open' AND overdue_reminded_at IS NULL"),
            postgresql_where=text("state = 'open' AND overdue_reminded_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clinic.id", ondelete="RESTRICT"))
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    schedule_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("schedule.id", ondelete="RESTRICT"), index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("therapy_session.id", ondelete="RESTRICT"))
    """The therapy session that made it due (at-each-session schedules)."""
    instrument_id: Mapped[str] = mapped_column(String(50))
    due_from: Mapped[datetime] = mapped_column(UTCDateTime)
    due_by: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(10))
    measurement_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    """The stable id of the measurement that completed it (across its amendments)."""
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decline_reason: Mapped[str | None] = mapped_column(Text)
    declined_by: Mapped[str | None] = mapped_column(String(10))
    """``patient`` (a patient token) or ``clinician`` (a staff key)."""
    declined_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("api_key.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When its ``assessment.due`` reminder was raised, or passed over (its window closed first); null: not yet.
    ``app.clinical.reminders`` looks only at open occurrences still null here (a partial index keeps that cheap)."""
    overdue_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """The same for its ``assessment.overdue`` reminder."""
