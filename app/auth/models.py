from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, Uuid, false
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, new_record_id, utcnow


class Clinic(Base):
    """A tenant: every patient, session, measurement and key belongs to exactly one clinic."""

    __tablename__ = "clinic"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Made by the synthetic cohort generator: its patients are generated, never real (shown wherever the clinic
    is)."""


class ApiKey(Base):
    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(200))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    """Set for a patient token: the key acts for this one patient only."""
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    research_project_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("research_project.id", ondelete="RESTRICT"), index=True
    )
    """Set for a researcher key: the one research project its exports and analyses are of (none: it cannot export)."""


class Enrolment(Base):
    """A one-time code a clinician gives a patient (e.g. as a QR code) for the app to exchange for a patient token."""

    __tablename__ = "enrolment"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_days: Mapped[int] = mapped_column(Integer)
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))


class SmartClient(Base):
    """A SMART Backend Services client (an EHR's integration engine): its public keys and the scopes it may be given.

    Its ``id`` is the OAuth ``client_id``. Only public keys are kept: the client signs its assertions with its private
    key, which never leaves it.
    """

    __tablename__ = "smart_client"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"), index=True)
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_key.id", ondelete="RESTRICT"), unique=True)
    """Its ``api_key`` row (role ``smart_client``, no secret: it cannot authenticate): the id that names the client
    wherever a caller's key is recorded (the audit trail, ``recorded_by_key_id``, Idempotency-Key records)."""
    name: Mapped[str] = mapped_column(String(200))
    jwks: Mapped[dict[str, Any]] = mapped_column(JSONType)
    """``{"keys": [...]}``: public JWKs (RSA for RS384, EC P-384 for ES384), each with its ``kid``."""
    scopes: Mapped[str] = mapped_column(String(2000))
    """The scopes it may be granted, space-separated (v2 syntax)."""
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SmartAccessToken(Base):
    """An access token issued to a SMART client: stored as an HMAC with a public lookup prefix, like an API key."""

    __tablename__ = "smart_access_token"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("smart_client.id", ondelete="CASCADE"), index=True)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(2000))
    """The scopes granted, space-separated."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SmartAssertion(Base):
    """A client assertion's ``jti`` already used, kept until the assertion expires, so that it is never accepted
    twice (a replayed assertion)."""

    __tablename__ = "smart_assertion"
    __table_args__ = (UniqueConstraint("client_id", "jti"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("smart_client.id", ondelete="CASCADE"))
    jti: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
