"""Patient tokens for mobile apps: a clinician creates a one-time enrolment code for one patient (shown as a QR code);
the app exchanges it for a patient token that can fetch instrument definitions and post that patient's responses.

Codes are 60 random bits, stored only as an HMAC, single-use and short-lived; guessing is throttled per client address
and for all addresses together (``app.core.limits.GuessLimits``).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import service as keys
from app.auth.models import Enrolment
from app.auth.permissions import Role
from app.core.db import utcnow
from app.core.errors import NotAuthenticated, NotFound
from app.core.security import hash_api_key


@dataclass(frozen=True)
class IssuedEnrolment:
    code: str
    enrolment: Enrolment


@dataclass(frozen=True)
class ExchangedToken:
    token: str
    patient_id: uuid.UUID
    key_id: uuid.UUID
    expires_at: datetime


LINK_PATH = "/enrol"


def link(public_base: str, code: str) -> str:
    """The enrolment link a patient's app handles, for a QR code: ``<PUBLIC_BASE_URL>/enrol#code=<code>``.

    Everything before ``/enrol`` is the service's address (``PUBLIC_BASE_URL``, never a request's ``Host``); the code
    is in the fragment, which a browser or proxy never sends to any server. The app posts the code to
    ``<that address>/v1/enrolments/exchange`` (``{"code": ...}``) and keeps the patient token it gets back.
    """
    return f"{public_base}{LINK_PATH}#code={code}"


def _new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode()[:12]
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


def _normalise(code: str) -> str:
    compact = code.replace("-", "").replace(" ", "").upper()
    return "-".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def create(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    created_by_key_id: uuid.UUID,
    valid_hours: int,
    token_days: int,
    pepper: str,
) -> IssuedEnrolment:
    """An enrolment code for a patient already checked to belong to ``clinic_id``."""
    code = _new_code()
    enrolment = Enrolment(
        clinic_id=clinic_id,
        patient_id=patient_id,
        code_hash=hash_api_key(code, pepper),
        token_days=token_days,
        created_by_key_id=created_by_key_id,
        expires_at=utcnow() + timedelta(hours=valid_hours),
    )
    db.add(enrolment)
    db.flush()
    return IssuedEnrolment(code=code, enrolment=enrolment)


def exchange(db: Session, *, code: str, pepper: str) -> ExchangedToken:
    """Spend a code once: it becomes a patient token. Unknown, used, revoked and expired codes all look the same."""
    enrolment = db.scalar(
        select(Enrolment).where(Enrolment.code_hash == hash_api_key(_normalise(code), pepper)).with_for_update()
    )
    now = utcnow()
    if enrolment is None or enrolment.used_at or enrolment.revoked_at or enrolment.expires_at <= now:
        raise NotAuthenticated("the enrolment code is not valid (unknown, already used, revoked or expired)")
    clinic = keys.get_clinic(db, enrolment.clinic_id)
    expires_at = now + timedelta(days=enrolment.token_days)
    issued = keys.issue_api_key(
        db,
        clinic=clinic,
        role=Role.PATIENT,
        pepper=pepper,
        label="patient token (enrolment)",
        expires_at=expires_at,
        patient_id=enrolment.patient_id,
        created_by_key_id=enrolment.created_by_key_id,
    )
    enrolment.used_at = now
    enrolment.token_key_id = issued.api_key.id
    db.flush()
    return ExchangedToken(
        token=issued.key, patient_id=enrolment.patient_id, key_id=issued.api_key.id, expires_at=expires_at
    )


def revoke(db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, enrolment_id: uuid.UUID) -> Enrolment:
    enrolment = db.scalar(
        select(Enrolment).where(
            Enrolment.id == enrolment_id, Enrolment.clinic_id == clinic_id, Enrolment.patient_id == patient_id
        )
    )
    if enrolment is None:
        raise NotFound(f"no enrolment {enrolment_id} for this patient")
    if enrolment.revoked_at is None:
        enrolment.revoked_at = utcnow()
        db.flush()
    return enrolment
