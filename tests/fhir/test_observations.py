"""Scores out as Observations: totals computed on the server, bands as interpretation, panels with hasMember."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from app.auth.permissions import Role
from app.fhir import codes
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.fhir.conftest import (
    FIXTURES,
    SDC_QUESTIONNAIRE,
    US_CORE_QUESTIONNAIRE,
    about,
    fixture,
    issues,
    register,
    send,
)

UCUM_SCORE = {"unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}


def search(client: TestClient, clinic: ClinicKeys, patient_id: str, **params: str) -> dict[str, Any]:
    response = client.get(
        "/fhir/Observation",
        params={"subject": f"Patient/{patient_id}", **params},
        headers=clinic.headers(Role.CLINICIAN),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    Bundle.model_validate(body)
    return body


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


def post_published(client: TestClient, clinic: ClinicKeys, patient_id: str, name: str, form: str) -> str:
    register(client, clinic, form)
    response = send(client, "POST", "/fhir/QuestionnaireResponse", clinic, about(fixture(name), patient_id))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_the_us_core_response_reads_back_as_a_total_and_a_panel(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response_id = post_published(client, clinic, patient_id, "qr-phq9-uscore.json", US_CORE_QUESTIONNAIRE)

    total, panel = resources(search(client, clinic, patient_id))

    Observation.model_validate(total)
    Observation.model_validate(panel)
    # 2+2+2+2+1+1+2+0+0 = 12, moderate (10–14)
    assert total["code"]["coding"] == [{"system": "http://loinc.org", "code": "44261-6"}]
    assert total["valueQuantity"] == {"value": 12, **UCUM_SCORE}
    assert total["interpretation"][0]["coding"] == [
        {"system": codes.BAND_SYSTEM, "code": "moderate", "display": "moderate"}
    ]
    assert total["category"][0]["coding"][0]["code"] == "survey"
    assert total["status"] == "final"
    assert total["subject"] == {"reference": f"Patient/{patient_id}"}
    assert datetime.fromisoformat(total["effectiveDateTime"]) == datetime.fromisoformat("2022-11-29T20:50:32.718Z")
    assert total["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response_id}"}]
    assert panel["code"]["coding"] == [{"system": "http://loinc.org", "code": "44249-1"}]
    assert panel["hasMember"] == [{"reference": f"Observation/{total['id']}"}]
    assert "valueQuantity" not in panel


def test_our_total_agrees_with_the_published_us_core_total_observation(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    post_published(client, clinic, patient_id, "qr-phq9-uscore.json", US_CORE_QUESTIONNAIRE)
    published = fixture("observation-phq9-uscore/Observation-PHQ9-item-example-44261-6.json")

    [total] = resources(search(client, clinic, patient_id, code="44261-6"))

    assert (FIXTURES / "observation-phq9-uscore").is_dir()
    assert total["code"]["coding"][0]["code"] == published["code"]["coding"][0]["code"]
    assert total["valueQuantity"]["value"] == int(published["valueString"])  # US Core writes "12" as a string


def test_a_declared_total_never_becomes_the_observation_value(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    post_published(client, clinic, patient_id, "qr-phq9-sdc.json", SDC_QUESTIONNAIRE)

    [total] = resources(search(client, clinic, patient_id, code="http://loinc.org|44261-6"))

    # The items sum to 0+0+0+1+2+1+3+2+1 = 10; the response declared 13.
    assert total["valueQuantity"]["value"] == 10
    assert "13" in total["note"][0]["text"]


def test_a_gad7_reads_back_with_the_gad7_total_and_panel_codes(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    items = {"1": 1, "2": 2, "3": 3, "4": 0, "5": 1, "6": 2, "7": 3}
    body = {"instrument": "gad7", "items": items, "measured_at": "2026-11-20T09:30:00Z"}
    client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())

    [total] = resources(search(client, clinic, patient_id, code="70274-6"))
    [panel] = resources(search(client, clinic, patient_id, code="http://loinc.org|69737-5"))

    # 1+2+3+0+1+2+3 = 12 → moderate (10–14)
    assert total["valueQuantity"]["value"] == 12
    assert total["interpretation"][0]["coding"][0]["code"] == "moderate"
    assert panel["hasMember"] == [{"reference": f"Observation/{total['id']}"}]


def test_the_panel_code_finds_the_panel(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    post_published(client, clinic, patient_id, "qr-phq9-uscore.json", US_CORE_QUESTIONNAIRE)

    [panel] = resources(search(client, clinic, patient_id, code="44249-1"))
    unknown = search(client, clinic, patient_id, code="http://snomed.info/sct|44261-6")

    assert panel["id"].endswith("-panel")
    assert unknown["total"] == 0


def test_an_observation_reads_by_id_and_belongs_to_its_clinic(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    post_published(client, clinic, patient_id, "qr-phq9-uscore.json", US_CORE_QUESTIONNAIRE)
    [total, _panel] = resources(search(client, clinic, patient_id))

    mine = client.get(f"/fhir/Observation/{total['id']}", headers=clinic.headers(Role.CLINICIAN))
    theirs = client.get(f"/fhir/Observation/{total['id']}", headers=other_clinic.headers(Role.CLINICIAN))
    search_theirs = client.get(
        "/fhir/Observation", params={"subject": f"Patient/{patient_id}"}, headers=other_clinic.headers(Role.CLINICIAN)
    )

    assert mine.json() == total
    assert (theirs.status_code, search_theirs.status_code) == (404, 404)
    assert issues(theirs)[0]["code"] == "not-found"


def test_measurements_stored_through_the_json_api_read_as_observations_too(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00+01:00"}
    client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())

    total, _panel = resources(search(client, clinic, patient_id))

    # 3+0+1+2+0+0+1+0+3 = 10
    assert total["valueQuantity"]["value"] == 10
    assert "derivedFrom" not in total


def test_scores_without_loinc_codes_use_product_codes(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    items = {str(number): 3 for number in range(1, 13)}
    stored = client.post(
        f"/v1/patients/{patient_id}/measurements",
        json={"instrument": "scs_sf", "items": items, "measured_at": "2026-11-20T09:30:00Z"},
        headers=clinic.headers(),
    ).json()

    found = resources(search(client, clinic, patient_id, code=f"{codes.SCORE_SYSTEM}|scs_sf.self_kindness"))
    everything = resources(search(client, clinic, patient_id))

    [kindness] = found
    assert kindness["code"]["coding"] == [{"system": codes.SCORE_SYSTEM, "code": "scs_sf.self_kindness"}]
    assert kindness["valueQuantity"]["value"] == stored["scores"]["self_kindness"]["value"]
    # One Observation per score of the SCS-SF (no LOINC panel): total and six subscales.
    assert len(everything) == len(stored["scores"]) == 7
    for observation in everything:
        Observation.model_validate(observation)


def test_an_amended_measurement_reads_as_an_amended_observation(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00+01:00"}
    created = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers()).json()
    client.post(
        f"/v1/patients/{patient_id}/measurements/{created['id']}/amend",
        json={"items": {**ISSUE_PHQ9, "9": 0}, "reason": "entered in the wrong column"},
        headers=clinic.headers(),
    )

    [total] = resources(search(client, clinic, patient_id, code="44261-6"))

    # 10 − 3 (item 9 now 0) = 7
    assert (total["status"], total["valueQuantity"]["value"], total["meta"]["versionId"]) == ("amended", 7, "2")


def test_a_prorated_total_says_so(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    items = {**ISSUE_PHQ9}
    del items["2"], items["3"]
    body = {"instrument": "phq9", "items": items, "measured_at": "2026-11-20T09:30:00+01:00"}
    client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())

    [total] = resources(search(client, clinic, patient_id, code="44261-6"))

    # answered 3+2+0+0+1+0+3 = 9 over 7 items → 9 × 9 / 7
    assert total["valueQuantity"]["value"] == 81 / 7
    assert total["note"] == [{"text": "Prorated: item(s) 2, 3 unanswered."}]


def test_search_pages_with_count_and_offset(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    for day in ("01", "02", "03"):
        body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": f"2026-11-{day}T09:30:00Z"}
        client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())

    first = search(client, clinic, patient_id, code="44261-6", _count="2")
    rest = search(client, clinic, patient_id, code="44261-6", _count="2", _offset="2")

    assert (first["total"], len(first["entry"]), len(rest["entry"])) == (3, 2, 1)
    assert [link["relation"] for link in first["link"]] == ["self", "next"]
    assert [e["resource"]["effectiveDateTime"][:10] for e in first["entry"] + rest["entry"]] == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
    ]


def test_search_needs_a_subject(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get("/fhir/Observation", headers=clinic.headers(Role.CLINICIAN))

    assert response.status_code == 400
    assert "subject" in issues(response)[0]["diagnostics"]
