"""An Idempotency-Key replays the first answer whole (status, body, where and which version), to the same request
only (method, path, query and body), for IDEMPOTENCY_TTL_HOURS and no longer, and its records never hold a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import func, select

from app.auth import service as auth
from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from app.core.db import create_db_engine, make_sessionmaker, transaction, utcnow
from app.core.migrations import upgrade_to_head
from app.core.state import state_of
from app.idempotency.models import IdempotencyRecord
from app.idempotency.service import IdempotencyGuard, canonical_query, claim, purge_expired
from app.patients.models import Patient
from tests.conftest import ISSUE_PHQ9, TEST_PEPPER, ClinicKeys, make_settings
from tests.fhir.conftest import FHIR_JSON, US_CORE_QUESTIONNAIRE, about, fixture, headers, register

ROOT = Path(__file__).resolve().parents[2]
TTL = timedelta(hours=24)


class Clock:
    """The service's "now" (``app.core.datetimes.CLOCK``), frozen and moved by the test."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        CLOCK.move_to(now)

    @property
    def now(self) -> datetime:
        return self._now

    @now.setter
    def now(self, moment: datetime) -> None:
        self._now = moment
        CLOCK.move_to(moment)


@pytest.fixture
def clock() -> Iterator[Clock]:
    start = utcnow()
    with CLOCK.frozen_at(start):
        yield Clock(start)


def patients_of(app: FastAPI, clinic: ClinicKeys) -> int:
    with state_of(app).read_sessions() as db:
        return int(db.scalar(select(func.count()).where(Patient.clinic_id == clinic.id)) or 0)


def records_of(app: FastAPI, key_id: uuid.UUID) -> list[IdempotencyRecord]:
    with state_of(app).read_sessions() as db:
        return list(db.scalars(select(IdempotencyRecord).where(IdempotencyRecord.api_key_id == key_id)))


def test_a_replay_repeats_the_first_answers_location(client: TestClient, clinic: ClinicKeys) -> None:
    retry = clinic.headers(extra={"Idempotency-Key": "create-patient-1"})

    first = client.post("/v1/patients", json={}, headers=retry)
    again = client.post("/v1/patients", json={}, headers=retry)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"] == f"/v1/patients/{first.json()['id']}"
    assert again.headers["content-type"] == "application/json"


