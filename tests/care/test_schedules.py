"""Schedules through the API: validation names the field and what it allows, tenancy, patient tokens, declining."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.state import state_of
from tests.care.conftest import assessments, new_schedule, ok, patient_token
from tests.conftest import ClinicKeys

WEEKLY = {
    "instruments": ["phq9"],
    "starts_on": "2026-11-13",
    "every_days": 7,
    "window_days": 3,
    "timezone": "Europe/Oslo",
}


def errors(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {error["field"]: error for error in response.json()["errors"]}


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        ({"instruments": ["phq9", "phq10"]}, "instruments.1", "unknown instrument"),
        ({"instruments": ["phq9", "phq9"]}, "instruments.1", "listed twice"),
        ({"timezone": "Europe/Atlantis"}, "timezone", "IANA"),
        ({"timezone": None}, "timezone", "time zone"),
        ({"every_days": 0}, "every_days", ""),
        ({"window_days": 0}, "window_days", ""),
        ({"window_days": 8}, "window_days", "at most every_days (7)"),
        ({"ends_on": "2026-11-12"}, "ends_on", "on or after starts_on (2026-11-13)"),
        ({"at_each_session": True}, "every_days", "exactly one"),
        ({"every_days": None}, "every_days", "exactly one"),
        ({"starts_on": None}, "starts_on", "the day its first window opens"),
        ({"starts_on": "2020-01-01"}, "starts_on", "must be from 2025-11-19 to 2027-11-21"),
    ],
)
def test_an_invalid_schedule_is_refused_naming_the_field_and_nothing_is_stored(
    client: TestClient,
    clinic: ClinicKeys,
    patient_id: str,
    frozen: None,
    change: dict[str, Any],
    field: str,
    detail: str,
) -> None:
    response = client.post(f"/v1/patients/{patient_id}/schedules", json=WEEKLY | change, headers=clinic.headers())

    found = errors(response)
    assert field in found, found
    assert detail in found[field]["detail"]
    assert ok(client.get(f"/v1/patients/{patient_id}/schedules", headers=clinic.headers()))["items"] == []
    assert assessments(client, clinic, patient_id) == []


def test_an_unknown_instrument_lists_the_known_ones(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    body = WEEKLY | {"instruments": ["phq10"]}
    found = errors(client.post(f"/v1/patients/{patient_id}/schedules", json=body, headers=clinic.headers()))

    known = ok(client.get("/v1/instruments", headers=clinic.headers()))
    ids = [item["id"] for item in (known["items"] if isinstance(known, dict) else known)]
    assert sorted(found["instruments.0"]["allowed"]) == sorted(ids)
    assert "phq9" in found["instruments.0"]["allowed"]


def test_a_schedule_is_listed_and_ended_once(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    created = new_schedule(client, clinic, patient_id, **WEEKLY)

    listed = ok(client.get(f"/v1/patients/{patient_id}/schedules", headers=clinic.headers()))["items"]
    location = client.post(f"/v1/patients/{patient_id}/schedules", json=WEEKLY, headers=clinic.headers()).headers
    assert ok(client.get(location["location"], headers=clinic.headers()))["instruments"] == ["phq9"]
    assert listed[0]["id"] == created["id"]
    assert (created["timezone"], created["every_days"], created["ended_at"]) == ("Europe/Oslo", 7, None)
    end = f"/v1/patients/{patient_id}/schedules/{created['id']}/end"
    assert ok(client.post(end, headers=clinic.headers()))["ended_at"] == "2026-11-20T10:00:00Z"
    again = client.post(end, headers=clinic.headers())
    assert again.status_code == 409, again.text


def test_another_clinic_sees_no_schedule_and_no_assessment(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    created = new_schedule(client, clinic, patient_id, **WEEKLY)
    [first, *_] = assessments(client, clinic, patient_id)
    base = f"/v1/patients/{patient_id}"

    for method, path, body in [
        ("GET", f"{base}/schedules", None),
        ("GET", f"{base}/schedules/{created['id']}", None),
        ("GET", f"{base}/assessments", None),
        ("POST", f"{base}/schedules", WEEKLY),
        ("POST", f"{base}/schedules/{created['id']}/end", None),
        ("POST", f"{base}/assessments/{first['id']}/decline", {"reason": "not theirs"}),
    ]:
        response = client.request(method, path, json=body, headers=other_clinic.headers())
        assert response.status_code == 404, (path, response.text)
    assert ok(client.get("/v1/clinic/assessments", headers=other_clinic.headers()))["items"] == []
    adherence = ok(client.get("/v1/clinic/adherence", headers=other_clinic.headers()))
    assert (adherence["missed"], adherence["due"], adherence["completion_rate"]) == (0, 0, None)
    assert assessments(client, clinic, patient_id)[0]["status"] == "missed"


def test_a_patient_token_reads_and_declines_only_its_own_patients_assessments(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    other = ok(client.post("/v1/patients", json={}, headers=clinic.headers()), 201)["id"]
    new_schedule(client, clinic, patient_id, **WEEKLY)
    new_schedule(client, clinic, other, **WEEKLY)
    phone = patient_token(client, clinic, patient_id)
    theirs = assessments(client, clinic, other, status="due")[0]
    mine = assessments(client, clinic, patient_id, status="due")[0]

    due = ok(client.get("/v1/me/assessments", headers=phone))["items"]
    assert [item["id"] for item in due] == [mine["id"]]
    refused = client.post(f"/v1/me/assessments/{theirs['id']}/decline", json={"reason": "x"}, headers=phone)
    assert refused.status_code == 404, refused.text
    assert client.get(f"/v1/patients/{other}/assessments", headers=phone).status_code in (403, 404)
    assert assessments(client, clinic, other, status="due")[0]["id"] == theirs["id"]
    staff = client.get("/v1/me/assessments", headers=clinic.headers(Role.CLINICIAN))
    assert staff.status_code == 422, staff.text


def test_only_a_due_or_missed_assessment_can_be_declined(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    new_schedule(client, clinic, patient_id, **WEEKLY)
    items = assessments(client, clinic, patient_id)
    missed, due, scheduled = items[0], items[1], items[2]
    assert [missed["status"], due["status"], scheduled["status"]] == ["missed", "due", "scheduled"]
    base = f"/v1/patients/{patient_id}/assessments"

    for item in (missed, due):
        declined = ok(
            client.post(f"{base}/{item['id']}/decline", json={"reason": "too unwell"}, headers=clinic.headers())
        )
        assert declined["status"] == "declined"
        assert declined["decline"]["actor"] == "clinician"
    for item in (scheduled, missed):
        refused = client.post(f"{base}/{item['id']}/decline", json={"reason": "again"}, headers=clinic.headers())
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    patient_forbidden = client.post(
        f"{base}/{due['id']}/decline", json={"reason": "x"}, headers=clinic.headers(Role.RESEARCHER)
    )
    assert patient_forbidden.status_code == 403


def test_status_and_instrument_filters_and_pages(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    new_schedule(client, clinic, patient_id, **WEEKLY | {"instruments": ["phq9", "gad7"]})

    assert [item["status"] for item in assessments(client, clinic, patient_id, status="due")] == ["due", "due"]
    assert {item["instrument"] for item in assessments(client, clinic, patient_id, instrument="gad7")} == {"gad7"}
    page = ok(client.get(f"/v1/patients/{patient_id}/assessments", params={"limit": 3}, headers=clinic.headers()))
    assert (len(page["items"]), page["has_more"]) == (3, True)
    bad = client.get(f"/v1/patients/{patient_id}/assessments", params={"status": "late"}, headers=clinic.headers())
    assert bad.status_code == 422
    ranged = assessments(client, clinic, patient_id, **{"from": "2026-11-13T00:00:00Z", "to": "2026-11-20T00:00:00Z"})
    assert [item["due_from"] for item in ranged] == ["2026-11-19T23:00:00Z"] * 2


def test_the_clinics_adherence_and_unanswered_lists_are_audited(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    new_schedule(client, clinic, patient_id, **WEEKLY)

    ok(client.get("/v1/clinic/adherence", headers=clinic.headers()))
    ok(client.get("/v1/clinic/assessments", params={"patient_id": patient_id}, headers=clinic.headers()))

    with state_of(app).read_sessions() as db:
        rows = db.execute(
            select(AuditEvent.route, AuditEvent.patient_id).where(
                AuditEvent.clinic_id == clinic.id, AuditEvent.route.like("/v1/clinic/%")
            )
        ).all()
    assert sorted((route, str(patient)) for route, patient in rows) == [
        ("/v1/clinic/adherence", "None"),
        ("/v1/clinic/assessments", patient_id),
    ]
