"""The issue's "done when": a schedule that started eight weeks ago, measurements posted late into some of its past
windows (REST, a FHIR QuestionnaireResponse, a research import), one occurrence declined by the patient's token and
others left empty, reads back exactly completed / declined / missed / due, in the patient's assessments and in the
clinic's adherence; ending it cancels what is not yet open; a closed window reads missed on the next read."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from tests.care.conftest import assessments, measure, new_schedule, ok, patient_token, statuses
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.security.openapi_routes import PHQ9_RESPONSE

FCS = {str(n): 1 for n in range(1, 14)}
# The schedule's windows in Oslo: each opens on a Friday at local midnight (UTC+2 until the change of 25 October,
# UTC+1 after it) and closes three days later; the ninth (k = 8) opened today, 2026-11-20, at 00:00 CET.
WINDOWS = [
    "2026-09-24T22:00:00Z",
    "2026-10-01T22:00:00Z",
    "2026-10-08T22:00:00Z",
    "2026-10-15T22:00:00Z",
    "2026-10-22T22:00:00Z",
    "2026-10-29T23:00:00Z",
    "2026-11-05T23:00:00Z",
    "2026-11-12T23:00:00Z",
    "2026-11-19T23:00:00Z",
    "2026-11-26T23:00:00Z",
]
PHQ9_STATUSES = [
    "completed",  # k0: REST ingest, posted eight weeks late
    "completed",  # k1: a FHIR QuestionnaireResponse
    "completed",  # k2: a research import
    "declined",  # k3: declined by the patient's token after it closed
    "missed",  # k4: a PHQ-9 came in half an hour after it closed (00:00 CET on 26 October): it completes nothing
    "missed",
    "missed",
    "missed",
    "due",  # k8: open now
    "scheduled",
]
FCS_STATUSES = ["missed", "completed", *(["missed"] * 6), "due", "scheduled"]


def post_fhir_response(client: TestClient, clinic: ClinicKeys, patient_id: str, authored: str) -> None:
    body = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", patient_id)) | {"authored": authored}
    headers = clinic.headers(Role.INTEGRATION, {"Content-Type": "application/fhir+json"})
    ok(client.post("/fhir/QuestionnaireResponse", content=json.dumps(body), headers=headers), 201)


def import_row(client: TestClient, clinic: ClinicKeys, external_id: str, measured_at: str) -> None:
    row = {"external_id": external_id, "instrument": "phq9", "measured_at": measured_at, "items": ISSUE_PHQ9}
    headers = clinic.headers(Role.INTEGRATION, {"Content-Type": "application/x-ndjson"})
    ok(client.post("/v1/research/imports", content=json.dumps(row) + "\n", headers=headers), 201)


def by_instrument(items: list[dict[str, Any]], instrument: str) -> list[dict[str, Any]]:
    return [item for item in items if item["instrument"] == instrument]


def test_a_schedule_begun_eight_weeks_ago_reads_back_completed_declined_missed_and_due(
    client: TestClient, clinic: ClinicKeys, frozen: None
) -> None:
    external_id = f"MRN-CARE-{uuid.uuid4().hex[:8]}"
    patient_id = ok(client.post("/v1/patients", json={"external_id": external_id}, headers=clinic.headers()), 201)["id"]
    schedule = new_schedule(
        client,
        clinic,
        patient_id,
        instruments=["phq9", "fcs_from_others"],
        starts_on="2026-09-25",
        every_days=7,
        window_days=3,
        ends_on=None,
        timezone="Europe/Oslo",
    )
    phone = patient_token(client, clinic, patient_id)

    measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-09-26T12:00:00+02:00")
    post_fhir_response(client, clinic, patient_id, "2026-10-03T10:00:00+02:00")
    measure(client, clinic, patient_id, "fcs_from_others", FCS, "2026-10-03T08:00:00+02:00")
    import_row(client, clinic, external_id, "2026-10-10T09:00:00+02:00")
    measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-10-26T00:30:00+01:00")
    k3 = by_instrument(assessments(client, clinic, patient_id, instrument="phq9"), "phq9")[3]
    declined = ok(client.post(f"/v1/me/assessments/{k3['id']}/decline", json={"reason": "on holiday"}, headers=phone))

    window = {"from": "2026-09-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"}
    items = assessments(client, clinic, patient_id, **window)
    phq9, fcs = by_instrument(items, "phq9"), by_instrument(items, "fcs_from_others")
    assert [item["due_from"] for item in phq9] == WINDOWS
    assert [item["due_from"] for item in fcs] == WINDOWS
    assert [item["status"] for item in phq9] == PHQ9_STATUSES
    assert [item["status"] for item in fcs] == FCS_STATUSES
    assert {item["schedule_id"] for item in items} == {schedule["id"]}
    assert all(item["measurement_id"] for item in items if item["status"] == "completed")
    assert declined["status"] == "declined"
    assert phq9[3]["decline"] == {"reason": "on holiday", "actor": "patient", "at": "2026-11-20T10:00:00Z"}
    assert phq9[4]["due_by"] == "2026-10-25T23:00:00Z"
    assert phq9[8]["due_by"] == "2026-11-22T23:00:00Z"

    every = assessments(client, clinic, patient_id)
    for status in ("scheduled", "due", "completed", "declined", "missed", "cancelled"):  # SQL filter = status_at
        filtered = assessments(client, clinic, patient_id, status=status)
        assert [item["id"] for item in filtered] == [item["id"] for item in every if item["status"] == status]

    adherence = ok(client.get("/v1/clinic/adherence", params=window, headers=clinic.headers()))
    # PHQ-9: 3 completed ÷ (3 + 1 declined + 4 missed); FCS: 1 ÷ (1 + 7 missed); overall 4 ÷ 16.
    assert adherence == {
        "completed": 4,
        "declined": 1,
        "missed": 11,
        "due": 2,
        "completion_rate": 0.25,
        "by_instrument": [
            {
                "instrument": "fcs_from_others",
                "completed": 1,
                "declined": 0,
                "missed": 7,
                "due": 1,
                "completion_rate": 0.125,
            },
            {"instrument": "phq9", "completed": 3, "declined": 1, "missed": 4, "due": 1, "completion_rate": 0.375},
        ],
    }
    only_phq9 = ok(
        client.get("/v1/clinic/adherence", params={**window, "instrument": "phq9"}, headers=clinic.headers())
    )
    assert (only_phq9["completed"], only_phq9["missed"], only_phq9["completion_rate"]) == (3, 4, 0.375)

    due_now = ok(client.get("/v1/me/assessments", headers=phone))["items"]
    assert [(item["instrument"], item["due_by"]) for item in due_now] == [
        ("fcs_from_others", "2026-11-22T23:00:00Z"),
        ("phq9", "2026-11-22T23:00:00Z"),
    ]
    phq9_definition = ok(client.get("/v1/instruments/phq9", headers=clinic.headers()))
    assert due_now[1]["version"] == phq9_definition["version"]
    assert due_now[1]["definition"] == "/v1/instruments/phq9"
    assert due_now[1]["questionnaire"] == "/fhir/Questionnaire/phq9"

    caseload = ok(client.get("/v1/clinic/assessments", params={"status": "missed"}, headers=clinic.headers()))
    assert len(caseload["items"]) == 11
    first = caseload["items"][0]
    assert first["patient"] == {
        "id": patient_id,
        "identifiers": [{"system": "urn:compassion-outcomes:external-id", "value": external_id}],
    }
    assert (first["assessment"]["instrument"], first["assessment"]["due_from"]) == ("fcs_from_others", WINDOWS[0])

    ended = ok(client.post(f"/v1/patients/{patient_id}/schedules/{schedule['id']}/end", headers=clinic.headers()))
    assert ended["ends_on"] == "2026-11-20"
    after = assessments(client, clinic, patient_id)
    assert [status for _i, _f, status in statuses(after) if status in ("due", "scheduled")] == ["due", "due"]
    cancelled = [due_from for _i, due_from, status in statuses(after) if status == "cancelled"]
    assert cancelled[:2] == [WINDOWS[9], WINDOWS[9]]
    assert len(cancelled) == 2 * 52  # every window stored a year ahead, from 27 November on

    CLOCK.move_to(datetime.fromisoformat("2026-11-23T00:00:00+01:00"))
    closed = by_instrument(assessments(client, clinic, patient_id, **window), "phq9")
    assert [item["status"] for item in closed][8:] == ["missed", "cancelled"]
