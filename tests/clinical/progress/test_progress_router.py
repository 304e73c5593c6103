"""GET /v1/patients/{id}/progress, the expected-response tables, and the not_on_track alert (once per course)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.auth.permissions import Role
from app.clinical import series
from app.clinical.progress.alerts import CHECK_DELAY, CHECK_TASK
from app.clinical.progress.expected import MIN_COURSES
from app.clinical.progress.service import progress_for_patients
from app.core.db import utcnow
from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry
from tests.auth.test_patient_tokens import enrol
from tests.clinical.conftest import day, fcs_from_others, new_patient, phq9, seed
from tests.conftest import SQLITE_ONLY, ClinicKeys, run_jobs

CITED: dict[str, Any] = {
    "score": "total",
    "coefficients": {
        "b0": 0.0,
        "b1": 1.0,
        "b2": -2.0,
        "b3": 0.0,
        "intercept_variance": 0.0,
        "slope_variance": 0.0,
        "intercept_slope_covariance": 0.0,
        "residual_variance": 1.0,
    },
    "band_z": 2.0,
    "courses": 120,
    "citation": "A test table, not a published one: expected y0 - 2 ln(1 + weeks), band +/- 2.",
}


def progress(client: TestClient, clinic: ClinicKeys, patient: str, role: Role = Role.CLINICIAN) -> Any:
    return client.get(f"/v1/patients/{patient}/progress", params={"instrument": "phq9"}, headers=clinic.headers(role))


def course(app: FastAPI, clinic: ClinicKeys, patient: str, totals: list[int], first_week: int = 0) -> list[str]:
    return [
        str(seed(app, clinic, patient, "phq9", phq9(total), day(7 * (first_week + n))).measurement_id)
        for n, total in enumerate(totals)
    ]


def not_on_track_alerts(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient: str) -> list[dict[str, Any]]:
    """The patient's not-on-track alerts once the course was judged (a job, a minute after a measurement)."""
    run_jobs(app, now=utcnow() + CHECK_DELAY)
    listed = client.get("/v1/clinic/alerts", params={"patient_id": patient}, headers=clinic.headers()).json()
    return [alert for alert in listed["items"] if alert["flag"] == "not_on_track"]


