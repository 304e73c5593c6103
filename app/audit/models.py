from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_record_id, utcnow


class AuditEvent(Base):
    """Who did what to which record, when, from where, and how it ended. Append-only: never updated or deleted.

    Holds ids and route templates only: never item responses, identifiers such as MRNs, or free text.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_clinic_time", "clinic_id", "occurred_at"),
        Index("ix_audit_event_patient", "patient_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(200))
    resource_type: Mapped[str | None] = mapped_column(String(50))
    resource_id: Mapped[str | None] = mapped_column(String(100))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    client_address: Mapped[str | None] = mapped_column(String(100))
    status_code: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
