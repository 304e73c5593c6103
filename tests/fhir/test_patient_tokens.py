"""A mobile app's patient token posts its own patient's QuestionnaireResponse over FHIR; the subject is implied."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from app.auth.permissions import Role
from tests.conftest import ClinicKeys
from tests.fhir.conftest import FHIR_JSON, US_CORE_QUESTIONNAIRE, about, fixture, register

QR = "/fhir/QuestionnaireResponse"


def phone_headers(client: TestClient, clinic: ClinicKeys, patient_id: str) -> dict[str, str]:
    code = client.post(f"/v1/patients/{patient_id}/enrolments", json={}, headers=clinic.headers()).json()["code"]
    token = client.post("/v1/enrolments/exchange", json={"code": code}).json()["token"]
    return {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}


def test_a_patient_token_posts_a_response_without_a_subject(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    response = fixture("qr-phq9-uscore.json")
    response.pop("subject", None)

    posted = client.post(QR, content=json.dumps(response), headers=phone_headers(client, clinic, patient_id))

    assert posted.status_code == 201, posted.text
    listed = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers()).json()["items"]
    assert [(m["source"], m["scores"]["total"]["value"]) for m in listed] == [("fhir", 12)]


def test_a_patient_token_cannot_post_about_another_patient(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    someone_else = client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]

    posted = client.post(
        QR,
        content=json.dumps(about(fixture("qr-phq9-uscore.json"), someone_else)),
        headers=phone_headers(client, clinic, patient_id),
    )

    assert posted.status_code == 404
    assert posted.json()["resourceType"] == "OperationOutcome"
    assert (
        client.get(f"/v1/patients/{someone_else}/measurements", headers=clinic.headers(Role.ADMIN)).json()["items"]
        == []
    )


def test_a_patient_token_reads_no_fhir_resources(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    phone = phone_headers(client, clinic, patient_id)

    assert client.get(f"/fhir/Patient/{patient_id}", headers=phone).status_code == 403
    assert client.get(f"/fhir/Observation?subject=Patient/{patient_id}", headers=phone).status_code == 403
