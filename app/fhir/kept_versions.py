"""The earlier versions of kept resources (QuestionnaireResponses, registered Questionnaires): saved as they were
when an update replaces them (``keep``), found again for vread and ``_history`` (``app.fhir.history``)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.fhir.models import FhirResource, FhirResourceVersion, RegisteredQuestionnaire


def keep(db: Session, row: FhirResource | RegisteredQuestionnaire, *, resource_type: str) -> None:
    """Save the version ``row`` holds now, before an update replaces it."""
    db.add(
        FhirResourceVersion(
            clinic_id=row.clinic_id,
            resource_type=resource_type,
            logical_id=row.logical_id,
            version_id=row.version_id,
            patient_id=row.patient_id if isinstance(row, FhirResource) else None,
            raw=row.raw,
            recorded_by_key_id=row.recorded_by_key_id,
            updated_at=row.updated_at,
        )
    )


def find(
    db: Session, *, clinic_id: uuid.UUID, resource_type: str, logical_id: str, version_id: int
) -> FhirResourceVersion | None:
    return db.scalar(
        select(FhirResourceVersion).where(
            FhirResourceVersion.clinic_id == clinic_id,
            FhirResourceVersion.resource_type == resource_type,
            FhirResourceVersion.logical_id == logical_id,
            FhirResourceVersion.version_id == version_id,
        )
    )


def earlier(db: Session, *, clinic_id: uuid.UUID, resource_type: str, logical_id: str) -> list[FhirResourceVersion]:
    """The kept versions, newest first."""
    return list(
        db.scalars(
            select(FhirResourceVersion)
            .where(
                FhirResourceVersion.clinic_id == clinic_id,
                FhirResourceVersion.resource_type == resource_type,
                FhirResourceVersion.logical_id == logical_id,
            )
            .order_by(FhirResourceVersion.version_id.desc())
        )
    )
