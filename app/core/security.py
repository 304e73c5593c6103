"""API keys: 256 random bits, shown once, stored as HMAC-SHA256 under a server pepper with a public lookup prefix.

A slow KDF (argon2) is pointless for a 256-bit random secret and would invite denial of service at request rate
(``../shared/reference/ecosystem.md`` §5).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_TAG = "co"
PREFIX_BYTES = 6


@dataclass(frozen=True)
class GeneratedKey:
    key: str
    """The full secret, shown to its owner once."""
    prefix: str
    """Public, stored in clear for lookup (``co_<prefix>``)."""


def generate_api_key() -> GeneratedKey:
    prefix = secrets.token_hex(PREFIX_BYTES)
    return GeneratedKey(key=f"{KEY_TAG}_{prefix}_{secrets.token_urlsafe(32)}", prefix=prefix)


def key_prefix(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_TAG or len(parts[1]) != PREFIX_BYTES * 2:
        return None
    return parts[1]


def hash_api_key(key: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def key_matches(key: str, stored_hash: str, pepper: str) -> bool:
    return hmac.compare_digest(hash_api_key(key, pepper), stored_hash)
