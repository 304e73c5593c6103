"""SMART Backend Services clients: registered by a clinic's admin with their public keys (a JWKS given inline; this
service fetches nothing) and the scopes they may be granted; revoked at once (their tokens stop working).

Only public keys are accepted: a JWK carrying private material (``d``, ``p``, ``q``, …, or a symmetric ``oct`` key)
is refused, so no secret of the client is ever stored. Each key must be able to verify RS384 (RSA, 2048 to 8192
bits) or ES384 (EC on P-384), and has a ``kid`` by which the client's assertions name it.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.util import urlsafe_b64decode
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.auth import scopes
from app.auth.models import ApiKey, SmartClient
from app.auth.permissions import Role
from app.core.db import utcnow
from app.core.errors import FieldError, InvalidInput, NotFound
from app.core.security import PREFIX_BYTES

ALGORITHMS = {"RSA": "RS384", "EC": "ES384"}
"""Key type → the one signing algorithm accepted from it (SMART App Launch 2.2 requires RS384 and ES384)."""
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
RSA_BITS = (2048, 8192)
MAX_KEYS = 10


def _refused(field: str, message: str, *, allowed: list[Any] | None = None) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", errors=[FieldError(field=field, message=message, allowed=allowed)])


def public_key(jwk: dict[str, Any], field: str) -> RSAKey | ECKey:
    """One JWK of a registered set, checked: public only, RS384- or ES384-capable, with a ``kid``."""
    kty = jwk.get("kty")
    if kty == "oct":
        raise _refused(f"{field}.kty", "a symmetric key is a shared secret: register public keys only")
    if kty not in ALGORITHMS:
        raise _refused(f"{field}.kty", "not a key type for RS384 or ES384", allowed=list(ALGORITHMS))
    private = [member for member in PRIVATE_MEMBERS if member in jwk]
    if private:
        raise _refused(field, f"private key material ({', '.join(private)}): register the public key only")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not 1 <= len(kid) <= 200:
        raise _refused(f"{field}.kid", "a key id (1 to 200 characters) is required: assertions name their key by it")
    alg = jwk.get("alg")
    if alg is not None and alg != ALGORITHMS[kty]:
        raise _refused(f"{field}.alg", f"a {kty} key here signs {ALGORITHMS[kty]}", allowed=[ALGORITHMS[kty]])
    if jwk.get("use") not in (None, "sig"):
        raise _refused(f"{field}.use", "the key verifies signatures", allowed=["sig"])
    if kty == "EC" and jwk.get("crv") != "P-384":
        raise _refused(f"{field}.crv", "ES384 needs a P-384 key", allowed=["P-384"])
    if kty == "RSA" and not RSA_BITS[0] <= _modulus_bits(jwk.get("n")) <= RSA_BITS[1]:
        # checked before joserfc reads it: it warns (SecurityWarning) of a key under 2048 bits
        raise _refused(f"{field}.n", f"an RSA key of {RSA_BITS[0]} to {RSA_BITS[1]} bits is required")
    try:
        return RSAKey.import_key(jwk) if kty == "RSA" else ECKey.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise _refused(field, "not a valid public key (RFC 7517 members)") from None


def _modulus_bits(n: object) -> int:
    """The size of an RSA modulus given as base64url (``n``); 0 if it is not one."""
    if not isinstance(n, str) or len(n) > 2 * RSA_BITS[1]:
        return 0
    try:
        return int.from_bytes(urlsafe_b64decode(n.encode("ascii"))).bit_length()
    except (ValueError, UnicodeError):
        return 0


def checked_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """The set as it is stored: each key checked (``public_key``), kids unique, and only its public members kept."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise _refused("jwks.keys", f"1 to {MAX_KEYS} public JWKs")
    kids: set[str] = set()
    stored: list[dict[str, Any]] = []
    for index, jwk in enumerate(keys):
        if not isinstance(jwk, dict):
            raise _refused(f"jwks.keys.{index}", "a JWK (a JSON object)")
        key = public_key(jwk, f"jwks.keys.{index}")
        if jwk["kid"] in kids:
            raise _refused(f"jwks.keys.{index}.kid", "each key needs a kid of its own")
        kids.add(jwk["kid"])
        stored.append({**key.as_dict(private=False), "kid": jwk["kid"]})  # the key's own members, public only
    return {"keys": stored}


def checked_scopes(requested: list[str]) -> str:
    """The scopes a client may be granted, as stored (v2 syntax, space-separated)."""
    parsed: list[scopes.Scope] = []
    for index, text in enumerate(requested):
        scope = scopes.parse(text)
        if scope is None:
            raise _refused(
                f"scopes.{index}",
                "a system scope: system/<type or *>.<c r u d s in that order> (v1 .read, .write, .* understood)",
                allowed=list(scopes.SUPPORTED_SCOPES),
            )
        parsed.append(scope)
    return " ".join(str(scope) for scope in scopes.grant(parsed, parsed))


def register(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    name: str,
    jwks: dict[str, Any],
    allowed_scopes: list[str],
    created_by_key_id: uuid.UUID,
) -> SmartClient:
    key = ApiKey(
        clinic_id=clinic_id,
        role=Role.SMART_CLIENT.value,
        prefix=secrets.token_hex(PREFIX_BYTES),
        key_hash="",  # no secret: nothing hashes to "", so this key never authenticates (its tokens do)
        label=f"SMART client: {name}"[:200],
        created_by_key_id=created_by_key_id,
    )
    db.add(key)
    db.flush()
    client = SmartClient(
        clinic_id=clinic_id,
        key_id=key.id,
        name=name,
        jwks=checked_jwks(jwks),
        scopes=checked_scopes(allowed_scopes),
        created_by_key_id=created_by_key_id,
    )
    db.add(client)
    db.flush()
    return client


def listed(db: Session, *, clinic_id: uuid.UUID, limit: int, offset: int) -> list[SmartClient]:
    query = select(SmartClient).where(SmartClient.clinic_id == clinic_id)
    return list(db.scalars(query.order_by(SmartClient.created_at, SmartClient.id).limit(limit).offset(offset)))


def get(db: Session, *, clinic_id: uuid.UUID, client_id: uuid.UUID) -> SmartClient:
    client = db.scalar(select(SmartClient).where(SmartClient.id == client_id, SmartClient.clinic_id == clinic_id))
    if client is None:
        raise NotFound(f"no SMART client {client_id}")
    return client


def revoke(db: Session, *, clinic_id: uuid.UUID, client_id: uuid.UUID) -> SmartClient:
    """Revoke a client: its access tokens stop working and it gets no new one."""
    client = get(db, clinic_id=clinic_id, client_id=client_id)
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        db.execute(update(ApiKey).where(ApiKey.id == client.key_id).values(revoked_at=client.revoked_at))
        db.flush()
    return client
