"""Assessments as SDC Tasks: a schedule begun four weeks ago, with a window completed through FHIR, one through the
JSON API, one declined, one missed, one due, one cancelled (its schedule ended) and one scheduled, all made through
the API, reads back as completed / completed / rejected / failed / ready / cancelled / requested Tasks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.task import Task
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from app.core.state import state_of
from tests.care.conftest import measure, new_schedule, ok, patient_token
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.fhir.conftest import issues
from tests.security.openapi_routes import PHQ9_RESPONSE

SDC_TEMP = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"
COMPLETE_QUESTIONNAIRE = {"system": SDC_TEMP, "code": "complete-questionnaire", "display": "Complete Questionnaire"}
SCHEDULED_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
"""A Friday. The PHQ-9 schedule (UTC, from Friday 23 October to 27 November, every 7 days, 3-day windows) has
windows opening on 23 and 30 October, 6, 13, 20 and 27 November; ended today, so the last is cancelled. The GAD-7
one opens on 27 November only."""
PHQ9_WINDOWS = [
    ("2026-10-23T00:00:00Z", "2026-10-26T00:00:00Z"),
    ("2026-10-30T00:00:00Z", "2026-11-02T00:00:00Z"),
    ("2026-11-06T00:00:00Z", "2026-11-09T00:00:00Z"),
    ("2026-11-13T00:00:00Z", "2026-11-16T00:00:00Z"),
    ("2026-11-20T00:00:00Z", "2026-11-23T00:00:00Z"),
    ("2026-11-27T00:00:00Z", "2026-11-30T00:00:00Z"),
]
STATUSES = [
    ("phq9", "completed"),  # a FHIR QuestionnaireResponse
    ("phq9", "completed"),  # the JSON API
    ("phq9", "rejected"),  # declined
    ("phq9", "failed"),  # missed
    ("phq9", "ready"),  # due
    ("gad7", "requested"),  # scheduled (27 November: gad7 sorts before phq9 on the same day)
    ("phq9", "cancelled"),  # its schedule ended before it opened
]
REASON = "in hospital that week"


@dataclass(frozen=True)
class Course:
    patient_id: str
    response_id: str
    measurement_id: str
    schedule_id: str


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute, tzinfo=UTC)


def post_response(client: TestClient, clinic: ClinicKeys, patient_id: str, authored: str) -> str:
    body = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", patient_id)) | {"authored": authored}
    headers = clinic.headers(Role.INTEGRATION, {"Content-Type": "application/fhir+json"})
    return str(ok(client.post("/fhir/QuestionnaireResponse", content=json.dumps(body), headers=headers), 201)["id"])


@pytest.fixture
def course(client: TestClient, clinic: ClinicKeys, patient_id: str) -> Iterator[Course]:
    """The schedules and what happened to them, made through the API at known times; the clock stays at ``NOW``."""
    with CLOCK.frozen_at(SCHEDULED_AT):
        phq9 = new_schedule(
            client,
            clinic,
            patient_id,
            instruments=["phq9"],
            starts_on="2026-10-23",
            ends_on="2026-11-27",
            every_days=7,
            window_days=3,
            timezone="UTC",
        )
        CLOCK.move_to(at(8, 5))
        new_schedule(
            client,
            clinic,
            patient_id,
            instruments=["gad7"],
            starts_on="2026-11-27",
            ends_on="2026-11-27",
            every_days=7,
            window_days=3,
            timezone="UTC",
        )
        CLOCK.move_to(at(9))
        response_id = post_response(client, clinic, patient_id, "2026-10-24T12:00:00Z")
        CLOCK.move_to(at(9, 10))
        measurement = measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-10-31T12:00:00Z")
        CLOCK.move_to(at(9, 30))
        listed = ok(client.get(f"/v1/patients/{patient_id}/assessments", headers=clinic.headers()))["items"]
        ok(
            client.post(
                f"/v1/patients/{patient_id}/assessments/{listed[2]['id']}/decline",
                json={"reason": REASON},
                headers=clinic.headers(Role.CLINICIAN),
            )
        )
        CLOCK.move_to(at(9, 45))
        ok(client.post(f"/v1/patients/{patient_id}/schedules/{phq9['id']}/end", headers=clinic.headers()))
        CLOCK.move_to(NOW)
        yield Course(patient_id, response_id, str(measurement["id"]), str(phq9["id"]))


def search(client: TestClient, clinic: ClinicKeys, patient: str, **params: str) -> dict[str, Any]:
    response = client.get("/fhir/Task", params={"patient": patient, **params}, headers=clinic.headers(Role.CLINICIAN))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    body: dict[str, Any] = response.json()
    Bundle.model_validate(body)
    return body


def tasks(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle.get("entry", [])]


def test_each_status_reads_as_its_task_status(client: TestClient, clinic: ClinicKeys, course: Course) -> None:
    found = tasks(search(client, clinic, f"Patient/{course.patient_id}"))

    assert [(task["input"][0]["valueCanonical"].rsplit(":", 1)[1], task["status"]) for task in found] == STATUSES
    phq9 = [task for task in found if task["input"][0]["valueCanonical"].endswith(":phq9")]
    periods = [task["restriction"]["period"] for task in phq9]
    assert [(period["start"], period["end"]) for period in periods] == PHQ9_WINDOWS
    assert found[2]["statusReason"] == {"text": REASON}
    assert all("statusReason" not in task for index, task in enumerate(found) if index != 2)


def test_a_task_is_an_sdc_complete_questionnaire_task(client: TestClient, clinic: ClinicKeys, course: Course) -> None:
    found = tasks(search(client, clinic, course.patient_id))

    for task in found:
        Task.model_validate(task)
        assert task["meta"]["profile"] == ["http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-task"]
        assert task["code"] == {"coding": [COMPLETE_QUESTIONNAIRE]}
        assert task["intent"] == "order"
        assert task["for"] == task["owner"] == {"reference": f"Patient/{course.patient_id}"}
        assert task["requester"] == {
            "type": "Organization",
            "identifier": {"system": "urn:compassion-outcomes:clinic", "value": str(clinic.id)},
        }
        # sdc-t1: a complete-questionnaire Task has no focus and names its form as the questionnaire input
        assert "focus" not in task
        [form] = task["input"]
        assert form["type"] == {"coding": [{"system": SDC_TEMP, "code": "questionnaire"}]}
    served = {
        entry["resource"]["url"]
        for entry in ok(client.get("/fhir/Questionnaire", headers=clinic.headers(Role.CLINICIAN)))["entry"]
    }
    assert {task["input"][0]["valueCanonical"] for task in found} <= served


def test_a_completed_task_names_its_response_and_its_score(
    client: TestClient, clinic: ClinicKeys, course: Course
) -> None:
    by_fhir, by_json_api, *others = tasks(search(client, clinic, course.patient_id))

    assert by_fhir["output"][0] == {
        "type": {"coding": [{"system": SDC_TEMP, "code": "questionnaire-response"}]},
        "valueReference": {"reference": f"QuestionnaireResponse/{course.response_id}"},
    }
    panel = by_fhir["output"][1]["valueReference"]["reference"]
    assert panel.startswith("Observation/")
    assert panel.endswith("-panel")
    assert ok(client.get(f"/fhir/{panel}", headers=clinic.headers(Role.CLINICIAN)))["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "44249-1",
    }
    # A measurement sent to the JSON API has no QuestionnaireResponse: its score Observation only.
    [score] = by_json_api["output"]
    assert score["valueReference"] == {"reference": f"Observation/{course.measurement_id.replace('-', '')}-panel"}
    assert all("output" not in task for task in others)


def test_authored_on_is_when_it_was_stored_and_last_modified_when_it_last_changed(
    client: TestClient, clinic: ClinicKeys, course: Course
) -> None:
    found = tasks(search(client, clinic, course.patient_id))

    def moment(value: str) -> datetime:
        return datetime.fromisoformat(value)

    assert [moment(task["authoredOn"]) for task in found] == [SCHEDULED_AT] * 5 + [at(8, 5), SCHEDULED_AT]
    assert [moment(task["lastModified"]) for task in found] == [
        at(9),  # completed by the response
        at(9, 10),  # completed by the JSON API's measurement
        at(9, 30),  # declined
        SCHEDULED_AT,  # stored after its window had closed: failed from the start
        SCHEDULED_AT,  # stored after its window had opened
        at(8, 5),  # scheduled
        at(9, 45),  # its schedule ended
    ]


def test_status_searches_take_task_codes_any_of_them(client: TestClient, clinic: ClinicKeys, course: Course) -> None:
    def statuses(value: str) -> list[str]:
        bundle = search(client, clinic, course.patient_id, status=value)
        assert bundle["total"] == len(bundle.get("entry", []))
        return [task["status"] for task in tasks(bundle)]

    assert statuses("ready,failed") == ["failed", "ready"]
    assert statuses("completed") == ["completed", "completed"]
    assert statuses("http://hl7.org/fhir/task-status|rejected") == ["rejected"]
    assert statuses("requested, cancelled") == ["requested", "cancelled"]
    assert statuses("in-progress") == []  # a Task status no assessment has


def test_an_unknown_status_is_a_400_naming_the_allowed_codes(
    client: TestClient, clinic: ClinicKeys, course: Course
) -> None:
    response = client.get(
        "/fhir/Task",
        params={"patient": course.patient_id, "status": "ready,overdue"},
        headers=clinic.headers(Role.CLINICIAN),
    )

    assert response.status_code == 400
    [issue] = issues(response)
    assert issue["code"] == "invalid"
    assert issue["diagnostics"] == (
        "status: 'overdue' is not a Task status code "
        "(allowed: requested, ready, completed, rejected, failed, cancelled)"
    )


def test_search_pages_with_count_following_next_links(client: TestClient, clinic: ClinicKeys, course: Course) -> None:
    first = search(client, clinic, f"Patient/{course.patient_id}", _count="3")
    pages = [first]
    while (link := next((li["url"] for li in pages[-1]["link"] if li["relation"] == "next"), None)) is not None:
        response = client.get(link, headers=clinic.headers(Role.CLINICIAN))
        assert response.status_code == 200, response.text
        pages.append(response.json())

    assert [len(page["entry"]) for page in pages] == [3, 3, 1]
    assert {page["total"] for page in pages} == {7}
    assert [task["status"] for page in pages for task in tasks(page)] == [status for _, status in STATUSES]
    assert first["entry"][0]["fullUrl"].endswith(f"/fhir/Task/{first['entry'][0]['resource']['id']}")


def test_a_task_reads_by_id(client: TestClient, clinic: ClinicKeys, course: Course) -> None:
    declined = tasks(search(client, clinic, course.patient_id, status="rejected"))[0]

    response = client.get(f"/fhir/Task/{declined['id']}", headers=clinic.headers(Role.CLINICIAN))

    assert response.status_code == 200
    assert response.json() == declined


def test_another_clinics_task_and_patient_are_not_found(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, course: Course
) -> None:
    [task] = tasks(search(client, clinic, course.patient_id, status="ready"))

    read = client.get(f"/fhir/Task/{task['id']}", headers=other_clinic.headers(Role.CLINICIAN))
    searched = client.get("/fhir/Task", params={"patient": course.patient_id}, headers=other_clinic.headers())
    not_an_id = client.get("/fhir/Task/not-an-assessment", headers=clinic.headers(Role.CLINICIAN))

    for response in (read, searched, not_an_id):
        assert response.status_code == 404
        assert issues(response)[0]["code"] == "not-found"


def test_a_patient_token_reads_no_tasks(client: TestClient, clinic: ClinicKeys, course: Course) -> None:
    """Like every FHIR read of a patient's records, a patient token's (the app reads /v1/me/assessments)."""
    phone = patient_token(client, clinic, course.patient_id)

    response = client.get("/fhir/Task", params={"patient": course.patient_id}, headers=phone)

    assert response.status_code == 403
    assert issues(response)[0]["code"] == "forbidden"


def test_task_reads_are_audited_naming_the_patient(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, course: Course
) -> None:
    [task] = tasks(search(client, clinic, f"Patient/{course.patient_id}", status="ready"))
    client.get(f"/fhir/Task/{task['id']}", headers=clinic.headers(Role.CLINICIAN))

    with state_of(app).read_sessions() as db:
        rows = db.execute(
            select(AuditEvent.route, AuditEvent.resource_type, AuditEvent.resource_id, AuditEvent.patient_id).where(
                AuditEvent.clinic_id == clinic.id, AuditEvent.route.like("/fhir/Task%")
            )
        ).all()

    patient = course.patient_id
    assert {(route, kind, resource, str(who)) for route, kind, resource, who in rows} == {
        ("/fhir/Task", "Task", None, patient),
        ("/fhir/Task/{task_id}", "Task", task["id"], patient),
    }
