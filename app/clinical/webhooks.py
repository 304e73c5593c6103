"""Webhooks through an outbox: a delivery row and its job, written in the transaction of the event that causes them.

``enqueue`` writes the delivery (the clinic's URL, the payload: ids and the event's name only, never item content)
and defers its job (``app.core.jobs.defer``): both are committed with the event, or neither. A delivery is made once
per event: ``(clinic_id, dedupe_key)`` is unique. The job (``deliver``, task ``DELIVER_TASK``) makes one attempt per
run: only a 2xx answer delivers; after a failed attempt the job runs again later (``BACKOFF``: exponential, with
jitter) until the last attempt fails, which leaves the delivery ``failed`` (the dead letter), for an admin to look at
(``list_deliveries``) and ``retry``. A reminder whose assessment was answered, declined or cancelled, or whose window
closed, before an attempt is ``withdrawn`` instead (not sent). Receivers should de-duplicate on the ``webhook-id``
header (the delivery's id): an attempt whose success could not be recorded (a worker killed mid-call) is made again.

Before every attempt the URL is checked again (``app.clinical.destinations``: its host resolved, every address
vetted, the connection made to a vetted address) and the call is signed per Standard Webhooks
(``app.clinical.webhook_signing``): nothing is sent unsigned. A redirect is not followed (a failed attempt, recorded
as such). The settings in force (``WEBHOOK_ALLOW_PRIVATE_NETWORKS``, ``ENVIRONMENT``, ``WEBHOOK_SIGNING_KEY``) are
those of the job's run (``JobRun.settings``: the worker's or the app's).
"""

from __future__ import annotations

import http.client
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.care.models import AssessmentOccurrence
from app.care.windows import OPEN
from app.clinical import destinations, webhook_signing
from app.clinical.models import ClinicSettings, RiskAlert, WebhookDelivery
from app.core.db import new_record_id, utcnow
from app.core.errors import Conflict, NotFound
from app.core.jobs import Backoff, JobRun, TryAgain, defer

logger = logging.getLogger(__name__)

EVENT = "risk_alert.raised"
DELIVER_TASK = "clinical.deliver_webhook"
TIMEOUT_SECONDS = 5.0
BACKOFF = Backoff(attempts=10, first=timedelta(seconds=30), factor=2.0, longest=timedelta(hours=4), jitter=0.25)
"""Ten attempts over about four hours: 30 s, 1, 2, 4 … 128 min apart (each up to a quarter sooner, at random)."""
PENDING, DELIVERED, FAILED, WITHDRAWN = "pending", "delivered", "failed", "withdrawn"
STATUSES = (PENDING, DELIVERED, FAILED, WITHDRAWN)


def payload(alert: RiskAlert) -> dict[str, str]:
    """Ids and the flag only: a receiver looks the rest up through the API with its own key."""
    return {
        "event": EVENT,
        "alert_id": str(alert.id),
        "clinic_id": str(alert.clinic_id),
        "patient_id": str(alert.patient_id),
        "measurement_id": str(alert.measurement_id),
        "flag": alert.flag,
    }


def enqueue_alert(db: Session, alert: RiskAlert, *, url: str) -> WebhookDelivery | None:
    """The risk alert's delivery (``enqueue``) to the clinic's ``url``, once per alert."""
    return enqueue(
        db, clinic_id=alert.clinic_id, event=EVENT, payload=payload(alert), dedupe_key=f"{EVENT}:{alert.id}", url=url
    )


def enqueue(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    event: str,
    payload: Mapping[str, str],
    dedupe_key: str,
    deliver_after: datetime | None = None,
    url: str | None = None,
) -> WebhookDelivery | None:
    """Write the delivery and defer its job (first attempt at ``deliver_after``, else at once), in ``db``'s
    transaction. None if the clinic has no webhook, or this event (``dedupe_key``) has a delivery already.
    ``url``: the clinic's webhook URL when the caller read it with the event's rows (an alert's INSERT returns it,
    reminders join it), so it is not looked up again for each delivery."""
    if url is None:
        url = db.scalar(select(ClinicSettings.webhook_url).where(ClinicSettings.clinic_id == clinic_id))
    if not url:
        return None
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_record_id(),
        "clinic_id": clinic_id,
        "event": event,
        "dedupe_key": dedupe_key,
        "alert_id": uuid.UUID(payload["alert_id"]) if "alert_id" in payload else None,
        "url": url,
        "payload": dict(payload),
        "status": PENDING,
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": deliver_after or now,
    }
    dialect = postgresql if db.connection().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(WebhookDelivery)
        .values(values)
        .on_conflict_do_nothing(index_elements=["clinic_id", "dedupe_key"])
        .returning(WebhookDelivery)
    )
    delivery: WebhookDelivery | None = db.scalars(statement).one_or_none()
    if delivery is None:
        return None
    defer(db, DELIVER_TASK, args={"delivery_id": str(delivery.id)}, scheduled_at=deliver_after)
    return delivery


