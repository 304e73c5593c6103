"""Report links: a short-lived URL that opens one patient's clinician report without an API key, for an EHR frame or
a browser.

How it holds up against someone who is not meant to see the report:

- The token is 256 random bits in the URL's path (a fragment never reaches the server, and a query string is more
  often logged). Only its HMAC under the API-key pepper is stored (``app.core.security``, as API keys are), so the
  table holds no usable secret; the row found by its HMAC is compared again in constant time.
- A link opens one page: the report of its one patient (``GET /v1/report-links/{token}``). It authenticates nothing
  else: no other route accepts it, it cannot write, and its page fetches nothing (no script, no external resource).
- It expires after at most ``MAX_MINUTES`` minutes and can be revoked at once; an expired or revoked link is refused
  (410 with a page that says which), an unknown token too (404). Every use, honoured or refused, is audited in the
  link's clinic, naming the link and its patient, never the token (``app.core.audit_notes.LinkUse``).
- The page is sent with ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` (the URL never leaves in a
  ``Referer``) and a ``Content-Security-Policy`` whose ``frame-ancestors`` lists only the origins the clinic's admin
  allowed (``report_frame_origins``; none by default, with ``X-Frame-Options: DENY``).
- A link shows what its creator's role may see: the alerts only if that role may read alerts.
- Requests without credentials count against their address's rate limit (``app.core.limits``), so guessing is slow as
  well as hopeless.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clinical.models import ReportLink
from app.core.audit_notes import LinkUse, note_link_use
from app.core.db import utcnow
from app.core.errors import Gone, NotFound
from app.core.security import hash_api_key, key_matches

MIN_MINUTES = 1
MAX_MINUTES = 60
PATH = "/v1/report-links"
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{43}$"  # noqa: S105 - a pattern, not a secret
"""``secrets.token_urlsafe(32)``: 32 random bytes, 43 URL-safe characters."""


@dataclass(frozen=True)
class IssuedLink:
    link: ReportLink
    token: str


def url(public_base: str, token: str) -> str:
    """``<PUBLIC_BASE_URL>/v1/report-links/<token>``: the service's configured address, never a request's Host."""
    return f"{public_base}{PATH}/{token}"


def create(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    created_by_key_id: uuid.UUID,
    valid_minutes: int,
    include_alerts: bool,
    pepper: str,
) -> IssuedLink:
    """A link to the report of a patient already checked to belong to ``clinic_id``."""
    token = secrets.token_urlsafe(32)
    link = ReportLink(
        clinic_id=clinic_id,
        patient_id=patient_id,
        token_hash=hash_api_key(token, pepper),
        include_alerts=include_alerts,
        created_by_key_id=created_by_key_id,
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(minutes=valid_minutes),
    )
    db.add(link)
    db.flush()
    return IssuedLink(link=link, token=token)


def list_links(
    db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, limit: int, offset: int
) -> list[ReportLink]:
    """The patient's links, newest first (expired and revoked ones too: what was handed out, and until when)."""
    return list(
        db.scalars(
            select(ReportLink)
            .where(ReportLink.clinic_id == clinic_id, ReportLink.patient_id == patient_id)
            .order_by(ReportLink.created_at.desc(), ReportLink.id)
            .limit(limit)
            .offset(offset)
        )
    )


def revoke(
    db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, link_id: uuid.UUID, key_id: uuid.UUID
) -> ReportLink:
    """Stop a link from opening anything, at once; revoking it again changes nothing."""
    link = db.scalar(
        select(ReportLink).where(
            ReportLink.id == link_id, ReportLink.clinic_id == clinic_id, ReportLink.patient_id == patient_id
        )
    )
    if link is None:
        raise NotFound(f"no report link {link_id} for this patient")
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        link.revoked_by_key_id = key_id
        db.flush()
    return link


LinkStatus = Literal["active", "expired", "revoked"]


def status_of(link: ReportLink, now: datetime) -> LinkStatus:
    """``active``, ``expired`` or ``revoked``."""
    if link.revoked_at is not None:
        return "revoked"
    return "expired" if link.expires_at <= now else "active"


def open_link(db: Session, *, token: str, pepper: str) -> ReportLink:
    """The link a token opens; ``NotFound`` (unknown) or ``Gone`` (expired, revoked: the problem says which). A
    found link is noted for the audit trail either way."""
    link = db.scalar(select(ReportLink).where(ReportLink.token_hash == hash_api_key(token, pepper)))
    if link is None or not key_matches(token, link.token_hash, pepper):
        raise NotFound("no such report link; ask for a new one")
    note_link_use(db, LinkUse(link_id=link.id, clinic_id=link.clinic_id, patient_id=link.patient_id))
    status = status_of(link, utcnow())
    if status == "revoked":
        raise Gone("this report link was revoked; ask for a new one")
    if status == "expired":
        raise Gone("this report link has expired; ask for a new one")
    return link
