"""The stored expected-response tables of a clinic."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, utcnow


class ExpectedResponseTable(Base):
    """One expected-response table for one score of one instrument version family: fitted from the clinic's own
    completed courses (``source`` = ``fitted``, with the data cut and the counts) or loaded with a citation
    (``cited``). Never updated: a new fit or load adds a row, and the latest one of a score is the current table."""

    __tablename__ = "expected_response_table"
    __table_args__ = (
        Index("ix_expected_response_table_current", "clinic_id", "instrument_id", "score_key", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="CASCADE"))
    instrument_id: Mapped[str] = mapped_column(String(50))
    score_key: Mapped[str] = mapped_column(String(50))
    version_family: Mapped[str] = mapped_column(String(20))
    """The MAJOR version of the definition whose scores it describes; other families are never judged by it."""
    source: Mapped[str] = mapped_column(String(10))
    """``fitted`` or ``cited``."""
    citation: Mapped[str | None] = mapped_column(Text)
    model_form: Mapped[str] = mapped_column(Text)
    time_scale: Mapped[str] = mapped_column(String(30))
    coefficients: Mapped[dict[str, Any]] = mapped_column(JSONType)
    """b0..b3, G (random_effects_covariance), residual_variance, coefficients_covariance (or null)."""
    band_z: Mapped[float] = mapped_column(Float)
    max_weeks: Mapped[float | None] = mapped_column(Float)
    courses: Mapped[int | None] = mapped_column(Integer)
    measurements: Mapped[int | None] = mapped_column(Integer)
    data_cut_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """The latest ``measured_at`` included in the fit."""
    notices: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    """When it was fitted or loaded."""
