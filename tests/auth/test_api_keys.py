"""Admins manage their clinic's keys through the API: create (shown once), list, revoke, expire."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.core.datetimes import CLOCK
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
    with CLOCK.frozen_at(datetime(2026, 11, 20, 9, 30, tzinfo=UTC)):
        created = client.post(
            "/v1/api-keys",
            json={"role": "clinician", "expires_at": "2026-11-20T10:30:00Z"},
            headers=clinic.headers(Role.ADMIN),
        ).json()
    bearer = {"Authorization": f"Bearer {created['key']}"}

    with CLOCK.frozen_at(datetime(2026, 11, 20, 10, 29, 59, tzinfo=UTC)):
        assert client.get("/v1/patients", headers=bearer).status_code == 200
    with CLOCK.frozen_at(datetime(2026, 11, 20, 10, 30, tzinfo=UTC)):
        assert client.get("/v1/patients", headers=bearer).status_code == 401


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


def test_an_api_key_expires_after_now_and_at_most_ten_years_ahead(client: TestClient, clinic: ClinicKeys) -> None:
    admin = clinic.headers(Role.ADMIN)
    with CLOCK.frozen_at(datetime(2026, 11, 20, 9, 30, tzinfo=UTC)):
        for expires_at in [
            "2026-11-20T09:29:59Z",  # already expired
            "2026-11-20T09:30:00Z",  # expires as it is made
            "2036-11-21T09:30:00Z",  # beyond 3653 days
            "9999-12-31T23:59:59-12:00",
            "0001-01-01T00:00:00+14:00",
        ]:
            response = client.post("/v1/api-keys", json={"role": "clinician", "expires_at": expires_at}, headers=admin)

            assert response.status_code == 422, response.text
            [error] = response.json()["errors"]
            assert error["field"] == "expires_at"
            assert "must be after now (2026-11-20T09:30:00Z) and at most 3653 days ahead" in error["detail"]
        issued = client.post(
            "/v1/api-keys", json={"role": "clinician", "expires_at": "2027-11-20T10:30:00+01:00"}, headers=admin
        )
        assert issued.status_code == 201, issued.text
        assert issued.json()["expires_at"] == "2027-11-20T09:30:00Z"
    listed = client.get("/v1/api-keys", headers=admin).json()["items"]
    assert [key["expires_at"] for key in listed if key["expires_at"] is not None] == ["2027-11-20T09:30:00Z"]
