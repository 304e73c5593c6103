"""On PostgreSQL, two app processes and two ``python -m app worker`` processes against one database deliver every
alert webhook exactly once to a local receiver; a worker killed with SIGKILL in the middle of a delivery leaves it
to be made again once the worker is found dead (heartbeats), by the other worker or a restarted one.

Real processes (uvicorn on free ports), a real HTTP receiver (threaded ``http.server``), a fresh database. The test
waits for events (polling, with deadlines), never for time to pass; it prints the figures. Every process it started
is stopped, whatever happens.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select

from app.auth import service as auth
from app.auth.permissions import Role
from app.clinical.models import RiskAlert
from app.core.db import create_db_engine, make_sessionmaker, transaction, writer
from app.core.migrations import upgrade_to_head
from tests.conftest import POSTGRES_URL, TEST_PEPPER, FreshPostgresDatabase, make_settings

pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL (TEST_POSTGRES_URL)")

PROJECT = Path(__file__).resolve().parents[2]
ALERTS_PER_APP = 10
DEADLINE_SECONDS = 60.0
STARTUP_DEADLINE_SECONDS = 180.0
"""Four Python processes importing the app share the machine's cores: generous, startup is not what is tested."""


@dataclass
class Receiver:
    """Answers 204 and counts each webhook-id it answered so, except one request it holds open when asked."""

    port: int = 0
    delivered: Counter[str] = field(default_factory=Counter)
    hold_next: bool = False
    held: threading.Event = field(default_factory=threading.Event)
    held_from: tuple[str, int] | None = None
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def receiving() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                hold, state.hold_next = state.hold_next, False
            if hold:
                state.held_from = (self.client_address[0], self.client_address[1])
                state.held.set()
                state.release.wait(DEADLINE_SECONDS)
                return  # never answered: not a delivery
            with state.lock:
                state.delivered[self.headers["webhook-id"]] += 1
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
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Processes:
    """The processes the test started; ``stop_all`` ends each (SIGTERM, then SIGKILL) and reaps it."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with open(self.logs / f"process-{len(self.started)}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, *args], cwd=PROJECT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.started.append(process)
        return process

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


def answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=1.0).status_code == 200
    except httpx2.HTTPError:
        return False


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
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("finding the worker mid-delivery reads Linux's /proc")
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
                "JOBS_HEARTBEAT_SECONDS": "0.5",
                "JOBS_STALLED_AFTER_SECONDS": "2",
                "JOBS_STALLED_CHECK_SECONDS": "1",
                "FHIR_VALIDATION_PROCESSES": "0",
                "RATE_LIMIT_PER_MINUTE": "0",
                "UNVERIFIED_RATE_LIMIT_PER_MINUTE": "0",
                "DB_POOL_SIZE": "4",
                "LOG_LEVEL": "WARNING",
            }
            processes = Processes(env, tmp_path)
            try:
                caused, killed_pid, timings = run_scenario(processes, keys, receiver)
            except AssertionError as failed:
                raise AssertionError(f"{failed}\n{processes.output()}") from failed
            finally:
                processes.stop_all()
            with engine.connect() as connection:
                alerts = connection.scalar(select(func.count()).select_from(RiskAlert))
        finally:
            engine.dispose()

    delivered = set(receiver.delivered)
    duplicated = sum(count - 1 for count in receiver.delivered.values() if count > 1)
    lost = len(caused - delivered)
    with capsys.disabled():  # the figures, shown even without -s
        sys.stdout.write(
            f"\nmulti-process: events caused {len(caused)}, delivered {len(delivered)}, duplicated {duplicated}, "
            f"lost {lost} (a worker killed mid-delivery: pid {killed_pid}; {timings})\n"
        )
    assert alerts == len(caused) == 2 * ALERTS_PER_APP + 1
    assert (duplicated, lost) == (0, 0)
    assert delivered == caused


def run_scenario(processes: Processes, keys: dict[Role, str], receiver: Receiver) -> tuple[set[str], int, str]:
    """Start everything, cause the alerts, kill the worker holding the last delivery; the webhook-ids caused, the
    killed worker's pid and when each phase ended."""
    ports = [free_port(), free_port()]
    for port in ports:
        processes.start("-m", "uvicorn", "app.asgi:app", "--host", "127.0.0.1", "--port", str(port), "--no-access-log")
    workers = [processes.start("-m", "app", "worker", "--concurrency", "2") for _ in range(2)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    started = time.monotonic()
    for base in bases:
        wait_for(functools.partial(answers, f"{base}/health"), f"the app at {base}", STARTUP_DEADLINE_SECONDS)
    phases = {"started": time.monotonic() - started}
    admin, clinician = ({"Authorization": f"Bearer {keys[role]}"} for role in (Role.ADMIN, Role.CLINICIAN))
    hook = {"webhook_url": f"http://127.0.0.1:{receiver.port}/hooks"}
    assert httpx2.put(f"{bases[0]}/v1/clinic/settings", json=hook, headers=admin).status_code == 200

    def cause_alert(base: str) -> None:
        patient = httpx2.post(f"{base}/v1/patients", json={}, headers=clinician).json()["id"]
        items = {str(n): 1 for n in range(1, 9)} | {"9": 2}
        body = {"instrument": "phq9", "items": items, "measured_at": "2026-11-20T09:30:00Z"}
        response = httpx2.post(f"{base}/v1/patients/{patient}/measurements", json=body, headers=clinician)
        assert response.status_code == 201, response.text

    for n in range(2 * ALERTS_PER_APP):
        cause_alert(bases[n % 2])
    wait_for(lambda: len(receiver.delivered) == 2 * ALERTS_PER_APP, "the first deliveries", STARTUP_DEADLINE_SECONDS)
    phases["delivered"] = time.monotonic() - started

    receiver.hold_next = True
    cause_alert(bases[0])
    wait_for(receiver.held.is_set, "a delivery held open")
    assert receiver.held_from is not None
    owner = owner_of_connection(receiver.held_from[1], [worker.pid for worker in workers])
    assert owner is not None, "the held delivery comes from one of the workers"
    os.kill(owner, signal.SIGKILL)
    processes.start("-m", "app", "worker", "--concurrency", "2")
    wait_for(lambda: len(receiver.delivered) == 2 * ALERTS_PER_APP + 1, "the delivery the killed worker held")
    phases["recovered"] = time.monotonic() - started
    listed = httpx2.get(f"{bases[1]}/v1/clinic/webhook-deliveries?limit=500", headers=admin).json()["items"]
    timings = ", ".join(f"{name} after {seconds:.1f} s" for name, seconds in phases.items())
    return {item["id"] for item in listed}, owner, timings
