"""Tables of the fhir domain: resources kept as received, and the clinic's registered third-party forms."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, new_record_id, utcnow


class FhirResource(Base):
    """A resource a client sent (a QuestionnaireResponse), kept verbatim and linked to what it became.

    ``match_key`` holds the criteria of a conditional create (``identifier=system|value``); the unique constraint
    on it makes concurrent retries of the same conditional create store one resource, never two.
    """

    __tablename__ = "fhir_resource"
    __table_args__ = (
        UniqueConstraint("clinic_id", "resource_type", "logical_id"),
        UniqueConstraint("clinic_id", "resource_type", "match_key"),
        Index("ix_fhir_resource_identifier", "clinic_id", "resource_type", "identifier_value"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"))
    resource_type: Mapped[str] = mapped_column(String(40))
    logical_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer, default=1)
    measurement_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    """The measurement's stable id (``Measurement.measurement_id``), the same across its amendments."""
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patient.id", ondelete="RESTRICT"))
    identifier_system: Mapped[str | None] = mapped_column(String(300))
    identifier_value: Mapped[str | None] = mapped_column(String(300))
    match_key: Mapped[str | None] = mapped_column(String(700))
    raw: Mapped[str] = mapped_column(Text)
    """The JSON exactly as received."""
    recorded_by_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RegisteredQuestionnaire(Base):
    """A clinic's own (third-party) Questionnaire, verbatim, with how its items map onto one instrument."""

    __tablename__ = "fhir_questionnaire"
    __table_args__ = (
        UniqueConstraint("clinic_id", "logical_id"),
        UniqueConstraint("clinic_id", "url", "canonical_version"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"))
    logical_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(String(500))
    canonical_version: Mapped[str] = mapped_column(String(64), default="")
    """``Questionnaire.version``, or "" when the form has none (so the unique constraint covers it)."""
    instrument_id: Mapped[str] = mapped_column(String(50))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONType)
    """The compiled ``FormMap``."""
    raw: Mapped[str] = mapped_column(Text)
    version_id: Mapped[int] = mapped_column(Integer, default=1)
    recorded_by_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FhirResourceVersion(Base):
    """An earlier version of a kept resource (a QuestionnaireResponse, a registered Questionnaire), saved as it was
    when an update replaced it, so that vread and ``_history`` serve it (``history``). The current version is the
    resource's own row; versions replaced before this table existed were not kept."""

    __tablename__ = "fhir_resource_version"
    __table_args__ = (
        UniqueConstraint(
            "clinic_id", "resource_type", "logical_id", "version_id", name="uq_fhir_resource_version_version_id"
        ),
    )
    """Named by hand: the convention's name would pass PostgreSQL's 63 characters."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"))
    resource_type: Mapped[str] = mapped_column(String(40))
    logical_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patient.id", ondelete="RESTRICT"))
    raw: Mapped[str] = mapped_column(Text)
    """The JSON of that version exactly as received."""
    recorded_by_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """When that version was stored (its ``meta.lastUpdated``)."""
