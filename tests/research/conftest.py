"""Research fixtures: patients and measurements posted through the public API, and small generated cohorts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.core.config import DEVELOPMENT_RESEARCH_KEY
from app.core.db import transaction
from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry
from app.research import imports, synthetic
from app.research.generator import CohortConfig, generate_latent
from app.research.models import ResearchProject
from tests.conftest import ClinicKeys


def new_patient(client: TestClient, clinic: ClinicKeys, external_id: str | None = None) -> str:
    body = {"external_id": external_id} if external_id else {}
    response = client.post("/v1/patients", json=body, headers=clinic.headers())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def new_session(client: TestClient, clinic: ClinicKeys, patient_id: str, number: int, started_at: str) -> str:
    response = client.post(
        f"/v1/patients/{patient_id}/sessions",
        json={"session_number": number, "started_at": started_at},
        headers=clinic.headers(),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def measure(
    client: TestClient,
    clinic: ClinicKeys,
    patient_id: str,
    instrument: str,
    items: dict[str, Any],
    measured_at: str,
    session_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"instrument": instrument, "items": items, "measured_at": measured_at}
    if session_id is not None:
        body["session_id"] = session_id
    response = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def all_items(instrument_items: int, value: int) -> dict[str, int]:
    return {str(number): value for number in range(1, instrument_items + 1)}


def store_cohort(app: FastAPI, clinic: ClinicKeys, config: CohortConfig, *, seed: int) -> int:
    """Store a generated cohort in the clinic through the bulk-import path (scored like single posts)."""
    latent = generate_latent(config, seed=seed)
    records = synthetic.raw_records(
        synthetic.measurement_records(latent, state_of(app).part(InstrumentRegistry), seed=seed)
    )
    for db in transaction(state_of(app).write_sessions):
        report = imports.import_records(
            db, state_of(app).part(InstrumentRegistry), clinic_id=clinic.id, records=records, create_patients=True
        )
    return report.imported


def ndjson(records: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    imports.write_records(records, out, import_format="ndjson", items=0)
    return out.getvalue().encode()


@dataclass(frozen=True)
class Project:
    """A research project of a test's clinic, and a researcher key issued for it."""

    id: str
    name: str
    clinic_id: uuid.UUID
    headers: dict[str, str]


def new_project(
    client: TestClient, clinic: ClinicKeys, *, name: str = "study", consent_model: str = "opt_out"
) -> Project:
    """A project made by the clinic's admin through the API, and a researcher key for it."""
    admin = clinic.headers(Role.ADMIN)
    body = {
        "name": name,
        "purpose": "Outcomes of CFT.",
        "ethics_reference": "REK 2026/123",
        "consent_model": consent_model,
    }
    made = client.post("/v1/research/projects", json=body, headers=admin)
    assert made.status_code == 201, made.text
    project_id = str(made.json()["id"])
    issued = client.post("/v1/api-keys", json={"role": "researcher", "research_project_id": project_id}, headers=admin)
    assert issued.status_code == 201, issued.text
    return Project(
        id=project_id, name=name, clinic_id=clinic.id, headers={"Authorization": f"Bearer {issued.json()['key']}"}
    )


def consent(
    client: TestClient, clinic: ClinicKeys, patient_id: str, project: Project, status: str, recorded_at: str
) -> dict[str, Any]:
    response = client.put(
        f"/v1/patients/{patient_id}/consents/{project.id}",
        json={"status": status, "recorded_at": recorded_at},
        headers=clinic.headers(),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def expected_pseudonym(app: FastAPI, project: Project, patient_id: str) -> str:
    """The documented formula (``app/research/pseudonyms.py``) computed here from the project's stored salt."""
    for db in transaction(state_of(app).read_sessions):
        salt = db.get_one(ResearchProject, uuid.UUID(project.id)).pseudonym_salt
    key = hmac.new(DEVELOPMENT_RESEARCH_KEY.encode(), f"project:salt:{salt}".encode(), hashlib.sha256).digest()
    digest = hmac.new(key, f"{project.clinic_id}:{patient_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:16]


@pytest.fixture
def project(client: TestClient, clinic: ClinicKeys) -> Project:
    """An opt-out project: every patient of the clinic is in its exports unless they refuse or withdraw."""
    return new_project(client, clinic)


@pytest.fixture
def researcher(project: Project) -> dict[str, str]:
    """A researcher key issued for the clinic's opt-out project."""
    return project.headers


@pytest.fixture
def importer(clinic: ClinicKeys) -> dict[str, str]:
    """A clinic integration's key: bulk import resolves patients by the clinic's identifiers (patients:read)."""
    return clinic.headers(Role.INTEGRATION)


@pytest.fixture
def admin(clinic: ClinicKeys) -> dict[str, str]:
    return clinic.headers(Role.ADMIN)
