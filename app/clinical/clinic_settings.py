"""A clinic's crisis text and alert webhook, set by its admin."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.clinical.models import ClinicSettings
from app.clinical.schemas import ClinicSettingsRead, ClinicSettingsWrite
from app.core.db import utcnow


def get(session: Session, *, clinic_id: uuid.UUID) -> ClinicSettings | None:
    return session.get(ClinicSettings, clinic_id)


def put(session: Session, *, clinic_id: uuid.UUID, key_id: uuid.UUID, data: ClinicSettingsWrite) -> ClinicSettings:
    """Replace the clinic's settings as a whole (an absent field is cleared)."""
    row = get(session, clinic_id=clinic_id)
    if row is None:
        row = ClinicSettings(clinic_id=clinic_id)
        session.add(row)
    row.crisis_text = data.crisis_text
    row.webhook_url = str(data.webhook_url) if data.webhook_url else None
    row.updated_by_key_id = key_id
    row.updated_at = utcnow()
    session.flush()
    return row


def to_read(row: ClinicSettings | None) -> ClinicSettingsRead:
    if row is None:
        return ClinicSettingsRead(crisis_text=None, webhook_url=None, updated_at=None)
    return ClinicSettingsRead(crisis_text=row.crisis_text, webhook_url=row.webhook_url, updated_at=row.updated_at)
