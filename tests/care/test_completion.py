"""Which measurement completes which assessment: whenever it arrives, by whatever path, one window each."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.auth.permissions import Role
from app.care import service
from app.care.models import AssessmentOccurrence
from app.care.windows import HORIZON
from app.core.datetimes import CLOCK
from app.core.db import transaction
from app.core.state import state_of
from tests.care.conftest import NOW, assessments, measure, new_schedule, ok
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.security.openapi_routes import PHQ9_RESPONSE

WEEKLY = {
    "instruments": ["phq9"],
    "starts_on": "2026-10-30",
    "every_days": 7,
    "window_days": 3,
    "timezone": "Europe/Oslo",
}
# Windows (Oslo, CET): 30 Oct - 2 Nov, 6 - 9 Nov, 13 - 16 Nov, 20 - 23 Nov (due now), then scheduled.


def test_a_measurement_stored_before_the_schedule_completes_its_window(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    earlier = measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-11-07T09:00:00+01:00")

    new_schedule(client, clinic, patient_id, **WEEKLY)

    statuses = [(item["status"], item["measurement_id"]) for item in assessments(client, clinic, patient_id)][:4]
    assert statuses == [("missed", None), ("completed", earlier["id"]), ("missed", None), ("due", None)]


def test_one_measurement_completes_one_window_and_the_first_of_two_in_a_window_takes_it(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    new_schedule(client, clinic, patient_id, **WEEKLY)
    first = measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-11-20T08:00:00+01:00")
    measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-11-20T09:00:00+01:00")
    measure(client, clinic, patient_id, "gad7", {str(n): 1 for n in range(1, 8)}, "2026-11-14T09:00:00+01:00")

    items = assessments(client, clinic, patient_id)
    assert [item["status"] for item in items][:4] == ["missed", "missed", "missed", "completed"]
    assert items[3]["measurement_id"] == first["id"]


def test_overlapping_windows_of_two_schedules_the_earliest_uncompleted_one_is_completed(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    weekly = new_schedule(client, clinic, patient_id, **WEEKLY)
    daily = new_schedule(
        client, clinic, patient_id, **WEEKLY | {"starts_on": "2026-11-21", "every_days": 1, "window_days": 1}
    )
    CLOCK.move_to(NOW + timedelta(days=1, hours=6))  # Saturday 21 November: both windows open

    measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-11-21T12:00:00+01:00")

    completed = assessments(client, clinic, patient_id, status="completed")
    assert [(item["schedule_id"], item["due_from"]) for item in completed] == [(weekly["id"], "2026-11-19T23:00:00Z")]
    saturday = [item for item in assessments(client, clinic, patient_id) if item["schedule_id"] == daily["id"]][0]
    assert saturday["status"] == "due"


def test_a_declined_window_that_is_answered_after_all_is_completed_and_keeps_its_decline(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    new_schedule(client, clinic, patient_id, **WEEKLY)
    missed = assessments(client, clinic, patient_id)[0]
    ok(
        client.post(
            f"/v1/patients/{patient_id}/assessments/{missed['id']}/decline",
            json={"reason": "not now"},
            headers=clinic.headers(),
        )
    )

    late = measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-10-31T09:00:00+01:00")

    answered = assessments(client, clinic, patient_id)[0]
    assert (answered["status"], answered["measurement_id"]) == ("completed", late["id"])
    assert answered["decline"]["reason"] == "not now"


def test_an_amendment_that_moves_measured_at_reopens_the_window_it_left_and_completes_the_one_it_entered(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    new_schedule(client, clinic, patient_id, **WEEKLY)
    stored = measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-11-07T09:00:00+01:00")
    second = measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-11-08T09:00:00+01:00")
    assert [item["status"] for item in assessments(client, clinic, patient_id)][:3] == ["missed", "completed", "missed"]

    amended = client.post(
        f"/v1/patients/{patient_id}/measurements/{stored['id']}/amend",
        json={"items": ISSUE_PHQ9, "measured_at": "2026-11-14T09:00:00+01:00", "reason": "dated wrongly"},
        headers=clinic.headers(),
    )

    assert amended.status_code == 201, amended.text
    items = assessments(client, clinic, patient_id)
    assert [(item["status"], item["measurement_id"]) for item in items][:3] == [
        ("missed", None),
        ("completed", second["id"]),  # the window it left: completed by the other measurement in it
        ("completed", stored["id"]),  # the window it moved into
    ]


def test_a_bulk_import_completes_every_window_its_rows_fall_in_with_one_statement_per_batch(
    client: TestClient, clinic: ClinicKeys, frozen: None
) -> None:
    patients = []
    for n in range(3):
        created = ok(client.post("/v1/patients", json={"external_id": f"MRN-BULK-{n}"}, headers=clinic.headers()), 201)
        patients.append(created["id"])
        new_schedule(client, clinic, created["id"], **WEEKLY)
    rows = [
        {"external_id": f"MRN-BULK-{n}", "instrument": "phq9", "measured_at": at, "items": ISSUE_PHQ9}
        for n in range(3)
        for at in ("2026-10-31T09:00:00+01:00", "2026-11-14T09:00:00+01:00", "2026-11-15T09:00:00+01:00")
    ]
    headers = clinic.headers(Role.INTEGRATION, {"Content-Type": "application/x-ndjson"})

    ok(client.post("/v1/research/imports", content="".join(json.dumps(r) + "\n" for r in rows), headers=headers), 201)

    for patient in patients:
        assert [item["status"] for item in assessments(client, clinic, patient)][:4] == [
            "completed",
            "missed",
            "completed",
            "due",
        ]


def test_a_therapy_session_makes_its_instruments_due_for_window_days_from_its_start(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    schedule = new_schedule(
        client, clinic, patient_id, instruments=["phq9", "gad7"], at_each_session=True, window_days=1
    )
    assert schedule["timezone"] == "UTC"
    assert assessments(client, clinic, patient_id) == []
    early = measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-11-20T09:45:00Z")

    session = ok(
        client.post(
            f"/v1/patients/{patient_id}/sessions", json={"started_at": "2026-11-20T09:30:00Z"}, headers=clinic.headers()
        ),
        201,
    )

    items = assessments(client, clinic, patient_id)
    assert [(i["instrument"], i["status"], i["session_id"], i["due_by"]) for i in items] == [
        ("gad7", "due", session["id"], "2026-11-21T09:30:00Z"),
        ("phq9", "completed", session["id"], "2026-11-21T09:30:00Z"),
    ]
    assert items[1]["measurement_id"] == early["id"]
    ok(client.post(f"/v1/patients/{patient_id}/schedules/{schedule['id']}/end", headers=clinic.headers()))
    ok(
        client.post(
            f"/v1/patients/{patient_id}/sessions", json={"started_at": "2026-11-20T09:50:00Z"}, headers=clinic.headers()
        ),
        201,
    )
    assert len(assessments(client, clinic, patient_id)) == 2


def test_extend_horizons_keeps_a_year_of_windows_stored_and_is_idempotent(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    schedule = new_schedule(client, clinic, patient_id, **WEEKLY)
    later = NOW + timedelta(days=28)

    def stored() -> int:
        with state_of(app).read_sessions() as db:
            query = select(func.count()).where(AssessmentOccurrence.schedule_id == uuid.UUID(schedule["id"]))
            return int(db.scalar(query) or 0)

    before = stored()
    for db in transaction(state_of(app).write_sessions):
        service.extend_horizons(db, later)
    after = stored()
    for db in transaction(state_of(app).write_sessions):
        service.extend_horizons(db, later)

    assert after - before == 4  # four more Fridays within a year of the later date
    assert stored() == after
    last = max(datetime.fromisoformat(i["due_from"]) for i in assessments(client, clinic, patient_id))
    assert last < later + HORIZON


def test_a_fhir_bundle_entry_completes_the_window_it_falls_in(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    new_schedule(client, clinic, patient_id, **WEEKLY)
    response = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", patient_id))
    response["authored"] = "2026-11-14T09:00:00+01:00"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": response, "request": {"method": "POST", "url": "QuestionnaireResponse"}}],
    }
    headers = clinic.headers(Role.INTEGRATION, {"Content-Type": "application/fhir+json"})

    ok(client.post("/fhir", content=json.dumps(bundle), headers=headers))

    assert [item["status"] for item in assessments(client, clinic, patient_id)][:3] == ["missed", "missed", "completed"]
