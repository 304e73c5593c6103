"""fhirpy 2.3 (the sync client) drives the real server: patients (create, get_or_create), responses (create and
update), a transaction and a batch Bundle, Observation search by date with paging."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from tests.fhir.clients.conftest import Live, phq9_response


@pytest.fixture
def fhir(live: Live) -> SyncFHIRClient:
    return SyncFHIRClient(live.base, authorization=f"Bearer {live.key}")


def new_patient(fhir: SyncFHIRClient) -> str:
    identifier = {"system": "urn:test:fhirpy", "value": str(uuid.uuid4())}
    patient = fhir.resource("Patient", identifier=[identifier])
    patient.save()
    return str(patient.id)


def test_patients_are_created_and_got_or_created_by_identifier(fhir: SyncFHIRClient) -> None:
    identifier = {"system": "urn:test:fhirpy", "value": str(uuid.uuid4())}
    patient = fhir.resource("Patient", identifier=[identifier])
    patients = fhir.resources("Patient").search(identifier=f"{identifier['system']}|{identifier['value']}")

    created, was_created = patients.get_or_create(patient)
    again, created_again = patients.get_or_create(fhir.resource("Patient", identifier=[identifier]))

    assert (was_created, created_again) == (True, False)
    assert again.id == created.id
    assert patients.get().id == created.id
    assert patients.count() == 1
    assert fhir.reference("Patient", created.id).to_resource().identifier[0]["value"] == identifier["value"]


def test_a_response_is_created_then_updated_and_scored_again(fhir: SyncFHIRClient) -> None:
    patient_id = new_patient(fhir)
    response = fhir.resource("QuestionnaireResponse", **phq9_response(patient_id, "2026-11-03T09:00:00Z"))
    response.save()
    first_version = response.meta["versionId"]

    response["item"][0]["answer"][0]["valueCoding"] = {"system": "http://loinc.org", "code": "LA6570-1"}
    response.save()

    assert response.meta["versionId"] != first_version
    [total] = fhir.resources("Observation").search(subject=f"Patient/{patient_id}", code="44261-6").fetch_all()
    assert (total.valueQuantity["value"], total.status) == (2, "amended")


def test_transaction_and_batch_bundles_go_to_the_base_url(fhir: SyncFHIRClient) -> None:
    local = f"urn:uuid:{uuid.uuid4()}"
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": local,
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": phq9_response("placeholder", "2026-11-04T09:00:00Z") | {"subject": {"reference": local}},
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
        ],
    }
    done: dict[str, Any] = fhir.execute("/", method="post", data=transaction)
    patient_id = done["entry"][0]["response"]["location"].split("/")[1]

    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{patient_id}"}},
            {"request": {"method": "GET", "url": f"Observation?subject=Patient/{patient_id}&_summary=count"}},
            {"request": {"method": "GET", "url": "Patient/not-a-patient"}},
        ],
    }
    answered: dict[str, Any] = fhir.execute("/", method="post", data=batch)

    assert [entry["response"]["status"][:3] for entry in done["entry"]] == ["201", "201"]
    assert [entry["response"]["status"][:3] for entry in answered["entry"]] == ["200", "200", "404"]
    assert answered["entry"][1]["resource"]["total"] == 2


def test_observations_are_searched_by_date_page_by_page(fhir: SyncFHIRClient) -> None:
    patient_id = new_patient(fhir)
    for day in ("2026-10-20", "2026-11-02", "2026-11-09", "2026-11-16"):
        fhir.resource("QuestionnaireResponse", **phq9_response(patient_id, f"{day}T09:00:00Z")).save()
    totals = (
        fhir.resources("Observation")
        .search(subject=f"Patient/{patient_id}", code="http://loinc.org|44261-6", date="ge2026-11-01")
        .sort("-date")
        .limit(1)
    )

    found = totals.fetch_all()

    assert [observation.effectiveDateTime[:10] for observation in found] == ["2026-11-16", "2026-11-09", "2026-11-02"]
    assert totals.count() == 3


def test_strict_handling_refuses_what_the_server_cannot_search(live: Live) -> None:
    strict = SyncFHIRClient(live.base, authorization=f"Bearer {live.key}", extra_headers={"Prefer": "handling=strict"})

    with pytest.raises(OperationOutcome) as refused:
        strict.resources("Observation").search(subject=f"Patient/{uuid.uuid4()}", _has="x").fetch()

    assert "_has" in str(refused.value)
