"""Versioning as FHIR has it: every read carries ``ETag: W/"<meta.versionId>"``; ``If-None-Match`` answers 304 while
the copy is current; ``If-Match`` on an update answers 412 on any other version (also when two clients race);
``Location`` is absolute and names the version; vread and ``_history`` serve the versions that are kept."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from httpx2 import Response

from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from tests.care.conftest import new_schedule
from tests.conftest import ClinicKeys
from tests.fhir.conftest import US_CORE_QUESTIONNAIRE, fixture, headers, issues, measurements_of, register, send

QR = "/fhir/QuestionnaireResponse"
BASE = "http://testserver/fhir"
LA = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}
PHQ9_TOTAL = "44261-6"


def phq9(patient_id: str, answer: int, response_id: str | None = None) -> dict[str, Any]:
    """A response to our PHQ-9 with every item answered ``answer`` (total 9 × answer)."""
    qr: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:compassion-outcomes:questionnaire:phq9",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": "2026-11-20T09:30:00+01:00",
        "item": [
            {"linkId": str(n), "answer": [{"valueCoding": {"system": "http://loinc.org", "code": LA[answer]}}]}
            for n in range(1, 10)
        ],
    }
    if response_id is not None:
        qr["id"] = response_id
    return qr


def put(
    client: TestClient, clinic: ClinicKeys, path: str, resource: dict[str, Any], if_match: str | None = None
) -> Response:
    """PUT with the admin's key (amending a measurement takes ``measurements:amend``)."""
    extra = {"If-Match": if_match} if if_match is not None else {}
    return client.put(path, json=resource, headers=headers(clinic, Role.ADMIN, extra=extra))


def get(client: TestClient, clinic: ClinicKeys, path: str, **extra: str) -> Response:
    return client.get(path, headers=clinic.headers(Role.ADMIN, {k.replace("_", "-"): v for k, v in extra.items()}))