def deliver(run: JobRun, *, delivery_id: str) -> None:
    """One attempt at a pending delivery: POST it outside any transaction, then record the outcome in a short
    transaction of its own. A failed attempt raises ``TryAgain`` unless it was the last, which fails the delivery."""
    settings = run.settings
    policy = destinations.policy_for(settings)
    signing_key = settings.webhook_signing_key.get_secret_value()
    key = uuid.UUID(delivery_id)
    with Session(run.engine) as db:
        delivery = db.get(WebhookDelivery, key)
        if delivery is None or delivery.status != PENDING:
            return
        if not _still_wanted(db, delivery):
            _withdraw(db, delivery)
            return
        url, body = delivery.url, json.dumps(delivery.payload).encode()
        clinic = db.get(ClinicSettings, delivery.clinic_id)
        salts = (
            webhook_signing.signing_salts(
                clinic.webhook_secret_salt,
                clinic.webhook_previous_secret_salt,
                clinic.webhook_secret_issued_at,
                now=utcnow(),
            )
            if clinic is not None
            else []
        )
        secrets = [webhook_signing.secret(signing_key, delivery.clinic_id, salt) for salt in salts]
    status, error = _post(url, body, key, secrets=secrets, policy=policy)
    with Session(run.engine) as db, db.begin():
        delivery = db.get(WebhookDelivery, key)
        if delivery is None:
            return
        delivery.attempts += 1
        delivery.last_attempt_at = utcnow()
        delivery.last_status = status
        delivery.last_error = error
        if error is None:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = DELIVERED, utcnow(), None
        elif run.retry_at is None:
            delivery.status, delivery.next_attempt_at = FAILED, None
        else:
            delivery.next_attempt_at = run.retry_at
    if error is not None and run.retry_at is not None:
        raise TryAgain(error, run.retry_at)


def _still_wanted(db: Session, delivery: WebhookDelivery) -> bool:
    """A delivery about an assessment (a reminder: its payload names one) is wanted only while the assessment is
    open and its window has not closed: one answered, declined or cancelled while its reminder waited (for quiet
    hours' end, or for a receiver that was down) needs no nudge, nor does a closed window."""
    assessment_id = delivery.payload.get("assessment_id")
    if assessment_id is None:
        return True
    occurrence = db.get(AssessmentOccurrence, uuid.UUID(assessment_id))
    return occurrence is not None and occurrence.state == OPEN and utcnow() < occurrence.due_by


def _withdraw(db: Session, delivery: WebhookDelivery) -> None:
    delivery.status, delivery.next_attempt_at = WITHDRAWN, None
    delivery.last_error = "withdrawn: the assessment was no longer open when its reminder was due to go"
    db.commit()


def list_deliveries(
    db: Session, *, clinic_id: uuid.UUID, status: str | None, limit: int, offset: int
) -> list[WebhookDelivery]:
    """The clinic's deliveries, newest first."""
    query: Select[WebhookDelivery] = select(WebhookDelivery).where(WebhookDelivery.clinic_id == clinic_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit).offset(offset)
    return list(db.scalars(query))


def retry(db: Session, *, clinic_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Give a failed delivery (a dead letter) a new round of attempts, the first at once."""
    delivery = db.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.clinic_id != clinic_id:
        raise NotFound(f"no webhook delivery {delivery_id}")
    if delivery.status != FAILED:
        raise Conflict(f"only a failed delivery is retried; this one is {delivery.status}")
    delivery.status, delivery.next_attempt_at = PENDING, utcnow()
    db.flush()
    defer(db, DELIVER_TASK, args={"delivery_id": str(delivery.id)})
    return delivery


def _post(
    url: str, body: bytes, delivery_id: uuid.UUID, *, secrets: list[bytes], policy: destinations.Policy
) -> tuple[int | None, str | None]:
    try:
        destination = destinations.check(url, policy)
    except destinations.RefusedDestination as refused:
        logger.warning("alert webhook refused: destination not allowed")
        return None, f"refused: {refused.reason}"[:200]
    if not secrets:
        logger.warning("alert webhook not sent: the clinic has no signing secret")
        return None, "not sent unsigned: the clinic has no webhook signing secret"
    message_id, timestamp = str(delivery_id), int(utcnow().timestamp())
    signatures = [
        webhook_signing.signature(secret, message_id=message_id, timestamp=timestamp, body=body) for secret in secrets
    ]
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "compassion-outcomes-webhook/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
    try:
        status = destinations.post(destination, body, headers, timeout=TIMEOUT_SECONDS)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        logger.warning("alert webhook delivery failed: %s", type(exc).__name__)
        return None, type(exc).__name__[:200]
    if 200 <= status < 300:
        return status, None
    if 300 <= status < 400:
        return status, f"HTTP {status}: redirects are not followed"
    return status, f"HTTP {status}"
