"""Every table, imported in one place so Alembic's autogenerate and ``alembic check`` see the whole schema."""

from app.auth.models import ApiKey, Clinic
from app.core.db import Base
from app.idempotency.models import IdempotencyRecord
from app.measurements.models import Measurement
from app.patients.models import Patient, PatientIdentifier
from app.therapy_sessions.models import TherapySession

__all__ = [
    "ApiKey",
    "Base",
    "Clinic",
    "IdempotencyRecord",
    "Measurement",
    "Patient",
    "PatientIdentifier",
    "TherapySession",
]
