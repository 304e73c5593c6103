"""On PostgreSQL, two app processes and two ``python -m app worker`` processes against one database deliver every
assessment reminder exactly once to a local receiver: each new schedule defers a reminders run (so runs overlap on
the two workers, beside the periodic one), and each reminder (event, assessment) arrives once.

Real processes (uvicorn on free ports), a real HTTP receiver, a fresh
database, the real clock: the schedules' windows opened yesterday and close tomorrow (UTC), so each assessment's
due and overdue moments have both come. The test waits for events (polling, with deadlines), never for time to pass;
it prints the figures.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import func, select

from app.auth.permissions import Role
from app.clinical import reminders
from app.clinical.models import WebhookDelivery
from tests.conftest import POSTGRES_URL
from tests.jobs.harness import Deployment, Receiver, deployment, receiving, wait_for

pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL (TEST_POSTGRES_URL)")

SCHEDULES_PER_APP = 6
INSTRUMENTS = ["phq9", "gad7"]
DEADLINE_SECONDS = 90.0


def reminders_received(receiver: Receiver) -> Counter[tuple[str, str]]:
    """How often each (event, assessment id) reached the receiver."""
    return Counter((body["event"], body["assessment_id"]) for body in receiver.received_bodies())


def test_two_apps_and_two_workers_deliver_every_reminder_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with receiving() as receiver, deployment(tmp_path) as deployed:
        caused, timings = run_scenario(deployed, receiver)
        deployed.processes.stop_all()
        with deployed.engine.connect() as connection:
            stored = connection.scalar(select(func.count()).select_from(WebhookDelivery))

    received = reminders_received(receiver)
    delivered = set(received)
    duplicated = sum(count - 1 for count in received.values() if count > 1)
    lost = len(caused - delivered)
    with capsys.disabled():  # the figures, shown even without -s
        sys.stdout.write(
            f"\nmulti-process reminders: events caused {len(caused)}, delivered {len(delivered)}, duplicated "
            f"{duplicated}, lost {lost} ({timings})\n"
        )
    assert len(caused) == 2 * SCHEDULES_PER_APP * len(INSTRUMENTS) * len(reminders.EVENTS)
    assert (duplicated, lost) == (0, 0)
    assert delivered == caused
    assert stored == len(caused) == len(receiver.webhook_ids) == sum(receiver.webhook_ids.values())


def run_scenario(deployed: Deployment, receiver: Receiver) -> tuple[set[tuple[str, str]], str]:
    """Start everything, create the schedules through both apps; the reminders caused and each phase's end."""
    started = time.monotonic()
    bases, _ = deployed.start(apps=2, workers=2, webhooks_to=receiver)
    phases = {"started": time.monotonic() - started}
    admin, clinician = deployed.headers(Role.ADMIN), deployed.headers(Role.CLINICIAN)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    schedule = {
        "instruments": INSTRUMENTS,
        "starts_on": yesterday,
        "every_days": 7,
        "window_days": 2,
        "timezone": "UTC",
    }

    caused: set[tuple[str, str]] = set()
    for n in range(2 * SCHEDULES_PER_APP):
        base = bases[n % 2]
        patient = httpx2.post(f"{base}/v1/patients", json={}, headers=clinician).json()["id"]
        created = httpx2.post(f"{base}/v1/patients/{patient}/schedules", json=schedule, headers=clinician)
        assert created.status_code == 201, created.text
        due = httpx2.get(f"{base}/v1/patients/{patient}/assessments?status=due", headers=clinician).json()["items"]
        caused |= {(event, item["id"]) for item in due for event in reminders.EVENTS}
    wait_for(lambda: len(reminders_received(receiver)) >= len(caused), "every reminder", DEADLINE_SECONDS)
    phases["delivered"] = time.monotonic() - started

    def recorded() -> bool:
        listed = httpx2.get(f"{bases[1]}/v1/clinic/webhook-deliveries?limit=500", headers=admin).json()["items"]
        return len(listed) == len(caused) and all(item["status"] == "delivered" for item in listed)

    wait_for(recorded, "every delivery recorded as delivered", DEADLINE_SECONDS)
    timings = ", ".join(f"{name} after {seconds:.1f} s" for name, seconds in phases.items())
    return caused, timings
