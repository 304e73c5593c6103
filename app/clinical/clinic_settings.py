"""A clinic's crisis text, webhook, reminders' quiet hours and alert paging, set by its admin, and the webhook's
signing secret."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app.auth.service import clinic_is_synthetic
from app.care.windows import time_zone
from app.clinical import destinations, webhook_signing
from app.clinical.models import ClinicSettings
from app.clinical.schemas import (
    ClinicSettingsRead,
    ClinicSettingsWrite,
    ClinicSettingsWritten,
    QuietHours,
    WebhookSecretIssued,
)
from app.core.db import utcnow
from app.core.errors import Conflict, FieldError, InvalidInput


def get(db: Session, *, clinic_id: uuid.UUID) -> ClinicSettings | None:
    return db.get(ClinicSettings, clinic_id)


def read(db: Session, *, clinic_id: uuid.UUID) -> ClinicSettingsRead:
    return to_read(get(db, clinic_id=clinic_id), synthetic=clinic_is_synthetic(db, clinic_id=clinic_id))


def vet(data: ClinicSettingsWrite, policy: destinations.Policy) -> None:
    """Refuse (422 on ``webhook_url``) a webhook URL that ``destinations.check`` does not allow. It may resolve the
    host: call it before the request takes its write turn."""
    if data.webhook_url is None:
        return
    url = str(data.webhook_url)
    try:
        destinations.check(url, policy)
    except destinations.RefusedDestination as refused:
        raise InvalidInput(
            "webhook_url is not an allowed destination; nothing was stored",
            errors=[FieldError(field="webhook_url", message=refused.reason, value=url)],
        ) from None


def put(
    db: Session, *, clinic_id: uuid.UUID, key_id: uuid.UUID, data: ClinicSettingsWrite, signing_key: str
) -> ClinicSettingsWritten:
    """Replace the clinic's settings as a whole (an absent field is cleared); ``data`` has passed ``vet``.

    The first webhook URL set creates the webhook's signing secret, returned in this response only; clearing the URL
    drops the secret. Deliveries check the URL again (``app.clinical.webhooks``).
    """
    url = str(data.webhook_url) if data.webhook_url else None
    zone = check_timezone(data.timezone)
    row = get(db, clinic_id=clinic_id)
    if row is None:
        row = ClinicSettings(clinic_id=clinic_id)
        db.add(row)
    row.crisis_text = data.crisis_text
    row.webhook_url = url
    quiet = data.reminder_quiet_hours
    row.reminder_quiet_hours_start = quiet.start if quiet else None
    row.reminder_quiet_hours_end = quiet.end if quiet else None
    row.item9_missing_pages = data.item9_missing_pages
    row.historical_alert_days = data.historical_alert_days
    row.timezone = zone.key
    row.report_frame_origins = list(data.report_frame_origins) if data.report_frame_origins else None
    new_secret = None
    if url is None:
        row.webhook_secret_salt = row.webhook_previous_secret_salt = row.webhook_secret_issued_at = None
    elif row.webhook_secret_salt is None:
        new_secret = _issue(row, clinic_id=clinic_id, signing_key=signing_key, keep_previous=False)
    row.updated_by_key_id = key_id
    row.updated_at = utcnow()
    db.flush()
    read_back = to_read(row, synthetic=clinic_is_synthetic(db, clinic_id=clinic_id))
    return ClinicSettingsWritten(**read_back.model_dump(), webhook_secret=new_secret)


def rotate_webhook_secret(
    db: Session, *, clinic_id: uuid.UUID, key_id: uuid.UUID, signing_key: str
) -> WebhookSecretIssued:
    """Replace the webhook's signing secret; the previous one still signs for ``webhook_signing.OVERLAP``."""
    row = get(db, clinic_id=clinic_id)
    if row is None or row.webhook_url is None:
        raise Conflict("the clinic has no webhook: set webhook_url first (that issues its signing secret)")
    secret = _issue(row, clinic_id=clinic_id, signing_key=signing_key, keep_previous=True)
    row.updated_by_key_id = key_id
    row.updated_at = utcnow()
    db.flush()
    assert row.webhook_secret_issued_at is not None
    return WebhookSecretIssued(
        secret=secret,
        issued_at=row.webhook_secret_issued_at,
        previous_valid_until=(
            row.webhook_secret_issued_at + webhook_signing.OVERLAP if row.webhook_previous_secret_salt else None
        ),
    )


def _issue(row: ClinicSettings, *, clinic_id: uuid.UUID, signing_key: str, keep_previous: bool) -> str:
    """A new salt on ``row`` (only the salt is stored); returns the secret it gives, as shown to the admin."""
    row.webhook_previous_secret_salt = row.webhook_secret_salt if keep_previous else None
    row.webhook_secret_salt = webhook_signing.new_salt()
    row.webhook_secret_issued_at = utcnow()
    return webhook_signing.shown(webhook_signing.secret(signing_key, clinic_id, row.webhook_secret_salt))


def check_timezone(name: str) -> ZoneInfo:
    """The named IANA zone, or a 422 naming ``timezone`` (nothing stored)."""
    zone = time_zone(name)
    if zone is None:
        raise InvalidInput(
            "timezone is not an IANA time zone; nothing was stored",
            errors=[
                FieldError(
                    field="timezone", message="unknown IANA time zone; use a name such as Europe/Oslo", value=name
                )
            ],
        )
    return zone


def zone_of(row: ClinicSettings | None) -> ZoneInfo:
    """The clinic's time zone (UTC when it set none, or if its stored name is no longer known here)."""
    return (time_zone(row.timezone) if row is not None else None) or ZoneInfo("UTC")


def frame_origins(row: ClinicSettings | None) -> list[str] | None:
    """The origins allowed to frame a report link's page (checked on input: ``https://host[:port]`` only)."""
    return row.report_frame_origins if row is not None and row.report_frame_origins else None


def to_read(row: ClinicSettings | None, *, synthetic: bool = False) -> ClinicSettingsRead:
    """The settings as read back; ``synthetic``: the clinic's own mark (``Clinic.synthetic``), shown with them."""
    if row is None:
        return ClinicSettingsRead(crisis_text=None, webhook_url=None, updated_at=None, synthetic=synthetic)
    return ClinicSettingsRead(
        crisis_text=row.crisis_text,
        webhook_url=row.webhook_url,
        webhook_secret_issued_at=row.webhook_secret_issued_at,
        reminder_quiet_hours=quiet_hours(row),
        item9_missing_pages=row.item9_missing_pages,
        historical_alert_days=row.historical_alert_days,
        synthetic=synthetic,
        timezone=row.timezone,
        report_frame_origins=row.report_frame_origins,
        updated_at=row.updated_at,
    )


def quiet_hours(row: ClinicSettings) -> QuietHours | None:
    if row.reminder_quiet_hours_start is None or row.reminder_quiet_hours_end is None:
        return None
    return QuietHours(start=row.reminder_quiet_hours_start, end=row.reminder_quiet_hours_end)
