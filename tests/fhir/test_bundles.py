"""Bundles: a transaction stores everything or nothing; a batch answers each entry on its own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.state import state_of
from app.fhir import bundles
from app.fhir.models import FhirResource
from app.patients.models import PatientIdentifier
from tests.conftest import ClinicKeys
from tests.fhir.conftest import (
    SDC_QUESTIONNAIRE,
    US_CORE_QUESTIONNAIRE,
    about,
    fixture,
    issues,
    measurements_of,
    register,
    resources_of,
    send,
)

MRN = "urn:oid:2.16.840.1.113883.19.5"


def patient_entry(full_url: str, mrn: str) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}]},
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={MRN}|{mrn}"},
    }


def response_entry(qr: dict[str, Any], subject: str, feed_id: str) -> dict[str, Any]:
    resource = {**qr, "subject": {"reference": subject}, "identifier": {"system": "urn:feed", "value": feed_id}}
    return {
        "resource": resource,
        "request": {"method": "POST", "url": "QuestionnaireResponse", "ifNoneExist": f"identifier=urn:feed|{feed_id}"},
    }


def bundle(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def patient_with_mrn(app: FastAPI, clinic: ClinicKeys, mrn: str) -> str | None:
    query = select(PatientIdentifier.patient_id).where(
        PatientIdentifier.clinic_id == clinic.id, PatientIdentifier.value == mrn
    )
    with state_of(app).read_sessions() as db:
        found = db.scalar(query)
    return str(found) if found else None


def ehr_feed(mrn: str) -> dict[str, Any]:
    """An EHR's transaction: the patient first (by fullUrl), then two responses naming it by that fullUrl."""
    full_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, mrn)}"
    return bundle(
        "transaction",
        [
            response_entry(fixture("qr-phq9-uscore.json"), full_url, f"{mrn}-a"),
            patient_entry(full_url, mrn),
            response_entry(fixture("qr-phq9-sdc.json"), full_url, f"{mrn}-b"),
        ],
    )


