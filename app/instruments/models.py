from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, utcnow


class ClinicInstrumentText(Base):
    """Item wording and option labels a clinic loaded from its own licensed copy of an instrument.

    Served only to that clinic, in its instrument definitions; scoring never reads it.
    """

    __tablename__ = "clinic_instrument_text"
    __table_args__ = (UniqueConstraint("clinic_id", "instrument_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="CASCADE"))
    instrument_id: Mapped[str] = mapped_column(String(50))
    instructions: Mapped[str | None] = mapped_column(Text)
    item_text: Mapped[dict[str, str]] = mapped_column(JSONType)
    option_labels: Mapped[dict[str, Any]] = mapped_column(JSONType)
    licence_note: Mapped[str] = mapped_column(Text)
    loaded_by_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
