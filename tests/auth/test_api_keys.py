"""Admins manage their clinic's keys through the API: create (shown once), list, revoke, expire."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.auth.permissions import Role
from tests.conftest import ClinicKeys


def test_an_admin_creates_a_key_that_works_and_is_shown_once(client: TestClient, clinic: ClinicKeys) -> None:
    created = client.post(
        "/v1/api-keys", json={"role": "integration", "label": "EHR feed"}, headers=clinic.headers(Role.ADMIN)
    )

    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert client.get("/v1/patients", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    listed = client.get("/v1/api-keys", headers=clinic.headers(Role.ADMIN)).json()["items"]
    mine = next(entry for entry in listed if entry["id"] == created.json()["id"])
    assert mine["label"] == "EHR feed"
    assert "key" not in mine
    assert all(key not in str(entry) for entry in listed)


def test_a_revoked_key_stops_working_at_once(client: TestClient, clinic: ClinicKeys) -> None:
    created = client.post("/v1/api-keys", json={"role": "clinician"}, headers=clinic.headers(Role.ADMIN)).json()
    bearer = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/v1/patients", headers=bearer).status_code == 200

    revoked = client.post(f"/v1/api-keys/{created['id']}/revoke", headers=clinic.headers(Role.ADMIN))

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/v1/patients", headers=bearer).status_code == 401


def test_a_key_past_its_expiry_is_refused(client: TestClient, clinic: ClinicKeys) -> None:
    created = client.post(
        "/v1/api-keys",
        json={"role": "clinician", "expires_at": "2020-01-01T00:00:00Z"},
        headers=clinic.headers(Role.ADMIN),
    ).json()

    assert client.get("/v1/patients", headers={"Authorization": f"Bearer {created['key']}"}).status_code == 401


def test_only_admins_manage_keys_and_only_their_clinics(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    assert client.post("/v1/api-keys", json={"role": "admin"}, headers=clinic.headers()).status_code == 403
    theirs = other_clinic.key_ids[Role.CLINICIAN]
    assert client.post(f"/v1/api-keys/{theirs}/revoke", headers=clinic.headers(Role.ADMIN)).status_code == 404
    assert client.get("/v1/patients", headers=other_clinic.headers()).status_code == 200


def test_patient_tokens_are_not_issued_as_api_keys(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.post("/v1/api-keys", json={"role": "patient"}, headers=clinic.headers(Role.ADMIN))

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "role"