def test_without_a_table_the_reliable_change_rule_judges_and_says_so(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    patient = new_patient(client, clinic)
    course(app, clinic, patient, [15, 14, 15, 14, 12])

    early = progress(client, clinic, patient)
    assert early.status_code == 200, early.text
    body = early.json()
    assert (body["status"], body["provisional"], body["method"]) == ("insufficient_data", True, "reliable_change_rule")
    assert body["table"] is None
    assert body["change_method"] == "jacobson_truax"
    assert body["minimum_measurements"] == 6
    assert [point["band"] for point in body["points"]] == [None] * 5
    assert "no expected-response table" in body["points"][1]["band_reason"]

    course(app, clinic, patient, [10], first_week=5)  # still a case, −5 is not reliable (5.056)
    final = progress(client, clinic, patient).json()
    assert (final["status"], final["provisional"]) == ("not_on_track", False)
    assert "still a case" in final["reasons"][-1]


def test_a_course_turning_not_on_track_raises_one_alert_until_acknowledged(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    patient = new_patient(client, clinic)
    ids = course(app, clinic, patient, [15, 14, 15, 14, 12, 10])
    alerts = not_on_track_alerts(app, client, clinic, patient)
    assert [(a["measurement"]["id"], a["instrument"]) for a in alerts] == [(ids[5], "phq9")]

    course(app, clinic, patient, [12], first_week=6)  # still not on track: no second alert
    assert len(not_on_track_alerts(app, client, clinic, patient)) == 1
    acknowledged = client.post(
        f"/v1/clinic/alerts/{alerts[0]['id']}/acknowledge",
        json={"note": "discussed in supervision"},
        headers=clinic.headers(),
    )
    assert acknowledged.status_code == 200, acknowledged.text
    course(app, clinic, patient, [13], first_week=7)  # still the same turn: nothing new
    assert len(not_on_track_alerts(app, client, clinic, patient)) == 1

    course(app, clinic, patient, [9], first_week=8)  # recovered (−6, below 10)
    assert progress(client, clinic, patient).json()["status"] == "recovered"
    again = course(app, clinic, patient, [12], first_week=9)  # off track again: a new turn
    alerts = not_on_track_alerts(app, client, clinic, patient)
    assert [a["measurement"]["id"] for a in alerts if not a["acknowledged"]] == again


def test_an_instrument_without_a_progress_definition_raises_nothing(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    patient = new_patient(client, clinic)
    for n in range(7):
        seed(app, clinic, patient, "fcs_from_others", fcs_from_others(30 + n), day(7 * n))
    assert not_on_track_alerts(app, client, clinic, patient) == []
    body = client.get(
        f"/v1/patients/{patient}/progress", params={"instrument": "fcs_from_others"}, headers=clinic.headers()
    )
    assert (body.json()["status"], body.json()["method"]) == ("insufficient_data", "reliable_change_rule")


def test_progress_is_clinic_scoped_audited_and_closed_to_patient_tokens(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    patient = new_patient(client, clinic)
    course(app, clinic, patient, [15, 14])

    assert progress(client, other_clinic, patient).status_code == 404
    assert progress(client, clinic, patient, Role.RESEARCHER).status_code == 403
    phone = enrol(client, clinic, patient)
    refused = client.get(f"/v1/patients/{patient}/progress", params={"instrument": "phq9"}, headers=phone)
    assert refused.status_code == 403
    unknown = client.get(f"/v1/patients/{patient}/progress", params={"instrument": "phq10"}, headers=clinic.headers())
    assert unknown.status_code == 422

    assert progress(client, clinic, patient).status_code == 200
    trail = client.get("/v1/audit", params={"patient_id": patient}, headers=clinic.headers(Role.ADMIN)).json()["items"]
    read = [e for e in trail if e["route"] == "/v1/patients/{patient_id}/progress" and e["outcome"] == "success"]
    assert [event["action"] for event in read] == ["read"]


def test_a_fit_below_the_minimum_of_completed_courses_is_refused_and_stores_nothing(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    patient = new_patient(client, clinic)
    course(app, clinic, patient, [15, 14, 12])

    refused = client.post(
        "/v1/clinic/expected-response/phq9", json={"score": "total"}, headers=clinic.headers(Role.ADMIN)
    )
    assert refused.status_code == 409
    problem = refused.json()
    assert (problem["courses"], problem["minimum_courses"]) == (1, MIN_COURSES)
    assert f"at least {MIN_COURSES} completed courses" in problem["detail"]
    assert client.get("/v1/clinic/expected-response", headers=clinic.headers(Role.ADMIN)).json() == []
    assert client.post("/v1/clinic/expected-response/phq9", json={}, headers=clinic.headers()).status_code == 403


def test_a_cited_table_is_stored_read_and_used(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> None:
    loaded = client.post("/v1/clinic/expected-response/phq9/cited", json=CITED, headers=clinic.headers(Role.ADMIN))
    assert loaded.status_code == 201, loaded.text
    table = loaded.json()
    assert (table["source"], table["citation"], table["courses"], table["data_cut_at"]) == (
        "cited",
        CITED["citation"],
        120,
        None,
    )
    assert client.get("/v1/clinic/expected-response/phq9", headers=clinic.headers()).json()["id"] == table["id"]
    assert [t["id"] for t in client.get("/v1/clinic/expected-response", headers=clinic.headers()).json()] == [
        table["id"]
    ]

    patient = new_patient(client, clinic)
    course(app, clinic, patient, [20, 21, 19, 19, 18, 19])  # hand-derived in test_status: the last is above its band
    body = progress(client, clinic, patient).json()
    assert (body["status"], body["method"]) == ("not_on_track", "expected_response_table")
    assert (body["table"]["id"], body["table"]["citation"]) == (table["id"], CITED["citation"])
    assert [p["band"] for p in body["points"]] == [None, "high", "expected", "expected", "expected", "high"]
    assert (
        not_on_track_alerts(app, client, clinic, patient)[0]["measurement"]["id"] == body["points"][5]["measurement_id"]
    )


def test_a_cited_table_with_an_impossible_covariance_is_refused(client: TestClient, clinic: ClinicKeys) -> None:
    bad = {**CITED, "coefficients": {**CITED["coefficients"], "intercept_slope_covariance": 1.0}}
    refused = client.post("/v1/clinic/expected-response/phq9/cited", json=bad, headers=clinic.headers(Role.ADMIN))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "coefficients.intercept_slope_covariance"
    assert client.get("/v1/clinic/expected-response/phq9", headers=clinic.headers()).status_code == 404


def test_progress_for_patients_judges_many_in_one_go(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    off, on, unmeasured = new_patient(client, clinic), new_patient(client, clinic), new_patient(client, clinic)
    elsewhere = new_patient(client, other_clinic)
    course(app, clinic, off, [15, 14, 15, 14, 12, 10])
    course(app, clinic, on, [22, 16])
    course(app, other_clinic, elsewhere, [15, 22])
    ids = [uuid.UUID(p) for p in (off, on, unmeasured, elsewhere)]

    with state_of(app).read_sessions() as db:
        found = progress_for_patients(
            db,
            clinic_id=clinic.id,
            patient_ids=ids,
            instrument_id="phq9",
            score_key="total",
            registry=state_of(app).part(InstrumentRegistry),
        )

    assert [(found[i].status.value, found[i].method.value) for i in ids] == [
        ("not_on_track", "reliable_change_rule"),
        ("on_track", "reliable_change_rule"),
        ("insufficient_data", "reliable_change_rule"),
        ("insufficient_data", "reliable_change_rule"),  # another clinic's patient: nothing is read
    ]
    assert found[ids[1]].provisional


def test_a_course_is_judged_once_a_minute_after_its_measurements_however_many_arrive(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    patient = new_patient(client, clinic)
    ids = course(app, clinic, patient, [15, 14, 15, 14, 12, 10])
    jobs = "background_job" if state_of(app).engine.dialect.name == "sqlite" else "procrastinate_jobs"
    with state_of(app).read_sessions() as db:
        waiting = db.execute(
            text(f"SELECT task_name FROM {jobs} WHERE status = 'todo' AND queueing_lock = :lock"),
            {"lock": f"{CHECK_TASK}:{patient}:phq9"},
        ).scalars()
        assert list(waiting) == [CHECK_TASK]

    run_jobs(app, now=utcnow() + CHECK_DELAY - timedelta(seconds=1))
    listed = client.get("/v1/clinic/alerts", params={"patient_id": patient}, headers=clinic.headers()).json()
    assert listed["items"] == []
    assert [a["measurement"]["id"] for a in not_on_track_alerts(app, client, clinic, patient)] == [ids[5]]


@SQLITE_ONLY
def test_judging_a_course_never_holds_sqlites_writer_while_it_reads_the_series(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long series is read in a read transaction: the writer's one connection stays free for the write requests
    meanwhile (a Bundle once waited for a 100,000-point series to be judged). Only the alert takes the writer."""
    patient = new_patient(client, clinic)
    ids = course(app, clinic, patient, [15, 14, 15, 14, 12, 10])
    writer_pool = state_of(app).database.write_engine.pool
    held_while_reading: list[int] = []
    load_points = series.load_points

    def noting(*args: Any, **kwargs: Any) -> Any:
        points = load_points(*args, **kwargs)
        held_while_reading.append(writer_pool.checkedout())  # type: ignore[attr-defined]
        return points

    monkeypatch.setattr(series, "load_points", noting)
    alerts = not_on_track_alerts(app, client, clinic, patient)

    assert held_while_reading == [0]
    assert [a["measurement"]["id"] for a in alerts] == [ids[5]]


def test_a_course_with_an_unacknowledged_alert_is_not_read_again(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing could be raised until a clinician acknowledges it, so later checks skip the series."""
    patient = new_patient(client, clinic)
    course(app, clinic, patient, [15, 14, 15, 14, 12, 10])
    assert len(not_on_track_alerts(app, client, clinic, patient)) == 1
    reads: list[str] = []
    load_points = series.load_points

    def noting(*args: Any, **kwargs: Any) -> Any:
        reads.append(str(kwargs["patient_id"]))
        return load_points(*args, **kwargs)

    monkeypatch.setattr(series, "load_points", noting)
    course(app, clinic, patient, [13], first_week=6)

    assert len(not_on_track_alerts(app, client, clinic, patient)) == 1
    assert patient not in reads
