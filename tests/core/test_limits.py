"""Rate limits are charged to whoever a request can be pinned on: a verified key, else the client's address."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.limits import RateLimiter
from app.core.state import state_of
from app.main import create_app
from tests.conftest import make_settings, new_clinic


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited_app(database_url: str, clock: Clock, **limits: Any) -> FastAPI:
    return create_app(make_settings(database_url, **limits), monotonic=clock)


@contextmanager
def caller_at(app: FastAPI) -> Iterator[tuple[TestClient, str]]:
    """A client calling from an address of its own (so no other test's requests share its bucket)."""
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    with TestClient(app, client=(address, 40000)) as client:
        yield client, address


def made_up_key() -> str:
    return f"co_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}"


def refusals_audited(app: FastAPI, address: str) -> int:
    with state_of(app).read_sessions() as db:
        count = db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.client_address == address, AuditEvent.outcome == "unauthenticated")
        )
    return int(count or 0)


def test_made_up_keys_from_one_address_share_that_addresses_limit(database_url: str) -> None:
    clock = Clock()
    app = limited_app(database_url, clock, unverified_rate_limit_per_minute=60, unverified_rate_limit_burst=3)
    with caller_at(app) as (client, address):
        clinic = new_clinic(app)
        flood = [
            client.post("/v1/patients", json={}, headers={"Authorization": f"Bearer {made_up_key()}"})
            for _ in range(10)
        ]
        still_valid = client.get("/v1/patients", headers=clinic.headers())
        clock.now += 1.0
        after_a_second = client.post("/v1/patients", json={}, headers={"Authorization": f"Bearer {made_up_key()}"})
        audited = refusals_audited(app, address)

    assert [response.status_code for response in flood] == [401] * 3 + [429] * 7
    refused = flood[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/rate-limited"
    assert int(refused.headers["retry-after"]) == 1
    assert still_valid.status_code == 200  # a verified key is not the address's traffic
    assert after_a_second.status_code == 401  # one token back after a second, at 60 a minute
    assert audited == 4  # the 401s only: throttled floods write nothing


def test_requests_without_credentials_are_limited_per_address(database_url: str) -> None:
    clock = Clock()
    app = limited_app(database_url, clock, unverified_rate_limit_per_minute=60, unverified_rate_limit_burst=2)
    with caller_at(app) as (client, _address), caller_at(app) as (elsewhere, _other):
        statuses = [client.get("/v1/patients").status_code for _ in range(3)]
        fhir = client.get("/fhir/metadata")
        other_address = elsewhere.get("/v1/patients").status_code

    assert statuses == [401, 401, 429]
    assert fhir.status_code == 429
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    assert int(fhir.headers["retry-after"]) >= 1
    assert [issue["code"] for issue in fhir.json()["issue"]] == ["throttled"]
    assert other_address == 401


def test_credentials_sent_to_a_public_endpoint_count_against_the_address(database_url: str) -> None:
    clock = Clock()
    app = limited_app(database_url, clock, unverified_rate_limit_per_minute=60, unverified_rate_limit_burst=2)
    with caller_at(app) as (client, _address):
        statuses = [
            client.get("/fhir/metadata", headers={"Authorization": f"Bearer {made_up_key()}"}).status_code
            for _ in range(3)
        ]

    assert statuses == [200, 200, 429]


def test_knowing_a_keys_prefix_spends_none_of_its_quota(database_url: str) -> None:
    clock = Clock()
    app = limited_app(
        database_url,
        clock,
        rate_limit_per_minute=60,
        rate_limit_burst=3,
        unverified_rate_limit_per_minute=60,
        unverified_rate_limit_burst=5,
    )
    with caller_at(app) as (client, _address):
        clinic = new_clinic(app)
        tag, prefix, _secret = clinic.keys[Role.CLINICIAN].split("_", 2)
        forged = f"{tag}_{prefix}_{uuid.uuid4().hex}"
        forgeries = [
            client.get("/v1/patients", headers={"Authorization": f"Bearer {forged}"}).status_code for _ in range(50)
        ]
        own = [client.get("/v1/patients", headers=clinic.headers()).status_code for _ in range(4)]

    assert forgeries == [401] * 5 + [429] * 45
    assert own == [200, 200, 200, 429]  # the key's own quota (burst 3) is whole, and still applies


def test_a_keys_own_quota_refills_with_time_and_is_its_own(database_url: str) -> None:
    clock = Clock()
    app = limited_app(database_url, clock, rate_limit_per_minute=60, rate_limit_burst=2)
    with caller_at(app) as (client, _address):
        clinic = new_clinic(app)
        spent = [client.get("/fhir/Questionnaire", headers=clinic.headers()).status_code for _ in range(3)]
        refused = client.get("/fhir/Questionnaire", headers=clinic.headers())
        other_key = client.get("/fhir/Questionnaire", headers=clinic.headers(Role.INTEGRATION)).status_code
        clock.now += 1.0
        refilled = client.get("/fhir/Questionnaire", headers=clinic.headers()).status_code

    assert spent == [200, 200, 429]
    assert refused.headers["content-type"].startswith("application/fhir+json")
    assert int(refused.headers["retry-after"]) == 1
    assert [issue["code"] for issue in refused.json()["issue"]] == ["throttled"]
    assert other_key == 200
    assert refilled == 200


def test_a_request_answered_before_its_key_was_checked_counts_against_the_address(database_url: str) -> None:
    clock = Clock()
    app = limited_app(database_url, clock, unverified_rate_limit_per_minute=60, unverified_rate_limit_burst=2)
    headers = {"Authorization": f"Bearer {made_up_key()}", "Content-Type": "application/json"}
    with caller_at(app) as (client, _address):
        malformed = [client.post("/v1/patients", content=b"{not json", headers=headers).status_code for _ in range(2)]
        anonymous = client.get("/v1/patients").status_code

    assert malformed == [422, 422]
    assert anonymous == 429


def test_the_token_bucket_refills_with_time() -> None:
    limiter = RateLimiter(per_minute=60, burst=1)

    assert limiter.allow("k", now=0.0) == 0
    assert limiter.allow("k", now=0.5) > 0
    assert limiter.allow("k", now=1.5) == 0
    assert limiter.allow("other", now=1.5) == 0


def test_requests_answered_past_the_limit_are_owed_at_most_one_burst() -> None:
    limiter = RateLimiter(per_minute=60, burst=2)
    for _ in range(10):
        limiter.charge("address", now=0.0)

    assert limiter.wait("address", now=0.0) == 3.0  # two owed, one to earn: never more than a burst in debt
    assert limiter.allow("address", now=3.0) == 0