def test_a_transaction_creates_the_patient_and_scores_its_responses(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    register(client, clinic, SDC_QUESTIONNAIRE)

    response = send(client, "POST", "/fhir", clinic, ehr_feed("MRN-1"))

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "transaction-response"
    assert [entry["response"]["status"] for entry in result["entry"]] == ["201 Created"] * 3
    patient_id = str(patient_with_mrn(app, clinic, "MRN-1"))
    assert result["entry"][1]["response"]["location"] == f"Patient/{patient_id}"
    # US Core 12 and SDC 10 (entries keep their order in the reply, though the Patient ran first).
    assert sorted(row.scores["total"]["value"] for row in measurements_of(app, patient_id)) == [10, 12]
    assert "outcome" in result["entry"][2]["response"]  # SDC declares 13: a warning
    read = client.get(f"/fhir/{result['entry'][0]['response']['location']}", headers=clinic.headers(Role.INTEGRATION))
    assert read.json()["subject"] == {"reference": f"Patient/{patient_id}"}


def test_a_resent_conditional_transaction_stores_nothing_new(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    register(client, clinic, SDC_QUESTIONNAIRE)
    first = send(client, "POST", "/fhir", clinic, ehr_feed("MRN-2")).json()

    again = send(client, "POST", "/fhir", clinic, ehr_feed("MRN-2"))

    assert again.status_code == 200
    assert [entry["response"]["status"] for entry in again.json()["entry"]] == ["200 OK"] * 3
    assert [e["response"]["location"] for e in again.json()["entry"]] == [
        e["response"]["location"] for e in first["entry"]
    ]
    assert len(measurements_of(app, str(patient_with_mrn(app, clinic, "MRN-2")))) == 2
    assert resources_of(app, clinic) == 2


def test_a_failed_entry_fails_the_whole_transaction_and_stores_nothing(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    feed = ehr_feed("MRN-3")
    feed["entry"][2]["resource"]["questionnaire"] = "http://example.org/Questionnaire/never-registered"
    feed["entry"][0]["resource"]["item"][0]["answer"][0]["valueCoding"]["code"] = "LA0000-0"

    response = send(client, "POST", "/fhir", clinic, feed)

    assert response.status_code == 422
    assert [(i["code"], i["expression"]) for i in issues(response)] == [
        ("code-invalid", ["Bundle.entry[0].resource.item[0].answer[0].valueCoding"]),
        ("not-found", ["Bundle.entry[2].resource.questionnaire"]),
    ]
    assert patient_with_mrn(app, clinic, "MRN-3") is None  # the patient entry rolled back too
    assert resources_of(app, clinic) == 0


def test_a_batch_answers_each_entry_on_its_own(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    good = response_entry(fixture("qr-phq9-uscore.json"), f"Patient/{patient_id}", "ok")
    bad = response_entry(fixture("qr-phq9-uscore.json"), f"Patient/{patient_id}", "bad")
    bad["resource"]["status"] = "in-progress"
    unsupported = {"request": {"method": "DELETE", "url": "QuestionnaireResponse/x"}}

    response = send(client, "POST", "/fhir", clinic, bundle("batch", [good, bad, unsupported]))

    assert response.status_code == 200
    entries = response.json()["entry"]
    assert [entry["response"]["status"] for entry in entries] == [
        "201 Created",
        "422 Unprocessable Entity",
        "405 Method Not Allowed",
    ]
    [issue] = entries[1]["response"]["outcome"]["issue"]
    assert issue["expression"] == ["Bundle.entry[1].resource.status"]
    assert len(measurements_of(app, patient_id)) == 1


def test_a_put_entry_whose_url_differs_from_the_resource_id_fails_alone_in_a_batch(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    qr = {**about(fixture("qr-phq9-spezi-native.json"), patient_id), "id": "abc"}
    entry = {"resource": qr, "request": {"method": "PUT", "url": "QuestionnaireResponse/xyz"}}

    response = send(client, "POST", "/fhir", clinic, bundle("batch", [entry]))

    [result] = response.json()["entry"]
    assert result["response"]["status"] == "400 Bad Request"
    assert result["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[0].resource.id"]


def test_only_transaction_and_batch_bundles_are_processed(client: TestClient, clinic: ClinicKeys) -> None:
    response = send(client, "POST", "/fhir", clinic, bundle("collection", []))

    assert response.status_code == 422
    assert issues(response)[0]["expression"] == ["Bundle.type"]


@pytest.mark.parametrize("places", [(0,), (4,), (1, 3)])
def test_malformed_entries_among_equal_ones_are_each_named_by_their_own_place(
    client: TestClient, clinic: ClinicKeys, patient_id: str, places: tuple[int, ...]
) -> None:
    entry = response_entry(fixture("qr-phq9-uscore.json"), f"Patient/{patient_id}", "same")
    malformed = {**entry, "request": {**entry["request"], "verb": "POST"}}
    entries = [malformed if place in places else entry for place in range(5)]

    response = send(client, "POST", "/fhir", clinic, bundle("batch", entries))

    assert response.status_code == 400
    assert [issue["expression"] for issue in issues(response)] == [
        [f"Bundle.entry[{place}].request.verb"] for place in places
    ]


def test_entries_need_the_permission_of_what_they_write(client: TestClient, clinic: ClinicKeys) -> None:
    form = fixture(SDC_QUESTIONNAIRE)
    entry = {"resource": form, "request": {"method": "PUT", "url": f"Questionnaire/{form['id']}"}}

    response = send(client, "POST", "/fhir", clinic, bundle("batch", [entry]), role=Role.CLINICIAN)

    assert response.json()["entry"][0]["response"]["status"] == "403 Forbidden"


def test_a_representation_is_returned_only_when_asked_for(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    entry = response_entry(fixture("qr-phq9-uscore.json"), f"Patient/{patient_id}", "repr")

    minimal = send(client, "POST", "/fhir", clinic, bundle("batch", [entry])).json()
    full = send(client, "POST", "/fhir", clinic, bundle("batch", [entry]), prefer="return=representation").json()

    assert "resource" not in minimal["entry"][0]
    assert full["entry"][0]["resource"]["resourceType"] == "QuestionnaireResponse"


def test_a_bundle_of_1000_responses_is_accepted(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    entry = response_entry(fixture("qr-phq9-uscore.json"), f"Patient/{patient_id}", "the-one")
    assert send(client, "POST", "/fhir", clinic, bundle("transaction", [entry])).status_code == 200

    # A resent feed of 1,000 entries (about 3 MB): each is the same conditional create, so each finds the first.
    response = send(client, "POST", "/fhir", clinic, bundle("transaction", [entry] * 1000))

    assert response.status_code == 200, response.text[:500]
    assert len(response.json()["entry"]) == 1000
    assert {entry["response"]["status"] for entry in response.json()["entry"]} == {"200 OK"}
    assert len(measurements_of(app, patient_id)) == 1


def new_response_entry(qr: dict[str, Any], subject: str, feed_id: str) -> dict[str, Any]:
    """A plain POST (no conditional create): what a backfill sends, stored with the batch's other new responses."""
    entry = response_entry(qr, subject, feed_id)
    del entry["request"]["ifNoneExist"]
    return entry


def created_events(app: FastAPI, clinic: ClinicKeys) -> list[tuple[str, str]]:
    query = select(AuditEvent.resource_type, AuditEvent.resource_id).where(
        AuditEvent.clinic_id == clinic.id,
        AuditEvent.action == "create",
        AuditEvent.route == "/fhir",
        AuditEvent.outcome == "success",
    )
    with state_of(app).read_sessions() as db:
        return [(str(table), str(resource_id)) for table, resource_id in db.execute(query)]


def stored_logical_ids(app: FastAPI, clinic: ClinicKeys) -> set[str]:
    query = select(FhirResource.logical_id).where(FhirResource.clinic_id == clinic.id)
    with state_of(app).read_sessions() as db:
        return set(db.scalars(query))


@pytest.mark.parametrize("store_batch", [1_000, 2])
def test_new_responses_are_stored_together_and_each_answered_in_its_place(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    patient_id: str,
    store_batch: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bundles, "STORE_BATCH", store_batch)
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    qr = fixture("qr-phq9-uscore.json")
    entries = [new_response_entry(qr, f"Patient/{patient_id}", f"feed-{n}") for n in range(5)]
    entries[2]["resource"]["status"] = "in-progress"

    response = send(client, "POST", "/fhir", clinic, bundle("batch", entries))

    results = [entry["response"] for entry in response.json()["entry"]]
    assert [result["status"] for result in results] == ["201 Created"] * 2 + ["422 Unprocessable Entity"] + [
        "201 Created"
    ] * 2
    assert results[2]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[2].resource.status"]
    locations = [result["location"] for result in results if "location" in result]
    assert {location.split("/")[1] for location in locations} == stored_logical_ids(app, clinic)
    assert all(result["etag"] == 'W/"1"' for result in results if "location" in result)
    assert len(measurements_of(app, patient_id)) == 4
    fhir_events = [resource_id for table, resource_id in created_events(app, clinic) if table == "fhir_resource"]
    assert len(fhir_events) == 4


def test_a_conditional_create_finds_a_new_response_posted_earlier_in_the_same_bundle(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    qr = fixture("qr-phq9-uscore.json")
    first = new_response_entry(qr, f"Patient/{patient_id}", "same-feed-id")
    resent = response_entry(qr, f"Patient/{patient_id}", "same-feed-id")

    response = send(client, "POST", "/fhir", clinic, bundle("batch", [first, resent]))

    created, matched = (entry["response"] for entry in response.json()["entry"])
    assert (created["status"], matched["status"]) == ("201 Created", "200 OK")
    assert matched["location"] == created["location"]
    assert len(measurements_of(app, patient_id)) == 1


def test_a_value_the_database_refuses_fails_only_its_entry_and_leaves_no_audit_trace(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    qr = fixture("qr-phq9-uscore.json")
    entries = [new_response_entry(qr, f"Patient/{patient_id}", feed_id) for feed_id in ("a", "b\x00c", "d")]

    response = send(client, "POST", "/fhir", clinic, bundle("batch", entries))

    statuses = [entry["response"]["status"] for entry in response.json()["entry"]]
    if state_of(app).engine.dialect.name == "postgresql":  # PostgreSQL cannot store a NUL; SQLite can
        assert statuses == ["201 Created", "422 Unprocessable Entity", "201 Created"]
        assert response.json()["entry"][1]["response"]["outcome"]["issue"][0]["code"] == "value"
    else:
        assert statuses == ["201 Created"] * 3
    stored = len(stored_logical_ids(app, clinic))
    assert len(measurements_of(app, patient_id)) == stored
    events = created_events(app, clinic)
    assert len([event for event in events if event[0] == "fhir_resource"]) == stored
    assert len([event for event in events if event[0] == "measurement"]) == stored


def test_a_transaction_of_new_responses_with_one_failing_stores_none_of_them(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundles, "STORE_BATCH", 2)  # the first two are stored before the failing entry runs
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    qr = fixture("qr-phq9-uscore.json")
    entries = [new_response_entry(qr, f"Patient/{patient_id}", f"tx-{n}") for n in range(4)]
    entries[3]["resource"]["status"] = "in-progress"

    response = send(client, "POST", "/fhir", clinic, bundle("transaction", entries))

    assert response.status_code == 422
    assert issues(response)[0]["expression"] == ["Bundle.entry[3].resource.status"]
    assert measurements_of(app, patient_id) == []
    assert stored_logical_ids(app, clinic) == set()
    assert created_events(app, clinic) == []


def test_a_decimal_beyond_64_bits_is_stored_as_sent(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    """Stored resources are written by orjson, which refuses integers beyond 64 bits: those take the long way."""
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    qr = fixture("qr-phq9-uscore.json")
    huge = 2**70
    entry = new_response_entry(qr, f"Patient/{patient_id}", "huge")
    entry["resource"]["extension"] = [{"url": "http://example.org/fhir/StructureDefinition/note", "valueDecimal": huge}]

    response = send(client, "POST", "/fhir", clinic, bundle("batch", [entry]))

    assert response.json()["entry"][0]["response"]["status"] == "201 Created"
    location = response.json()["entry"][0]["response"]["location"]
    stored = send(client, "GET", "/fhir/" + location.split("/_history")[0], clinic, None).json()
    assert stored["extension"][0]["valueDecimal"] == huge
