"""Every path that stores a measurement goes through ``app.clinical.recording``, so each raises the same alerts.

An import-linter contract allows only ``app.clinical.recording`` to import ``app.measurements.store``; these tests
show each path in (REST ingest and amendment, FHIR POST, PUT and update, Bundles, research imports, re-scoring)
stores a flagged PHQ-9 through it, and that its risk alert is raised once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.permissions import Role
from app.clinical import recording
from app.clinical.models import RiskAlert
from app.core.db import transaction
from app.core.state import state_of
from app.measurements import service as measurements
from app.measurements.models import Measurement
from app.measurements.schemas import Source
from tests.clinical.conftest import new_patient, phq9
from tests.conftest import ClinicKeys, with_earlier_phq9
from tests.fhir.conftest import SDC_QUESTIONNAIRE, US_CORE_QUESTIONNAIRE, about, fixture, register, send

QR = "/fhir/QuestionnaireResponse"
MRN = "MRN-1"
"""The patient's external id (each test has a clinic of its own)."""
FLAGGED = "qr-phq9-sdc.json"
"""A published PHQ-9 response with item 9 endorsed (item9_positive)."""
UNFLAGGED = "qr-phq9-uscore.json"
"""A published PHQ-9 response with item 9 at 0."""


def _rest_ingest(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    body = {"instrument": "phq9", "items": phq9(14, item9=2), "measured_at": "2026-11-20T09:30:00+01:00"}
    response = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())
    assert response.status_code == 201, response.text


def _rest_amendment(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    body = {"instrument": "phq9", "items": phq9(14), "measured_at": "2026-11-20T09:30:00+01:00"}
    path = f"/v1/patients/{patient_id}/measurements"
    stored = client.post(path, json=body, headers=clinic.headers()).json()
    amend = {"items": phq9(14, item9=2), "reason": "item 9 was misread"}
    response = client.post(f"{path}/{stored['id']}/amend", json=amend, headers=clinic.headers())
    assert response.status_code == 201, response.text


def _fhir_post(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)
    response = send(client, "POST", QR, clinic, about(fixture(FLAGGED), patient_id))
    assert response.status_code == 201, response.text


def _fhir_put(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)
    qr = {**about(fixture(FLAGGED), patient_id), "id": "feed-1"}
    response = send(client, "PUT", f"{QR}/feed-1", clinic, qr)
    assert response.status_code == 201, response.text


def _fhir_update(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    register(client, clinic, SDC_QUESTIONNAIRE)
    first = send(client, "PUT", f"{QR}/feed-2", clinic, {**about(fixture(UNFLAGGED), patient_id), "id": "feed-2"})
    assert first.status_code == 201, first.text
    changed = {**about(fixture(FLAGGED), patient_id), "id": "feed-2"}
    response = send(client, "PUT", f"{QR}/feed-2", clinic, changed, role=Role.CLINICIAN)
    assert response.status_code == 200, response.text


def _fhir_bundle(kind: str) -> Callable[[FastAPI, TestClient, ClinicKeys, str], None]:
    def store(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
        register(client, clinic, SDC_QUESTIONNAIRE)
        request = {"method": "POST", "url": "QuestionnaireResponse"}
        entry = {"resource": about(fixture(FLAGGED), patient_id), "request": request}
        response = send(client, "POST", "/fhir", clinic, {"resourceType": "Bundle", "type": kind, "entry": [entry]})
        assert response.status_code == 200, response.text
        assert response.json()["entry"][0]["response"]["status"].startswith("201"), response.text

    return store


def _research_import(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    header = "external_id,instrument,measured_at," + ",".join(f"item_{n}" for n in range(1, 10))
    row = f"{MRN},phq9,2026-11-02T09:00:00Z,2,2,2,2,1,1,1,1,3"
    headers = {**clinic.headers(Role.INTEGRATION), "Content-Type": "text/csv"}
    response = client.post("/v1/research/imports", content=f"{header}\n{row}\n", headers=headers)
    assert response.status_code == 201, response.text


def _rescoring(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    """A flagged PHQ-9 stored under an earlier definition, then re-scored: a new version, its alert kept (one)."""
    old_registry = with_earlier_phq9(app)
    for db in transaction(state_of(app).write_sessions):
        new = measurements.new_measurement(
            old_registry,
            "phq9",
            clinic_id=clinic.id,
            patient_id=uuid.UUID(patient_id),
            items=phq9(14, item9=2),
            measured_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
            source=Source.API,
        )
        recording.record_one(db, new)
    response = client.post("/v1/instruments/phq9/rescore", headers=clinic.headers(Role.ADMIN))
    assert response.status_code == 200, response.text
    assert response.json()["rescored"] == 1


PATHS: dict[str, Callable[[FastAPI, TestClient, ClinicKeys, str], None]] = {
    "REST ingest": _rest_ingest,
    "REST amendment": _rest_amendment,
    "FHIR POST": _fhir_post,
    "FHIR PUT of a new id": _fhir_put,
    "FHIR PUT that updates": _fhir_update,
    "FHIR transaction Bundle": _fhir_bundle("transaction"),
    "FHIR batch Bundle": _fhir_bundle("batch"),
    "research import": _research_import,
    "re-scoring": _rescoring,
}


@pytest.mark.parametrize("path", PATHS)
def test_every_path_that_stores_a_measurement_records_it_and_raises_its_alert_once(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    patient_id = new_patient(client, clinic, external_id=MRN)
    recorded: list[uuid.UUID] = []
    after_new, after_version = recording._after_new, recording._after_version

    def noting_new(db: Any, rows: Sequence[Mapping[str, Any]], definitions: Any) -> None:
        recorded.extend(row["measurement_id"] for row in rows)
        after_new(db, rows, definitions)

    def noting_version(db: Any, row: Measurement, definition: Any) -> None:
        recorded.append(row.measurement_id)
        after_version(db, row, definition)

    monkeypatch.setattr(recording, "_after_new", noting_new)
    monkeypatch.setattr(recording, "_after_version", noting_version)

    PATHS[path](app, client, clinic, patient_id)

    patient = uuid.UUID(patient_id)
    with state_of(app).read_sessions() as db:
        stored = set(db.scalars(select(Measurement.measurement_id).where(Measurement.patient_id == patient)))
        alerted = list(db.scalars(select(RiskAlert.measurement_id).where(RiskAlert.patient_id == patient)))
    assert stored
    assert set(recorded) >= stored  # every measurement the path stored went through the one place
    assert len(alerted) == 1  # and the flagged one raised its risk alert, once
    assert set(alerted) <= stored
