"""GET /v1/patients/{id}/trajectory: time-ordered points with session number, days, band, prorated mark and flags."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.clinical.conftest import day, phq9, scs_sf, seed
from tests.conftest import ClinicKeys


def new_session(client: TestClient, clinic: ClinicKeys, patient_id: str, number: int, days: int) -> uuid.UUID:
    response = client.post(
        f"/v1/patients/{patient_id}/sessions",
        json={"session_number": number, "started_at": day(days).isoformat()},
        headers=clinic.headers(),
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


def test_points_come_in_time_order_with_sessions_days_bands_prorating_and_risk_flags_first(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    first_session = new_session(client, clinic, patient_id, 1, 0)
    third_session = new_session(client, clinic, patient_id, 3, 14)
    # Stored out of order: the trajectory sorts by measured_at.
    seed(app, clinic, patient_id, "phq9", {**phq9(6), "4": None}, day(14), session_id=third_session)
    seed(app, clinic, patient_id, "phq9", phq9(19, item9=2), day(0), session_id=first_session)
    seed(app, clinic, patient_id, "phq9", {str(n): 1 for n in range(1, 7)}, day(7))

    response = client.get(
        f"/v1/patients/{patient_id}/trajectory", params={"instrument": "phq9"}, headers=clinic.headers()
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["instrument"], body["score"], body["direction"]) == ("phq9", "total", "lower_is_better")
    assert (body["minimum"], body["maximum"]) == (0, 27)
    assert [band["label"] for band in body["bands"]] == ["minimal", "mild", "moderate", "moderately_severe", "severe"]
    assert body["version_family"] == "1"
    first, second, third = body["points"]
    assert (first["value"], first["band"], first["session_number"], first["days_since_first"]) == (
        19,
        "moderately_severe",
        1,
        0,
    )
    assert first["flags"] == ["item9_positive"]
    # Items 7, 8, 9 missing: three missing items, so no total (and item 9 is flagged missing, never inferred).
    assert (second["value"], second["band"], second["session_number"], second["days_since_first"]) == (
        None,
        None,
        None,
        7,
    )
    assert second["flags"] == ["item9_missing"]
    # Items 1 and 2 = 3, the rest 0, item 4 missing: 8 answered items sum to 6; 6 × 9/8 = 6.75, mild.
    assert (third["value"], third["band"], third["prorated"], third["session_number"]) == (6.75, "mild", True, 3)
    assert third["days_since_first"] == 14


def test_a_subscale_can_be_followed_by_its_key(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "scs_sf", scs_sf(positive=2, negative=4), day(0))

    response = client.get(
        f"/v1/patients/{patient_id}/trajectory",
        params={"instrument": "scs_sf", "score": "self_judgment"},
        headers=clinic.headers(),
    )

    assert response.status_code == 200
    body = response.json()
    # Self-judgment = mean of items 11 and 12, unreversed: (4 + 4)/2 = 4; higher means more self-judgment.
    assert body["direction"] == "lower_is_better"
    assert body["points"][0]["value"] == 4


def test_a_patient_without_measurements_has_an_empty_trajectory(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response = client.get(
        f"/v1/patients/{patient_id}/trajectory", params={"instrument": "gad7"}, headers=clinic.headers()
    )

    assert response.status_code == 200
    assert response.json()["points"] == []
    assert response.json()["version_family"] is None


def test_a_missing_patient_is_not_found_before_an_unknown_instrument_is_refused(
    client: TestClient, clinic: ClinicKeys
) -> None:
    response = client.get(
        f"/v1/patients/{uuid.uuid4()}/trajectory", params={"instrument": "unknown"}, headers=clinic.headers()
    )

    assert response.status_code == 404
