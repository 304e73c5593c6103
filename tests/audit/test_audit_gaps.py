"""Every answer about a patient names that patient in its clinic's trail, with the status actually sent; another
clinic's patient is never named there, yet the attempt is recorded."""

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
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.security.openapi_routes import PHQ9_RESPONSE

FHIR = {"Content-Type": "application/fhir+json"}


def rows(app: FastAPI, **where: Any) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    with state_of(app).read_sessions() as db:
        return list(db.scalars(query))


def response_for(patient_id: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", patient_id))
    return body


def post_response(client: TestClient, clinic: ClinicKeys, patient_id: str) -> Any:
    return client.post(
        "/fhir/QuestionnaireResponse",
        content=json.dumps(response_for(patient_id)),
        headers={**clinic.headers(), **FHIR},
    )


def test_every_fhir_read_names_the_patient_it_is_about(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    created = post_response(client, clinic, patient_id)
    assert created.status_code == 201, created.text
    searched = client.get("/fhir/Observation", params={"subject": f"Patient/{patient_id}"}, headers=clinic.headers())
    observation_id = searched.json()["entry"][0]["resource"]["id"]
    reads = [
        f"/fhir/QuestionnaireResponse/{created.json()['id']}",
        f"/fhir/Observation/{observation_id}",
        f"/fhir/Observation?subject=Patient/{patient_id}",
    ]
    for path in reads:
        assert client.get(path, headers=clinic.headers()).status_code == 200

    audited = [row for row in rows(app, clinic_id=clinic.id, method="GET") if row.route.startswith("/fhir/")]
    assert sorted(row.route for row in audited) == [
        "/fhir/Observation",
        "/fhir/Observation",
        "/fhir/Observation/{observation_id}",
        "/fhir/QuestionnaireResponse/{response_id}",
    ]
    assert {(row.patient_id, row.status_code) for row in audited} == {(uuid.UUID(patient_id), 200)}


def test_a_creation_is_audited_with_the_status_sent(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    created = client.post(
        f"/v1/patients/{patient_id}/measurements",
        json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-01-01T10:00:00Z"},
        headers=clinic.headers(),
    )
    fhir = post_response(client, clinic, patient_id)
    assert (created.status_code, fhir.status_code) == (201, 201)

    requests = [row for row in rows(app, clinic_id=clinic.id, method="POST") if row.details.get("created") is not None]
    assert {(row.route, row.status_code, row.patient_id) for row in requests} == {
        ("/v1/patients", 201, uuid.UUID(patient_id)),  # the patient fixture's creation
        ("/v1/patients/{patient_id}/measurements", 201, uuid.UUID(patient_id)),
        ("/fhir/QuestionnaireResponse", 201, uuid.UUID(patient_id)),
    }


def test_a_fhir_write_naming_another_clinics_patient_is_audited_without_naming_it(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    refused = post_response(client, other_clinic, patient_id)
    assert refused.status_code == 404

    [attempt] = rows(app, clinic_id=other_clinic.id, route="/fhir/QuestionnaireResponse")
    assert (attempt.status_code, attempt.outcome, attempt.patient_id) == (404, "not_found", None)
    assert rows(app, patient_id=uuid.UUID(patient_id), clinic_id=other_clinic.id) == []


def test_each_bundle_entry_is_audited_with_its_own_patient_and_status(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    foreign = client.post("/v1/patients", json={}, headers=other_clinic.headers()).json()["id"]
    entries = [
        {"resource": response_for(subject), "request": {"method": "POST", "url": "QuestionnaireResponse"}}
        for subject in (patient_id, foreign)
    ]
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
    answered = client.post("/fhir", content=json.dumps(bundle), headers={**clinic.headers(), **FHIR})
    assert answered.status_code == 200
    assert [entry["response"]["status"][:3] for entry in answered.json()["entry"]] == ["201", "404"]

    audited = rows(app, clinic_id=clinic.id, route="/fhir")
    request = [row for row in audited if "entry" not in row.details and row.resource_type == "fhir"]
    by_entry = {row.details["entry"]: row for row in audited if "entry" in row.details}
    assert [(row.status_code, row.outcome) for row in request] == [(200, "success")]
    assert (by_entry[0].status_code, by_entry[0].outcome, by_entry[0].patient_id) == (
        201,
        "success",
        uuid.UUID(patient_id),
    )
    assert (by_entry[1].status_code, by_entry[1].outcome, by_entry[1].patient_id) == (404, "not_found", None)
    assert rows(app, patient_id=uuid.UUID(foreign), clinic_id=clinic.id) == []


def test_a_transaction_bundle_refused_for_one_entry_is_audited_as_refused(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    foreign = client.post("/v1/patients", json={}, headers=other_clinic.headers()).json()["id"]
    entries = [
        {"resource": response_for(subject), "request": {"method": "POST", "url": "QuestionnaireResponse"}}
        for subject in (patient_id, foreign)
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    answered = client.post("/fhir", content=json.dumps(bundle), headers={**clinic.headers(), **FHIR})
    assert answered.status_code == 404

    audited = rows(app, clinic_id=clinic.id, route="/fhir")
    assert [(row.status_code, row.outcome, row.details) for row in audited] == [
        (404, "not_found", {}),
        (404, "not_found", {"entry": 1}),
    ]
    assert all(row.patient_id is None for row in audited)


def test_an_enrolment_exchange_is_audited_in_the_patients_clinic(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    code = client.post(f"/v1/patients/{patient_id}/enrolments", json={}, headers=clinic.headers()).json()["code"]
    assert client.post("/v1/enrolments/exchange", json={"code": code}).status_code == 201

    [exchange] = [
        row
        for row in rows(app, route="/v1/enrolments/exchange", clinic_id=clinic.id)
        if row.resource_type == "exchange"
    ]
    assert (exchange.clinic_id, exchange.patient_id, exchange.status_code) == (clinic.id, uuid.UUID(patient_id), 201)
    trail = client.get("/v1/audit", params={"patient_id": patient_id}, headers=clinic.headers(Role.ADMIN)).json()
    assert any(event["route"] == "/v1/enrolments/exchange" for event in trail["items"])
