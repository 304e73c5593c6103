"""FHIR Patient ⇄ the clinic's patients. The Patient id is the API patient id (a UUID); only identifiers are kept
(this service needs no names or birth dates), so any other element an EHR sends is not stored."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.core.errors import Conflict, NotFound
from app.fhir.conditional_create import Criteria
from app.fhir.content_version import with_content_version
from app.fhir.errors import InUse, Issue, MalformedResource, PreconditionFailed, UnprocessableResource
from app.fhir.validation import check_put_id, validate
from app.fhir.versioning import require_version, version_of
from app.fhir.write_context import FhirWrite
from app.patients import service as patients
from app.patients.models import Patient
from app.patients.schemas import Identifier, PatientCreate


@dataclass(frozen=True)
class StoredPatient:
    patient: Patient
    created: bool


def to_fhir(patient: Patient) -> FhirPatient:
    """The patient as a FHIR Patient; its ``meta.versionId`` is a digest of its identifiers (no versions are
    stored: ``versioning.content_version``)."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "meta": {"lastUpdated": patient.created_at.isoformat()},
    }
    identifiers = [{"system": system, "value": value} for system, value in sorted(_pairs(patient))]
    if identifiers:
        resource["identifier"] = identifiers
    return FhirPatient.model_validate(with_content_version(resource))


def _pairs(patient: Patient) -> list[tuple[str, str]]:
    return [(row.system, row.value) for row in patient.identifiers]


def create(write: FhirWrite, *, data: dict[str, Any], criteria: Criteria | None = None) -> StoredPatient:
    """POST: a new patient (server-assigned id); with ``criteria``, only if no patient has that identifier.

    The criteria must name one of the resource's own identifiers, so the identifiers' unique constraint makes
    concurrent conditional creates store one patient. A patient token (which its role keeps from this route anyway)
    matches only its own patient: a match with another is refused with 409 as ``questionnaire_responses._matching``
    explains.
    """
    db, principal = write.db, write.principal
    validate(data, "Patient")
    identifiers = _identifiers(data)
    if criteria is not None:
        if criteria.any_system or not any(
            (i.system, i.value) == (criteria.system, criteria.value) for i in identifiers
        ):
            raise MalformedResource(
                "If-None-Exist must name one of the Patient's identifiers as identifier=system|value",
                issues=[Issue("not-supported", "If-None-Exist must be identifier=system|value of this Patient")],
            )
        existing = _matching(db, principal, criteria)
        if existing is not None:
            return StoredPatient(existing, created=False)
    try:
        patient = patients.create(db, clinic_id=principal.clinic_id, data=PatientCreate(identifiers=identifiers))
    except Conflict:
        existing = _matching(db, principal, criteria) if criteria is not None else None
        if existing is None:
            raise
        return StoredPatient(existing, created=False)
    return StoredPatient(patient, created=True)


