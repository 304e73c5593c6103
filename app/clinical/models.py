"""Tables of the clinical domain: clinic settings, clinic change parameters, risk alerts and their webhook outbox."""

from __future__ import annotations

import uuid
from datetime import datetime, time
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
    Time,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, new_record_id, utcnow


class ClinicSettings(Base):
    """A clinic's own crisis text (shown with every risk alert), its optional webhook, and its reminders' quiet
    hours."""

    __tablename__ = "clinic_settings"

    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="CASCADE"), primary_key=True)
    crisis_text: Mapped[str | None] = mapped_column(Text)
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret_salt: Mapped[str | None] = mapped_column(String(64))
    """Random salt from which the webhook signing secret is derived (with WEBHOOK_SIGNING_KEY); never the secret."""
    webhook_previous_secret_salt: Mapped[str | None] = mapped_column(String(64))
    """The salt before the last rotation: its secret still signs for a while (``webhook_signing.OVERLAP``)."""
    webhook_secret_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_quiet_hours_start: Mapped[time | None] = mapped_column(Time)
    """Quiet hours for assessment reminders, from this local time (in each schedule's time zone) ..."""
    reminder_quiet_hours_end: Mapped[time | None] = mapped_column(Time)
    """... to this one (the next day if it is earlier): a reminder falling in them is delivered at their end. Both
    set or both null (no quiet hours)."""
    item9_missing_pages: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Whether an ``item9_missing`` prompt (routine) calls the webhook; urgent alerts always do."""
    historical_alert_days: Mapped[int] = mapped_column(Integer, default=14, server_default="14")
    """An alert whose measurement is older than this many days when it is recorded (imported history) is marked
    ``historical`` and never paged."""
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    """The IANA time zone the clinician report and the caseload show times in (with their UTC offset)."""
    report_frame_origins: Mapped[list[str] | None] = mapped_column(JSONType)
    """Origins (``https://ehr.example.org``) allowed to show a report link's page in a frame; null: none may."""
    updated_by_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportLink(Base):
    """A short-lived link that opens one patient's report without an API key (an EHR frame, a browser).

    Only an HMAC of its token is stored (``token_hash``, as API keys are); the token itself is in the URL handed out
    once. ``include_alerts`` is what the creator's role could see, so a link never shows more than its creator.
    """

    __tablename__ = "report_link"
    __table_args__ = (
        ForeignKeyConstraint(["patient_id", "clinic_id"], ["patient.id", "patient.clinic_id"], ondelete="CASCADE"),
        Index("ix_report_link_clinic_patient", "clinic_id", "patient_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clinic.id", ondelete="CASCADE"))
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    include_alerts: Mapped[bool] = mapped_column(Boolean)
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("api_key.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("api_key.id", ondelete="SET NULL"))


class ClinicChangeParameters(Base):
    """Reliable-change parameters a clinic set for one score of one instrument and one method, with a citation.

    They replace the shipped defaults for that score and method as a whole (never merged with them).
    """

    __tablename__ = "clinic_change_parameters"
    __table_args__ = (UniqueConstraint("clinic_id", "instrument_id", "score_key", "method"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="CASCADE"))
    instrument_id: Mapped[str] = mapped_column(String(50))
    score_key: Mapped[str] = mapped_column(String(50))
    method: Mapped[str] = mapped_column(String(20))
    reliability: Mapped[float | None] = mapped_column(Float)
    clinical_mean: Mapped[float | None] = mapped_column(Float)
    clinical_sd: Mapped[float | None] = mapped_column(Float)
    functional_mean: Mapped[float | None] = mapped_column(Float)
    functional_sd: Mapped[float | None] = mapped_column(Float)
    cutoff_type: Mapped[str | None] = mapped_column(String(10))
    caseness_cutoff: Mapped[float | None] = mapped_column(Float)
    minimum_change: Mapped[float | None] = mapped_column(Float)
    response_reduction: Mapped[float | None] = mapped_column(Float)
    remission_below: Mapped[float | None] = mapped_column(Float)
    citation: Mapped[str] = mapped_column(Text)
    set_by_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RiskAlert(Base):
    """An alert raised by a stored measurement (``flag`` is its kind: a PHQ-9/BDI-II/FSCRS item-9 risk flag, an
    ``item9_missing`` prompt, ``not_on_track``), until a clinician acknowledges it.

    An item-9 risk alert records the answer that raised it (``item_value``); an amendment raises a new one only when
    it raises item 9 above every value already alerted for that measurement (``app.clinical.alerts``), and never
    clears one. The acknowledgement (who, when, the note) is kept on the row itself.
    """

    __tablename__ = "risk_alert"
    __table_args__ = (
        UniqueConstraint("measurement_id", "flag", "item_value"),
        Index("ix_risk_alert_clinic_acknowledged_raised", "clinic_id", "acknowledged_at", "raised_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id", ondelete="RESTRICT"), index=True)
    measurement_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    """The measurement's stable id (as in the API), across amendments."""
    measurement_row_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("measurement.id", ondelete="RESTRICT"))
    """The stored version that raised the alert."""
    instrument_id: Mapped[str] = mapped_column(String(50))
    flag: Mapped[str] = mapped_column(String(50))
    """The alert's kind (``kind`` in the API)."""
    item_value: Mapped[int | None] = mapped_column(Integer)
    """The item-9 answer that raised an item-9 risk alert; null for other kinds."""
    priority: Mapped[str] = mapped_column(String(20), default="urgent", server_default="urgent")
    """``urgent`` (risk flags: always paged unless historical) or ``routine`` (``item9_missing``, ``not_on_track``)."""
    historical: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Raised by a measurement older than the clinic's ``historical_alert_days`` when recorded: never paged."""
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    acknowledgement_note: Mapped[str | None] = mapped_column(Text)


class WebhookDelivery(Base):
    """Outbox: one webhook call per event (a raised risk alert, a reminder), written in the transaction that caused
    it, with the job that delivers it (``app.clinical.webhooks``).

    ``dedupe_key`` names the event (``risk_alert.raised:<alert id>``): unique per clinic, so an event is delivered
    once however often it is caused. ``status``: ``pending`` (attempts left; the next at ``next_attempt_at``),
    ``delivered`` (a 2xx answer), ``failed`` (dead letter: no attempt left; an admin may retry it) or ``withdrawn``
    (a reminder whose assessment was no longer open when it was due to go: not sent). The payload
    holds ids and the event's name only, never item content.
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("clinic_id", "dedupe_key"),
        Index("ix_webhook_delivery_clinic_status_created", "clinic_id", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(50))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    alert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("risk_alert.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
