"""A verified key is trusted for API_KEY_CACHE_SECONDS: expiry still checked each time, revocation here at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.auth import verified_keys
from app.auth.models import ApiKey
from app.auth.permissions import Role
from app.auth.service import Principal
from app.auth.verified_keys import VerifiedKeys
from app.core.db import transaction
from app.core.state import state_of
from tests.conftest import ClinicKeys

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def principal() -> Principal:
    return Principal(key_id=uuid.uuid4(), clinic_id=uuid.uuid4(), role=Role.CLINICIAN)


def test_a_verified_key_is_trusted_for_the_configured_seconds_only(clock: Clock) -> None:
    keys = VerifiedKeys(seconds=5, clock=clock)
    who = principal()
    keys.remember("hash", who, expires_at=None)

    clock.now += 4.9
    assert keys.principal("hash", NOW) == who
    clock.now += 0.2
    assert keys.principal("hash", NOW) is None


def test_a_key_that_expires_meanwhile_is_not_trusted(clock: Clock) -> None:
    keys = VerifiedKeys(seconds=60, clock=clock)
    keys.remember("hash", principal(), expires_at=NOW + timedelta(seconds=1))

    assert keys.principal("hash", NOW) is not None
    assert keys.principal("hash", NOW + timedelta(seconds=1)) is None


def test_forgetting_a_key_forgets_it_under_every_hash_and_nothing_else(clock: Clock) -> None:
    keys = VerifiedKeys(seconds=60, clock=clock)
    revoked, other = principal(), principal()
    keys.remember("a", revoked, expires_at=None)
    keys.remember("b", other, expires_at=None)

    keys.forget(revoked.key_id)

    assert keys.principal("a", NOW) is None
    assert keys.principal("b", NOW) == other


def test_zero_seconds_remembers_nothing_and_the_cache_is_bounded(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    off = VerifiedKeys(seconds=0, clock=clock)
    off.remember("hash", principal(), expires_at=None)
    assert off.principal("hash", NOW) is None

    monkeypatch.setattr(verified_keys, "CAPACITY", 2)
    bounded = VerifiedKeys(seconds=60, clock=clock)
    for name in ("a", "b", "c"):
        bounded.remember(name, principal(), expires_at=None)
    assert [bounded.principal(name, NOW) is not None for name in ("a", "b", "c")] == [False, False, True]


def test_a_key_revoked_behind_the_servers_back_is_refused_once_the_cache_time_has_passed(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_of(app).part(VerifiedKeys), "clock", clock)
    assert client.get("/v1/patients", headers=clinic.headers()).status_code == 200
    for db in transaction(state_of(app).write_sessions):  # as the CLI or another worker process would
        db.execute(update(ApiKey).where(ApiKey.id == clinic.key_ids[Role.CLINICIAN]).values(revoked_at=NOW))

    assert client.get("/v1/patients", headers=clinic.headers()).status_code == 200
    clock.now += state_of(app).settings.api_key_cache_seconds
    assert client.get("/v1/patients", headers=clinic.headers()).status_code == 401
