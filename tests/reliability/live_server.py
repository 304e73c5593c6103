"""The real server: ``python -m uvicorn app.asgi:app`` in a process of its own, on a free port and a freshly migrated
database, which a test can kill -9 and start again on the same database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx2
from pydantic import SecretStr
from sqlalchemy import select

from app.auth import service as auth
from app.auth.permissions import STAFF_ROLES
from app.core.config import PROJECT_ROOT, Settings
from app.core.db import create_db_engine, make_sessionmaker, transaction
from app.core.migrations import upgrade_to_head
from app.measurements.models import Measurement
from tests.conftest import TEST_PEPPER, ClinicKeys, FreshPostgresDatabase

STARTUP_SECONDS = 120.0
"""Generous: the app imports pandas, scipy and statsmodels before it answers (several seconds on a cold disk)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """A database of the backend, migrated to head, used by nothing else; PostgreSQL's is dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'live.db'}"
        upgrade_to_head(url)
        yield url
        return
    with FreshPostgresDatabase() as url:
        upgrade_to_head(url)
        yield url


def server_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, environment="test", api_key_pepper=SecretStr(TEST_PEPPER))


def clinic_with_keys(database_url: str, name: str) -> ClinicKeys:
    """A clinic and a key per staff role, written straight to the database (as ``python -m app create-api-key``)."""
    engine = create_db_engine(server_settings(database_url))
    try:
        for db in transaction(make_sessionmaker(engine)):
            clinic = auth.get_or_create_clinic(db, name=name)
            keys = ClinicKeys(name=name, id=clinic.id)
            for role in STAFF_ROLES:
                issued = auth.issue_api_key(db, clinic=clinic, role=role, pepper=TEST_PEPPER)
                keys.keys[role] = issued.key
                keys.key_ids[role] = issued.api_key.id
    finally:
        engine.dispose()
    return keys


@dataclass
class LiveServer:
    database_url: str
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it answers ``/livez``."""
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "API_KEY_PEPPER": TEST_PEPPER,
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_PER_MINUTE": "0",  # hundreds of posts from one key on purpose
        }
        command = [sys.executable, "-m", "uvicorn", "app.asgi:app", "--host", "127.0.0.1", "--port", str(self.port)]
        log: IO[bytes] = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*command, "--no-access-log", "--log-level", "warning"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx2.get(f"{self.base_url}/livez", timeout=1.0).status_code == 200:
                    return
            except httpx2.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer within {STARTUP_SECONDS} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """kill -9: no shutdown, no flushing, in-flight requests cut off."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


def stored_measurement_ids(database_url: str, patient_id: str) -> list[str]:
    """Every measurement row of the patient (one per version), read straight from the database."""
    engine = create_db_engine(server_settings(database_url))
    try:
        with make_sessionmaker(engine)() as db:
            query = select(Measurement.measurement_id).where(Measurement.patient_id == uuid.UUID(patient_id))
            return [str(measurement_id) for measurement_id in db.scalars(query)]
    finally:
        engine.dispose()
