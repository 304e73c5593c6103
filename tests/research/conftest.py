"""Research fixtures: patients and measurements posted through the public API, and small generated cohorts."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.core.db import transaction
from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry
from app.research import imports, synthetic
from app.research.generator import CohortConfig, generate_latent
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


@pytest.fixture
def researcher(clinic: ClinicKeys) -> dict[str, str]:
    return clinic.headers(Role.RESEARCHER)


@pytest.fixture
def importer(clinic: ClinicKeys) -> dict[str, str]:
    """A clinic integration's key: bulk import resolves patients by the clinic's identifiers (patients:read)."""
    return clinic.headers(Role.INTEGRATION)


@pytest.fixture
def admin(clinic: ClinicKeys) -> dict[str, str]:
    return clinic.headers(Role.ADMIN)
