"""Tables of the research domain: the record of every research export (who, when, what)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, utcnow


class ResearchExport(Base):
    """One export, recorded in the request's transaction before any data is sent.

    Identified exports (``identified``) are the ones an auditor must be able to list; de-identified ones are
    recorded too. ``parameters`` holds the query (format, layout, level, instruments, period, project): never data.
    """

    __tablename__ = "research_export"
    __table_args__ = (Index("ix_research_export_clinic_created", "clinic_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    role: Mapped[str] = mapped_column(String(20))
    identified: Mapped[bool] = mapped_column(Boolean)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
