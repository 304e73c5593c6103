"""Every table, imported in one place so Alembic's autogenerate and ``alembic check`` see the whole schema."""

import app.care.models
import app.clinical.models
import app.clinical.progress.models
import app.fhir.models
import app.research.models  # noqa: F401  (each domain's tables register on Base.metadata when imported)
from app.audit.models import AuditEvent
from app.auth.models import ApiKey, Clinic, Enrolment
from app.core.db import Base
from app.core.job_models import BackgroundJob, PeriodicRun
from app.idempotency.models import IdempotencyRecord
from app.instruments.models import ClinicInstrumentText
from app.measurements.models import Measurement
from app.patients.models import Patient, PatientIdentifier
from app.therapy_sessions.models import TherapySession

__all__ = [
    "ApiKey",
    "AuditEvent",
    "BackgroundJob",
    "Base",
    "Clinic",
    "ClinicInstrumentText",
    "Enrolment",
    "IdempotencyRecord",
    "Measurement",
    "Patient",
    "PatientIdentifier",
    "PeriodicRun",
    "TherapySession",
]
