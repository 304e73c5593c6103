from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid, false
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_record_id, utcnow


class IdempotencyRecord(Base):
    """The first response to a POST carrying an ``Idempotency-Key``, scoped to the API key that sent it.

    It is written in the same transaction as the change it describes, so a record exists exactly when the change does.
    A response's secrets (fields marked ``shown_once``) are never part of it: such a record keeps the response without
    them and ``secret_withheld`` says so. Records older than ``IDEMPOTENCY_TTL_HOURS`` are not replayed and are
    deleted by ``python -m app purge-idempotency-records``.
    """

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_key.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    """The headers a replay repeats (Location, ETag, Last-Modified, Content-Location, Content-Type)."""
    secret_withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The response carried a secret, left out of ``response_body``: a replay is refused (409), not answered."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
