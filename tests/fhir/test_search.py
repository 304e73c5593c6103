"""FHIR search as the R4 rules have it: the self link lists what was applied; unsupported parameters are ignored and
reported (or refused under ``Prefer: handling=strict``); ``_count`` 0 counts, a large one is capped; references may
be absolute on this server's base; Patients are found by identifier; a POST's URL criteria make a conditional
create (fhirpy's ``get_or_create``)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.state import state_of
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.fhir.conftest import issues, send
from tests.security.clinics import enrol
from tests.security.openapi_routes import PHQ9_RESPONSE


def measured(client: TestClient, clinic: ClinicKeys, patient_id: str, *days: str) -> None:
    for day in days:
        body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": f"{day}T09:30:00Z"}
        assert (
            client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers()).status_code
            == 201
        )


def get(client: TestClient, clinic: ClinicKeys, path: str, params: Any, *, prefer: str | None = None) -> dict[str, Any]:
    headers = clinic.headers(Role.ADMIN, {"Prefer": prefer} if prefer else None)
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_self_link_lists_only_what_was_applied_and_the_rest_is_reported(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    measured(client, clinic, patient_id, "2026-04-01", "2026-11-02")
    params = [("subject", f"Patient/{patient_id}"), ("_elements", "id"), ("code:text", "x"), ("_include", "*")]

    bundle = get(client, clinic, "/fhir/Observation", params)

    assert bundle["link"][0] == {
        "relation": "self",
        "url": f"http://testserver/fhir/Observation?subject=Patient/{patient_id}&_count=100",
    }
    [outcome] = [entry for entry in bundle["entry"] if entry["search"]["mode"] == "outcome"]
    diagnostics = " ".join(issue["diagnostics"] for issue in outcome["resource"]["issue"])
    assert all(name in diagnostics for name in ("_elements", "code:text", "_include"))
    assert outcome["fullUrl"].startswith("urn:uuid:")
    assert bundle["total"] == 4


@pytest.mark.parametrize("parameter", ["_elements=id", "unknown=1", "_summary=true", "_sort=_id", "subject:missing=x"])
def test_under_strict_handling_an_unsupported_parameter_is_a_400_naming_it(
    client: TestClient, clinic: ClinicKeys, patient_id: str, parameter: str
) -> None:
    response = client.get(
        f"/fhir/Observation?subject=Patient/{patient_id}&{parameter}",
        headers=clinic.headers(Role.ADMIN, {"Prefer": "return=representation, handling=strict"}),
    )

    assert response.status_code == 400
    assert parameter.split("=")[0] in issues(response)[0]["diagnostics"]


def test_date_prefixes_filter_and_sort_newest_first(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    measured(client, clinic, patient_id, "2026-04-01", "2026-06-01", "2026-11-02", "2026-11-20")
    params = {"subject": f"Patient/{patient_id}", "code": "44261-6", "date": "ge2026-11-01", "_sort": "-date"}

    bundle = get(client, clinic, "/fhir/Observation", params)

    assert [e["resource"]["effectiveDateTime"][:10] for e in bundle["entry"]] == ["2026-11-20", "2026-11-02"]
    assert "date=ge2026-11-01" in bundle["link"][0]["url"]


@pytest.mark.parametrize(
    "value",
    ["ap2026-01-01", "xx2026", "2026-02-30", "2016-12-31T23:59:60Z", "2026-01-01T00:00:00+24:00", "10000-01-01", "%00"],
)
def test_a_date_the_server_cannot_read_is_a_400(
    client: TestClient, clinic: ClinicKeys, patient_id: str, value: str
) -> None:
    response = client.get(
        f"/fhir/Observation?subject=Patient/{patient_id}&date={value}", headers=clinic.headers(Role.ADMIN)
    )

    assert response.status_code == 400, response.text
    assert issues(response)[0]["code"] == "invalid"


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("ge9999-12-31T23:59:59-12:00", 0),
        ("le9999-12-31T23:59:59-12:00", 2),
        ("lt0001-01-01T00:00:00+14:00", 0),
        ("gt0001-01-01T00:00:00+14:00", 2),
        ("9999", 0),
        ("ne0001", 2),
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_unbounded_not_errors(
    client: TestClient, clinic: ClinicKeys, patient_id: str, value: str, found: int
) -> None:
    measured(client, clinic, patient_id, "2026-04-01")

    bundle = get(client, clinic, "/fhir/Observation", {"subject": f"Patient/{patient_id}", "date": value})

    assert bundle["total"] == found


def test_count_zero_counts_and_a_large_count_is_capped(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    measured(client, clinic, patient_id, "2026-04-01", "2026-05-01")
    subject = {"subject": f"Patient/{patient_id}"}

    counted = get(client, clinic, "/fhir/Observation", {**subject, "_count": "0"})
    capped = get(client, clinic, "/fhir/Observation", {**subject, "_count": "1000"})

    assert (counted["total"], "entry" in counted) == (4, False)
    matches = [entry for entry in capped["entry"] if entry["search"]["mode"] == "match"]
    [outcome] = [entry["resource"] for entry in capped["entry"] if entry["search"]["mode"] == "outcome"]
    assert (capped["total"], len(matches)) == (4, 4)
    assert capped["link"][0]["url"].endswith("_count=500")
    assert outcome["issue"] == [
        {"severity": "information", "code": "informational", "diagnostics": "_count=1000 was capped at 500"}
    ]


def test_paging_links_walk_every_page_of_questionnaires(client: TestClient, clinic: ClinicKeys) -> None:
    first = get(client, clinic, "/fhir/Questionnaire", {"_count": "2"})
    seen = [entry["fullUrl"] for entry in first["entry"]]
    page = first
    while next_link := next((link["url"] for link in page["link"] if link["relation"] == "next"), None):
        page = get(client, clinic, next_link.removeprefix("http://testserver"), None)
        seen += [entry["fullUrl"] for entry in page["entry"]]

    assert len(seen) == len(set(seen)) == first["total"] > 2
    assert all(url.startswith("http://testserver/fhir/Questionnaire/") for url in seen)


def test_references_may_be_absolute_on_this_server_but_not_another(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    measured(client, clinic, patient_id, "2026-04-01")

    own = get(client, clinic, "/fhir/Observation", {"patient": f"http://testserver/fhir/Patient/{patient_id}"})
    elsewhere = client.get(
        "/fhir/Observation",
        params={"subject": f"https://ehr.example.org/fhir/Patient/{patient_id}"},
        headers=clinic.headers(Role.ADMIN),
    )

    assert own["total"] == 2
    assert elsewhere.status_code == 400
    assert "another server" in issues(elsewhere)[0]["diagnostics"]


def test_a_patient_is_found_by_identifier(client: TestClient, clinic: ClinicKeys) -> None:
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:test:mrn", "value": "found-1"}]}
    patient = send(client, "POST", "/fhir/Patient", clinic, body).json()["id"]

    found = get(client, clinic, "/fhir/Patient", {"identifier": "urn:test:mrn|found-1"})
    missing = get(client, clinic, "/fhir/Patient", {"identifier": "urn:test:mrn|found-2"})

    assert [entry["resource"]["id"] for entry in found["entry"]] == [patient]
    assert found["entry"][0]["fullUrl"] == f"http://testserver/fhir/Patient/{patient}"
    assert (missing["total"], "entry" in missing) == (0, False)


def test_another_clinics_patient_is_not_found_by_identifier(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:test:mrn", "value": "theirs"}]}
    assert send(client, "POST", "/fhir/Patient", other_clinic, body).status_code == 201

    assert get(client, clinic, "/fhir/Patient", {"identifier": "urn:test:mrn|theirs"})["total"] == 0


def test_a_posts_url_criteria_make_a_conditional_create(client: TestClient, clinic: ClinicKeys) -> None:
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:test:mrn", "value": "twice"}]}
    headers = clinic.headers(Role.ADMIN, {"Content-Type": "application/fhir+json"})

    first = client.post("/fhir/Patient?identifier=urn:test:mrn|twice", json=body, headers=headers)
    again = client.post("/fhir/Patient?identifier=urn:test:mrn|twice", json=body, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


def test_a_patient_token_finds_no_patient(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    token, _key_id = enrol(client, clinic, patient_id)
    bearer = {"Authorization": f"Bearer {token}"}

    for path in ("/fhir/Patient?identifier=x", f"/fhir/QuestionnaireResponse?patient={patient_id}"):
        assert client.get(path, headers=bearer).status_code == 403


def test_a_clinic_wide_response_search_audits_each_patient_it_shows(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    patients = [client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"] for _ in range(2)]
    for patient in patients:
        qr = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", patient))
        assert send(client, "POST", "/fhir/QuestionnaireResponse", clinic, qr).status_code == 201

    found = get(client, clinic, "/fhir/QuestionnaireResponse", {"questionnaire": PHQ9_RESPONSE["questionnaire"]})

    query = select(AuditEvent.patient_id).where(
        AuditEvent.clinic_id == clinic.id,
        AuditEvent.route == "/fhir/QuestionnaireResponse",
        AuditEvent.action == "read",
    )
    with state_of(app).read_sessions() as db:
        named = set(db.scalars(query))
    assert found["total"] == 2
    assert {uuid.UUID(patient) for patient in patients} <= named
