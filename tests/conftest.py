"""Fixtures: a real database built by migrating (SQLite always; PostgreSQL too when TEST_POSTGRES_URL is set).

Tests never share data: each one gets its own clinic (the tenancy boundary), with one API key per role.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.auth import service as auth
from app.auth.permissions import STAFF_ROLES, Role
from app.core.config import Settings
from app.core.db import transaction, utcnow
from app.core.migrations import upgrade_to_head
from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry
from app.jobs.runner import run_due_jobs
from app.jobs.worker import build_app, worker_context
from app.main import create_app

TEST_PEPPER = "test-pepper-not-secret"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
POSTGRESQL_ONLY = pytest.mark.parametrize(
    "database_url", [backend for backend in BACKENDS if backend == "postgresql"], indirect=True
)
"""For a test of PostgreSQL's own behaviour: run on PostgreSQL alone (CI always has it), never on SQLite."""
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For a test of the embedded database's own machinery (the in-process job runner): run on SQLite alone."""


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database of each backend under test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade_to_head(url)
        yield url
        return
    with FreshPostgresDatabase() as url:
        upgrade_to_head(url)
        yield url


class FreshPostgresDatabase:
    """Create a throwaway database on the TEST_POSTGRES_URL server; drop it afterwards."""

    def __init__(self) -> None:
        assert POSTGRES_URL is not None
        self.server = make_url(POSTGRES_URL)
        self.name = f"co_test_{uuid.uuid4().hex[:12]}"

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.server.host,
            port=self.server.port,
            user=self.server.username,
            password=self.server.password,
            dbname=self.server.database or "postgres",
            autocommit=True,
        )

    def __enter__(self) -> str:
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self.server.set(database=self.name).render_as_string(hide_password=False)

    def __exit__(self, *_: object) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def run_jobs(app: FastAPI, *, now: datetime | None = None, rng: random.Random | None = None) -> None:
    """Run every job due by ``now`` (the clock's now by default), as the app's database runs them: on SQLite the
    in-process runner's ``run_due_jobs`` (periodic jobs left out); on PostgreSQL a real procrastinate worker that
    stops once no job is due, after the jobs due by ``now`` were made due (procrastinate reads the server's clock).
    ``rng``: the retries' jitter."""
    state = state_of(app)
    moment = now or utcnow()
    engine = state.database.write_engine
    if engine.dialect.name == "sqlite":
        while run_due_jobs(engine, state.settings, reads=state.database.engine, now=moment, rng=rng, periodic=()):
            pass  # each call runs a batch of jobs: until none is due
        return
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE procrastinate_jobs SET scheduled_at = NULL WHERE status = 'todo' AND scheduled_at <= :now"),
            {"now": moment},
        )
    build_app(state.settings, periodic=False).run_worker(
        wait=False,
        install_signal_handlers=False,
        listen_notify=False,
        additional_context=worker_context(state.settings, engine, rng),
    )


UNLIMITED_ADDRESSES: dict[str, Any] = {
    "unverified_rate_limit_per_minute": 0,
    "enrolment_exchange_per_minute": 0,
    "enrolment_exchange_failures_per_minute": 0,
}
"""Every test client calls from one address ("testclient"): the per-address limits are off unless a test sets them."""


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        environment="test",
        api_key_pepper=SecretStr(TEST_PEPPER),
        log_level="WARNING",
        **{**UNLIMITED_ADDRESSES, "jobs_in_process": False, **overrides},
    )


@pytest.fixture(scope="session")
def served(database_url: str) -> Iterator[TestClient]:
    """The app, started (its lifespan opened its engines and pools) for the whole run, and a client of it."""
    with TestClient(create_app(make_settings(database_url))) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def app(served: TestClient) -> FastAPI:
    started: FastAPI = served.app  # type: ignore[assignment]
    return started


@pytest.fixture(scope="session")
def client(served: TestClient) -> TestClient:
    return served


@dataclass
class ClinicKeys:
    """A clinic of its own for one test, and a bearer header per role."""

    name: str
    id: uuid.UUID
    keys: dict[Role, str] = field(default_factory=dict)
    key_ids: dict[Role, uuid.UUID] = field(default_factory=dict)

    def headers(self, role: Role = Role.CLINICIAN, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}", **(extra or {})}


def new_clinic(app: FastAPI) -> ClinicKeys:
    name = f"clinic-{uuid.uuid4().hex[:10]}"
    for db in transaction(state_of(app).write_sessions):
        clinic = auth.get_or_create_clinic(db, name=name)
        result = ClinicKeys(name=name, id=clinic.id)
        for role in STAFF_ROLES:
            issued = auth.issue_api_key(db, clinic=clinic, role=role, pepper=TEST_PEPPER)
            result.keys[role] = issued.key
            result.key_ids[role] = issued.api_key.id
    return result


@pytest.fixture
def clinic(app: FastAPI) -> ClinicKeys:
    return new_clinic(app)


@pytest.fixture
def other_clinic(app: FastAPI) -> ClinicKeys:
    return new_clinic(app)


@pytest.fixture
def patient_id(client: TestClient, clinic: ClinicKeys) -> str:
    response = client.post("/v1/patients", json={}, headers=clinic.headers())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


SCALES_DIR = Path(__file__).resolve().parents[1] / "scales"
ISSUE_PHQ9 = {"1": 3, "2": 0, "3": 1, "4": 2, "5": 0, "6": 0, "7": 1, "8": 0, "9": 3}
"""The PHQ-9 of the foundation issue's acceptance test: total 10, moderate, item 9 positive."""


def with_earlier_phq9(app: FastAPI) -> InstrumentRegistry:
    """The app's instruments, but PHQ-9 as an earlier definition (version 0.9.0) had it: what measurements stored
    before an upgrade were scored under."""
    registry = state_of(app).part(InstrumentRegistry)
    earlier = registry.get("phq9").model_copy(update={"version": "0.9.0"})
    return InstrumentRegistry(definitions={**registry.definitions, "phq9": earlier})
