"""``make run`` on SQLite delivers by itself: the app's lifespan starts the in-process runner (a real thread here),
which sends an alert's webhook soon after the commit. The test waits for that event (polling, with a generous
deadline); it asserts nothing about how long it took."""

from __future__ import annotations

import time
from typing import cast

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.state import state_of
from app.jobs.runner import InProcessRunner
from app.main import create_app
from tests.clinical.conftest import phq9, running_receiver, set_webhook
from tests.conftest import SQLITE_ONLY, make_settings, new_clinic

DEADLINE_SECONDS = 60.0


@SQLITE_ONLY  # the in-process runner is SQLite's
def test_the_app_on_sqlite_runs_its_jobs_in_process(database_url: str) -> None:
    settings = make_settings(
        database_url, jobs_in_process=True, jobs_poll_seconds=0.05, webhook_allow_private_networks=True
    )
    with running_receiver() as receiver, TestClient(create_app(settings)) as client:
        app = cast(FastAPI, client.app)
        clinic = new_clinic(app)
        set_webhook(client, clinic, receiver.url)
        patient = client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]
        body = {"instrument": "phq9", "items": phq9(14, item9=3), "measured_at": "2026-11-20T09:30:00Z"}

        stored = client.post(f"/v1/patients/{patient}/measurements", json=body, headers=clinic.headers())
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not receiver.calls and time.monotonic() < deadline:
            time.sleep(0.05)
        running = state_of(app).part(InProcessRunner)

    assert stored.status_code == 201, stored.text
    [(_headers, payload)] = receiver.calls
    assert payload["measurement_id"] == stored.json()["id"]
    assert isinstance(running, InProcessRunner)


def test_the_runner_is_off_unless_asked_for() -> None:
    """Tests drive the runner themselves (``run_jobs``); the product's default is on."""
    assert make_settings("sqlite://").jobs_in_process is False
    assert type(make_settings("sqlite://")).model_fields["jobs_in_process"].default is True
