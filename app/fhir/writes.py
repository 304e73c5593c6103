"""The write interactions (create, conditional create, update), shared by the single-resource routes and Bundles.

Each returns an ``Outcome``: the HTTP status, the resource as the server now holds it, its location and version,
and any warnings (a declared total that differs from the computed one, tolerated defects of a registered form).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.fhir import patients as fhir_patients
from app.fhir import questionnaire_responses, registered_questionnaires
from app.fhir.errors import Issue
from app.fhir.models import FhirResource
from app.fhir.questionnaire_responses import Criteria, Lookups, parse_criteria
from app.instruments.registry import InstrumentRegistry


@dataclass(frozen=True)
class Outcome:
    status: int
    resource: FHIRResourceModel | dict[str, Any]
    location: str
    version: str | None
    last_modified: datetime | None
    warnings: list[Issue] = field(default_factory=list)


def criteria(if_none_exist: str | None) -> Criteria | None:
    return parse_criteria(if_none_exist) if if_none_exist else None


def create_response(
    session: Session,
    registry: InstrumentRegistry,
    *,
    principal: Principal,
    data: dict[str, Any],
    text: str,
    if_none_exist: str | None = None,
    lookups: Lookups | None = None,
) -> Outcome:
    stored = questionnaire_responses.create(
        session,
        registry,
        principal=principal,
        data=data,
        text=text,
        criteria=criteria(if_none_exist),
        lookups=lookups,
    )
    return _response_outcome(stored, 201 if stored.created else 200)


def put_response(
    session: Session,
    registry: InstrumentRegistry,
    *,
    principal: Principal,
    logical_id: str,
    data: dict[str, Any],
    text: str,
    lookups: Lookups | None = None,
) -> Outcome:
    stored = questionnaire_responses.put(
        session, registry, principal=principal, logical_id=logical_id, data=data, text=text, lookups=lookups
    )
    return _response_outcome(stored, 201 if stored.created else 200)


def created_response(row: dict[str, Any], prepared: questionnaire_responses.PreparedResponse) -> Outcome:
    """The outcome of a response stored in bulk (``questionnaire_responses.store_many``), from its column values."""
    stored = questionnaire_responses.StoredResponse(
        row=FhirResource(**row), created=True, warnings=prepared.scored.warnings
    )
    return _response_outcome(stored, 201, received=prepared.data)


def _response_outcome(
    stored: questionnaire_responses.StoredResponse, status: int, received: dict[str, Any] | None = None
) -> Outcome:
    row = stored.row
    return Outcome(
        status=status,
        resource=questionnaire_responses.served(row, received),
        location=f"QuestionnaireResponse/{row.logical_id}",
        version=str(row.version_id),
        last_modified=row.updated_at,
        warnings=stored.warnings,
    )


def create_patient(
    session: Session, *, principal: Principal, data: dict[str, Any], if_none_exist: str | None = None
) -> Outcome:
    stored = fhir_patients.create(session, principal=principal, data=data, criteria=criteria(if_none_exist))
    return _patient_outcome(stored, 201 if stored.created else 200)


def put_patient(session: Session, *, principal: Principal, logical_id: str, data: dict[str, Any]) -> Outcome:
    stored = fhir_patients.put(session, principal=principal, logical_id=logical_id, data=data)
    return _patient_outcome(stored, 201 if stored.created else 200)


def _patient_outcome(stored: fhir_patients.StoredPatient, status: int) -> Outcome:
    patient = stored.patient
    return Outcome(
        status=status,
        resource=fhir_patients.to_fhir(patient),
        location=f"Patient/{patient.id}",
        version=None,
        last_modified=patient.created_at,
    )


def register_questionnaire(
    session: Session,
    registry: InstrumentRegistry,
    *,
    principal: Principal,
    data: dict[str, Any],
    text: str,
    logical_id: str | None = None,
) -> Outcome:
    registration = registered_questionnaires.register(
        session, registry, principal=principal, data=data, text=text, logical_id=logical_id
    )
    row = registration.row
    return Outcome(
        status=201 if registration.created else 200,
        resource=registered_questionnaires.served(row),
        location=f"Questionnaire/{row.logical_id}",
        version=str(row.version_id),
        last_modified=row.updated_at,
        warnings=registration.warnings,
    )
