"""Storing scored measurements: the foundation issue's acceptance cases, read like the spec."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from app.core.state import state_of
from app.measurements.models import Measurement
from tests.auth.test_patient_tokens import enrol as enrol_phone
from tests.conftest import ISSUE_PHQ9, ClinicKeys

MEASURED_AT = "2026-11-20T09:30:00+01:00"


def post_phq9(
    client: TestClient, clinic: ClinicKeys, patient_id: str, items: dict[str, Any] | None = None, **extra: Any
) -> Any:
    headers = extra.pop("headers", clinic.headers())
    body = {"instrument": "phq9", "items": items or ISSUE_PHQ9, "measured_at": MEASURED_AT, **extra}
    return client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=headers)


def stored_rows(app: FastAPI, patient_id: str) -> int:
    """Rows in the database for this patient, counted directly (not through the API)."""
    query = select(func.count()).select_from(Measurement).where(Measurement.patient_id == uuid.UUID(patient_id))
    with state_of(app).read_sessions() as db:
        return int(db.scalar(query) or 0)


def test_the_issue_phq9_scores_total_10_moderate_with_item9_flag(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response = post_phq9(client, clinic, patient_id)

    assert response.status_code == 201, response.text
    body = response.json()
    # 3+0+1+2+0+0+1+0+3 = 10, and 10 is the lower bound of "moderate".
    assert body["scores"]["total"]["value"] == 10
    assert body["scores"]["total"]["band"] == "moderate"
    assert body["scores"]["total"]["prorated"] is False
    assert body["flags"] == ["item9_positive"]
    assert body["complete"] is True
    assert body["missing_items"] == []
    assert body["instrument"] == "phq9"
    assert body["instrument_version"] == "1.0.0"
    assert body["source"] == "api"
    assert body["version"] == 1
    assert body["measured_at"] == "2026-11-20T08:30:00Z"
    assert response.headers["location"].endswith(body["id"])


def test_an_out_of_range_answer_is_a_422_problem_naming_the_item_and_nothing_is_stored(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response = post_phq9(client, clinic, patient_id, items={**ISSUE_PHQ9, "4": 7})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    assert problem["status"] == 422
    [error] = problem["errors"]
    assert error["field"] == "items.4"
    assert error["pointer"] == "#/items/4"
    assert error["value"] == 7
    assert error["allowed"] == [0, 1, 2, 3]
    assert error["detail"] == 'item "4" = 7 is outside 0–3'
    assert stored_rows(app, patient_id) == 0


def test_every_invalid_answer_is_reported_at_once(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    response = post_phq9(client, clinic, patient_id, items={**ISSUE_PHQ9, "4": 7, "5": -1, "11": 0})

    assert response.status_code == 422
    fields = sorted(error["field"] for error in response.json()["errors"])
    assert fields == ["items.11", "items.4", "items.5"]


def test_answers_are_strictly_typed(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    for wrong in (True, False, "3", 2.0, [1], {"v": 1}):
        response = post_phq9(client, clinic, patient_id, items={**ISSUE_PHQ9, "2": wrong})
        assert response.status_code == 422, wrong
        [error] = response.json()["errors"]
        assert error["field"] == "items.2"
    assert stored_rows(app, patient_id) == 0


def test_an_unknown_instrument_names_the_allowed_ones(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    response = client.post(
        f"/v1/patients/{patient_id}/measurements",
        json={"instrument": "phq10", "items": {"1": 1}, "measured_at": MEASURED_AT},
        headers=clinic.headers(),
    )

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "instrument"
    assert "phq9" in error["allowed"]


def test_measured_at_needs_a_time_zone(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    response = client.post(
        f"/v1/patients/{patient_id}/measurements",
        json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00"},
        headers=clinic.headers(),
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "measured_at"


def test_a_replayed_idempotency_key_stores_one_row_and_replays_the_first_response(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    headers = clinic.headers(extra={"Idempotency-Key": "tablet-7-submission-1"})

    first = post_phq9(client, clinic, patient_id, headers=headers)
    second = post_phq9(client, clinic, patient_id, headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert stored_rows(app, patient_id) == 1


def test_the_same_idempotency_key_with_another_body_is_refused(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    headers = clinic.headers(extra={"Idempotency-Key": "k-1"})
    assert post_phq9(client, clinic, patient_id, headers=headers).status_code == 201

    response = post_phq9(client, clinic, patient_id, items={**ISSUE_PHQ9, "1": 0}, headers=headers)

    assert response.status_code == 422
    assert response.json()["type"] == "/problems/idempotency-key-reused"
    assert stored_rows(app, patient_id) == 1


def test_idempotency_keys_are_scoped_per_api_key(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    key = {"Idempotency-Key": "shared-key"}
    assert post_phq9(client, clinic, patient_id, headers=clinic.headers(Role.CLINICIAN, key)).status_code == 201
    assert post_phq9(client, clinic, patient_id, headers=clinic.headers(Role.INTEGRATION, key)).status_code == 201
    assert stored_rows(app, patient_id) == 2


def test_a_failed_request_does_not_use_up_its_idempotency_key(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    headers = clinic.headers(extra={"Idempotency-Key": "retry-after-fix"})
    assert post_phq9(client, clinic, patient_id, items={"1": 9}, headers=headers).status_code == 422

    assert post_phq9(client, clinic, patient_id, headers=headers).status_code == 201
    assert stored_rows(app, patient_id) == 1


def test_an_amendment_keeps_both_versions_in_the_history(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    original = post_phq9(client, clinic, patient_id).json()
    base = f"/v1/patients/{patient_id}/measurements/{original['id']}"

    amended = client.post(
        f"{base}/amend",
        json={"items": {**ISSUE_PHQ9, "9": 0}, "reason": "item 9 was entered in the wrong column"},
        headers=clinic.headers(),
    )

    assert amended.status_code == 201, amended.text
    assert amended.json()["id"] == original["id"]
    assert amended.json()["version"] == 2
    assert amended.json()["scores"]["total"]["value"] == 7
    assert amended.json()["flags"] == []
    current = client.get(base, headers=clinic.headers()).json()
    assert current["version"] == 2
    assert current["measured_at"] == original["measured_at"]
    history = client.get(f"{base}/history", headers=clinic.headers()).json()
    assert [(v["version"], v["current"], v["scores"]["total"]["value"]) for v in history] == [
        (1, False, 10),
        (2, True, 7),
    ]
    assert history[1]["amendment_reason"] == "item 9 was entered in the wrong column"
    listed = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers()).json()
    assert [(m["id"], m["version"]) for m in listed["items"]] == [(original["id"], 2)]


def test_amending_a_superseded_version_is_impossible_and_amend_needs_a_reason(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    original = post_phq9(client, clinic, patient_id).json()
    url = f"/v1/patients/{patient_id}/measurements/{original['id']}/amend"

    assert client.post(url, json={"items": ISSUE_PHQ9}, headers=clinic.headers()).status_code == 422
    assert client.post(url, json={"items": ISSUE_PHQ9, "reason": ""}, headers=clinic.headers()).status_code == 422


def test_measurements_list_in_time_order_and_filter(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    for measured_at in ("2026-03-03T10:00:00Z", "2026-01-01T10:00:00Z", "2026-02-02T10:00:00Z"):
        body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": measured_at}
        client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())
    url = f"/v1/patients/{patient_id}/measurements"

    everything = client.get(url, headers=clinic.headers()).json()
    window = client.get(
        url,
        params={"instrument": "phq9", "from": "2026-01-15T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
        headers=clinic.headers(),
    ).json()
    other_instrument = client.get(url, params={"instrument": "gad7"}, headers=clinic.headers()).json()
    first_page = client.get(url, params={"limit": 2}, headers=clinic.headers()).json()

    assert [m["measured_at"][:10] for m in everything["items"]] == ["2026-01-01", "2026-02-02", "2026-03-03"]
    assert [m["measured_at"][:10] for m in window["items"]] == ["2026-02-02"]
    assert other_instrument["items"] == []
    assert (len(first_page["items"]), first_page["has_more"]) == (2, True)


def test_the_list_of_another_clinics_patient_or_of_no_patient_is_not_found(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    post_phq9(client, clinic, patient_id)
    url = f"/v1/patients/{patient_id}/measurements"

    another_clinics = client.get(url, headers=other_clinic.headers())
    nobodys = client.get(f"/v1/patients/{uuid.uuid4()}/measurements", headers=clinic.headers())
    past_the_end = client.get(url, params={"offset": 5}, headers=clinic.headers())

    assert (another_clinics.status_code, nobodys.status_code) == (404, 404)
    assert past_the_end.status_code == 200
    assert past_the_end.json()["items"] == []


def test_a_declared_total_is_stored_and_compared_never_trusted(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response = post_phq9(client, clinic, patient_id, declared_total=12)

    body = response.json()
    assert body["scores"]["total"]["value"] == 10
    assert body["declared_total"] == 12
    [warning] = body["warnings"]
    assert warning["code"] == "declared_total_mismatch"
    assert warning["details"] == {"declared": 12, "computed": 10, "score": "total"}


def test_prorated_totals_are_marked(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    items = {**ISSUE_PHQ9, "2": None}
    del items["3"]

    body = post_phq9(client, clinic, patient_id, items=items).json()

    # answered: 3+2+0+0+1+0+3 = 9 over 7 items → 9 × 9 / 7 = 11.571…
    assert body["scores"]["total"]["value"] == 81 / 7
    assert body["scores"]["total"]["prorated"] is True
    assert body["complete"] is False
    assert body["missing_items"] == ["2", "3"]


def test_a_session_of_another_patient_cannot_be_named(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    other_patient = client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]
    therapy_session = client.post(
        f"/v1/patients/{other_patient}/sessions", json={"started_at": MEASURED_AT}, headers=clinic.headers()
    ).json()

    response = post_phq9(client, clinic, patient_id, session_id=therapy_session["id"])

    assert response.status_code == 404


def test_a_measurement_can_belong_to_a_session(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    therapy_session = client.post(
        f"/v1/patients/{patient_id}/sessions", json={"started_at": MEASURED_AT}, headers=clinic.headers()
    ).json()

    response = post_phq9(client, clinic, patient_id, session_id=therapy_session["id"])

    assert response.status_code == 201
    assert response.json()["session_id"] == therapy_session["id"]


def test_a_measured_at_outside_1900_to_now_is_refused_naming_the_field_and_nothing_is_stored(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    stored = post_phq9(client, clinic, patient_id)
    assert stored.status_code == 201, stored.text
    phone = enrol_phone(client, clinic, patient_id)
    future = "2026-11-20T09:40:00Z"  # the clock says 09:30: ten minutes ahead is beyond the five of skew
    with CLOCK.frozen_at(datetime(2026, 11, 20, 9, 30, tzinfo=UTC)):
        for measured_at in ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", future]:
            body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": measured_at}
            answers = [
                post_phq9(client, clinic, patient_id, measured_at=measured_at),
                client.post("/v1/me/measurements", json=body, headers=phone),
                client.post(
                    f"/v1/patients/{patient_id}/measurements/{stored.json()['id']}/amend",
                    json={"items": ISSUE_PHQ9, "reason": "moved", "measured_at": measured_at},
                    headers=clinic.headers(),
                ),
            ]
            for response in answers:
                assert response.status_code == 422, response.text
                assert response.headers["content-type"].startswith("application/problem+json")
                [error] = response.json()["errors"]
                assert error["field"] == "measured_at"
                assert "from 1900-01-01T00:00:00Z to now plus 5 minutes (2026-11-20T09:35:00Z)" in error["detail"]
        at_the_edge = post_phq9(client, clinic, patient_id, measured_at="2026-11-20T10:35:00+01:00")
        assert at_the_edge.status_code == 201, at_the_edge.text

    assert stored_rows(app, patient_id) == 2  # the first and the one at the edge; no amendment either
