"""The clinic a generated (synthetic) cohort is written into: never one with real patients (issue 21).

The generator creates the clinic it names, marked ``synthetic`` (shown wherever the clinic is: its settings, its
reports, its exports' file names and codebook). It writes again into a clinic it made, as long as every patient
there is one of its own (an external id ``synthetic-…``, ``synthetic.external_id``). A clinic not marked synthetic is
refused whether or not it has patients yet: generated patients never sit beside real ones.
"""

from __future__ import annotations

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app.auth.models import Clinic
from app.core.errors import Conflict
from app.patients.models import Patient, PatientIdentifier
from app.patients.schemas import LOCAL_IDENTIFIER_SYSTEM
from app.research.synthetic import EXTERNAL_ID_PREFIX


def clinic_for_cohort(db: Session, *, name: str) -> Clinic:
    """The synthetic clinic named ``name``, created (marked synthetic) if there is none; Conflict for a real one."""
    clinic = db.scalar(select(Clinic).where(Clinic.name == name))
    if clinic is None:
        clinic = Clinic(name=name, synthetic=True)
        db.add(clinic)
        db.flush()
        return clinic
    if not clinic.synthetic:
        patients = db.scalar(select(func.count()).select_from(Patient).where(Patient.clinic_id == clinic.id)) or 0
        raise Conflict(
            f"clinic {name!r} is a real clinic ({patients} patient(s)), not one the generator made: a synthetic "
            "cohort is never written into it. Name a new clinic; the generator creates it, marked synthetic."
        )
    real = real_patients(db, clinic)
    if real:
        raise Conflict(
            f"synthetic clinic {name!r} has {real} patient(s) the generator did not make: a synthetic cohort is never "
            "written beside real patients. Name a new clinic."
        )
    return clinic


def real_patients(db: Session, clinic: Clinic) -> int:
    """The clinic's patients without a generator external id."""
    generated = exists().where(
        PatientIdentifier.patient_id == Patient.id,
        PatientIdentifier.system == LOCAL_IDENTIFIER_SYSTEM,
        PatientIdentifier.value.startswith(EXTERNAL_ID_PREFIX, autoescape=True),
    )
    query = select(func.count()).select_from(Patient).where(Patient.clinic_id == clinic.id, ~generated)
    return int(db.scalar(query) or 0)
