from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_record_id, utcnow


class Measurement(Base):
    """One version of one administration of an instrument.

    Rows are never updated in place except to mark them superseded: an amendment inserts version n+1 with the same
    ``measurement_id`` and clears ``is_current`` on version n, so the full history stays readable.
    """

    __tablename__ = "measurement"
    __table_args__ = (
        UniqueConstraint("measurement_id", "version"),
        Index("ix_measurement_patient_instrument_time", "patient_id", "instrument_id", "measured_at"),
        Index("ix_measurement_clinic_patient_time", "clinic_id", "patient_id", "measured_at"),
        ForeignKeyConstraint(["patient_id", "clinic_id"], ["patient.id", "patient.clinic_id"], ondelete="RESTRICT"),
    )
    """The patient foreign key includes the clinic, so a measurement cannot be stored for another clinic's patient
    even by a path that forgot to check (the ingest path relies on it instead of a lookup)."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    measurement_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    version: Mapped[int] = mapped_column(Integer)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("therapy_session.id", ondelete="RESTRICT"))
    instrument_id: Mapped[str] = mapped_column(String(50))
    definition_version: Mapped[str] = mapped_column(String(20))
    scorer_version: Mapped[str] = mapped_column(String(20))
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    items: Mapped[dict[str, Any]] = mapped_column(JSONType)
    complete: Mapped[bool] = mapped_column(Boolean)
    missing_items: Mapped[list[str]] = mapped_column(JSONType)
    scores: Mapped[dict[str, Any]] = mapped_column(JSONType)
    flags: Mapped[list[str]] = mapped_column(JSONType)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    declared_total: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(10))
    amendment_reason: Mapped[str | None] = mapped_column(Text)
    recorded_by_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