def put(write: FhirWrite, *, logical_id: str, data: dict[str, Any], if_match: str | None = None) -> StoredPatient:
    """PUT by id: create the patient under this id, or make these identifiers its complete set.

    A patient token (which its role keeps from this route anyway) reaches its own patient only: any other id is
    answered as a missing one. ``If-Match``: only if the patient is at that version (412 otherwise), checked under
    a lock on the patient's row, which every PUT of it takes (``versioning``)."""
    db, principal = write.db, write.principal
    validate(data, "Patient")
    check_put_id(data, logical_id, "Patient")
    patient_id = _uuid(logical_id)
    _require_own(principal, patient_id, logical_id)
    identifiers = _identifiers(data)
    _lock(db, principal.clinic_id, patient_id)
    try:
        patient = patients.get(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    except NotFound:
        holder = db.get(Patient, patient_id)
        if holder is not None and holder.clinic_id != principal.clinic_id:
            # Another clinic's patient: indistinguishable from a missing one that cannot be created here.
            raise NotFound(
                f"no Patient/{logical_id} in this clinic, and the id cannot be used; POST for a new id"
            ) from None
        require_version(if_match, None, f"Patient/{logical_id}")
        if holder is None:
            try:
                created = patients.create(
                    db,
                    clinic_id=principal.clinic_id,
                    data=PatientCreate(identifiers=identifiers),
                    patient_id=patient_id,
                )
            except Conflict:
                # The id or an identifier was taken meanwhile, perhaps by a concurrent PUT of this very id (another
                # request, another process), whose commit the refused insert waited for: then this PUT updates it.
                if _committed_meanwhile(db, principal.clinic_id, patient_id) is None:
                    raise Conflict(
                        f"Patient/{logical_id} cannot be created: another patient of this clinic holds one of its "
                        "identifiers; nothing was stored"
                    ) from None
            else:
                return StoredPatient(created, created=True)
        # This clinic's: a concurrent PUT of this id committed it between the two reads.
        patient = patients.get(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    else:
        require_version(if_match, version_of(to_fhir(patient)), f"Patient/{logical_id}")
    return StoredPatient(patients.replace_identifiers(db, patient=patient, identifiers=identifiers), created=False)


def _lock(db: Session, clinic_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    """Lock the clinic's patient row until the transaction ends (PostgreSQL; SQLite's writers take turns anyway), so
    that a PUT reads identifiers no other PUT is changing. ``FOR NO KEY UPDATE`` (SQLAlchemy's ``key_share``):
    measurements being stored for the patient (their foreign key takes ``KEY SHARE``) are not held up."""
    db.execute(
        select(Patient.id)
        .where(Patient.id == patient_id, Patient.clinic_id == clinic_id)
        .with_for_update(key_share=True)
    )


def _committed_meanwhile(db: Session, clinic_id: uuid.UUID, patient_id: uuid.UUID) -> Patient | None:
    """The patient under this id if another transaction committed it after this one first looked (its insert was
    refused in a savepoint; a new statement sees what is committed), and it is this clinic's."""
    holder = db.get(Patient, patient_id, populate_existing=True)
    if holder is None:
        return None
    if holder.clinic_id != clinic_id:
        raise NotFound(f"no Patient/{patient_id} in this clinic, and the id cannot be used; POST for a new id")
    return holder


def get(db: Session, *, principal: Principal, logical_id: str) -> Patient:
    """The clinic's patient; for a patient token, its own patient only (any other is answered as missing)."""
    try:
        patient_id = uuid.UUID(logical_id)
    except ValueError:
        raise NotFound(f"no Patient/{logical_id}") from None
    _require_own(principal, patient_id, logical_id)
    return patients.get(db, clinic_id=principal.clinic_id, patient_id=patient_id)


def _require_own(principal: Principal, patient_id: uuid.UUID, logical_id: str) -> None:
    if principal.patient_id is not None and patient_id != principal.patient_id:
        raise NotFound(f"no Patient/{logical_id}")


def _uuid(logical_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(logical_id)
    except ValueError:
        raise UnprocessableResource(
            "Patient ids on this server are UUIDs",
            issues=[
                Issue("invalid", f"Patient ids are the API's patient UUIDs; {logical_id!r} is not one", ("Patient.id",))
            ],
        ) from None


def _identifiers(data: dict[str, Any]) -> list[Identifier]:
    identifiers: list[Identifier] = []
    issues: list[Issue] = []
    for index, raw in enumerate(data.get("identifier") or []):
        try:
            identifiers.append(
                Identifier.model_validate({"system": raw.get("system"), "value": raw.get("value")}, strict=True)
            )
        except ValidationError:
            issues.append(
                Issue(
                    "required",
                    "each identifier needs a system and a value (1–300 characters)",
                    (f"Patient.identifier[{index}]",),
                )
            )
    if issues:
        raise UnprocessableResource(f"{len(issues)} unusable identifier(s)", issues=issues)
    return identifiers


def _matching(db: Session, principal: Principal, criteria: Criteria) -> Patient | None:
    found = patients.list_patients(
        db, clinic_id=principal.clinic_id, limit=2, offset=0, identifier=f"{criteria.system}|{criteria.value}"
    )
    if principal.patient_id is not None and any(patient.id != principal.patient_id for patient in found):
        detail = f"{criteria.key} is in use in this clinic by a Patient this token cannot read; nothing was stored"
        raise InUse(detail, issues=[Issue("duplicate", detail)])
    if len(found) > 1:
        raise PreconditionFailed(f"{criteria.key} matches more than one Patient")
    return found[0] if found else None
