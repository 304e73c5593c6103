"""The measurement service: the database itself refuses a measurement for another clinic's patient."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.errors import NotFound
from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry
from app.instruments.service import stored_scores
from app.measurements import service
from app.measurements.models import Measurement
from app.measurements.schemas import Source
from app.scoring.engine import score
from tests.conftest import ISSUE_PHQ9, ClinicKeys


def _new(clinic: ClinicKeys, patient_id: uuid.UUID) -> service.NewMeasurement:
    return service.NewMeasurement(
        clinic_id=clinic.id,
        patient_id=patient_id,
        instrument="phq9",
        items=ISSUE_PHQ9,
        measured_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        source=Source.API,
    )


@pytest.mark.parametrize("whose", ["another clinic's", "nobody's"])
def test_a_patient_outside_the_clinic_is_refused_by_the_foreign_key_and_nothing_is_stored(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, whose: str
) -> None:
    other = client.post("/v1/patients", json={}, headers=other_clinic.headers()).json()["id"]
    patient_id = uuid.UUID(other) if whose == "another clinic's" else uuid.uuid4()
    with state_of(app).write_sessions() as session, session.begin(), pytest.raises(NotFound, match=str(patient_id)):
        service.create(session, state_of(app).part(InstrumentRegistry), _new(clinic, patient_id))
    with state_of(app).read_sessions() as session:
        assert session.scalar(select(func.count()).where(Measurement.patient_id == patient_id)) == 0


def test_create_many_stores_every_row_and_its_alerts_in_one_go(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    patient_id = uuid.UUID(client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"])
    with state_of(app).write_sessions() as session, session.begin():
        rows = service.create_many(session, state_of(app).part(InstrumentRegistry), [_new(clinic, patient_id)] * 3)
    assert len({row["measurement_id"] for row in rows}) == 3
    alerts = client.get(f"/v1/clinic/alerts?patient_id={patient_id}", headers=clinic.headers()).json()
    assert {alert["measurement"]["id"] for alert in alerts["items"]} == {str(row["measurement_id"]) for row in rows}


def test_a_score_the_caller_already_has_is_stored_only_if_it_is_of_the_current_definition(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    patient_id = uuid.UUID(client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"])
    definition = state_of(app).part(InstrumentRegistry).definitions["phq9"]
    current = score(definition, ISSUE_PHQ9)
    other_answers = score(definition, {**ISSUE_PHQ9, "1": 0})
    stale = replace(other_answers, version="0.0.0")
    with state_of(app).write_sessions() as session, session.begin():
        kept, rescored = service.create_many(
            session,
            state_of(app).part(InstrumentRegistry),
            [replace(_new(clinic, patient_id), score=other_answers), replace(_new(clinic, patient_id), score=stale)],
        )
    assert kept["scores"] == stored_scores(other_answers)  # trusted as given: the caller scored these items
    assert rescored["scores"] == stored_scores(current)  # scored again from the items, not the stale result
