"""What the multi-process tests share: a fresh PostgreSQL deployment (a migrated database, a clinic with an admin
and a clinician key, the environment its processes start with), the app and worker processes themselves (uvicorn
on free ports, ``python -m app worker``, each logging to a file, all stopped whatever happens), a local webhook
receiver (a threaded ``http.server``) and waiting for events with deadlines, never for time to pass."""

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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import Engine

from app.auth import service as auth
from app.auth.permissions import Role
from app.core.config import PROJECT_ROOT
from app.core.db import create_db_engine, make_sessionmaker, transaction, writer
from app.core.migrations import upgrade_to_head
from tests.conftest import TEST_PEPPER, FreshPostgresDatabase, make_settings
from tests.reliability.live_server import free_port

STARTUP_DEADLINE_SECONDS = 180.0
"""Four Python processes importing the app share the machine's cores: generous, startup is not what is tested."""
HOLD_SECONDS = 60.0
"""The longest the receiver holds a request open (it lets go sooner when the test ends)."""


def wait_for(condition: Callable[[], bool], what: str, seconds: float) -> None:
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


@dataclass
class Receiver:
    """Answers 204 and records each webhook it answered so (how often each webhook-id came, and each JSON body),
    except one request it holds open when asked."""

    port: int = 0
    webhook_ids: Counter[str] = field(default_factory=Counter)
    bodies: list[Any] = field(default_factory=list)
    hold_next: bool = False
    held: threading.Event = field(default_factory=threading.Event)
    held_from: tuple[str, int] | None = None
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received_bodies(self) -> list[Any]:
        with self.lock:
            return list(self.bodies)


@contextmanager
def receiving() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                hold, state.hold_next = state.hold_next, False
            if hold:
                state.held_from = (self.client_address[0], self.client_address[1])
                state.held.set()
                state.release.wait(HOLD_SECONDS)
                return  # never answered: not a delivery
            with state.lock:
                state.webhook_ids[self.headers["webhook-id"]] += 1
                state.bodies.append(body)
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


class Processes:
    """The processes the test started, each logging to a file; ``stop_all`` ends each (SIGTERM, then SIGKILL) and
    reaps it."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with open(self.logs / f"process-{len(self.started)}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, *args], cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.started.append(process)
        return process

    def app(self) -> str:
        """Start an app process (uvicorn) on a free port; its base URL (it answers once it has started)."""
        port = free_port()
        self.start("-m", "uvicorn", "app.asgi:app", "--host", "127.0.0.1", "--port", str(port), "--no-access-log")
        return f"http://127.0.0.1:{port}"

    def worker(self) -> subprocess.Popen[bytes]:
        return self.start("-m", "app", "worker", "--concurrency", "2")

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


def wait_until_answering(bases: list[str]) -> None:
    for base in bases:
        wait_for(functools.partial(answers, f"{base}/health"), f"the app at {base}", STARTUP_DEADLINE_SECONDS)


@dataclass
class Deployment:
    engine: Engine
    keys: dict[Role, str]
    processes: Processes

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def start(
        self, *, apps: int, workers: int, webhooks_to: Receiver
    ) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
        """Start the app processes and the workers, wait until each app answers, and send the clinic's webhooks to
        the receiver; the apps' base URLs and the workers."""
        bases = [self.processes.app() for _ in range(apps)]
        started = [self.processes.worker() for _ in range(workers)]
        wait_until_answering(bases)
        hook = {"webhook_url": f"http://127.0.0.1:{webhooks_to.port}/hooks"}
        settings = httpx2.put(f"{bases[0]}/v1/clinic/settings", json=hook, headers=self.headers(Role.ADMIN))
        assert settings.status_code == 200, settings.text
        return bases, started


@contextmanager
def deployment(logs: Path, **settings: str) -> Iterator[Deployment]:
    """A fresh PostgreSQL database migrated to head, a clinic with an admin and a clinician key, and the processes'
    environment (``settings`` added to it); a failed assertion's message gains the end of each process's output.
    Every process started is stopped and the database dropped, whatever happens."""
    with FreshPostgresDatabase() as url:
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
                **settings,
            }
            processes = Processes(env, logs)
            try:
                yield Deployment(engine, keys, processes)
            except AssertionError as failed:
                raise AssertionError(f"{failed}\n{processes.output()}") from failed
            finally:
                processes.stop_all()
        finally:
            engine.dispose()
