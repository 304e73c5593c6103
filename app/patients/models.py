from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base, UTCDateTime, new_id, utcnow


class Patient(Base):
    """A patient of one clinic. No name is needed: clinics link their own records through identifiers."""

    __tablename__ = "patient"
    __table_args__ = (UniqueConstraint("id", "clinic_id"),)
    """Lets a measurement's foreign key name its patient *and* clinic: the database refuses another clinic's."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    identifiers: Mapped[list[PatientIdentifier]] = relationship(
        lazy="raise", order_by="PatientIdentifier.system", cascade="all, delete-orphan"
    )


class PatientIdentifier(Base):
    """An external identifier (an EHR MRN, a trial id), unique within its clinic and system."""

    __tablename__ = "patient_identifier"
    __table_args__ = (UniqueConstraint("clinic_id", "system", "value"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id", ondelete="RESTRICT"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(String(300))
    value: Mapped[str] = mapped_column(String(300))
