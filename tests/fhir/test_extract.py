"""``POST /fhir/QuestionnaireResponse/$extract`` (SDC observation-based extraction): the Observations the server
would store for a response, checked and scored as a create, and nothing stored."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import app.models  # noqa: F401  (every table, for the row counts)
from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.db import Base
from app.core.state import state_of
from tests.conftest import ClinicKeys
from tests.fhir.conftest import FHIR_JSON, issues, send

EXTRACT = "/fhir/QuestionnaireResponse/$extract"
LA = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}
US_CORE_ANSWERS = {"1": 2, "2": 2, "3": 2, "4": 2, "5": 1, "6": 1, "7": 2, "8": 0, "9": 0}
"""The US Core example's answers: 2+2+2+2+1+1+2+0+0 = 12, moderate."""


def phq9(patient_id: str, answers: dict[str, int], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:compassion-outcomes:questionnaire:phq9",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": "2026-11-20T09:30:00+01:00",
        "item": [
            {"linkId": number, "answer": [{"valueCoding": {"system": "http://loinc.org", "code": LA[value]}}]}
            for number, value in answers.items()
        ],
        **extra,
    }


def scs_sf(patient_id: str, values: list[int]) -> dict[str, Any]:
    system = "urn:compassion-outcomes:answer:scs_sf:default"
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:compassion-outcomes:questionnaire:scs_sf",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": "2026-11-20T09:30:00Z",
        "item": [
            {"linkId": str(number), "answer": [{"valueCoding": {"system": system, "code": str(value)}}]}
            for number, value in enumerate(values, start=1)
        ],
    }


