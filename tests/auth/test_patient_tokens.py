"""A mobile app enrolled for one patient posts that patient's responses and can read nothing else."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.main import create_app
from tests.conftest import ISSUE_PHQ9, ClinicKeys, make_settings, new_clinic

MEASURED_AT = "2026-11-20T09:30:00+01:00"


def enrol(client: TestClient, clinic: ClinicKeys, patient_id: str) -> dict[str, str]:
    enrolment = client.post(f"/v1/patients/{patient_id}/enrolments", json={}, headers=clinic.headers())
    assert enrolment.status_code == 201, enrolment.text
    exchanged = client.post("/v1/enrolments/exchange", json={"code": enrolment.json()["code"]})
    assert exchanged.status_code == 201, exchanged.text
    assert exchanged.json()["patient_id"] == patient_id
    return {"Authorization": f"Bearer {exchanged.json()['token']}"}


def test_a_mobile_token_posts_its_own_patients_phq9(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    phone = enrol(client, clinic, patient_id)
    body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": MEASURED_AT}

    implied = client.post("/v1/me/measurements", json=body, headers=phone)
    explicit = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=phone)

    assert implied.status_code == explicit.status_code == 201
    assert implied.json()["patient_id"] == patient_id
    assert implied.json()["scores"]["total"]["value"] == 10
    listed = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers()).json()["items"]
    assert len(listed) == 2


def test_a_mobile_token_fetches_instrument_definitions(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    phone = enrol(client, clinic, patient_id)

    assert client.get("/v1/instruments/phq9", headers=phone).status_code == 200


def test_a_mobile_token_reads_nothing_else(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    phone = enrol(client, clinic, patient_id)
    other_patient = client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]
    stored = client.post(
        "/v1/me/measurements",
        json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": MEASURED_AT},
        headers=phone,
    ).json()

    refused = [
        client.get("/v1/patients", headers=phone),
        client.get(f"/v1/patients/{patient_id}", headers=phone),
        client.get(f"/v1/patients/{patient_id}/measurements", headers=phone),
        client.get(f"/v1/patients/{patient_id}/measurements/{stored['id']}", headers=phone),
        client.get(f"/v1/patients/{patient_id}/measurements/{stored['id']}/history", headers=phone),
        client.get(f"/v1/patients/{patient_id}/sessions", headers=phone),
        client.post(f"/v1/patients/{patient_id}/enrolments", json={}, headers=phone),
        client.get("/v1/api-keys", headers=phone),
        client.get("/v1/audit", headers=phone),
    ]
    elsewhere = client.post(
        f"/v1/patients/{other_patient}/measurements",
        json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": MEASURED_AT},
        headers=phone,
    )

    assert [r.status_code for r in refused] == [403] * len(refused)
    assert elsewhere.status_code == 404
    assert all("items" not in r.json() for r in refused)


def test_a_code_is_spent_once_and_can_be_revoked(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    first = client.post(f"/v1/patients/{patient_id}/enrolments", json={}, headers=clinic.headers()).json()
    second = client.post(f"/v1/patients/{patient_id}/enrolments", json={}, headers=clinic.headers()).json()
    assert first["enrolment_uri"] == f"http://localhost:8000/enrol#code={first['code']}"

    assert client.post("/v1/enrolments/exchange", json={"code": first["code"].lower()}).status_code == 201
    assert client.post("/v1/enrolments/exchange", json={"code": first["code"]}).status_code == 401
    revoke = client.post(f"/v1/patients/{patient_id}/enrolments/{second['id']}/revoke", headers=clinic.headers())
    assert revoke.status_code == 204
    assert client.post("/v1/enrolments/exchange", json={"code": second["code"]}).status_code == 401
    assert client.post("/v1/enrolments/exchange", json={"code": "AAAA-BBBB-CCCC"}).status_code == 401


def test_a_revoked_token_stops_working(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    phone = enrol(client, clinic, patient_id)
    [token] = client.get(f"/v1/patients/{patient_id}/tokens", headers=clinic.headers()).json()["items"]

    revoked = client.post(f"/v1/patients/{patient_id}/tokens/{token['id']}/revoke", headers=clinic.headers())

    assert revoked.status_code == 200
    assert client.get("/v1/instruments/phq9", headers=phone).status_code == 401


def test_staff_cannot_use_the_implied_patient_route(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.post(
        "/v1/me/measurements",
        json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": MEASURED_AT},
        headers=clinic.headers(Role.INTEGRATION),
    )

    assert response.status_code == 422


def test_researchers_and_integrations_cannot_enrol_patients(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    for role in (Role.RESEARCHER, Role.INTEGRATION):
        url = f"/v1/patients/{patient_id}/enrolments"
        assert client.post(url, json={}, headers=clinic.headers(role)).status_code == 403


def test_the_enrolment_link_is_built_from_the_public_base_url_never_the_host_header(database_url: str) -> None:
    app = create_app(make_settings(database_url, public_base_url="https://api.clinic.example/"))
    with TestClient(app) as client:
        clinic = new_clinic(app)
        patient = client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]
        issued = client.post(
            f"/v1/patients/{patient}/enrolments", json={}, headers={**clinic.headers(), "Host": "evil.example"}
        ).json()

    assert issued["enrolment_uri"] == f"https://api.clinic.example/enrol#code={issued['code']}"
