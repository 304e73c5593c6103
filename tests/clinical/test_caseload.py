"""The caseload: one row per active patient, most in need first, in a fixed number of statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from app.core.state import state_of
from tests.clinical.conftest import day, phq9, seed
from tests.conftest import ClinicKeys

NOW = datetime(2026, 2, 8, 12, 0, tzinfo=UTC)
"""Five weeks after ``day(0)`` (2026-01-05): every seeded measurement is within the 90 days that make a patient
active."""


@pytest.fixture
def at_now() -> Iterator[None]:
    with CLOCK.frozen_at(NOW):
        yield


def patient(client: TestClient, clinic: ClinicKeys, mrn: str) -> str:
    response = client.post(
        "/v1/patients", json={"identifiers": [{"system": "urn:mrn", "value": mrn}]}, headers=clinic.headers()
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def caseload(client: TestClient, clinic: ClinicKeys, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/clinic/caseload", params=params, headers=clinic.headers())
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@contextmanager
def counted_statements(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = state_of(app).database.engine

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_rows_are_ordered_by_need_and_say_why(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, at_now: None
) -> None:
    improving = patient(client, clinic, "MRN-IMPROVING")
    for week, total in enumerate((20, 14, 6)):
        seed(app, clinic, improving, "phq9", phq9(total), day(7 * week))
    worsening = patient(client, clinic, "MRN-WORSENING")
    for week, total in enumerate((6, 12, 20)):
        seed(app, clinic, worsening, "phq9", phq9(total), day(7 * week))
    at_risk = patient(client, clinic, "MRN-RISK")
    seed(app, clinic, at_risk, "phq9", phq9(12, item9=2), day(14))
    missing = patient(client, clinic, "MRN-MISSED")
    schedule = {
        "instruments": ["phq9"],
        "starts_on": "2026-01-20",
        "every_days": 7,
        "window_days": 3,
        "timezone": "UTC",
    }
    made = client.post(f"/v1/patients/{missing}/schedules", json=schedule, headers=clinic.headers())
    assert made.status_code == 201, made.text
    patient(client, clinic, "MRN-INACTIVE")  # nothing measured, scheduled or alerted: not in the caseload

    rows = caseload(client, clinic)

    assert [row["identifiers"] for row in rows] == [["MRN-RISK"], ["MRN-WORSENING"], ["MRN-MISSED"], ["MRN-IMPROVING"]]
    by_mrn = {row["identifiers"][0]: row for row in rows}
    assert by_mrn["MRN-RISK"]["open_alerts"] == {"urgent": 1, "routine": 0}
    # PHQ-9 6 → 20: reliably worse, not a case at first (< 10) and a case at the latest: harmed.
    worse = by_mrn["MRN-WORSENING"]
    assert worse["deteriorated"] is True
    assert worse["instruments"][0]["instrument"] == "phq9"
    assert worse["instruments"][0]["value"] == 20
    assert worse["instruments"][0]["change_category"] == "harmed"
    assert worse["instruments"][0]["direction"] == "lower_is_better"
    # The window of 3 Feb closed on 6 Feb unanswered; the next opens on 10 Feb.
    assert by_mrn["MRN-MISSED"]["assessments_missed"] == 1
    assert by_mrn["MRN-MISSED"]["assessments_due"] == 0
    assert by_mrn["MRN-IMPROVING"]["instruments"][0]["change_category"] == "recovered"
    assert by_mrn["MRN-IMPROVING"]["progress"] == "recovered"
    assert by_mrn["MRN-WORSENING"]["progress"] == "reliable_deterioration"
    assert by_mrn["MRN-RISK"]["progress"] == "insufficient_data"  # only a baseline
    assert by_mrn["MRN-MISSED"]["progress"] == "insufficient_data"  # no PHQ-9 at all
    assert by_mrn["MRN-IMPROVING"]["report"] == f"/v1/patients/{improving}/report"
    second_page = client.get("/v1/clinic/caseload", params={"limit": 2, "offset": 2}, headers=clinic.headers())
    assert [row["identifiers"] for row in second_page.json()["items"]] == [["MRN-MISSED"], ["MRN-IMPROVING"]]
    assert second_page.json()["has_more"] is False


def test_the_caseload_is_read_in_the_same_number_of_statements_for_one_patient_or_many(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, at_now: None
) -> None:
    first = patient(client, other_clinic, "MRN-ONE")
    seed(app, other_clinic, first, "phq9", phq9(12, item9=1), day(0))
    with counted_statements(app) as one:
        assert len(caseload(client, other_clinic)) == 1
    for n in range(40):
        someone = patient(client, clinic, f"MRN-{n}")
        seed(app, clinic, someone, "phq9", phq9(10 + n % 10, item9=n % 2), day(0))
        seed(app, clinic, someone, "gad7", {str(i): 1 for i in range(1, 8)}, day(7))
    with counted_statements(app) as many:
        assert len(caseload(client, clinic, limit=500)) == 40

    assert len(many) == len(one)
    assert len(many) <= 10


def test_the_caseload_is_the_callers_clinic_only_and_alerts_need_their_permission(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, at_now: None
) -> None:
    mine = patient(client, clinic, "MRN-MINE")
    seed(app, clinic, mine, "phq9", phq9(12, item9=1), day(0))
    theirs = patient(client, other_clinic, "MRN-THEIRS")
    seed(app, other_clinic, theirs, "phq9", phq9(12), day(0))

    rows = caseload(client, clinic)
    integration = client.get("/v1/clinic/caseload", headers=clinic.headers(Role.INTEGRATION)).json()["items"]

    assert [row["identifiers"] for row in rows] == [["MRN-MINE"]]
    assert [row["open_alerts"] for row in integration] == [None]


def test_the_caseload_page_shows_local_times_and_links_each_report(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, at_now: None
) -> None:
    client.put("/v1/clinic/settings", json={"timezone": "Asia/Tokyo"}, headers=clinic.headers(Role.ADMIN))
    someone = patient(client, clinic, "MRN-PAGE")
    seed(app, clinic, someone, "phq9", phq9(12, item9=1), datetime(2026, 2, 1, 20, 0, tzinfo=UTC))

    response = client.get("/v1/clinic/caseload.html", headers=clinic.headers())

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert "2026-02-02 05:00 +09:00" in html
    assert f'href="/v1/patients/{someone}/report">MRN-PAGE</a>' in html
    assert "1 urgent" in html
    assert "<script" not in html


def test_a_course_not_on_track_comes_before_missed_assessments(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, at_now: None
) -> None:
    stuck = patient(client, clinic, "MRN-STUCK")
    for week, total in enumerate((15, 14, 15, 14, 12, 14)):  # still a case, never reliably better
        seed(app, clinic, stuck, "phq9", phq9(total), day(7 * week))
    missing = patient(client, clinic, "MRN-MISSED")
    schedule = {"instruments": ["phq9"], "starts_on": "2026-01-20", "every_days": 7, "window_days": 3}
    made = client.post(
        f"/v1/patients/{missing}/schedules", json={**schedule, "timezone": "UTC"}, headers=clinic.headers()
    )
    assert made.status_code == 201, made.text

    rows = caseload(client, clinic)

    assert [(row["identifiers"], row["progress"]) for row in rows] == [
        (["MRN-STUCK"], "not_on_track"),
        (["MRN-MISSED"], "insufficient_data"),
    ]
