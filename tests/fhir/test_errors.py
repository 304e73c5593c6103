"""Every error under /fhir is an OperationOutcome (application/fhir+json); elsewhere problem+json stays."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.fhir.errors import MalformedResource
from app.fhir.request_body import parse_resource
from tests.conftest import ClinicKeys
from tests.fhir.conftest import headers, issues


def test_a_missing_key_is_a_401_outcome_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get(f"/fhir/Patient/{uuid.uuid4()}")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert issues(response)[0]["code"] == "login"


def test_authentication_is_checked_before_the_body_is_read(client: TestClient) -> None:
    response = client.post(
        "/fhir/QuestionnaireResponse", content=b"{not json", headers={"Content-Type": "application/fhir+json"}
    )

    assert response.status_code == 401


def test_a_forbidden_role_is_a_403_outcome(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    response = client.get(f"/fhir/Patient/{patient_id}", headers=clinic.headers(Role.RESEARCHER))

    assert response.status_code == 403
    assert issues(response)[0]["code"] == "forbidden"


def test_a_missing_resource_is_a_404_outcome(client: TestClient, clinic: ClinicKeys) -> None:
    for path in (
        "/fhir/QuestionnaireResponse/nope",
        "/fhir/Observation/nope",
        "/fhir/Patient/nope",
        "/fhir/Questionnaire/nope",
    ):
        response = client.get(path, headers=headers(clinic))
        assert response.status_code == 404, path
        assert issues(response)[0]["code"] == "not-found"


def test_invalid_search_parameters_are_a_400_outcome(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    response = client.get(
        "/fhir/Observation", params={"subject": f"Patient/{patient_id}", "_count": "many"}, headers=headers(clinic)
    )

    assert response.status_code == 400
    assert "_count" in issues(response)[0]["diagnostics"]


def test_xml_is_not_acceptable(client: TestClient, clinic: ClinicKeys) -> None:
    by_format = client.get("/fhir/Questionnaire/phq9", params={"_format": "xml"}, headers=headers(clinic))
    by_accept = client.get("/fhir/Questionnaire/phq9", headers={**headers(clinic), "Accept": "application/fhir+xml"})
    json_ok = client.get("/fhir/Questionnaire/phq9", params={"_format": "json"}, headers=headers(clinic))

    assert (by_format.status_code, by_accept.status_code, json_ok.status_code) == (406, 406, 200)
    assert issues(by_accept)[0]["code"] == "not-supported"


def test_a_body_that_is_not_json_is_a_415(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.post(
        "/fhir/QuestionnaireResponse",
        content=b"<QuestionnaireResponse/>",
        headers=clinic.headers(extra={"Content-Type": "application/fhir+xml"}),
    )

    assert response.status_code == 415


def test_a_resource_of_the_wrong_type_is_a_400(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.post("/fhir/QuestionnaireResponse", json={"resourceType": "Patient"}, headers=headers(clinic))

    assert response.status_code == 400
    assert issues(response)[0]["expression"] == ["resourceType"]


def test_an_unsupported_method_is_a_405_and_an_unknown_type_a_404(client: TestClient, clinic: ClinicKeys) -> None:
    delete = client.delete(f"/fhir/Patient/{uuid.uuid4()}", headers=headers(clinic))
    unknown = client.get("/fhir/Encounter/1", headers=headers(clinic))

    assert delete.status_code == 405
    assert delete.headers["allow"] == "GET, PUT"
    assert issues(delete)[0]["code"] == "not-supported"
    assert unknown.status_code == 404
    assert issues(unknown)[0]["code"] == "not-supported"


def test_errors_outside_fhir_stay_problem_json(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get(f"/v1/patients/{uuid.uuid4()}", headers=clinic.headers())

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_an_idempotent_replay_is_served_as_fhir(client: TestClient, clinic: ClinicKeys) -> None:
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "idem-1"}]}
    first = client.post("/fhir/Patient", json=body, headers=headers(clinic, extra={"Idempotency-Key": "k-1"}))
    again = client.post("/fhir/Patient", json=body, headers=headers(clinic, extra={"Idempotency-Key": "k-1"}))

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == "application/fhir+json"
    assert again.json() == first.json()


def test_absurdly_nested_json_is_a_400_not_a_crash(client: TestClient, clinic: ClinicKeys) -> None:
    deep = '{"resourceType": "Patient", "extension": ' + "[" * 100_000 + "]" * 100_000 + "}"
    parsable: list[object] = []
    for _ in range(100):  # 100 levels: json parses it; the server refuses past 64
        parsable = [parsable]
    for body in (deep, json.dumps({"resourceType": "Patient", "x": parsable})):
        response = client.post("/fhir/Patient", content=body, headers=headers(clinic))
        assert response.status_code == 400
        assert "nests deeper" in issues(response)[0]["diagnostics"]


def test_a_lone_surrogate_is_a_400(client: TestClient, clinic: ClinicKeys) -> None:
    body = '{"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "\\ud800"}]}'

    response = client.post("/fhir/Patient", content=body, headers=headers(clinic))

    assert response.status_code == 400
    assert "surrogate" in issues(response)[0]["diagnostics"]


def _nested(levels: int) -> bytes:
    """A resource whose objects and arrays nest exactly ``levels`` deep (the resource itself is level 1)."""
    inner: object = ["deepest"]
    for _ in range(levels - 2):
        inner = [inner]
    return json.dumps({"resourceType": "Patient", "x": inner}).encode()


def test_nesting_is_accepted_up_to_64_levels_and_refused_past_them() -> None:
    assert parse_resource(_nested(64)).data["resourceType"] == "Patient"
    with pytest.raises(MalformedResource, match="nests deeper than 64"):
        parse_resource(_nested(65))


def test_lone_surrogates_are_refused_in_keys_too_but_surrogate_pairs_are_text() -> None:
    with pytest.raises(MalformedResource, match="surrogate"):
        parse_resource(b'{"resourceType": "Patient", "\\udc00": 1}')
    with pytest.raises(MalformedResource, match="surrogate"):
        parse_resource(b'{"resourceType": "Patient", "name": [{"text": "\\ud83d"}]}')
    paired = parse_resource(b'{"resourceType": "Patient", "name": [{"text": "\\ud83d\\ude00 \\\\ud800"}]}')
    assert paired.data["name"][0]["text"] == "\U0001f600 \\ud800"