def read_ok(client: TestClient, clinic: ClinicKeys, path: str) -> tuple[dict[str, Any], str]:
    """The resource and its ETag, which must be its ``meta.versionId``."""
    response = get(client, clinic, path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["etag"] == f'W/"{body["meta"]["versionId"]}"', path
    return body, response.headers["etag"]


def total_observation_id(client: TestClient, clinic: ClinicKeys, patient_id: str) -> str:
    found = client.get(
        "/fhir/Observation",
        params={"subject": f"Patient/{patient_id}", "code": f"http://loinc.org|{PHQ9_TOTAL}"},
        headers=clinic.headers(Role.CLINICIAN),
    ).json()
    [entry] = found["entry"]
    return str(entry["resource"]["id"])


def test_every_read_carries_an_etag_equal_to_its_version(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    fhir_patient = send(client, "POST", "/fhir/Patient", clinic, {"resourceType": "Patient"}).json()["id"]
    assert put(client, clinic, f"{QR}/v-etag", phq9(patient_id, 1, "v-etag")).status_code == 201
    registered = register(client, clinic, US_CORE_QUESTIONNAIRE)
    paths = [
        f"{QR}/v-etag",
        f"/fhir/Observation/{total_observation_id(client, clinic, patient_id)}",
        f"/fhir/Patient/{fhir_patient}",
        "/fhir/Questionnaire/phq9",
        f"/fhir/Questionnaire/{registered}",
    ]

    versions = {path: read_ok(client, clinic, path)[0]["meta"]["versionId"] for path in paths}

    assert versions[f"{QR}/v-etag"] == "1"
    assert versions[paths[1]] == "1"  # the measurement's version
    assert versions[f"/fhir/Questionnaire/{registered}"] == "1"


def test_a_builtin_questionnaires_version_is_its_content_not_its_business_version(
    client: TestClient, clinic: ClinicKeys
) -> None:
    body, tag = read_ok(client, clinic, "/fhir/Questionnaire/phq9")

    assert body["version"] == "1.0.0"  # the instrument's version: business, not meta
    assert body["meta"]["versionId"] != body["version"]
    assert read_ok(client, clinic, "/fhir/Questionnaire/phq9")[1] == tag  # the same content, the same version
    listed = client.get("/fhir/Questionnaire", params={"url": body["url"]}, headers=clinic.headers()).json()
    assert listed["entry"][0]["resource"]["meta"]["versionId"] == body["meta"]["versionId"]


def test_if_none_match_answers_304_while_the_copy_is_current(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    assert put(client, clinic, f"{QR}/v-304", phq9(patient_id, 1, "v-304")).status_code == 201
    observation = f"/fhir/Observation/{total_observation_id(client, clinic, patient_id)}"

    for path in (f"{QR}/v-304", observation, f"/fhir/Patient/{patient_id}", "/fhir/Questionnaire/phq9"):
        _body, tag = read_ok(client, clinic, path)
        for sent in (tag, tag.removeprefix("W/"), tag.removeprefix("W/").strip('"'), "*", f'W/"other", {tag}'):
            unchanged = get(client, clinic, path, If_None_Match=sent)
            assert unchanged.status_code == 304, (path, sent)
            assert (unchanged.content, unchanged.headers["etag"]) == (b"", tag)
        assert get(client, clinic, path, If_None_Match='W/"other"').status_code == 200

    assert put(client, clinic, f"{QR}/v-304", phq9(patient_id, 2, "v-304"), 'W/"1"').status_code == 200
    changed = get(client, clinic, f"{QR}/v-304", If_None_Match='W/"1"')
    assert (changed.status_code, changed.headers["etag"]) == (200, 'W/"2"')
    assert get(client, clinic, observation, If_None_Match='W/"1"').json()["meta"]["versionId"] == "2"


def test_a_tasks_version_changes_when_its_status_does_with_time(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    with CLOCK.frozen_at(datetime(2026, 11, 20, 8, tzinfo=UTC)):
        new_schedule(
            client,
            clinic,
            patient_id,
            instruments=["phq9"],
            starts_on="2026-11-23",
            ends_on="2026-11-23",
            every_days=7,
            window_days=3,
            timezone="UTC",
        )
        found = client.get("/fhir/Task", params={"patient": patient_id}, headers=clinic.headers()).json()
        task = f"/fhir/Task/{found['entry'][0]['resource']['id']}"
        scheduled, tag = read_ok(client, clinic, task)
        assert found["entry"][0]["resource"]["meta"]["versionId"] == scheduled["meta"]["versionId"]
        assert get(client, clinic, task, If_None_Match=tag).status_code == 304
        CLOCK.move_to(datetime(2026, 11, 24, 8, tzinfo=UTC))
        due, due_tag = read_ok(client, clinic, task)

    assert (scheduled["status"], due["status"]) == ("requested", "ready")
    assert due_tag != tag
    assert get(client, clinic, task, If_None_Match=tag).status_code == 200


def test_if_match_updates_only_the_version_it_names(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    path = f"{QR}/v-match"
    assert put(client, clinic, path, phq9(patient_id, 1, "v-match")).status_code == 201

    updated = put(client, clinic, path, phq9(patient_id, 2, "v-match"), 'W/"1"')
    stale = put(client, clinic, path, phq9(patient_id, 3, "v-match"), 'W/"1"')

    assert (updated.status_code, updated.headers["etag"]) == (200, 'W/"2"')
    assert stale.status_code == 412
    [issue] = issues(stale)
    assert issue["code"] == "conflict"
    assert "version 2" in issue["diagnostics"]
    assert read_ok(client, clinic, path)[0]["item"][0]["answer"][0]["valueCoding"]["code"] == LA[2]
    assert sorted(row.version for row in measurements_of(app, patient_id)) == [1, 2]
    assert put(client, clinic, path, phq9(patient_id, 3, "v-match"), "*").status_code == 200


def test_if_match_on_a_resource_that_does_not_exist_is_a_412_and_stores_nothing(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response = put(client, clinic, f"{QR}/v-none", phq9(patient_id, 1, "v-none"), 'W/"1"')

    assert response.status_code == 412
    assert measurements_of(app, patient_id) == []
    assert get(client, clinic, f"{QR}/v-none").status_code == 404


def test_if_match_guards_registered_questionnaires_and_patients(client: TestClient, clinic: ClinicKeys) -> None:
    form = fixture(US_CORE_QUESTIONNAIRE)
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    questionnaire = f"/fhir/Questionnaire/{form['id']}"
    assert put(client, clinic, questionnaire, {**form, "title": "ours"}, 'W/"1"').status_code == 200
    assert put(client, clinic, questionnaire, {**form, "title": "stale"}, 'W/"1"').status_code == 412
    assert read_ok(client, clinic, questionnaire)[0]["title"] == "ours"

    created = send(client, "POST", "/fhir/Patient", clinic, {"resourceType": "Patient"})
    patient_id = created.json()["id"]
    path = f"/fhir/Patient/{patient_id}"
    first = created.headers["etag"]
    one = {"resourceType": "Patient", "id": patient_id, "identifier": [{"system": "urn:mrn", "value": "A-1"}]}
    two = {**one, "identifier": [{"system": "urn:mrn", "value": "B-2"}]}
    changed = put(client, clinic, path, one, first)
    assert (changed.status_code, changed.headers["etag"] != first) == (200, True)
    assert put(client, clinic, path, two, first).status_code == 412
    assert read_ok(client, clinic, path) == (changed.json(), changed.headers["etag"])


def test_two_updaters_of_one_version_one_wins_the_other_gets_412(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    """Both read version 1 and send their change with If-Match at the same moment: the check and the write are one
    step, so exactly one is stored and the other is told, whichever runs first."""
    for round_ in range(3):
        logical_id = f"v-race-{round_}"
        path = f"{QR}/{logical_id}"
        assert put(client, clinic, path, phq9(patient_id, 0, logical_id)).status_code == 201
        start = threading.Barrier(2)

        def update(
            answer: int, path: str = path, logical_id: str = logical_id, start: threading.Barrier = start
        ) -> int:
            start.wait()
            return put(client, clinic, path, phq9(patient_id, answer, logical_id), 'W/"1"').status_code

        with ThreadPoolExecutor(max_workers=2) as pool:
            statuses = sorted(pool.map(update, (1, 2)))

        assert statuses == [200, 412]
        assert read_ok(client, clinic, path)[0]["meta"]["versionId"] == "2"
        history = get(client, clinic, f"{path}/_history").json()
        assert [entry["resource"]["meta"]["versionId"] for entry in history["entry"]] == ["2", "1"]
    assert sorted(row.version for row in measurements_of(app, patient_id)) == [1, 1, 1, 2, 2, 2]


def test_location_is_absolute_and_names_the_version_written(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    created = send(client, "POST", QR, clinic, phq9(patient_id, 1))
    response_id = created.json()["id"]
    updated = put(client, clinic, f"{QR}/{response_id}", {**phq9(patient_id, 2), "id": response_id}, 'W/"1"')
    form = fixture(US_CORE_QUESTIONNAIRE)
    registered = put(client, clinic, f"/fhir/Questionnaire/{form['id']}", form)
    patient = send(client, "POST", "/fhir/Patient", clinic, {"resourceType": "Patient"})

    assert created.headers["location"] == f"{BASE}/QuestionnaireResponse/{response_id}/_history/1"
    assert updated.headers["location"] == f"{BASE}/QuestionnaireResponse/{response_id}/_history/2"
    assert registered.headers["location"] == f"{BASE}/Questionnaire/{form['id']}/_history/1"
    assert patient.headers["location"] == f"{BASE}/Patient/{patient.json()['id']}"  # no history kept: no vread
    assert (
        get(client, clinic, created.headers["location"]).json()["item"][0]["answer"][0]["valueCoding"]["code"]
        == (LA[1])
    )


def test_vread_and_history_of_a_response_and_its_observation(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    path = f"{QR}/v-hist"
    assert put(client, clinic, path, phq9(patient_id, 1, "v-hist")).status_code == 201
    observation = f"/fhir/Observation/{total_observation_id(client, clinic, patient_id)}"
    assert put(client, clinic, path, phq9(patient_id, 2, "v-hist"), 'W/"1"').status_code == 200

    first, tag = read_ok(client, clinic, f"{path}/_history/1")
    second, _ = read_ok(client, clinic, f"{path}/_history/2")
    old_score, _ = read_ok(client, clinic, f"{observation}/_history/1")
    new_score, _ = read_ok(client, clinic, f"{observation}/_history/2")

    assert (tag, first["meta"]["versionId"], second["meta"]["versionId"]) == ('W/"1"', "1", "2")
    assert first["item"][0]["answer"][0]["valueCoding"]["code"] == LA[1]
    assert first["subject"] == {"reference": f"Patient/{patient_id}"}
    assert (old_score["valueQuantity"]["value"], old_score["status"]) == (9, "final")
    assert (new_score["valueQuantity"]["value"], new_score["status"]) == (18, "amended")
    for resource_history in (f"{path}/_history", f"{observation}/_history"):
        bundle = get(client, clinic, resource_history).json()
        Bundle.model_validate(bundle)
        assert (bundle["type"], bundle["total"]) == ("history", 2)
        assert [entry["response"]["etag"] for entry in bundle["entry"]] == ['W/"2"', 'W/"1"']
        assert [entry["response"]["status"] for entry in bundle["entry"]] == ["200 OK", "201 Created"]
        assert all(entry["fullUrl"] == f"http://testserver{resource_history[:-9]}" for entry in bundle["entry"])
    for missing in (f"{path}/_history/3", f"{observation}/_history/3", f"{path}/_history/x"):
        assert get(client, clinic, missing).status_code == 404
    for theirs in (f"{path}/_history/1", f"{observation}/_history", f"{path}/_history"):
        assert get(client, other_clinic, theirs).status_code == 404


def test_vread_and_history_of_questionnaires(client: TestClient, clinic: ClinicKeys) -> None:
    form = fixture(US_CORE_QUESTIONNAIRE)
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    path = f"/fhir/Questionnaire/{form['id']}"
    assert put(client, clinic, path, {**form, "title": "ours"}).status_code == 200

    assert read_ok(client, clinic, f"{path}/_history/1")[0]["title"] == form["title"]
    assert read_ok(client, clinic, f"{path}/_history/2")[0]["title"] == "ours"
    assert [e["resource"]["title"] for e in get(client, clinic, f"{path}/_history").json()["entry"]] == [
        "ours",
        form["title"],
    ]
    builtin, _ = read_ok(client, clinic, "/fhir/Questionnaire/phq9")
    assert read_ok(client, clinic, f"/fhir/Questionnaire/phq9/_history/{builtin['meta']['versionId']}")[0] == builtin
    assert get(client, clinic, "/fhir/Questionnaire/phq9/_history/1").status_code == 404
    only = get(client, clinic, "/fhir/Questionnaire/phq9/_history").json()
    assert [entry["resource"] for entry in only["entry"]] == [builtin]


def test_patients_and_tasks_offer_no_history(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    [rest] = client.get("/fhir/metadata").json()["rest"]
    claimed = {r["type"]: {i["code"] for i in r["interaction"]} for r in rest["resource"]}

    for resource_type in ("Patient", "Task"):
        assert not claimed[resource_type] & {"vread", "history-instance"}
    assert get(client, clinic, f"/fhir/Patient/{patient_id}/_history").status_code == 404


def test_the_capability_statement_claims_exactly_the_versioning_these_tests_exercise(client: TestClient) -> None:
    """Each claim below is proven above: vread and _history (QuestionnaireResponse, Observation, Questionnaire),
    past versions read back (readHistory), If-Match honoured on every updatable type (versioned-update), ETag and
    If-None-Match on every read (versioned)."""
    [rest] = client.get("/fhir/metadata").json()["rest"]
    resources = {r["type"]: r for r in rest["resource"]}

    history_claims = {
        (name, i["code"])
        for name, r in resources.items()
        for i in r["interaction"]
        if i["code"] in ("vread", "history-instance", "history-type")
    }
    assert history_claims == {
        (name, code)
        for name in ("QuestionnaireResponse", "Observation", "Questionnaire")
        for code in ("vread", "history-instance")
    }
    assert {name: r["readHistory"] for name, r in resources.items()} == {
        "Questionnaire": True,
        "QuestionnaireResponse": True,
        "Observation": True,
        "Task": False,
        "Patient": False,
        "Measure": False,
    }
    assert {name: r["versioning"] for name, r in resources.items()} == {
        "Questionnaire": "versioned-update",
        "QuestionnaireResponse": "versioned-update",
        "Observation": "versioned",
        "Task": "versioned",
        "Patient": "versioned-update",
        "Measure": "versioned",
    }
    assert not any(r["conditionalUpdate"] for r in resources.values())
    assert "history" not in {i["code"] for i in rest["interaction"]}


def test_a_bundle_entrys_if_match_guards_its_put_as_the_header_does(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    """A batch entry's ``request.ifMatch`` naming a replaced version is that entry's 412 (nothing written); naming
    the current one updates."""
    path = f"{QR}/v-bundle"
    assert put(client, clinic, path, phq9(patient_id, 1, "v-bundle")).status_code == 201
    assert put(client, clinic, path, phq9(patient_id, 2, "v-bundle"), 'W/"1"').status_code == 200

    def entry(answer: int, if_match: str) -> dict[str, Any]:
        request = {"method": "PUT", "url": "QuestionnaireResponse/v-bundle", "ifMatch": if_match}
        return {"resource": phq9(patient_id, answer, "v-bundle"), "request": request}

    batch = {"resourceType": "Bundle", "type": "batch", "entry": [entry(3, 'W/"1"'), entry(3, 'W/"2"')]}
    answer = client.post("/fhir", json=batch, headers=headers(clinic, Role.ADMIN))

    assert answer.status_code == 200, answer.text
    statuses = [item["response"]["status"] for item in answer.json()["entry"]]
    assert [status.split(" ")[0] for status in statuses] == ["412", "200"]
    assert read_ok(client, clinic, path)[0]["item"][0]["answer"][0]["valueCoding"]["code"] == LA[3]
    assert sorted(row.version for row in measurements_of(app, patient_id)) == [1, 2, 3]
