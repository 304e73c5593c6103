"""Scores out as Observations: one per score of a stored measurement, plus, for instruments with a LOINC panel
(PHQ-9, GAD-7), the panel Observation whose ``hasMember`` lists them (US Core screening-assessment pattern).

Observation ids derive from the measurement's stable id and the score key (``<hex>-total``, ``<hex>-panel``), so
they survive amendments; an amended measurement's Observations read ``status: amended``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.observation import Observation

from app.fhir import codes
from app.measurements.models import Measurement
from app.scoring.definition import InstrumentDefinition, Score

PANEL = "panel"
SURVEY = {"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}


@dataclass(frozen=True)
class ObservationRef:
    measurement_id: uuid.UUID
    part: str
    """A score key, or ``panel``."""


def observation_id(measurement_id: uuid.UUID, part: str) -> str:
    return f"{measurement_id.hex}-{part.replace('_', '-')}"


def parse_observation_id(value: str) -> ObservationRef | None:
    head, separator, part = value.partition("-")
    if not separator or len(head) != 32 or not part:
        return None
    try:
        return ObservationRef(uuid.UUID(hex=head), part.replace("-", "_"))
    except ValueError:
        return None


def observations(
    measurement: Measurement, definition: InstrumentDefinition, *, response_id: str | None
) -> list[Observation]:
    """Every Observation of a measurement: its scores with a value, then the panel (if the instrument has one)."""
    members = [
        _score_observation(measurement, definition, spec, response_id)
        for spec in definition.scores
        if measurement.scores.get(spec.key, {}).get("value") is not None
    ]
    if definition.loinc_panel and members:
        return [*members, _panel(measurement, definition, members, response_id)]
    return members


def headline_observation_id(
    measurement_id: uuid.UUID, scores: dict[str, Any], definition: InstrumentDefinition
) -> str | None:
    """The id of a measurement's headline Observation, as ``observations`` makes them: its panel where the instrument
    has one, else its primary score's (else its first score with a value); None if it has none."""
    scored = [spec.key for spec in definition.scores if scores.get(spec.key, {}).get("value") is not None]
    if not scored:
        return None
    if definition.loinc_panel:
        return observation_id(measurement_id, PANEL)
    primary = definition.primary_score
    return observation_id(measurement_id, primary if primary in scored else scored[0])


def code_targets(definition: InstrumentDefinition) -> dict[tuple[str, str], str]:
    """(system, code) → the part of a measurement it names, for ``Observation?code=``."""
    targets = {
        (codes.LOINC, spec.loinc)
        if spec.loinc
        else (codes.SCORE_SYSTEM, codes.score_code(definition.id, spec.key)): spec.key
        for spec in definition.scores
    }
    if definition.loinc_panel:
        targets[(codes.LOINC, definition.loinc_panel)] = PANEL
    return targets


def _common(measurement: Measurement, part: str, response_id: str | None) -> dict[str, Any]:
    common: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(measurement.measurement_id, part),
        "meta": {"versionId": str(measurement.version), "lastUpdated": measurement.created_at.isoformat()},
        "status": "amended" if measurement.version > 1 else "final",
        "category": [SURVEY],
        "subject": {"reference": f"Patient/{measurement.patient_id}"},
        "effectiveDateTime": measurement.measured_at.isoformat(),
        "issued": measurement.created_at.isoformat(),
    }
    if response_id is not None:
        common["derivedFrom"] = [{"reference": f"QuestionnaireResponse/{response_id}"}]
    return common


def _score_observation(
    measurement: Measurement, definition: InstrumentDefinition, spec: Score, response_id: str | None
) -> Observation:
    stored = measurement.scores[spec.key]
    value = stored["value"]
    coding = (
        {"system": codes.LOINC, "code": spec.loinc}
        if spec.loinc
        else {"system": codes.SCORE_SYSTEM, "code": codes.score_code(definition.id, spec.key)}
    )
    resource = _common(measurement, spec.key, response_id)
    resource["code"] = {"coding": [coding], "text": spec.label}
    resource["valueQuantity"] = {
        "value": int(value) if float(value).is_integer() else value,
        "unit": codes.SCORE_UNIT,
        "system": codes.UCUM,
        "code": codes.SCORE_UNIT,
    }
    if stored.get("band"):
        band = stored["band"]
        resource["interpretation"] = [
            {
                "coding": [{"system": codes.BAND_SYSTEM, "code": band, "display": band.replace("_", " ")}],
                "text": f"{spec.label}: {band.replace('_', ' ')}",
            }
        ]
    notes = _notes(measurement, stored)
    if notes:
        resource["note"] = [{"text": note} for note in notes]
    return Observation.model_validate(resource)


def _notes(measurement: Measurement, stored: dict[str, Any]) -> list[str]:
    notes = []
    if stored.get("prorated"):
        notes.append(f"Prorated: item(s) {', '.join(stored.get('missing_items', []))} unanswered.")
    notes.extend(
        str(warning["message"]) for warning in measurement.warnings if warning.get("code") == "declared_total_mismatch"
    )
    return notes


def _panel(
    measurement: Measurement, definition: InstrumentDefinition, members: list[Observation], response_id: str | None
) -> Observation:
    resource = _common(measurement, PANEL, response_id)
    resource["code"] = {"coding": [{"system": codes.LOINC, "code": definition.loinc_panel}], "text": definition.name}
    resource["hasMember"] = [{"reference": f"Observation/{member.id}"} for member in members]
    return Observation.model_validate(resource)
