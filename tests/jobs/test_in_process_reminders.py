"""``make run`` alone on SQLite: a new schedule's first open window raises one ``assessment.due`` delivery at a local
receiver. The app's lifespan starts the in-process runner (a real thread here) on the real clock; the test waits for
the delivery (polling, with a generous deadline) and asserts nothing about how long it took."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import cast

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from tests.clinical.conftest import running_receiver, set_webhook
from tests.conftest import SQLITE_ONLY, make_settings, new_clinic

DEADLINE_SECONDS = 60.0


@SQLITE_ONLY  # the in-process runner is SQLite's
def test_a_new_schedule_raises_its_due_reminder_with_the_app_alone(database_url: str) -> None:
    settings = make_settings(
        database_url, jobs_in_process=True, jobs_poll_seconds=0.05, webhook_allow_private_networks=True
    )
    with running_receiver() as receiver, TestClient(create_app(settings)) as client:
        clinic = new_clinic(cast(FastAPI, client.app))
        set_webhook(client, clinic, receiver.url)
        patient = client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]
        body = {
            "instruments": ["phq9"],
            "starts_on": datetime.now(UTC).date().isoformat(),
            "every_days": 7,
            "window_days": 3,
            "timezone": "UTC",
        }

        created = client.post(f"/v1/patients/{patient}/schedules", json=body, headers=clinic.headers())
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not receiver.calls and time.monotonic() < deadline:
            time.sleep(0.05)
        due = client.get(f"/v1/patients/{patient}/assessments?status=due", headers=clinic.headers()).json()["items"]

    assert created.status_code == 201, created.text
    [(_headers, payload)] = receiver.calls
    [opened] = due
    assert (payload["event"], payload["assessment_id"], payload["schedule_id"]) == (
        "assessment.due",
        opened["id"],
        created.json()["id"],
    )
