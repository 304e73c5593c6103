"""FHIR test helpers. The public fixtures are read in place from ../shared/interop/fhir (never copied here)."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select

from app.auth.permissions import Role
from app.core.state import state_of
from app.fhir.models import FhirResource
from app.measurements.models import Measurement
from tests.conftest import ClinicKeys

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "interop" / "fhir"
FHIR_JSON = "application/fhir+json"

US_CORE_QUESTIONNAIRE = "questionnaire-phq9-uscore.json"
SDC_QUESTIONNAIRE = "questionnaire-phq9-sdc.json"
MII_QUESTIONNAIRE = "questionnaire-phq9-mii-de.json"
LFORMS_CALCULATED = "questionnaire-phq9-lforms-calculated.json"
LFORMS_ARGONAUT = "questionnaire-phq9-lforms-argonaut.json"
STANFORD_GAD7 = "questionnaire-gad7-researchkitonfhir.json"
PUBLIC_FORMS = (
    US_CORE_QUESTIONNAIRE,
    SDC_QUESTIONNAIRE,
    MII_QUESTIONNAIRE,
    LFORMS_CALCULATED,
    LFORMS_ARGONAUT,
    STANFORD_GAD7,
)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def headers(
    clinic: ClinicKeys, role: Role = Role.INTEGRATION, *, extra: dict[str, str] | None = None
) -> dict[str, str]:
    return clinic.headers(role, {"Content-Type": FHIR_JSON, **(extra or {})})


def send(
    client: TestClient,
    method: str,
    path: str,
    clinic: ClinicKeys,
    resource: Any,
    *,
    role: Role = Role.INTEGRATION,
    prefer: str | None = None,
    if_none_exist: str | None = None,
) -> Response:
    """Send a resource (a dict, or JSON text exactly as given) as application/fhir+json."""
    content = resource if isinstance(resource, str | bytes) else json.dumps(resource)
    extra = {"Prefer": prefer} if prefer else {}
    if if_none_exist:
        extra["If-None-Exist"] = if_none_exist
    return client.request(method, path, content=content, headers=headers(clinic, role, extra=extra))


def register(client: TestClient, clinic: ClinicKeys, name: str) -> str:
    """Register a public form as published (PUT under its own id, or POST when it has none); return its id."""
    form = fixture(name)
    if "id" in form:
        response = send(client, "PUT", f"/fhir/Questionnaire/{form['id']}", clinic, fixture_text(name))
    else:
        response = send(client, "POST", "/fhir/Questionnaire", clinic, fixture_text(name))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def about(qr: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """The response with its subject set to our patient (the published ones name Patient/example or no one)."""
    changed = copy.deepcopy(qr)
    changed["subject"] = {"reference": f"Patient/{patient_id}"}
    return changed


def issues(response: Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"] == FHIR_JSON, response.headers["content-type"]
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    found: list[dict[str, Any]] = outcome["issue"]
    return found


def measurements_of(app: FastAPI, patient_id: str) -> list[Measurement]:
    """The patient's stored measurement rows, read directly from the database."""
    with state_of(app).read_sessions() as db:
        return list(db.scalars(select(Measurement).where(Measurement.patient_id == uuid.UUID(patient_id))))


def resources_of(app: FastAPI, clinic: ClinicKeys) -> int:
    query = select(func.count()).select_from(FhirResource).where(FhirResource.clinic_id == clinic.id)
    with state_of(app).read_sessions() as db:
        return int(db.scalar(query) or 0)
