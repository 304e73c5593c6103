"""Bundles as clients post them: to the base with a trailing slash, and with GET entries (reads and searches),
each answered in its own entry after the Bundle's writes."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.state import state_of
from tests.conftest import ClinicKeys
from tests.fhir.conftest import send
from tests.security.clinics import enrol
from tests.security.openapi_routes import PHQ9_RESPONSE


def response_about(patient_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", patient_id))
    return data


def batch(*entries: dict[str, Any], kind: str = "batch") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_a_bundle_posted_to_the_base_with_a_trailing_slash_is_processed(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    entry = {"resource": response_about(patient_id), "request": {"method": "POST", "url": "QuestionnaireResponse"}}

    response = send(client, "POST", "/fhir/", clinic, batch(entry, kind="transaction"))

    assert response.status_code == 200, response.text
    assert response.json()["type"] == "transaction-response"


def test_get_entries_read_and_search_after_the_writes_each_on_its_own(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    bundle = batch(
        {"request": {"method": "GET", "url": f"Observation?subject=Patient/{patient_id}&code=44261-6"}},
        {"request": {"method": "GET", "url": f"Patient/{patient_id}"}},
        {"request": {"method": "GET", "url": f"Patient/{uuid.uuid4()}"}},
        {"resource": response_about(patient_id), "request": {"method": "POST", "url": "QuestionnaireResponse"}},
        {"request": {"method": "GET", "url": f"http://testserver/fhir/QuestionnaireResponse?patient={patient_id}"}},
        {"request": {"method": "GET", "url": "Encounter?patient=x"}},
    )

    response = send(client, "POST", "/fhir", clinic, bundle)

    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert [entry["response"]["status"][:3] for entry in entries] == ["200", "200", "404", "201", "200", "405"]
    observations = entries[0]["resource"]
    assert (observations["type"], observations["total"]) == ("searchset", 1)
    assert entries[1]["resource"]["id"] == patient_id
    assert entries[4]["resource"]["entry"][0]["resource"]["id"] == entries[3]["response"]["location"].split("/")[1]


def test_a_get_entry_needs_the_permission_of_what_it_reads(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    token, _key_id = enrol(client, clinic, patient_id)
    bundle = batch({"request": {"method": "GET", "url": f"Observation?subject=Patient/{patient_id}"}})

    response = client.post(
        "/fhir",
        content=json.dumps(bundle),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )

    assert response.status_code == 200, response.text
    [entry] = response.json()["entry"]
    assert entry["response"]["status"].startswith("403")
    assert "resource" not in entry


def test_a_get_entry_is_audited_naming_its_patient(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    bundle = batch({"request": {"method": "GET", "url": f"Patient/{patient_id}"}})

    assert send(client, "POST", "/fhir", clinic, bundle, role=Role.ADMIN).status_code == 200

    query = select(AuditEvent).where(AuditEvent.clinic_id == clinic.id, AuditEvent.action == "read")
    with state_of(app).read_sessions() as db:
        [event] = db.scalars(query).all()
    assert (event.action, event.resource_type, event.patient_id, event.details) == (
        "read",
        "Patient",
        uuid.UUID(patient_id),
        {"entry": 0},
    )
