"""On PostgreSQL, two app processes and two ``python -m app worker`` processes against one database deliver every
assessment reminder exactly once to a local receiver: each new schedule defers a reminders run (so runs overlap on
the two workers, beside the periodic one), and each reminder (event, assessment) arrives once.

Real processes (uvicorn on free ports), a real HTTP receiver, a fresh
database, the real clock: the schedules' windows opened yesterday and close tomorrow (UTC), so each assessment's
due and overdue moments have both come. The test waits for events (polling, with deadlines), never for time to pass;
it prints the figures.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select

from app.auth import service as auth
from app.auth.permissions import Role
from app.clinical import reminders
from app.clinical.models import WebhookDelivery
from app.core.db import create_db_engine, make_sessionmaker, transaction, writer
from app.core.migrations import upgrade_to_head
from tests.conftest import POSTGRES_URL, TEST_PEPPER, FreshPostgresDatabase, make_settings
from tests.jobs.test_multiprocess import answers, free_port

pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL (TEST_POSTGRES_URL)")

SCHEDULES_PER_APP = 6
INSTRUMENTS = ["phq9", "gad7"]
DEADLINE_SECONDS = 90.0
STARTUP_DEADLINE_SECONDS = 180.0
"""Four Python processes importing the app share the machine's cores: generous, startup is not what is tested."""


@dataclass
class Receiver:
    """Answers 204 and counts each (event, assessment id) and each webhook-id it received."""

    port: int = 0
    reminders: Counter[tuple[str, str]] = field(default_factory=Counter)
    webhook_ids: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def receiving() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.reminders[(payload["event"], payload["assessment_id"])] += 1
                state.webhook_ids[self.headers["webhook-id"]] += 1
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.port = server.server_address[1]
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


PROJECT = Path(__file__).resolve().parents[2]


class Processes:
    """The processes the test started, each logging to a file; ``stop_all`` ends each (SIGTERM, then SIGKILL)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> None:
        with open(self.logs / f"process-{len(self.started)}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, *args], cwd=PROJECT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.started.append(process)

    def output(self) -> str:
        """The end of each process's output (for a failure's message)."""
        return "\n".join(
            f"--- {log.name}:\n{log.read_text(errors='replace')[-2000:]}" for log in sorted(self.logs.glob("*.log"))
        )

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_two_apps_and_two_workers_deliver_every_reminder_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with FreshPostgresDatabase() as url, receiving() as receiver:
        upgrade_to_head(url)
        engine = create_db_engine(make_settings(url))
        try:
            keys = {}
            for db in transaction(make_sessionmaker(writer(engine))):
                clinic = auth.get_or_create_clinic(db, name=f"clinic-{uuid.uuid4().hex[:8]}")
                for role in (Role.ADMIN, Role.CLINICIAN):
                    keys[role] = auth.issue_api_key(db, clinic=clinic, role=role, pepper=TEST_PEPPER).key
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "API_KEY_PEPPER": TEST_PEPPER,
                "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
                "FHIR_VALIDATION_PROCESSES": "0",
                "RATE_LIMIT_PER_MINUTE": "0",
                "UNVERIFIED_RATE_LIMIT_PER_MINUTE": "0",
                "DB_POOL_SIZE": "4",
                "LOG_LEVEL": "WARNING",
            }
            processes = Processes(env, tmp_path)
            try:
                caused, timings = run_scenario(processes, keys, receiver)
            except AssertionError as failed:
                raise AssertionError(f"{failed}\n{processes.output()}") from failed
            finally:
                processes.stop_all()
            with engine.connect() as connection:
                stored = connection.scalar(select(func.count()).select_from(WebhookDelivery))
        finally:
            engine.dispose()

    delivered = set(receiver.reminders)
    duplicated = sum(count - 1 for count in receiver.reminders.values() if count > 1)
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


def run_scenario(processes: Processes, keys: dict[Role, str], receiver: Receiver) -> tuple[set[tuple[str, str]], str]:
    """Start everything, create the schedules through both apps; the reminders caused and each phase's end."""
    ports = [free_port(), free_port()]
    for port in ports:
        processes.start("-m", "uvicorn", "app.asgi:app", "--host", "127.0.0.1", "--port", str(port), "--no-access-log")
    for _ in range(2):
        processes.start("-m", "app", "worker", "--concurrency", "2")
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    started = time.monotonic()
    for base in bases:
        wait_for(functools.partial(answers, f"{base}/health"), f"the app at {base}", STARTUP_DEADLINE_SECONDS)
    phases = {"started": time.monotonic() - started}
    admin, clinician = ({"Authorization": f"Bearer {keys[role]}"} for role in (Role.ADMIN, Role.CLINICIAN))
    hook = {"webhook_url": f"http://127.0.0.1:{receiver.port}/hooks"}
    assert httpx2.put(f"{bases[0]}/v1/clinic/settings", json=hook, headers=admin).status_code == 200
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
    wait_for(lambda: len(receiver.reminders) >= len(caused), "every reminder")
    phases["delivered"] = time.monotonic() - started

    def recorded() -> bool:
        listed = httpx2.get(f"{bases[1]}/v1/clinic/webhook-deliveries?limit=500", headers=admin).json()["items"]
        return len(listed) == len(caused) and all(item["status"] == "delivered" for item in listed)

    wait_for(recorded, "every delivery recorded as delivered")
    timings = ", ".join(f"{name} after {seconds:.1f} s" for name, seconds in phases.items())
    return caused, timings
