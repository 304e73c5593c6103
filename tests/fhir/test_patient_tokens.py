"""A mobile app's patient token posts its own patient's QuestionnaireResponse over FHIR; the subject is implied."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from tests.conftest import ClinicKeys
from tests.fhir.conftest import FHIR_JSON, US_CORE_QUESTIONNAIRE, about, fixture, issues, register

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


FEED = "urn:oid:1.2.3.4.5"


@dataclass(frozen=True)
class Neighbour:
    """Another patient of the same clinic with a response of their own, recognisable by its markers."""

    patient_id: str
    phone: dict[str, str]
    response: dict[str, Any]
    """The response as the server stored it (id, subject, answers)."""
    identifier: str
    markers: tuple[str, ...]

    def leaked(self, text: str) -> list[str]:
        return [marker for marker in self.markers if marker in text]


def own_response(identifier: str | None = None) -> dict[str, Any]:
    """The US Core response a phone sends: no subject (the token implies it), under the feed's identifier."""
    response = fixture("qr-phq9-uscore.json")
    response.pop("subject", None)
    response.pop("id", None)
    if identifier is not None:
        response["identifier"] = {"system": FEED, "value": identifier}
    return response


def neighbour(client: TestClient, clinic: ClinicKeys) -> Neighbour:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    tag = uuid.uuid4().hex[:10]
    patient_id = client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]
    phone = phone_headers(client, clinic, patient_id)
    response = {**own_response(f"resp-b-{tag}"), "author": {"display": f"author-of-b-{tag}"}}
    posted = client.post(
        QR, content=json.dumps(response), headers={**phone, "If-None-Exist": f"identifier={FEED}|resp-b-{tag}"}
    )
    assert posted.status_code == 201, posted.text
    stored = posted.json()
    measurement = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers()).json()["items"][0]
    return Neighbour(
        patient_id=patient_id,
        phone=phone,
        response=stored,
        identifier=f"resp-b-{tag}",
        markers=(stored["id"], patient_id, f"author-of-b-{tag}", measurement["id"]),
    )


def stored_versions(client: TestClient, clinic: ClinicKeys, patient_id: str) -> list[tuple[str, int]]:
    listed = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers()).json()["items"]
    return [(m["id"], m["version"]) for m in listed]


@pytest.mark.parametrize("criteria", [f"identifier={FEED}|{{value}}", "identifier={value}"])
def test_a_patient_token_never_receives_another_patients_response_through_conditional_create(
    client: TestClient, clinic: ClinicKeys, patient_id: str, criteria: str
) -> None:
    b = neighbour(client, clinic)
    phone = phone_headers(client, clinic, patient_id)

    posted = client.post(
        QR,
        content=json.dumps(own_response(b.identifier)),
        headers={**phone, "If-None-Exist": criteria.format(value=b.identifier), "Prefer": "return=representation"},
    )

    assert posted.status_code == 409, posted.text
    assert [issue["code"] for issue in issues(posted)] == ["duplicate"]
    assert b.leaked(posted.text) == []
    assert stored_versions(client, clinic, patient_id) == []
    assert len(stored_versions(client, clinic, b.patient_id)) == 1


@pytest.mark.parametrize("bundle_type", ["batch", "transaction"])
def test_a_patient_token_never_receives_another_patients_response_through_a_bundle_entry(
    client: TestClient, clinic: ClinicKeys, patient_id: str, bundle_type: str
) -> None:
    b = neighbour(client, clinic)
    phone = phone_headers(client, clinic, patient_id)
    entry = {
        "resource": own_response(b.identifier),
        "request": {"method": "POST", "url": "QuestionnaireResponse", "ifNoneExist": f"identifier={b.identifier}"},
    }
    bundle = {"resourceType": "Bundle", "type": bundle_type, "entry": [entry]}

    posted = client.post("/fhir", content=json.dumps(bundle), headers={**phone, "Prefer": "return=representation"})

    assert b.leaked(posted.text) == []
    if bundle_type == "batch":
        assert posted.status_code == 200, posted.text
        assert [e["response"]["status"] for e in posted.json()["entry"]] == ["409 Conflict"]
        assert "resource" not in posted.json()["entry"][0]
    else:
        assert posted.status_code == 409, posted.text
    assert stored_versions(client, clinic, patient_id) == []


def test_a_patient_token_cannot_write_over_another_patients_response_by_id(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    b = neighbour(client, clinic)
    phone = phone_headers(client, clinic, patient_id)
    response_id = b.response["id"]
    before = stored_versions(client, clinic, b.patient_id)
    as_stored = {k: v for k, v in b.response.items() if k != "meta"}
    changed = {**own_response(), "id": response_id}
    entry = {"resource": changed, "request": {"method": "PUT", "url": f"QuestionnaireResponse/{response_id}"}}

    answers = [
        client.put(
            f"{QR}/{response_id}", content=json.dumps(body), headers={**phone, "Prefer": "return=representation"}
        )
        for body in (as_stored, changed, {k: v for k, v in as_stored.items() if k != "subject"})
    ]
    batch = client.post(
        "/fhir",
        content=json.dumps({"resourceType": "Bundle", "type": "batch", "entry": [entry]}),
        headers={**phone, "Prefer": "return=representation"},
    )

    assert [answer.status_code for answer in answers] == [409, 409, 409]
    assert [e["response"]["status"] for e in batch.json()["entry"]] == ["409 Conflict"]
    assert [b.leaked(answer.text.replace(response_id, "")) for answer in [*answers, batch]] == [[]] * 4
    assert stored_versions(client, clinic, b.patient_id) == before
    read = client.get(f"{QR}/{response_id}", headers=clinic.headers())
    assert (read.json()["meta"]["versionId"], read.json()["subject"]) == ("1", b.response["subject"])
    assert stored_versions(client, clinic, patient_id) == []


def test_a_patient_tokens_conditional_create_matches_its_own_response(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    phone = {**phone_headers(client, clinic, patient_id), "If-None-Exist": f"identifier={FEED}|own-1"}

    first = client.post(QR, content=json.dumps(own_response("own-1")), headers=phone)
    again = client.post(QR, content=json.dumps(own_response("own-1")), headers=phone)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert len(stored_versions(client, clinic, patient_id)) == 1


def test_an_idempotency_key_replays_only_its_own_tokens_response(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    b = neighbour(client, clinic)
    body = json.dumps(own_response())
    first = client.post(QR, content=body, headers={**b.phone, "Idempotency-Key": "shared-key"})

    mine = client.post(
        QR, content=body, headers={**phone_headers(client, clinic, patient_id), "Idempotency-Key": "shared-key"}
    )

    assert (first.status_code, mine.status_code) == (201, 201), mine.text
    assert "Idempotent-Replayed" not in mine.headers
    assert mine.json()["subject"] == {"reference": f"Patient/{patient_id}"}
    assert b.leaked(mine.text) == []
    assert first.json()["id"] not in mine.text
    assert len(stored_versions(client, clinic, patient_id)) == 1
