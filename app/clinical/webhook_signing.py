"""Signing alert webhooks per the Standard Webhooks specification (symmetric, ``v1``: HMAC-SHA256).

A clinic's signing secret is never stored: the database keeps a random salt per clinic, and the secret is derived
from it and the server's ``WEBHOOK_SIGNING_KEY`` (HMAC-SHA256, domain-separated), so a copy of the database alone
signs nothing. The secret is shown to the clinic admin as ``whsec_`` + base64 when the webhook is first set and at
each rotation, never otherwise. After a rotation the previous secret also signs for ``OVERLAP`` (the
``webhook-signature`` header then holds both signatures, as the specification provides for zero-downtime rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix the specification gives secrets, not a secret
OVERLAP = timedelta(hours=24)
_LABEL = b"compassion-outcomes webhook-signing-secret v1\x00"


def new_salt() -> str:
    """A fresh random salt: a new secret for the clinic."""
    return secrets.token_hex(16)


def secret(signing_key: str, clinic_id: uuid.UUID, salt: str) -> bytes:
    """The clinic's 32-byte signing secret for ``salt``."""
    message = _LABEL + clinic_id.bytes + b"\x00" + salt.encode()
    return hmac.new(signing_key.encode(), message, hashlib.sha256).digest()


def shown(secret_bytes: bytes) -> str:
    """The secret as the clinic sees it (and as Standard Webhooks libraries take it): ``whsec_`` + base64."""
    return SECRET_PREFIX + base64.b64encode(secret_bytes).decode()


def signature(secret_bytes: bytes, *, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,`` + base64(HMAC-SHA256(secret, ``{id}.{timestamp}.{body}``)): one entry of ``webhook-signature``."""
    digest = hmac.new(secret_bytes, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signing_salts(
    current: str | None, previous: str | None, rotated_at: datetime | None, *, now: datetime
) -> list[str]:
    """The salts whose secrets sign a delivery made at ``now``: the current one, and the previous one within
    ``OVERLAP`` of the rotation. None at all when the clinic has no secret (nothing is then sent)."""
    if current is None:
        return []
    if previous is not None and rotated_at is not None and now < rotated_at + OVERLAP:
        return [current, previous]
    return [current]
