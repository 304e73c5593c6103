"""Enrolment codes cannot be guessed at speed: attempts are limited per address, wrong codes from all addresses
together."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings, new_clinic
from tests.core.test_limits import Clock


def guessing_app(database_url: str, clock: Clock, **limits: Any) -> FastAPI:
    return create_app(make_settings(database_url, **limits), monotonic=clock)


def address() -> tuple[str, int]:
    return (f"10.200.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}", 40000)


def wrong_code() -> dict[str, str]:
    return {"code": uuid.uuid4().hex[:12].upper()}


def test_enrolment_code_guesses_are_limited_per_address(database_url: str) -> None:
    clock = Clock()
    app = guessing_app(database_url, clock, enrolment_exchange_per_minute=6, enrolment_exchange_burst=3)
    with TestClient(app, client=address()) as guesser, TestClient(app, client=address()) as elsewhere:
        clinic = new_clinic(app)
        patient_id = guesser.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]
        code = guesser.post(f"/v1/patients/{patient_id}/enrolments", json={}, headers=clinic.headers()).json()["code"]
        guesses = [guesser.post("/v1/enrolments/exchange", json=wrong_code()) for _ in range(5)]
        right_code_too_soon = guesser.post("/v1/enrolments/exchange", json={"code": code}).status_code
        other_address = elsewhere.post("/v1/enrolments/exchange", json=wrong_code()).status_code
        clock.now += 10.0  # one attempt back (6 a minute)
        right_code_later = guesser.post("/v1/enrolments/exchange", json={"code": code}).status_code

    assert [guess.status_code for guess in guesses] == [401, 401, 401, 429, 429]
    refused = guesses[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/rate-limited"
    assert int(refused.headers["retry-after"]) == 10
    assert right_code_too_soon == 429
    assert other_address == 401
    assert right_code_later == 201


def test_wrong_enrolment_codes_from_every_address_share_one_budget(database_url: str) -> None:
    clock = Clock()
    app = guessing_app(database_url, clock, enrolment_exchange_failures_per_minute=3)
    statuses = []
    for _ in range(5):
        with TestClient(app, client=address()) as guesser:
            statuses.append(guesser.post("/v1/enrolments/exchange", json=wrong_code()).status_code)
    clock.now += 20.0  # one wrong code back (3 a minute)
    with TestClient(app, client=address()) as guesser:
        later = guesser.post("/v1/enrolments/exchange", json=wrong_code()).status_code

    assert statuses == [401, 401, 401, 429, 429]
    assert later == 401
