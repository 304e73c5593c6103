from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ClinicKeys


def test_a_patient_needs_no_name_and_may_carry_external_identifiers(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.post(
        "/v1/patients",
        json={"external_id": "MRN-1", "identifiers": [{"system": "urn:oid:1.2.3", "value": "A-9"}]},
        headers=clinic.headers(),
    )

    assert response.status_code == 201
    patient = response.json()
    assert patient["external_id"] == "MRN-1"
    assert patient["identifiers"] == [{"system": "urn:oid:1.2.3", "value": "A-9"}]
    assert response.headers["location"] == f"/v1/patients/{patient['id']}"
    assert client.get(f"/v1/patients/{patient['id']}", headers=clinic.headers()).json() == patient


def test_an_identifier_is_unique_within_a_clinic_only(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    assert client.post("/v1/patients", json={"external_id": "MRN-2"}, headers=clinic.headers()).status_code == 201

    again = client.post("/v1/patients", json={"external_id": "MRN-2"}, headers=clinic.headers())
    elsewhere = client.post("/v1/patients", json={"external_id": "MRN-2"}, headers=other_clinic.headers())

    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert elsewhere.status_code == 201


def test_patients_are_found_by_identifier_and_paginated(client: TestClient, clinic: ClinicKeys) -> None:
    created = [
        client.post("/v1/patients", json={"external_id": f"P-{n}"}, headers=clinic.headers()).json() for n in range(3)
    ]
    client.post("/v1/patients", json={"identifiers": [{"system": "urn:ehr", "value": "E|1"}]}, headers=clinic.headers())

    by_external = client.get("/v1/patients", params={"external_id": "P-1"}, headers=clinic.headers()).json()
    by_identifier = client.get("/v1/patients", params={"identifier": "urn:ehr|E|1"}, headers=clinic.headers()).json()
    first = client.get("/v1/patients", params={"limit": 2}, headers=clinic.headers()).json()
    rest = client.get("/v1/patients", params={"limit": 2, "offset": 2}, headers=clinic.headers()).json()

    assert [p["id"] for p in by_external["items"]] == [created[1]["id"]]
    assert len(by_identifier["items"]) == 1
    assert (len(first["items"]), first["has_more"]) == (2, True)
    assert (len(rest["items"]), rest["has_more"]) == (2, False)


def test_unknown_fields_and_oversized_pages_are_422(client: TestClient, clinic: ClinicKeys) -> None:
    assert client.post("/v1/patients", json={"name": "Jane"}, headers=clinic.headers()).status_code == 422
    assert client.get("/v1/patients", params={"limit": 100_000}, headers=clinic.headers()).status_code == 422


def test_a_malformed_patient_id_is_a_422_problem(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get("/v1/patients/not-a-uuid", headers=clinic.headers())

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "patient_id"
