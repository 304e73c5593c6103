"""Every request needs a valid key; roles limit what it may do; another clinic's records do not exist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.auth.models import ApiKey
from app.auth.permissions import ROLE_PERMISSIONS, STAFF_ROLES, Permission, Role
from app.core.db import transaction
from app.core.state import state_of
from tests.conftest import ISSUE_PHQ9, ClinicKeys

PROTECTED = [
    ("GET", "/v1/patients"),
    ("POST", "/v1/patients"),
    ("GET", "/v1/instruments"),
    ("POST", "/v1/score/phq9"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_key_is_a_401_problem(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json={})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer co_000000000000_not-a-real-key",
        "Bearer something-else",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
def test_a_bad_key_is_a_401(client: TestClient, authorization: str) -> None:
    response = client.get("/v1/patients", headers={"Authorization": authorization})

    assert response.status_code == 401


def test_a_key_with_the_right_prefix_but_wrong_secret_is_a_401(client: TestClient, clinic: ClinicKeys) -> None:
    real = clinic.keys[Role.ADMIN]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")

    assert client.get("/v1/patients", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


@pytest.mark.parametrize("column", ["revoked_at", "expires_at"])
def test_revoked_and_expired_keys_are_refused(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, column: str
) -> None:
    for db in transaction(state_of(app).write_sessions):
        db.execute(
            update(ApiKey)
            .where(ApiKey.id == clinic.key_ids[Role.CLINICIAN])
            .values({column: datetime.now(UTC) - timedelta(seconds=1)})
        )

    assert client.get("/v1/patients", headers=clinic.headers()).status_code == 401


def test_a_researcher_cannot_read_identified_patient_records(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get("/v1/patients", headers=clinic.headers(Role.RESEARCHER))

    assert response.status_code == 403
    assert response.json()["type"] == "/problems/forbidden"


def test_every_role_may_score_and_read_instruments(client: TestClient, clinic: ClinicKeys) -> None:
    for role in STAFF_ROLES:
        assert client.get("/v1/instruments", headers=clinic.headers(role)).status_code == 200
        assert (
            client.post("/v1/score/phq9", json={"items": ISSUE_PHQ9}, headers=clinic.headers(role)).status_code == 200
        )


def test_the_permission_table_gives_admins_everything_and_researchers_no_patient_data() -> None:
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)
    assert Permission.PATIENTS_READ not in ROLE_PERMISSIONS[Role.RESEARCHER]
    assert Permission.MEASUREMENTS_READ not in ROLE_PERMISSIONS[Role.RESEARCHER]
    assert Permission.MEASUREMENTS_AMEND not in ROLE_PERMISSIONS[Role.INTEGRATION]


def test_another_clinics_records_answer_404_exactly_like_missing_ones(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    patient = client.post("/v1/patients", json={"external_id": "MRN-77"}, headers=clinic.headers()).json()["id"]
    therapy_session = client.post(
        f"/v1/patients/{patient}/sessions", json={"started_at": "2026-01-01T10:00:00Z"}, headers=clinic.headers()
    ).json()["id"]
    measurement = client.post(
        f"/v1/patients/{patient}/measurements",
        json={
            "instrument": "phq9",
            "items": ISSUE_PHQ9,
            "measured_at": "2026-01-01T10:00:00Z",
            "session_id": therapy_session,
        },
        headers=clinic.headers(),
    ).json()["id"]
    missing = "00000000-0000-4000-8000-000000000000"
    intruder = other_clinic.headers(Role.ADMIN)

    for template in (
        "/v1/patients/{p}",
        "/v1/patients/{p}/sessions",
        "/v1/patients/{p}/measurements",
        "/v1/patients/{p}/measurements/{m}",
        "/v1/patients/{p}/measurements/{m}/history",
    ):
        theirs = client.get(template.format(p=patient, m=measurement), headers=intruder)
        absent = client.get(template.format(p=missing, m=missing), headers=intruder)
        assert theirs.status_code == absent.status_code == 404, template
        assert theirs.json()["title"] == absent.json()["title"]
    amend = client.post(
        f"/v1/patients/{patient}/measurements/{measurement}/amend",
        json={"items": ISSUE_PHQ9, "reason": "x"},
        headers=intruder,
    )
    post = client.post(
        f"/v1/patients/{patient}/measurements",
        json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-01-01T10:00:00Z"},
        headers=intruder,
    )
    assert amend.status_code == post.status_code == 404
    listing = client.get("/v1/patients", params={"external_id": "MRN-77"}, headers=intruder).json()
    assert listing["items"] == []
