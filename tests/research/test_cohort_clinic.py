"""The synthetic cohort generator never writes into a clinic with real patients, and the clinic it makes is marked
synthetic wherever the clinic shows: its settings, outcomes, reports, exports' file names and codebook (issue 21)."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.auth.models import Clinic
from app.auth.permissions import Role
from app.core.db import transaction
from app.core.errors import Conflict
from app.core.state import state_of
from app.patients.models import Patient, PatientIdentifier
from app.patients.schemas import LOCAL_IDENTIFIER_SYSTEM
from app.research.cohort_clinic import clinic_for_cohort
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.research.conftest import measure, new_patient, new_project


def mark_synthetic(app: FastAPI, clinic: ClinicKeys) -> None:
    for db in transaction(state_of(app).write_sessions):
        db.execute(update(Clinic).where(Clinic.id == clinic.id).values(synthetic=True))


def add_patient(app: FastAPI, clinic_id: uuid.UUID, external_id: str) -> None:
    for db in transaction(state_of(app).write_sessions):
        patient = Patient(clinic_id=clinic_id)
        db.add(patient)
        db.flush()
        db.add(
            PatientIdentifier(
                clinic_id=clinic_id, patient_id=patient.id, system=LOCAL_IDENTIFIER_SYSTEM, value=external_id
            )
        )


def test_a_real_clinic_is_refused_whether_or_not_it_has_patients(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    for db in transaction(state_of(app).write_sessions):
        with pytest.raises(Conflict, match="is a real clinic \\(0 patient"):
            clinic_for_cohort(db, name=clinic.name)
    new_patient(client, clinic, "MRN-1")
    for db in transaction(state_of(app).write_sessions):
        with pytest.raises(Conflict, match="is a real clinic \\(1 patient"):
            clinic_for_cohort(db, name=clinic.name)


def test_a_new_clinic_is_created_synthetic_and_taken_again_while_every_patient_is_generated(app: FastAPI) -> None:
    name = f"generated-{uuid.uuid4().hex[:10]}"
    for db in transaction(state_of(app).write_sessions):
        made = clinic_for_cohort(db, name=name)
        assert made.synthetic is True
        clinic_id = made.id
    add_patient(app, clinic_id, "synthetic-7-0001")
    for db in transaction(state_of(app).write_sessions):
        assert clinic_for_cohort(db, name=name).id == clinic_id

    add_patient(app, clinic_id, "MRN-REAL")

    for db in transaction(state_of(app).write_sessions):
        with pytest.raises(Conflict, match="has 1 patient\\(s\\) the generator did not make"):
            clinic_for_cohort(db, name=name)


def test_a_synthetic_clinic_is_marked_in_its_settings_outcomes_report_exports_and_codebook(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    patient_id = new_patient(client, clinic, "synthetic-1-0001")
    measure(client, clinic, patient_id, "phq9", ISSUE_PHQ9, "2026-11-02T09:00:00Z")
    plain_settings = client.get("/v1/clinic/settings", headers=clinic.headers(Role.ADMIN)).json()
    plain_report = client.get(f"/v1/patients/{patient_id}/report", headers=clinic.headers()).text
    assert plain_settings["synthetic"] is False
    assert "Synthetic data" not in plain_report

    mark_synthetic(app, clinic)

    settings = client.get("/v1/clinic/settings", headers=clinic.headers(Role.ADMIN)).json()
    outcomes = client.get("/v1/clinic/outcomes", params={"instrument": "phq9"}, headers=clinic.headers()).json()
    report = client.get(f"/v1/patients/{patient_id}/report", headers=clinic.headers()).text
    researcher = new_project(client, clinic).headers
    export = client.get("/v1/research/export", params={"format": "csv"}, headers=researcher)
    codebook = client.get("/v1/research/codebook", headers=researcher).json()
    assert settings["synthetic"] is True
    assert outcomes["synthetic"] is True
    assert "<strong>Synthetic data.</strong>" in report
    assert export.status_code == 200, export.text
    assert 'filename="synthetic-research-export-' in export.headers["content-disposition"]
    assert codebook["synthetic"] is True
    assert codebook["description"].startswith("SYNTHETIC DATA")
    assert codebook["resources"][0]["path"].startswith("synthetic-research-export-")
