from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.core.errors import Conflict, NotFound
from app.patients.models import Patient, PatientIdentifier
from app.patients.schemas import LOCAL_IDENTIFIER_SYSTEM, Identifier, PatientCreate, PatientRead

_EXISTS = select(Patient.id).where(Patient.id == bindparam("patient_id"), Patient.clinic_id == bindparam("clinic_id"))
"""Built once: on the ingest path, building a statement costs more than running it."""


def ensure_exists(db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    """NotFound unless the clinic has this patient: the scoping check of every patient route (one indexed lookup,
    no entity loaded)."""
    found = db.connection().scalar(_EXISTS, {"patient_id": patient_id, "clinic_id": clinic_id})
    if found is None:
        raise NotFound(f"no patient {patient_id}")


def get(db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID) -> Patient:
    """The clinic's patient, or NotFound: another clinic's patient is indistinguishable from a missing one."""
    patient = db.scalar(
        select(Patient)
        .where(Patient.id == patient_id, Patient.clinic_id == clinic_id)
        .options(selectinload(Patient.identifiers))
    )
    if patient is None:
        raise NotFound(f"no patient {patient_id}")
    return patient


def create(db: Session, *, clinic_id: uuid.UUID, data: PatientCreate, patient_id: uuid.UUID | None = None) -> Patient:
    """Register a patient; ``patient_id`` lets a client choose the id (FHIR update-as-create), else it is random."""
    identifiers = list(data.identifiers)
    if data.external_id is not None:
        identifiers.append(Identifier(system=LOCAL_IDENTIFIER_SYSTEM, value=data.external_id))
    pairs = {(identifier.system, identifier.value) for identifier in identifiers}
    if len(pairs) != len(identifiers):
        raise Conflict("the same identifier is given twice")
    patient = Patient(clinic_id=clinic_id) if patient_id is None else Patient(id=patient_id, clinic_id=clinic_id)
    patient.identifiers = [
        PatientIdentifier(clinic_id=clinic_id, system=system, value=value) for system, value in sorted(pairs)
    ]
    try:
        with db.begin_nested():  # added inside: begin_nested() flushes what is pending before its SAVEPOINT
            db.add(patient)
            db.flush()
    except IntegrityError:
        raise Conflict("a patient with this identifier already exists in this clinic") from None
    return patient


def replace_identifiers(db: Session, *, patient: Patient, identifiers: list[Identifier]) -> Patient:
    """Make ``identifiers`` the patient's complete set (kept rows stay; the unique constraint still applies)."""
    wanted = {(identifier.system, identifier.value) for identifier in identifiers}
    if len(wanted) != len(identifiers):
        raise Conflict("the same identifier is given twice")
    kept = [row for row in patient.identifiers if (row.system, row.value) in wanted]
    have = {(row.system, row.value) for row in kept}
    try:
        with db.begin_nested():  # changed inside: begin_nested() flushes what is pending before its SAVEPOINT
            patient.identifiers = kept + [
                PatientIdentifier(clinic_id=patient.clinic_id, system=system, value=value)
                for system, value in sorted(wanted - have)
            ]
            db.flush()
    except IntegrityError:
        raise Conflict("another patient of this clinic already has one of these identifiers") from None
    return patient


def list_patients(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    limit: int,
    offset: int,
    external_id: str | None = None,
    identifier: str | None = None,
) -> list[Patient]:
    """The clinic's patients, optionally those with an identifier (``system|value``, or a bare value)."""
    system: str | None = None
    value: str | None = None
    if external_id is not None:
        system, value = LOCAL_IDENTIFIER_SYSTEM, external_id
    elif identifier is not None:
        system, separator, value = identifier.partition("|")
        if not separator:
            system, value = "", identifier
        system = system or None
    query = select(Patient).where(Patient.clinic_id == clinic_id).options(selectinload(Patient.identifiers))
    if value is not None:
        match = select(PatientIdentifier.patient_id).where(
            PatientIdentifier.clinic_id == clinic_id, PatientIdentifier.value == value
        )
        if system is not None:
            match = match.where(PatientIdentifier.system == system)
        query = query.where(Patient.id.in_(match))
    return list(db.scalars(query.order_by(Patient.created_at, Patient.id).limit(limit).offset(offset)))


def to_read(patient: Patient) -> PatientRead:
    identifiers = [Identifier(system=i.system, value=i.value) for i in patient.identifiers]
    external_id = next((i.value for i in identifiers if i.system == LOCAL_IDENTIFIER_SYSTEM), None)
    return PatientRead(
        id=patient.id,
        external_id=external_id,
        identifiers=[i for i in identifiers if i.system != LOCAL_IDENTIFIER_SYSTEM],
        created_at=patient.created_at,
    )
