"""Tables of the research domain: research projects, their patients' consent, and the record of every export."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, new_record_id, utcnow


class ResearchProject(Base):
    """A research project an ethics board approved: researcher keys are issued for one, and every de-identified
    export, codebook and analysis is of one (only its consenting patients, under its own pseudonyms).

    ``pseudonym_salt`` is random and not a secret: the project's pseudonym key is derived from the server's
    ``RESEARCH_PSEUDONYM_KEY`` and it (``pseudonyms.project_key``), so no key is stored and two projects' pseudonyms
    differ (a project deleted and made again under the same name gets new ones).
    """

    __tablename__ = "research_project"
    __table_args__ = (UniqueConstraint("clinic_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(2000))
    ethics_reference: Mapped[str] = mapped_column(String(200))
    consent_model: Mapped[str] = mapped_column(String(10))
    """``opt_in``: only patients whose latest consent is granted; ``opt_out``: everyone but those whose latest is
    refused or withdrawn."""
    pseudonym_salt: Mapped[str] = mapped_column(String(64))
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResearchConsent(Base):
    """One consent decision of a patient for a project: rows are never changed, so the history is complete.

    A patient's status for a project is their latest row by ``recorded_at`` (when the patient decided; a paper form
    may be entered later), then by ``created_at`` (when the service learnt it).
    """

    __tablename__ = "research_consent"
    __table_args__ = (Index("ix_research_consent_project_patient", "project_id", "patient_id", "recorded_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_record_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"))
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("research_project.id", ondelete="CASCADE"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(10))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(2000))
    recorded_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResearchExport(Base):
    """One export, recorded in the request's transaction before any data is sent.

    Identified exports (``identified``) are the ones an auditor must be able to list; de-identified ones are
    recorded too. ``parameters`` holds the query (format, layout, level, instruments, period, project): never data.
    ``research_project_id``: the project a de-identified export was of (the withdrawals list reads these).
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
    research_project_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("research_project.id", ondelete="RESTRICT"), index=True
    )
