"""Safe resends: conditional create (If-None-Exist) and PUT by id never store a response twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from tests.conftest import ClinicKeys
from tests.fhir.conftest import SDC_QUESTIONNAIRE, about, fixture, issues, measurements_of, register, resources_of, send

QR = "/fhir/QuestionnaireResponse"
FEED = "urn:oid:1.2.3.4.5|"


def response_with_identifier(patient_id: str, value: str, answer: str = "Nearly every day") -> dict[str, Any]:
    """The Spezi response (all 9 items "Nearly every day" unless told) under the feed's identifier."""
    qr = about(fixture("qr-phq9-spezi-native.json"), patient_id)
    qr["identifier"] = {"system": FEED.rstrip("|"), "value": value}
    for item in qr["item"]:
        item["answer"][0]["valueCoding"]["code"] = answer
    return qr


def test_a_resent_conditional_create_stores_nothing_new(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)
    qr = response_with_identifier(patient_id, "resp-1")

    first = send(client, "POST", QR, clinic, qr, if_none_exist=f"identifier={FEED}resp-1")
    again = send(client, "POST", QR, clinic, qr, if_none_exist=f"identifier={FEED}resp-1")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert len(measurements_of(app, patient_id)) == 1


def test_conditional_create_matches_a_response_stored_without_the_condition(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)
    qr = response_with_identifier(patient_id, "resp-2")
    plain = send(client, "POST", QR, clinic, qr)

    conditional = send(client, "POST", QR, clinic, qr, if_none_exist="identifier=resp-2")  # any system

    assert (plain.status_code, conditional.status_code) == (201, 200)
    assert conditional.json()["id"] == plain.json()["id"]
    assert len(measurements_of(app, patient_id)) == 1


def test_concurrent_identical_conditional_creates_store_one_response(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)
    qr = response_with_identifier(patient_id, "resp-race")

    def post(_: int) -> tuple[int, str]:
        response = send(client, "POST", QR, clinic, qr, if_none_exist=f"identifier={FEED}resp-race")
        return response.status_code, response.json().get("id", response.text)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(post, range(8)))

    assert sorted(status for status, _ in results) == [200] * 7 + [201]
    assert len({response_id for _, response_id in results}) == 1
    assert len(measurements_of(app, patient_id)) == 1
    assert resources_of(app, clinic) == 1


def test_criteria_matching_two_responses_are_a_412(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)
    for system in ("urn:a", "urn:b"):
        qr = response_with_identifier(patient_id, "shared")
        qr["identifier"]["system"] = system
        assert send(client, "POST", QR, clinic, qr).status_code == 201

    response = send(
        client, "POST", QR, clinic, response_with_identifier(patient_id, "shared"), if_none_exist="identifier=shared"
    )

    assert response.status_code == 412
    assert issues(response)[0]["code"] == "multiple-matches"


def test_unsupported_criteria_are_a_400(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    response = send(
        client, "POST", QR, clinic, response_with_identifier(patient_id, "x"), if_none_exist="authored=2026"
    )

    assert response.status_code == 400
    assert issues(response)[0]["code"] == "not-supported"


def test_put_by_id_creates_then_a_resend_stores_nothing_new(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)
    qr = {**response_with_identifier(patient_id, "r"), "id": "ehr-feed-77"}

    first = send(client, "PUT", f"{QR}/ehr-feed-77", clinic, qr)
    again = send(client, "PUT", f"{QR}/ehr-feed-77", clinic, qr)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] == "ehr-feed-77"
    assert again.json()["meta"]["versionId"] == "1"
    assert len(measurements_of(app, patient_id)) == 1


def test_put_with_changed_answers_amends_the_measurement(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)
    path = f"{QR}/ehr-feed-78"
    send(client, "PUT", path, clinic, {**response_with_identifier(patient_id, "r"), "id": "ehr-feed-78"})
    changed = {**response_with_identifier(patient_id, "r", answer="Several-days"), "id": "ehr-feed-78"}

    refused = send(client, "PUT", path, clinic, changed)  # the integration role may not amend
    amended = send(client, "PUT", path, clinic, changed, role=Role.CLINICIAN)

    assert refused.status_code == 403
    assert amended.status_code == 200, amended.text
    assert amended.json()["meta"]["versionId"] == "2"
    rows = sorted(measurements_of(app, patient_id), key=lambda row: row.version)
    # 9 × 3 = 27, then 9 × 1 = 9, as version 2 of the same measurement.
    assert [(row.version, row.is_current, row.scores["total"]["value"]) for row in rows] == [
        (1, False, 27),
        (2, True, 9),
    ]


def test_a_put_whose_url_id_differs_from_the_resource_id_is_a_400(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    qr = {**response_with_identifier(patient_id, "r"), "id": "in-the-body"}

    response = send(client, "PUT", f"{QR}/in-the-url", clinic, qr)

    assert response.status_code == 400
    assert issues(response)[0]["expression"] == ["QuestionnaireResponse.id"]
