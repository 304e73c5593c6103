"""New measurements: built and scored once (``new_measurement``), recorded with their alerts; the database itself
refuses a measurement for another clinic's patient."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.clinical import recording
from app.core.errors import InvalidInput, NotFound
from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry
from app.instruments.service import stored_scores
from app.measurements import service
from app.measurements.models import Measurement
from app.measurements.schemas import Source
from app.scoring.engine import score
from tests.conftest import ISSUE_PHQ9, ClinicKeys


def _new(app: FastAPI, clinic: ClinicKeys, patient_id: uuid.UUID, **given: Any) -> service.NewMeasurement:
    return service.new_measurement(
        state_of(app).part(InstrumentRegistry),
        "phq9",
        clinic_id=clinic.id,
        patient_id=patient_id,
        items=ISSUE_PHQ9,
        measured_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        source=Source.API,
        **given,
    )


@pytest.mark.parametrize("whose", ["another clinic's", "nobody's"])
def test_a_patient_outside_the_clinic_is_refused_by_the_foreign_key_and_nothing_is_stored(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, whose: str
) -> None:
    other = client.post("/v1/patients", json={}, headers=other_clinic.headers()).json()["id"]
    patient_id = uuid.UUID(other) if whose == "another clinic's" else uuid.uuid4()
    with state_of(app).write_sessions() as db, db.begin(), pytest.raises(NotFound, match=str(patient_id)):
        recording.record_one(db, _new(app, clinic, patient_id))
    with state_of(app).read_sessions() as db:
        assert db.scalar(select(func.count()).where(Measurement.patient_id == patient_id)) == 0


def test_many_are_stored_with_their_alerts_in_one_go(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> None:
    patient_id = uuid.UUID(client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"])
    with state_of(app).write_sessions() as db, db.begin():
        rows = recording.record(db, [_new(app, clinic, patient_id)] * 3)
    assert len({row["measurement_id"] for row in rows}) == 3
    alerts = client.get(f"/v1/clinic/alerts?patient_id={patient_id}", headers=clinic.headers()).json()
    assert {alert["measurement"]["id"] for alert in alerts["items"]} == {str(row["measurement_id"]) for row in rows}


def test_a_score_the_caller_already_has_is_kept_only_if_it_is_of_the_current_definition(
    app: FastAPI, clinic: ClinicKeys
) -> None:
    definition = state_of(app).part(InstrumentRegistry).definitions["phq9"]
    current = score(definition, ISSUE_PHQ9)
    other_answers = score(definition, {**ISSUE_PHQ9, "1": 0})
    stale = replace(other_answers, version="0.0.0")
    kept = _new(app, clinic, uuid.uuid4(), scored=other_answers)
    rescored = _new(app, clinic, uuid.uuid4(), scored=stale)
    assert kept.result is other_answers  # trusted as given: the caller scored these items
    assert stored_scores(rescored.result) == stored_scores(current)  # scored again from the items
    assert (rescored.definition.id, rescored.definition.version) == (definition.id, definition.version)


def test_an_unknown_instrument_or_invalid_answers_are_refused_before_anything_is_stored(
    app: FastAPI, clinic: ClinicKeys
) -> None:
    with pytest.raises(InvalidInput, match="unknown instrument 'phq99'"):
        service.new_measurement(
            state_of(app).part(InstrumentRegistry),
            "phq99",
            clinic_id=clinic.id,
            patient_id=uuid.uuid4(),
            items=ISSUE_PHQ9,
            measured_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
            source=Source.API,
        )
    with pytest.raises(InvalidInput, match="invalid answer"):
        service.new_measurement(
            state_of(app).part(InstrumentRegistry),
            "phq9",
            clinic_id=clinic.id,
            patient_id=uuid.uuid4(),
            items={**ISSUE_PHQ9, "1": 7},
            measured_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
            source=Source.API,
        )
