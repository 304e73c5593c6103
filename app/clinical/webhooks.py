"""Alert webhooks through an outbox: the delivery row is written in the alert's transaction and sent after commit.

After the transaction that raised alerts commits, a background thread POSTs each new delivery (JSON with ids and
the flag only, never item content) with a short timeout and records the outcome. A failed delivery stays pending;
``deliver_pending`` retries pending deliveries (from a scheduled job or the CLI). Receivers should de-duplicate on
the ``webhook-id`` header: a delivery can arrive twice if recording its success fails.

Before every attempt the URL is checked again (``app.clinical.destinations``: its host resolved, every address
vetted, the connection made to a vetted address) and the call is signed per Standard Webhooks
(``app.clinical.webhook_signing``): nothing is sent unsigned. Only a 2xx answer is a delivery; a redirect is not
followed (a failed attempt, recorded as such). The settings in force (``WEBHOOK_ALLOW_PRIVATE_NETWORKS``,
``ENVIRONMENT``, ``WEBHOOK_SIGNING_KEY``) are those ``use_settings`` gave the engine, else ``get_settings()``.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from app.clinical import destinations, webhook_signing
from app.clinical.models import ClinicSettings, RiskAlert, WebhookDelivery
from app.core.config import Settings, get_settings
from app.core.db import thread_engine, utcnow

logger = logging.getLogger(__name__)

EVENT = "risk_alert.raised"
TIMEOUT_SECONDS = 5.0
MAX_ATTEMPTS = 10
_PENDING = "clinical.webhook_deliveries"

_executor: ThreadPoolExecutor | None = None
_futures: set[Future[None]] = set()
_lock = threading.Lock()
_settings: WeakKeyDictionary[Engine, Settings] = WeakKeyDictionary()


def use_settings(settings: Settings, *engines: Engine) -> None:
    """Deliveries made through ``engines`` follow ``settings`` (the app's own, so a change to them shows at once)."""
    for engine in engines:
        _settings[engine] = settings


def settings_for(engine: Engine) -> Settings:
    return _settings.get(engine) or get_settings()


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


def enqueue(db: Session, *, alert: RiskAlert, url: str) -> WebhookDelivery:
    """Write the outbox row; it is sent once the surrounding transaction commits (never if it rolls back)."""
    delivery = WebhookDelivery(
        clinic_id=alert.clinic_id, alert_id=alert.id, url=url, payload=payload(alert), attempts=0
    )
    db.add(delivery)
    db.flush()
    db.info.setdefault(_PENDING, []).append(delivery.id)
    if not event.contains(db, "after_commit", _after_commit):
        event.listen(db, "after_commit", _after_commit)
    return delivery


def _after_commit(db: Session) -> None:
    ids: list[uuid.UUID] = db.info.pop(_PENDING, [])
    if ids:
        _submit(thread_engine(db), ids)


def _submit(engine: Engine, ids: list[uuid.UUID]) -> None:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="clinical-webhook")
        future = _executor.submit(deliver, engine, ids)
        _futures.add(future)
    future.add_done_callback(_futures.discard)


def wait_for_deliveries(timeout: float = 30.0) -> None:
    """Block until the deliveries submitted so far have finished (tests; graceful shutdown)."""
    with _lock:
        pending = list(_futures)
    wait(pending, timeout=timeout)


def deliver_pending(engine: Engine, *, limit: int = 100) -> int:
    """Retry undelivered webhooks (oldest first, up to MAX_ATTEMPTS each); returns how many were attempted."""
    with Session(engine) as db:
        ids = list(
            db.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.attempts < MAX_ATTEMPTS)
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
                .limit(limit)
            )
        )
    deliver(engine, ids)
    return len(ids)


def deliver(engine: Engine, ids: Iterable[uuid.UUID]) -> None:
    """POST each delivery outside any transaction, then record the outcome in a short transaction of its own."""
    settings = settings_for(engine)
    policy = destinations.policy_for(settings)
    signing_key = settings.webhook_signing_key.get_secret_value()
    for delivery_id in ids:
        with Session(engine) as db:
            delivery = db.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.delivered_at is not None:
                continue
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
        status, error = _post(url, body, delivery_id, secrets=secrets, policy=policy)
        with Session(engine) as db, db.begin():
            delivery = db.get(WebhookDelivery, delivery_id)
            if delivery is None:
                continue
            delivery.attempts += 1
            delivery.last_attempt_at = utcnow()
            delivery.last_status = status
            delivery.last_error = error
            if error is None:
                delivery.delivered_at = delivery.last_attempt_at


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