@pytest.mark.parametrize("prefer", ["return=representation", "return=minimal"])
def test_a_fhir_replay_repeats_location_version_and_media_type(
    client: TestClient, clinic: ClinicKeys, patient_id: str, prefer: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    body = json.dumps(about(fixture("qr-phq9-uscore.json"), patient_id))
    retry = headers(clinic, extra={"Idempotency-Key": f"qr-{prefer}", "Prefer": prefer})

    first = client.post("/fhir/QuestionnaireResponse", content=body, headers=retry)
    again = client.post("/fhir/QuestionnaireResponse", content=body, headers=retry)

    assert (first.status_code, again.status_code) == (201, 201), first.text
    assert again.headers["idempotent-replayed"] == "true"
    for name in ("location", "etag", "last-modified"):
        assert again.headers[name] == first.headers[name], name
    assert first.headers["location"].startswith("http://testserver/fhir/QuestionnaireResponse/")
    assert again.headers["content-type"] == first.headers["content-type"] == FHIR_JSON


def test_the_same_key_with_another_query_string_is_another_request(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    retry = clinic.headers(extra={"Idempotency-Key": "with-query"})
    assert client.post("/v1/patients?source=a&batch=1", json={}, headers=retry).status_code == 201

    reordered = client.post("/v1/patients?batch=1&source=a", json={}, headers=retry)
    other = client.post("/v1/patients?source=b&batch=1", json={}, headers=retry)

    assert reordered.status_code == 201
    assert reordered.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert patients_of(app, clinic) == 1


def test_query_parameters_are_fingerprinted_in_a_canonical_order() -> None:
    assert canonical_query("b=2&a=1&a=0&c=") == canonical_query("c=&a=0&b=2&a=1") == "a=0&a=1&b=2&c="
    assert canonical_query("a=1") != canonical_query("a=2")
    assert canonical_query("") == ""


def test_a_key_is_replayed_for_the_time_to_live_and_then_starts_afresh(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, clock: Clock
) -> None:
    ttl = timedelta(hours=state_of(app).settings.idempotency_ttl_hours)
    retry = clinic.headers(extra={"Idempotency-Key": "daily-sync"})
    first = client.post("/v1/patients", json={}, headers=retry)
    issued_at = clock.now

    clock.now = issued_at + ttl
    within = client.post("/v1/patients", json={}, headers=retry)
    clock.now = issued_at + ttl + timedelta(seconds=1)
    reused = client.post("/v1/patients", json={"identifiers": []}, headers=retry)  # another body: a new request
    clock.now = issued_at + ttl + timedelta(hours=1)
    retried = client.post("/v1/patients", json={"identifiers": []}, headers=retry)

    assert within.headers["idempotent-replayed"] == "true"
    assert within.json()["id"] == first.json()["id"]
    assert reused.status_code == 201, reused.text
    assert "idempotent-replayed" not in reused.headers
    assert reused.json()["id"] != first.json()["id"]
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.json()["id"] == reused.json()["id"]
    assert patients_of(app, clinic) == 2
    [record] = records_of(app, clinic.key_ids[Role.CLINICIAN])
    assert record.created_at == issued_at + ttl + timedelta(seconds=1)


def test_expired_records_are_purged_in_batches_and_live_ones_kept(app: FastAPI, clinic: ClinicKeys) -> None:
    key_id = clinic.key_ids[Role.CLINICIAN]
    start = utcnow() - timedelta(days=1000)  # older than any other test's record: the purges meet only these
    for db in transaction(state_of(app).write_sessions):
        for hours in (0, 1, 2, 30):
            claim(
                db,
                api_key_id=key_id,
                key=f"purge-{hours}",
                fingerprint="0" * 64,
                now=start - timedelta(hours=hours),
                ttl=TTL,
            ).respond({}, status_code=201)

    batches = []
    for later in (timedelta(0), timedelta(hours=23, minutes=30), timedelta(hours=23, minutes=30)):
        for db in transaction(state_of(app).write_sessions):
            batches.append(purge_expired(db, now=start + later, ttl=TTL, batch=1))

    assert batches == [1, 1, 1]  # the 30-hour-old record, then the 2- and 1-hour-old ones, one per batch
    assert [record.key for record in records_of(app, key_id)] == ["purge-0"]


def test_the_purge_command_deletes_only_expired_records(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'purge.db'}"
    upgrade_to_head(url)
    engine = create_db_engine(make_settings(url))
    now = utcnow()
    for db in transaction(make_sessionmaker(engine)):
        clinic = auth.get_or_create_clinic(db, name="purge")
        key_id = auth.issue_api_key(db, clinic=clinic, role=Role.CLINICIAN, pepper=TEST_PEPPER).api_key.id
        for name, age in (("old", timedelta(hours=25)), ("young", timedelta(hours=23))):
            claim(db, api_key_id=key_id, key=name, fingerprint="0" * 64, now=now - age, ttl=TTL).respond({})
    env = {**os.environ, "DATABASE_URL": url, "API_KEY_PEPPER": TEST_PEPPER, "IDEMPOTENCY_TTL_HOURS": "24"}

    result = subprocess.run(
        [sys.executable, "-m", "app", "purge-idempotency-records"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )

    assert "Deleted 1 Idempotency-Key records" in result.stderr
    assert result.stdout == ""
    with make_sessionmaker(engine)() as db:
        assert list(db.scalars(select(IdempotencyRecord.key))) == ["young"]
    engine.dispose()


def test_an_expired_key_starts_afresh_on_a_bounded_write_too(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, clock: Clock
) -> None:
    ttl = timedelta(hours=state_of(app).settings.idempotency_ttl_hours)
    retry = clinic.headers(extra={"Idempotency-Key": "tablet-submission"})
    path = f"/v1/patients/{patient_id}/measurements"
    body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00+01:00"}
    first = client.post(path, json=body, headers=retry)
    replayed = client.post(path, json=body, headers=retry)
    clock.now += ttl + timedelta(minutes=1)
    afresh = client.post(path, json=body, headers=retry)

    assert (first.status_code, replayed.status_code, afresh.status_code) == (201, 201, 201), afresh.text
    assert replayed.headers["location"] == first.headers["location"]
    assert replayed.json()["id"] == first.json()["id"]
    assert "idempotent-replayed" not in afresh.headers
    assert afresh.json()["id"] != first.json()["id"]


def test_an_answer_is_written_as_fastapis_json_response_writes_it() -> None:
    """What json cannot write itself (times, ids, enums, models) goes through jsonable_encoder: the same bytes as a
    JSONResponse of the encoded payload, so a replay repeats them exactly."""

    class Shape(BaseModel):
        at: datetime

    payload = {
        "when": datetime(2026, 12, 5, 9, 30, tzinfo=UTC),
        "id": uuid.UUID("018f2d6e-0000-7000-8000-000000000001"),
        "role": Role.CLINICIAN,
        "shape": Shape(at=datetime(2026, 12, 5, tzinfo=UTC)),
        "text": 'ü \\ "quoted"',
        "items": [1, 2.5, None, True],
    }

    answer = IdempotencyGuard().respond(payload, status_code=201, media_type="application/fhir+json")

    assert answer.body == JSONResponse(jsonable_encoder(payload)).body
    assert (answer.status_code, answer.media_type) == (201, "application/fhir+json")
