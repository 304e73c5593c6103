"""On PostgreSQL, two app processes and two ``python -m app worker`` processes against one database deliver every
alert webhook exactly once to a local receiver; a worker killed with SIGKILL in the middle of a delivery leaves it
to be made again once the worker is found dead (heartbeats), by the other worker or a restarted one.

Real processes (uvicorn on free ports), a real HTTP receiver (threaded ``http.server``), a fresh database. The test
waits for events (polling, with deadlines), never for time to pass; it prints the figures. Every process it started
is stopped, whatever happens.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import func, select

from app.auth.permissions import Role
from app.clinical.models import RiskAlert
from tests.conftest import POSTGRES_URL
from tests.jobs.harness import (
    STARTUP_DEADLINE_SECONDS,
    Deployment,
    Receiver,
    deployment,
    receiving,
    wait_for,
)

pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL (TEST_POSTGRES_URL)")

ALERTS_PER_APP = 10
DEADLINE_SECONDS = 60.0


def owner_of_connection(port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the TCP socket whose local port is ``port`` (Linux ``/proc``)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(link.startswith("socket:[") and link[8:-1] in inodes for link in links):
            return pid
    return None


def test_two_apps_and_two_workers_deliver_every_alert_once_even_when_a_worker_is_killed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert os.path.exists("/proc/net/tcp"), "finding the worker mid-delivery reads Linux's /proc (the service's OS)"
    quick_heartbeats = {
        "JOBS_HEARTBEAT_SECONDS": "0.5",
        "JOBS_STALLED_AFTER_SECONDS": "2",
        "JOBS_STALLED_CHECK_SECONDS": "1",
    }
    with receiving() as receiver, deployment(tmp_path, **quick_heartbeats) as deployed:
        caused, killed_pid, timings = run_scenario(deployed, receiver)
        deployed.processes.stop_all()
        with deployed.engine.connect() as connection:
            alerts = connection.scalar(select(func.count()).select_from(RiskAlert))

    delivered = set(receiver.webhook_ids)
    duplicated = sum(count - 1 for count in receiver.webhook_ids.values() if count > 1)
    lost = len(caused - delivered)
    with capsys.disabled():  # the figures, shown even without -s
        sys.stdout.write(
            f"\nmulti-process: events caused {len(caused)}, delivered {len(delivered)}, duplicated {duplicated}, "
            f"lost {lost} (a worker killed mid-delivery: pid {killed_pid}; {timings})\n"
        )
    assert alerts == len(caused) == 2 * ALERTS_PER_APP + 1
    assert (duplicated, lost) == (0, 0)
    assert delivered == caused


def run_scenario(deployed: Deployment, receiver: Receiver) -> tuple[set[str], int, str]:
    """Start everything, cause the alerts, kill the worker holding the last delivery; the webhook-ids caused, the
    killed worker's pid and when each phase ended."""
    started = time.monotonic()
    bases, workers = deployed.start(apps=2, workers=2, webhooks_to=receiver)
    phases = {"started": time.monotonic() - started}
    admin, clinician = deployed.headers(Role.ADMIN), deployed.headers(Role.CLINICIAN)

    def cause_alert(base: str) -> None:
        patient = httpx2.post(f"{base}/v1/patients", json={}, headers=clinician).json()["id"]
        items = {str(n): 1 for n in range(1, 9)} | {"9": 2}
        # Measured an hour ago by the processes' own (real) clock: older history would be historical, never paged.
        measured_at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        body = {"instrument": "phq9", "items": items, "measured_at": measured_at}
        response = httpx2.post(f"{base}/v1/patients/{patient}/measurements", json=body, headers=clinician)
        assert response.status_code == 201, response.text

    for n in range(2 * ALERTS_PER_APP):
        cause_alert(bases[n % 2])
    wait_for(lambda: len(receiver.webhook_ids) == 2 * ALERTS_PER_APP, "the first deliveries", STARTUP_DEADLINE_SECONDS)
    phases["delivered"] = time.monotonic() - started

    receiver.hold_next = True
    cause_alert(bases[0])
    wait_for(receiver.held.is_set, "a delivery held open", DEADLINE_SECONDS)
    assert receiver.held_from is not None
    owner = owner_of_connection(receiver.held_from[1], [worker.pid for worker in workers])
    assert owner is not None, "the held delivery comes from one of the workers"
    os.kill(owner, signal.SIGKILL)
    deployed.processes.worker()
    wait_for(
        lambda: len(receiver.webhook_ids) == 2 * ALERTS_PER_APP + 1,
        "the delivery the killed worker held",
        DEADLINE_SECONDS,
    )
    phases["recovered"] = time.monotonic() - started
    listed = httpx2.get(f"{bases[1]}/v1/clinic/webhook-deliveries?limit=500", headers=admin).json()["items"]
    timings = ", ".join(f"{name} after {seconds:.1f} s" for name, seconds in phases.items())
    return {item["id"] for item in listed}, owner, timings
