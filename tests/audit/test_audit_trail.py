"""Every read and write of patient data, and every refusal, leaves an audit event; item answers never do."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.state import state_of
from tests.conftest import ISSUE_PHQ9, ClinicKeys


def events(client: TestClient, clinic: ClinicKeys, **params: str) -> list[dict[str, object]]:
    response = client.get("/v1/audit", params=params, headers=clinic.headers(Role.ADMIN))
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_a_stored_measurement_and_a_read_are_both_audited(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    created = client.post(
        f"/v1/patients/{patient_id}/measurements",
        json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-01-01T10:00:00Z"},
        headers=clinic.headers(),
    ).json()
    client.get(f"/v1/patients/{patient_id}/measurements/{created['id']}", headers=clinic.headers(Role.INTEGRATION))

    trail = events(client, clinic, patient_id=patient_id)

    read = next(e for e in trail if e["action"] == "read" and e["resource_type"] == "measurements")
    assert read["resource_id"] == created["id"]
    assert read["role"] == "integration"
    assert read["key_id"] == str(clinic.key_ids[Role.INTEGRATION])
    assert read["route"] == "/v1/patients/{patient_id}/measurements/{measurement_id}"
    assert read["outcome"] == "success"
    assert read["client_address"]
    stored = next(e for e in trail if e["resource_type"] == "measurement")
    assert (stored["action"], stored["resource_id"], stored["role"]) == ("create", created["id"], "clinician")


def test_a_rejected_write_leaves_no_data_and_is_audited_as_rejected(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    client.post(
        f"/v1/patients/{patient_id}/measurements",
        json={"instrument": "phq9", "items": {**ISSUE_PHQ9, "1": 9}, "measured_at": "2026-01-01T10:00:00Z"},
        headers=clinic.headers(),
    )

    trail = events(client, clinic, patient_id=patient_id)
    posts = [e for e in trail if e["method"] == "POST" and str(e["route"]).endswith("/measurements")]
    assert [(e["outcome"], e["status_code"], e["details"]) for e in posts] == [("rejected", 422, {})]
    assert [e for e in trail if e["resource_type"] == "measurement"] == []
    assert [e["id"] for e in events(client, clinic, outcome="rejected")] == [e["id"] for e in posts]


def test_refusals_are_audited(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    client.get("/v1/patients", headers=clinic.headers(Role.RESEARCHER))
    client.get(f"/v1/patients/{patient_id}", headers=other_clinic.headers())

    forbidden = events(client, clinic, outcome="forbidden")
    probing = events(client, other_clinic, outcome="not_found")

    assert [(e["role"], e["route"], e["status_code"]) for e in forbidden] == [("researcher", "/v1/patients", 403)]
    assert [(e["resource_type"], e["resource_id"]) for e in probing] == [("patients", patient_id)]


def test_a_request_without_a_valid_key_is_audited_without_a_clinic(app: FastAPI, client: TestClient) -> None:
    client.get("/v1/patients", headers={"Authorization": "Bearer co_123456789abc_forged"})

    with state_of(app).read_sessions() as db:
        row = db.scalars(
            select(AuditEvent).where(AuditEvent.outcome == "unauthenticated").order_by(AuditEvent.occurred_at.desc())
        ).first()
    assert row is not None
    assert (row.clinic_id, row.key_id, row.status_code, row.route) == (None, None, 401, "/v1/patients")


def test_item_answers_never_reach_the_audit_trail(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> None:
    patient = client.post("/v1/patients", json={"external_id": "MRN-SECRET-42"}, headers=clinic.headers()).json()
    client.post(
        f"/v1/patients/{patient['id']}/measurements",
        json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-01-01T10:00:00Z"},
        headers=clinic.headers(),
    )

    with state_of(app).read_sessions() as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.clinic_id == clinic.id)).all()
    dumped = json.dumps([{c.name: str(getattr(r, c.name)) for c in AuditEvent.__table__.columns} for r in rows])
    assert "MRN-SECRET-42" not in dumped
    assert '"items"' not in dumped
    assert len(rows) >= 3


def test_only_admins_read_the_audit_trail(client: TestClient, clinic: ClinicKeys) -> None:
    for role in (Role.CLINICIAN, Role.INTEGRATION, Role.RESEARCHER):
        assert client.get("/v1/audit", headers=clinic.headers(role)).status_code == 403


def test_each_clinic_sees_only_its_own_trail(client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys) -> None:
    client.get("/v1/patients", headers=clinic.headers())

    assert all(e["key_id"] != str(clinic.key_ids[Role.CLINICIAN]) for e in events(client, other_clinic))
    assert any(e["route"] == "/v1/patients" for e in events(client, clinic, action="read"))