def parameters(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": "questionnaire-response", "resource": resource}]}


def row_counts(app: FastAPI) -> dict[str, int]:
    """Rows in every table but the audit trail (which records the reads)."""
    with state_of(app).read_sessions() as db:
        return {
            table.name: int(db.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
            if table.name != "audit_event"
        }


def events(app: FastAPI, clinic: ClinicKeys) -> list[tuple[str, str, uuid.UUID | None, int]]:
    query = (
        select(AuditEvent.action, AuditEvent.outcome, AuditEvent.patient_id, AuditEvent.status_code)
        .where(AuditEvent.clinic_id == clinic.id, AuditEvent.route == EXTRACT)
        .order_by(AuditEvent.occurred_at)
    )
    with state_of(app).read_sessions() as db:
        return [(str(a), str(o), p, int(s)) for a, o, p, s in db.execute(query)]


def by_code(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["resource"]["code"]["coding"][0]["code"]: entry for entry in bundle["entry"]}


def test_a_phq9_response_extracts_its_total_and_panel_and_stores_nothing(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    before = row_counts(app)

    response = send(client, "POST", EXTRACT, clinic, phq9(patient_id, US_CORE_ANSWERS))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction"
    entries = by_code(bundle)
    assert sorted(entries) == ["44249-1", "44261-6"]
    total, panel = entries["44261-6"], entries["44249-1"]
    assert total["request"] == panel["request"] == {"method": "POST", "url": "Observation"}
    assert total["resource"]["valueQuantity"] == {
        "value": 12,
        "unit": "{score}",
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    assert total["resource"]["interpretation"][0]["coding"][0]["code"] == "moderate"
    assert total["resource"]["subject"] == {"reference": f"Patient/{patient_id}"}
    assert total["resource"]["effectiveDateTime"] == "2026-11-20T08:30:00Z"
    assert total["resource"]["status"] == "final"
    assert panel["resource"]["hasMember"] == [{"reference": total["fullUrl"]}]
    for entry in bundle["entry"]:
        assert entry["fullUrl"].startswith("urn:uuid:")
        assert "id" not in entry["resource"]
        assert "meta" not in entry["resource"]
        assert "derivedFrom" not in entry["resource"]  # the response has no id: nothing to point at
    assert row_counts(app) == before


def test_the_extracted_observations_are_those_a_create_then_serves(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    qr = phq9(patient_id, {**US_CORE_ANSWERS, "9": 1})
    extracted = send(client, "POST", EXTRACT, clinic, qr).json()

    created = send(client, "POST", "/fhir/QuestionnaireResponse", clinic, qr)
    assert created.status_code == 201, created.text
    stored = client.get(f"/fhir/Observation?subject=Patient/{patient_id}", headers=clinic.headers()).json()

    def comparable(resource: dict[str, Any]) -> dict[str, Any]:
        ignored = {"id", "meta", "issued", "derivedFrom", "hasMember"}
        return {key: value for key, value in resource.items() if key not in ignored}

    assert sorted(map(comparable, (e["resource"] for e in extracted["entry"])), key=str) == sorted(
        map(comparable, (e["resource"] for e in stored["entry"])), key=str
    )


def test_parameters_holding_the_response_extract_the_same(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    qr = phq9(patient_id, US_CORE_ANSWERS, id="from-the-form-filler")

    plain = send(client, "POST", EXTRACT, clinic, qr).json()
    wrapped = send(client, "POST", EXTRACT, clinic, parameters(qr))

    assert wrapped.status_code == 200, wrapped.text
    assert [e["resource"]["code"] for e in wrapped.json()["entry"]] == [e["resource"]["code"] for e in plain["entry"]]
    # A response with an id of its own is what the Observations derive from.
    for entry in wrapped.json()["entry"]:
        assert entry["resource"]["derivedFrom"] == [{"reference": "QuestionnaireResponse/from-the-form-filler"}]


def test_a_scale_without_loinc_codes_extracts_every_score(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    # SCS-SF all 1 ("Almost never"): items 1, 4, 8, 9, 11, 12 reversed to 5, so the total is (6 × 5 + 6 × 1) / 12 = 3;
    # each subscale, a mean of two unreversed items, is 1.
    response = send(client, "POST", EXTRACT, clinic, scs_sf(patient_id, [1] * 12))

    assert response.status_code == 200, response.text
    values = {
        code.removeprefix("scs_sf."): entry["resource"]["valueQuantity"]["value"]
        for code, entry in by_code(response.json()).items()
    }
    assert values == {
        "total": 3,
        "self_kindness": 1,
        "self_judgment": 1,
        "common_humanity": 1,
        "isolation": 1,
        "mindfulness": 1,
        "over_identification": 1,
    }


def test_an_unscorable_response_gets_the_operation_outcome_a_create_gets(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    qr = phq9(patient_id, {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "6": 1})  # three items missing
    before = row_counts(app)

    extracted = send(client, "POST", EXTRACT, clinic, qr)
    created = send(client, "POST", "/fhir/QuestionnaireResponse", clinic, qr)
    wrapped = send(client, "POST", EXTRACT, clinic, parameters(qr))

    assert extracted.status_code == created.status_code == wrapped.status_code == 422
    assert issues(extracted) == issues(created)
    assert [issue["expression"] for issue in issues(wrapped)] == [
        [f"Parameters.parameter[0].resource.item.where(linkId='{n}')"] for n in ("7", "8", "9")
    ]
    assert row_counts(app) == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"resourceType": "QuestionnaireResponse", "status": "completed", "bogus": 1}, 400, "structure"),
        ({"resourceType": "Patient"}, 400, "invalid"),
        ({"resourceType": "Parameters", "parameter": []}, 400, "required"),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "questionnaire", "resource": {"x": 1}}]},
            422,
            "not-supported",
        ),
    ],
)
def test_what_is_not_a_response_is_refused(
    client: TestClient, clinic: ClinicKeys, body: dict[str, Any], status: int, code: str
) -> None:
    response = send(client, "POST", EXTRACT, clinic, body)

    assert response.status_code == status, response.text
    assert issues(response)[0]["code"] == code


def test_another_clinics_patient_is_not_found(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    response = send(client, "POST", EXTRACT, other_clinic, phq9(patient_id, US_CORE_ANSWERS))

    assert response.status_code == 404
    assert issues(response)[0]["expression"] == ["QuestionnaireResponse.subject"]


def test_extraction_needs_the_permission_to_read_measurements(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response = send(client, "POST", EXTRACT, clinic, phq9(patient_id, US_CORE_ANSWERS), role=Role.RESEARCHER)

    assert response.status_code == 403
    assert issues(response)[0]["code"] == "forbidden"


def test_it_is_audited_as_a_read_of_the_patient(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    send(client, "POST", EXTRACT, clinic, phq9(patient_id, US_CORE_ANSWERS))
    send(client, "POST", EXTRACT, clinic, phq9(patient_id, {"1": 1}))
    send(client, "POST", EXTRACT, other_clinic, phq9(patient_id, US_CORE_ANSWERS))

    patient = uuid.UUID(patient_id)
    assert events(app, clinic) == [("read", "success", patient, 200), ("read", "rejected", patient, 422)]
    # Another clinic's attempt names no patient in its own trail.
    assert events(app, other_clinic) == [("read", "not_found", None, 404)]
