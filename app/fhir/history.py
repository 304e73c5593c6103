"""vread (``GET /fhir/{type}/{id}/_history/{vid}``) and instance history (``GET /fhir/{type}/{id}/_history``, a
``history`` Bundle, newest version first) where versions are kept:

- QuestionnaireResponses and registered Questionnaires: the current row, and the versions updates replaced
  (``kept_versions``; those replaced before that table existed were not kept, and are answered as missing).
- Observations: every version of their measurement (amendments and re-scorings insert a version, never overwrite).
- Our instruments' Questionnaires: only the current (content) version, which is all there is to read.

Patients and Tasks keep no versions: neither interaction is offered for them (``capability``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.fhir import kept_versions, questionnaire_responses, registered_questionnaires
from app.fhir.instrument_questionnaires import builtin_definition, questionnaire
from app.fhir.observations import observations, parse_observation_id
from app.fhir.verbatim import as_served
from app.fhir.versioning import etag, version_of
from app.instruments import text
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement

RESPONSE = questionnaire_responses.RESOURCE_TYPE
QUESTIONNAIRE = "Questionnaire"


@dataclass(frozen=True)
class Version:
    """One version of a resource as served, and when it was stored."""

    resource: dict[str, Any]
    number: str
    last_updated: datetime | None
    """None for our instruments' Questionnaires, which carry no update time."""


def response_versions(db: Session, *, clinic_id: uuid.UUID, logical_id: str) -> list[Version]:
    row = questionnaire_responses.get(db, clinic_id=clinic_id, logical_id=logical_id)
    current = Version(questionnaire_responses.served(row), str(row.version_id), row.updated_at)
    earlier = [
        Version(
            questionnaire_responses.served_new(
                {
                    "logical_id": kept.logical_id,
                    "version_id": kept.version_id,
                    "updated_at": kept.updated_at,
                    "patient_id": row.patient_id,
                },
                json.loads(kept.raw),
            ),
            str(kept.version_id),
            kept.updated_at,
        )
        for kept in kept_versions.earlier(db, clinic_id=clinic_id, resource_type=RESPONSE, logical_id=logical_id)
    ]
    return [current, *earlier]


def questionnaire_versions(
    db: Session, registry: InstrumentRegistry, *, clinic_id: uuid.UUID, logical_id: str
) -> list[Version]:
    definition = builtin_definition(registry, logical_id)
    if definition is not None:
        view = text.clinic_view(db, clinic_id=clinic_id, definition=definition)
        resource = questionnaire(definition, view).model_dump(mode="json", exclude_none=True)
        return [Version(resource, version_of(resource), None)]
    row = registered_questionnaires.get(db, clinic_id=clinic_id, logical_id=logical_id)
    current = Version(registered_questionnaires.served(row), str(row.version_id), row.updated_at)
    earlier = [
        Version(
            as_served(
                kept.raw,
                resource_type=QUESTIONNAIRE,
                logical_id=kept.logical_id,
                version_id=kept.version_id,
                updated_at=kept.updated_at,
            ),
            str(kept.version_id),
            kept.updated_at,
        )
        for kept in kept_versions.earlier(db, clinic_id=clinic_id, resource_type=QUESTIONNAIRE, logical_id=logical_id)
    ]
    return [current, *earlier]


def observation_versions(
    db: Session, registry: InstrumentRegistry, *, clinic_id: uuid.UUID, observation_id: str
) -> list[Version]:
    """The Observation in each version of its measurement that has it, newest first (404 unless the current one
    does: a read of the Observation would find none)."""
    ref = parse_observation_id(observation_id)
    rows = (
        list(
            db.scalars(
                select(Measurement)
                .where(Measurement.measurement_id == ref.measurement_id, Measurement.clinic_id == clinic_id)
                .order_by(Measurement.version.desc())
            )
        )
        if ref is not None
        else []
    )
    if not rows or not rows[0].is_current:
        raise NotFound(f"no Observation/{observation_id}")
    definition = registry.definitions.get(rows[0].instrument_id)
    if definition is None:
        raise NotFound(f"no Observation/{observation_id}")
    response_id = questionnaire_responses.logical_ids(db, clinic_id=clinic_id, measurement_ids=[rows[0].measurement_id])
    found = [
        Version(made.model_dump(mode="json", exclude_none=True), str(row.version), row.created_at)
        for row in rows
        for made in observations(row, definition, response_id=response_id.get(row.measurement_id))
        if made.id == observation_id
    ]
    if not found or found[0].number != str(rows[0].version):
        raise NotFound(f"no Observation/{observation_id}")
    return found


def version(versions: list[Version], number: str, what: str) -> Version:
    """vread: the version numbered ``number`` (404 if it was never stored, or not kept)."""
    found = next((one for one in versions if one.number == number), None)
    if found is None:
        raise NotFound(f"no version {number} of {what}")
    return found


def bundle(versions: list[Version], *, resource_type: str, logical_id: str, base: str, self_url: str) -> dict[str, Any]:
    """The ``history`` Bundle of one resource, newest first. Each entry's request is the PUT that would store that
    version under its id; its response says whether it was the first (201) or a change (200)."""
    full_url = f"{base}/{resource_type}/{logical_id}"
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(versions),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {
                "fullUrl": full_url,
                "resource": one.resource,
                "request": {"method": "PUT", "url": f"{resource_type}/{logical_id}"},
                "response": {
                    "status": "201 Created" if one.number == "1" else "200 OK",
                    "location": f"{full_url}/_history/{one.number}",
                    "etag": etag(one.number),
                    **({"lastModified": one.last_updated.isoformat()} if one.last_updated else {}),
                },
            }
            for one in versions
        ],
    }
