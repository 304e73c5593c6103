"""A secret (API key, enrolment code) is shown once, in the response that issues it: an Idempotency-Key record keeps
that response without it, and a retry with the same key is told what was issued (409) instead of seeing it again."""

from __future__ import annotations

import json
import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.models import ApiKey, Enrolment
from app.auth.permissions import Role
from app.core.state import state_of
from app.idempotency.models import IdempotencyRecord
from tests.conftest import ClinicKeys


def record_of(app: FastAPI, key_id: uuid.UUID, key: str) -> IdempotencyRecord:
    with state_of(app).read_sessions() as db:
        found: IdempotencyRecord | None = db.scalar(
            select(IdempotencyRecord).where(IdempotencyRecord.api_key_id == key_id, IdempotencyRecord.key == key)
        )
    assert found is not None
    return found


def keys_of(app: FastAPI, clinic: ClinicKeys) -> int:
    with state_of(app).read_sessions() as db:
        return len(list(db.scalars(select(ApiKey.id).where(ApiKey.clinic_id == clinic.id))))


def enrolments_of(app: FastAPI, patient_id: str) -> int:
    with state_of(app).read_sessions() as db:
        rows = db.scalars(select(Enrolment.id).where(Enrolment.patient_id == uuid.UUID(patient_id)))
        return len(list(rows))


def test_an_api_key_is_shown_once_even_to_a_retry_with_the_same_idempotency_key(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    retry = clinic.headers(Role.ADMIN, {"Idempotency-Key": "new-tablet-key"})
    body = {"role": "clinician", "label": "tablet"}
    issued = client.post("/v1/api-keys", json=body, headers=retry)
    assert issued.status_code == 201, issued.text
    secret, key_id = issued.json()["key"], issued.json()["id"]
    keys_before = keys_of(app, clinic)

    again = client.post("/v1/api-keys", json=body, headers=retry)

    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    problem = again.json()
    assert problem["type"] == "/problems/secret-not-replayable"
    assert problem["issued_id"] == key_id
    assert key_id in problem["detail"]
    assert "shown once" in problem["detail"]
    assert "revoke" in problem["detail"]
    assert secret not in again.text
    assert keys_of(app, clinic) == keys_before  # nothing new was issued
    record = record_of(app, clinic.key_ids[Role.ADMIN], "new-tablet-key")
    assert record.secret_withheld
    assert record.response_body is not None
    assert secret not in record.response_body
    assert secret.rsplit("_", 1)[-1] not in record.response_body
    assert {"id", "prefix", "role"} <= set(json.loads(record.response_body))
    # The key itself works, and is revoked by the id the refusal named.
    assert client.get("/v1/patients", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    revoked = client.post(f"/v1/api-keys/{problem['issued_id']}/revoke", headers=clinic.headers(Role.ADMIN))
    assert revoked.status_code == 200
    assert client.get("/v1/patients", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_an_enrolment_code_is_shown_once_even_to_a_retry_with_the_same_idempotency_key(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    retry = clinic.headers(extra={"Idempotency-Key": "enrol-at-intake"})
    path = f"/v1/patients/{patient_id}/enrolments"
    issued = client.post(path, json={}, headers=retry)
    assert issued.status_code == 201, issued.text
    code, enrolment_id = issued.json()["code"], issued.json()["id"]

    again = client.post(path, json={}, headers=retry)

    assert again.status_code == 409
    assert again.json()["type"] == "/problems/secret-not-replayable"
    assert again.json()["issued_id"] == enrolment_id
    assert code not in again.text
    assert code.replace("-", "") not in again.text
    assert enrolments_of(app, patient_id) == 1
    record = record_of(app, clinic.key_ids[Role.CLINICIAN], "enrol-at-intake")
    assert record.secret_withheld
    assert record.response_body is not None
    assert code not in record.response_body
    assert code.replace("-", "") not in record.response_body
    assert "enrolment_uri" not in record.response_body
    # The code still works once, for the app that received it.
    exchanged = client.post("/v1/enrolments/exchange", json={"code": code})
    assert exchanged.status_code == 201


def test_a_retry_with_another_body_is_still_refused_as_another_request(client: TestClient, clinic: ClinicKeys) -> None:
    retry = clinic.headers(Role.ADMIN, {"Idempotency-Key": "key-for-one-body"})
    assert client.post("/v1/api-keys", json={"role": "clinician"}, headers=retry).status_code == 201

    other = client.post("/v1/api-keys", json={"role": "researcher"}, headers=retry)

    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"


def test_the_openapi_schema_marks_every_secret_as_shown_once(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]

    marked = {
        (name, field)
        for name, schema in schemas.items()
        for field, spec in schema.get("properties", {}).items()
        if spec.get("x-shown-once") is True
    }

    assert {
        ("ApiKeyIssued", "key"),
        ("EnrolmentIssued", "code"),
        ("EnrolmentIssued", "enrolment_uri"),
        ("PatientToken", "token"),
    } <= marked
