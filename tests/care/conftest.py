"""Helpers of the care tests: schedules and assessments through the API, a patient token, a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.datetimes import CLOCK
from tests.conftest import ClinicKeys

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
"""A Friday in Oslo's winter time (CET, UTC+1): the care tests' "now" unless they move the clock."""


@pytest.fixture
def frozen() -> Iterator[None]:
    with CLOCK.frozen_at(NOW):
        yield


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def new_schedule(client: TestClient, clinic: ClinicKeys, patient_id: str, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = ok(
        client.post(f"/v1/patients/{patient_id}/schedules", json=body, headers=clinic.headers()), 201
    )
    return result


def assessments(client: TestClient, clinic: ClinicKeys, patient_id: str, **params: Any) -> list[dict[str, Any]]:
    page = ok(
        client.get(f"/v1/patients/{patient_id}/assessments", params={"limit": 500, **params}, headers=clinic.headers())
    )
    items: list[dict[str, Any]] = page["items"]
    return items


def statuses(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(instrument, due_from, status) of each assessment, in the order listed."""
    return [(item["instrument"], item["due_from"], item["status"]) for item in items]


def patient_token(client: TestClient, clinic: ClinicKeys, patient_id: str) -> dict[str, str]:
    code = ok(client.post(f"/v1/patients/{patient_id}/enrolments", json={}, headers=clinic.headers()), 201)["code"]
    token = ok(client.post("/v1/enrolments/exchange", json={"code": code}), 201)["token"]
    return {"Authorization": f"Bearer {token}"}


def measure(
    client: TestClient, clinic: ClinicKeys, patient_id: str, instrument: str, items: dict[str, Any], measured_at: str
) -> dict[str, Any]:
    body = {"instrument": instrument, "items": items, "measured_at": measured_at}
    result: dict[str, Any] = ok(
        client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers()), 201
    )
    return result
