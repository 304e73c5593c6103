from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ClinicKeys


def test_sessions_are_numbered_in_order_unless_given(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    url = f"/v1/patients/{patient_id}/sessions"

    first = client.post(url, json={"started_at": "2026-01-05T10:00:00+01:00"}, headers=clinic.headers())
    fifth = client.post(
        url,
        json={"started_at": "2026-02-05T10:00:00Z", "session_number": 5, "episode": "inpatient", "label": "group"},
        headers=clinic.headers(),
    )
    sixth = client.post(url, json={"started_at": "2026-02-12T10:00:00Z"}, headers=clinic.headers())

    assert first.status_code == fifth.status_code == sixth.status_code == 201
    assert first.json()["started_at"] == "2026-01-05T09:00:00Z"
    listed = client.get(url, headers=clinic.headers()).json()["items"]
    assert [(s["session_number"], s["episode"]) for s in listed] == [(1, None), (5, "inpatient"), (6, None)]


def test_a_session_number_is_used_once_per_patient(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    url = f"/v1/patients/{patient_id}/sessions"
    body = {"started_at": "2026-01-05T10:00:00Z", "session_number": 3}

    assert client.post(url, json=body, headers=clinic.headers()).status_code == 201
    assert client.post(url, json=body, headers=clinic.headers()).status_code == 409


def test_session_numbers_are_positive_integers(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    url = f"/v1/patients/{patient_id}/sessions"
    for number in (0, -1, 1.5, "2", True):
        response = client.post(
            url, json={"started_at": "2026-01-05T10:00:00Z", "session_number": number}, headers=clinic.headers()
        )
        assert response.status_code == 422, number


def test_a_session_started_outside_1900_to_now_is_refused_naming_started_at_and_nothing_is_stored(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    sessions = f"/v1/patients/{patient_id}/sessions"
    for started_at in ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "1899-12-31T23:59:59Z"]:
        response = client.post(sessions, json={"started_at": started_at}, headers=clinic.headers())

        assert response.status_code == 422, response.text
        assert [error["field"] for error in response.json()["errors"]] == ["started_at"]
        assert "from 1900-01-01T00:00:00Z to now plus 5 minutes" in response.json()["errors"][0]["detail"]
    assert client.get(sessions, headers=clinic.headers()).json()["items"] == []
