"""fhirclient 4.4 (SMART's client-py, strict R4 models) drives the real server: patients (create, conditional create),
responses (create and update), a transaction and a batch Bundle, Observation search by date with paging."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fhirclient.models.bundle import Bundle
from fhirclient.models.fhirdatetime import FHIRDateTime
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.models.questionnaireresponse import QuestionnaireResponse
from fhirclient.server import FHIRServer

from tests.fhir.clients.conftest import Live, phq9_response


@pytest.fixture
def server(live: Live) -> FHIRServer:
    server = FHIRServer(None, base_uri=live.base)
    server.session.headers["Authorization"] = f"Bearer {live.key}"
    return server


def new_patient(server: FHIRServer) -> str:
    patient = Patient({"identifier": [{"system": "urn:test:fhirclient", "value": str(uuid.uuid4())}]})
    created: dict[str, Any] = patient.create(server)
    Patient(created)  # the answer parses as a strict R4 Patient
    return str(created["id"])


def test_a_patient_is_created_read_and_conditionally_created(server: FHIRServer) -> None:
    identifier = {"system": "urn:test:fhirclient", "value": str(uuid.uuid4())}
    body = Patient({"identifier": [identifier]}).as_json()

    first = server.post_json(f"Patient?identifier={identifier['system']}|{identifier['value']}", body)
    again = server.post_json(f"Patient?identifier={identifier['system']}|{identifier['value']}", body)
    read = Patient.read(first.json()["id"], server)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == read.id == first.json()["id"]
    found = Patient.where({"identifier": f"{identifier['system']}|{identifier['value']}"}).perform_resources_iter(
        server
    )
    assert [patient.id for patient in found] == [read.id]


def test_a_response_is_created_then_updated(server: FHIRServer) -> None:
    patient_id = new_patient(server)
    response = QuestionnaireResponse(phq9_response(patient_id, "2026-11-03T09:00:00Z"))
    created = QuestionnaireResponse(response.create(server))

    created.authored = FHIRDateTime("2026-11-04T09:00:00Z")
    created.update(server)
    read = QuestionnaireResponse.read(created.id, server)

    assert (read.meta.versionId, read.authored.isostring[:10]) == ("2", "2026-11-04")


def test_transaction_and_batch_bundles_go_to_the_base_url(server: FHIRServer) -> None:
    patient_id = new_patient(server)
    transaction = Bundle(
        {
            "type": "transaction",
            "entry": [
                {
                    "resource": phq9_response(patient_id, "2026-11-05T09:00:00Z"),
                    "request": {"method": "POST", "url": "QuestionnaireResponse"},
                }
            ],
        }
    )
    batch = Bundle(
        {
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"Patient/{patient_id}"}},
                {"request": {"method": "GET", "url": f"QuestionnaireResponse?patient={patient_id}"}},
            ],
        }
    )

    done = Bundle(server.post_json("", transaction.as_json()).json())
    answered = Bundle(server.post_json("", batch.as_json()).json())

    assert done.type == "transaction-response"
    assert done.entry[0].response.status.startswith("201")
    assert [entry.response.status for entry in answered.entry] == ["200 OK", "200 OK"]
    assert isinstance(answered.entry[0].resource, Patient)
    assert len(answered.entry[1].resource.entry) == 1


def test_observations_are_searched_by_date_page_by_page(server: FHIRServer) -> None:
    patient_id = new_patient(server)
    for day in ("2026-10-20", "2026-11-02", "2026-11-09"):
        QuestionnaireResponse(phq9_response(patient_id, f"{day}T09:00:00Z")).create(server)
    search = Observation.where(
        {"subject": f"Patient/{patient_id}", "code": "44261-6", "date": "ge2026-11-01", "_count": "1"}
    )

    pages = list(search.perform_iter(server))

    assert len(pages) == 2
    assert [page.entry[0].resource.effectiveDateTime.isostring[:10] for page in pages] == ["2026-11-02", "2026-11-09"]
    assert all(page.entry[0].fullUrl.startswith(server.base_uri) for page in pages)
