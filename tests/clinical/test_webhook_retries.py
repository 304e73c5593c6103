"""A delivery that fails is tried again with growing, jittered delays (exponential backoff) until its last attempt,
then left ``failed`` (the dead letter); an admin lists deliveries and gives a failed one a new round. Time is the
test's clock; jobs run through ``run_jobs`` (the SQLite runner, or a procrastinate worker), never by waiting."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.clinical import webhooks
from app.core.datetimes import CLOCK
from app.core.state import state_of
from tests.clinical.conftest import Receiver, day, deliveries, phq9, seed, set_webhook
from tests.conftest import ClinicKeys, run_jobs


@pytest.fixture
def clock() -> Iterator[datetime]:
    """Frozen at the real time (never behind it: procrastinate's workers take jobs by the server's clock)."""
    start = datetime.now(UTC).replace(microsecond=0)
    with CLOCK.frozen_at(start):
        yield start


def fail_until_dead(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver) -> None:
    set_webhook(client, clinic, receiver.url)
    receiver.status = 503
    seed(app, clinic, patient_id, "phq9", phq9(14, item9=2), day(0))


def test_a_failing_delivery_is_retried_with_growing_jittered_delays_then_dead_lettered(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver, clock: datetime
) -> None:
    fail_until_dead(app, client, clinic, patient_id, receiver)
    rng = random.Random(19)
    delays = []

    for attempt in range(1, webhooks.BACKOFF.attempts + 1):
        run_jobs(app, now=CLOCK.now(), rng=rng)
        [delivery] = deliveries(app, clinic)
        assert delivery.attempts == attempt
        if delivery.next_attempt_at is None:
            break
        delays.append(delivery.next_attempt_at - CLOCK.now())
        CLOCK.move_to(delivery.next_attempt_at)
    run_jobs(app, now=CLOCK.now() + webhooks.BACKOFF.longest, rng=rng)
    [dead] = deliveries(app, clinic)

    assert len(delays) == webhooks.BACKOFF.attempts - 1
    for attempt, delay in enumerate(delays, start=1):
        longest = webhooks.BACKOFF.base_delay(attempt)
        assert longest * (1 - webhooks.BACKOFF.jitter) <= delay <= longest, (attempt, delay)
    assert all(later > earlier for earlier, later in zip(delays, delays[1:], strict=False))
    assert (dead.status, dead.attempts, dead.next_attempt_at) == ("failed", webhooks.BACKOFF.attempts, None)
    assert (dead.last_status, dead.last_error, dead.delivered_at) == (503, "HTTP 503", None)
    assert len(receiver.calls) == webhooks.BACKOFF.attempts
    assert len({headers["webhook-id"] for headers, _payload in receiver.calls}) == 1


def dead_letter(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver) -> str:
    """A delivery that used every attempt."""
    fail_until_dead(app, client, clinic, patient_id, receiver)
    for _ in range(webhooks.BACKOFF.attempts):
        run_jobs(app, now=CLOCK.now())
        [delivery] = deliveries(app, clinic)
        if delivery.next_attempt_at is None:
            break
        CLOCK.move_to(delivery.next_attempt_at)
    [dead] = deliveries(app, clinic)
    assert dead.status == "failed"
    return str(dead.id)


def test_an_admin_lists_the_dead_letters_and_retries_one(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver, clock: datetime
) -> None:
    delivery_id = dead_letter(app, client, clinic, patient_id, receiver)
    admin = clinic.headers(Role.ADMIN)
    failed = client.get("/v1/clinic/webhook-deliveries?status=failed", headers=admin)
    pending = client.get("/v1/clinic/webhook-deliveries?status=pending", headers=admin)
    receiver.status = 204

    retried = client.post(f"/v1/clinic/webhook-deliveries/{delivery_id}/retry", headers=admin)
    run_jobs(app, now=CLOCK.now())
    delivered = client.get("/v1/clinic/webhook-deliveries", headers=admin)
    again = client.post(f"/v1/clinic/webhook-deliveries/{delivery_id}/retry", headers=admin)

    assert failed.status_code == 200, failed.text
    [item] = failed.json()["items"]
    assert set(item) == {
        "id",
        "event",
        "status",
        "attempts",
        "last_status",
        "last_error",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
        "delivered_at",
    }
    assert (item["id"], item["event"], item["status"]) == (delivery_id, "risk_alert.raised", "failed")
    assert (item["attempts"], item["last_status"], item["last_error"]) == (webhooks.BACKOFF.attempts, 503, "HTTP 503")
    assert pending.json()["items"] == []
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    [now_delivered] = delivered.json()["items"]
    assert (now_delivered["status"], now_delivered["attempts"]) == ("delivered", webhooks.BACKOFF.attempts + 1)
    assert now_delivered["delivered_at"] is not None
    assert receiver.calls[-1][0]["webhook-id"] == delivery_id
    assert again.status_code == 409


def test_only_an_admin_of_the_clinic_sees_or_retries_its_deliveries(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    other_clinic: ClinicKeys,
    patient_id: str,
    receiver: Receiver,
    clock: datetime,
) -> None:
    delivery_id = dead_letter(app, client, clinic, patient_id, receiver)

    theirs = client.post(f"/v1/clinic/webhook-deliveries/{delivery_id}/retry", headers=other_clinic.headers(Role.ADMIN))
    their_list = client.get("/v1/clinic/webhook-deliveries", headers=other_clinic.headers(Role.ADMIN))
    clinician = client.post(f"/v1/clinic/webhook-deliveries/{delivery_id}/retry", headers=clinic.headers())
    clinician_list = client.get("/v1/clinic/webhook-deliveries", headers=clinic.headers())
    unknown_status = client.get("/v1/clinic/webhook-deliveries?status=lost", headers=clinic.headers(Role.ADMIN))

    assert theirs.status_code == 404
    assert their_list.json()["items"] == []
    assert (clinician.status_code, clinician_list.status_code) == (403, 403)
    assert unknown_status.status_code == 422
    assert [delivery.status for delivery in deliveries(app, clinic)] == ["failed"]


def test_an_event_is_delivered_once_however_often_it_is_enqueued(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url)
    payload = {"event": "assessment.due", "occurrence_id": "0190d7c4-0000-7000-8000-000000000001"}

    with state_of(app).write_sessions() as db, db.begin():
        first = webhooks.enqueue(
            db, clinic_id=clinic.id, event="assessment.due", payload=payload, dedupe_key="assessment.due:1"
        )
        second = webhooks.enqueue(
            db, clinic_id=clinic.id, event="assessment.due", payload=payload, dedupe_key="assessment.due:1"
        )
    run_jobs(app)

    assert first is not None
    assert second is None
    [(_headers, sent)] = receiver.calls
    assert sent == payload
    [delivery] = deliveries(app, clinic)
    assert (delivery.event, delivery.alert_id, delivery.status) == ("assessment.due", None, "delivered")


def test_a_delivery_waits_for_its_time(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, receiver: Receiver, clock: datetime
) -> None:
    """``deliver_after`` (the end of quiet hours, say): nothing is sent before."""
    set_webhook(client, clinic, receiver.url)
    later = clock.replace(microsecond=0) + webhooks.BACKOFF.first * 20

    with state_of(app).write_sessions() as db, db.begin():
        webhooks.enqueue(
            db,
            clinic_id=clinic.id,
            event="assessment.due",
            payload={"event": "assessment.due"},
            dedupe_key="assessment.due:later",
            deliver_after=later,
        )
    run_jobs(app, now=clock)
    before = len(receiver.calls)
    CLOCK.move_to(later)
    run_jobs(app, now=later)

    assert before == 0
    assert len(receiver.calls) == 1
    [delivery] = deliveries(app, clinic)
    assert delivery.status == "delivered"
