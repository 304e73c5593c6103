"""Searches: Questionnaires (ours and the clinic's) and Observations derived from the clinic's current
measurements; the read of one Observation; and the searchset Bundle every paged search answers with (Tasks' too)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.observation import Observation
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.fhir import codes, questionnaire_responses, registered_questionnaires
from app.fhir.instrument_questionnaires import questionnaire
from app.fhir.observations import code_targets, parse_observation_id
from app.fhir.observations import observations as measurement_observations
from app.instruments import text
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement
from app.patients import service as patients


def questionnaires(
    db: Session, registry: InstrumentRegistry, *, clinic_id: uuid.UUID, url: str | None
) -> list[dict[str, Any]]:
    """Searchset entries: every instrument's Questionnaire, then the clinic's registered forms; filtered by url."""
    entries: list[dict[str, Any]] = []
    base, _, version = (url or "").partition("|")
    for instrument in registry.ids():
        definition = registry.definitions[instrument]
        if url is not None and (base != codes.questionnaire_url(instrument) or version not in ("", definition.version)):
            continue
        view = text.clinic_view(db, clinic_id=clinic_id, definition=definition)
        entries.append(_match(questionnaire(definition, view).model_dump(mode="json", exclude_none=True)))
    entries.extend(
        _match(registered_questionnaires.served(row))
        for row in registered_questionnaires.list_registered(db, clinic_id=clinic_id, url=url)
    )
    return entries


def _match(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "search": {"mode": "match"}}


@dataclass(frozen=True)
class FoundObservations:
    observations: list[Observation]
    total: int
    has_more: bool


def observations(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    subject: str,
    code: str | None,
    count: int,
    offset: int,
) -> FoundObservations:
    """The Observations of a patient's current measurements, oldest first, optionally only some codes."""
    patient_id = _patient_id(subject)
    patients.ensure_exists(db, clinic_id=clinic_id, patient_id=patient_id)
    wanted = _wanted(registry, code) if code is not None else None
    query = select(Measurement).where(
        Measurement.clinic_id == clinic_id,
        Measurement.patient_id == patient_id,
        Measurement.is_current.is_(True),
    )
    if wanted is not None:
        query = query.where(Measurement.instrument_id.in_(sorted(wanted)))
    rows = list(db.scalars(query.order_by(Measurement.measured_at, Measurement.created_at, Measurement.id)))
    found = [
        observation
        for row, part, observation in _observations(db, registry, clinic_id, rows)
        if wanted is None or part in wanted.get(row.instrument_id, set())
    ]
    return FoundObservations(
        observations=found[offset : offset + count], total=len(found), has_more=len(found) > offset + count
    )


def searchset(
    resources: Sequence[FHIRResourceModel], *, total: int, base: str, self_url: str, next_url: str | None
) -> Bundle:
    """The searchset Bundle of a page of resources (Observations, Tasks), with self and next links."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}/{resource.id}",
                    "resource": resource.model_dump(mode="json", exclude_none=True),
                    "search": {"mode": "match"},
                }
                for resource in resources
            ],
        }
    )


def observation(db: Session, registry: InstrumentRegistry, *, clinic_id: uuid.UUID, observation_id: str) -> Observation:
    ref = parse_observation_id(observation_id)
    row = (
        db.scalar(
            select(Measurement).where(
                Measurement.measurement_id == ref.measurement_id,
                Measurement.clinic_id == clinic_id,
                Measurement.is_current.is_(True),
            )
        )
        if ref is not None
        else None
    )
    match = next(
        (
            obs
            for _row, _part, obs in _observations(db, registry, clinic_id, [row] if row else [])
            if obs.id == observation_id
        ),
        None,
    )
    if match is None:
        raise NotFound(f"no Observation/{observation_id}")
    return match


def _observations(
    db: Session, registry: InstrumentRegistry, clinic_id: uuid.UUID, rows: list[Measurement]
) -> list[tuple[Measurement, str, Observation]]:
    response_ids = questionnaire_responses.logical_ids(
        db, clinic_id=clinic_id, measurement_ids=[row.measurement_id for row in rows]
    )
    found = []
    for row in rows:
        definition = registry.definitions.get(row.instrument_id)
        if definition is None:
            continue
        for item in measurement_observations(row, definition, response_id=response_ids.get(row.measurement_id)):
            ref = parse_observation_id(str(item.id))
            found.append((row, ref.part if ref else "", item))
    return found


def _patient_id(subject: str) -> uuid.UUID:
    try:
        return uuid.UUID(subject.removeprefix("Patient/"))
    except ValueError:
        raise NotFound(f"no {subject}") from None


def _wanted(registry: InstrumentRegistry, code: str) -> dict[str, set[str]]:
    """Instrument → the parts (score keys, ``panel``) the ``code`` tokens name."""
    wanted: dict[str, set[str]] = {}
    for token in (part.strip() for part in code.split(",")):
        system, separator, value = token.rpartition("|")
        for definition in registry.definitions.values():
            for (target_system, target_code), part in code_targets(definition).items():
                if target_code == value and (not separator or system == target_system):
                    wanted.setdefault(definition.id, set()).add(part)
    return wanted
