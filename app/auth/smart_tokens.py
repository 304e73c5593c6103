"""SMART Backend Services tokens (App Launch 2.2): the ``client_credentials`` grant with a ``private_key_jwt`` client
assertion (RFC 7523), verified with joserfc against the client's registered public keys; and the access tokens it
issues, authenticated like API keys.

The assertion: a JWS signed RS384 or ES384 (nothing else: never ``none`` or an HMAC), whose header names a
registered key by ``kid``; ``iss`` = ``sub`` = the client's id, ``aud`` = this server's token endpoint as
``/.well-known/smart-configuration`` advertises it (``PUBLIC_BASE_URL`` + ``TOKEN_PATH``), ``exp`` in the future and
at most five minutes ahead (plus ``CLOCK_SKEW_SECONDS``), and a ``jti`` never seen before from that client (each
used ``jti`` is kept until its assertion expires).

The access token is opaque: ``smart_<prefix>_<256 random bits>``, shown once and stored as HMAC-SHA256 under
``API_KEY_PEPPER`` with the granted scopes, valid ``ACCESS_TOKEN_SECONDS``; a revoked client's tokens stop working
at once (the lookup reads the client's revocation). Opaque rather than a signed JWT: it needs no signing key of the
server's, and it can be refused as soon as its client is revoked.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.util import urlsafe_b64decode
from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import scopes
from app.auth.models import SmartAccessToken, SmartAssertion, SmartClient
from app.auth.permissions import Role
from app.auth.scopes import SmartGrants
from app.auth.service import Authenticated, Principal
from app.auth.smart_clients import ALGORITHMS, public_key
from app.core.db import utcnow
from app.core.errors import DomainError, InvalidToken
from app.core.security import hash_api_key, key_matches

TOKEN_PATH = "/v1/smart/token"  # noqa: S105 (a path)
GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACCESS_TOKEN_SECONDS = 300
ASSERTION_MAX_SECONDS = 300
CLOCK_SKEW_SECONDS = 30
"""Allowed difference between the client's clock and ours on ``exp``'s five-minute bound and on ``nbf``."""
TOKEN_TAG = "smart"  # noqa: S105 (the public start of every access token)
PREFIX_BYTES = 6
MAX_ASSERTION_CHARS = 16_384
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class OAuthError(DomainError):
    """An OAuth 2.0 token error (RFC 6749 §5.2): the token endpoint answers it as ``{"error", "error_description"}``."""

    slug = "oauth-error"
    title = "Token request refused"
    status = 400

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error


def parse_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The token request's parameters: a form, each parameter at most once (RFC 6749 §3.2)."""
    if (content_type or "").split(";")[0].strip().lower() != FORM_MEDIA_TYPE:
        raise OAuthError("invalid_request", f"send the token request as {FORM_MEDIA_TYPE}")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a URL-encoded form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"{name[:40]!r} is sent more than once")
        form[name] = value
    return form


@dataclass(frozen=True)
class VerifiedRequest:
    """A token request whose client authenticated (its assertion verified) and whose scopes were granted."""

    client_id: uuid.UUID
    key_id: uuid.UUID
    clinic_id: uuid.UUID
    jti: str
    assertion_expires_at: datetime
    scope: str
    """The scopes granted, space-separated."""

    @property
    def principal(self) -> Principal:
        """The client, as the audit trail names who asked."""
        return Principal(key_id=self.key_id, clinic_id=self.clinic_id, role=Role.SMART_CLIENT)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    scope: str


def verify(connection: Connection, form: Mapping[str, str], *, token_endpoint: str) -> VerifiedRequest:
    """Check a ``client_credentials`` request: the grant, the client's assertion, the scopes. Reads only (on a
    connection of its own, before the request's transaction), so that a refused request never waits for a writer."""
    for name in ("grant_type", "client_assertion_type", "client_assertion", "scope"):
        if not form.get(name):
            raise OAuthError("invalid_request", f"{name} is required")
    if form["grant_type"] != GRANT_TYPE:
        raise OAuthError("unsupported_grant_type", f"only {GRANT_TYPE} is supported")
    if form["client_assertion_type"] != ASSERTION_TYPE:
        raise OAuthError("invalid_client", f"client_assertion_type must be {ASSERTION_TYPE}")
    client, claims = _verified(connection, form["client_assertion"], token_endpoint=token_endpoint)
    if form.get("client_id") not in (None, str(client.id)):
        raise OAuthError("invalid_client", "client_id differs from the assertion's issuer")
    requested = [scopes.parse(word) for word in form["scope"].split()]
    if not requested or any(scope is None for scope in requested):
        raise OAuthError("invalid_scope", "scopes are system/<type or *>.<c r u d s> (v1 .read and .write understood)")
    granted = scopes.grant([s for s in requested if s is not None], SmartGrants.of(client.scopes).scopes)
    if not granted:
        raise OAuthError("invalid_scope", "none of the requested scopes is allowed for this client")
    return VerifiedRequest(
        client_id=client.id,
        key_id=client.key_id,
        clinic_id=client.clinic_id,
        jti=claims["jti"],
        assertion_expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        scope=" ".join(str(s) for s in granted),
    )


def issue(db: Session, verified: VerifiedRequest, *, pepper: str) -> IssuedToken:
    """Spend the assertion's ``jti`` (a replay is refused) and issue the access token."""
    now = utcnow()
    _spend(db, verified.client_id, jti=verified.jti, expires_at=verified.assertion_expires_at, now=now)
    token = _store_token(db, verified, pepper=pepper, now=now)
    return IssuedToken(token=token, expires_in=ACCESS_TOKEN_SECONDS, scope=verified.scope)


def _unverified(segment: str) -> dict[str, Any]:
    """A JOSE header or payload read before the signature is checked, only to find the client and key to check it."""
    try:
        value = json.loads(urlsafe_b64decode(segment.encode("ascii")))
    except (ValueError, UnicodeError, TypeError, RecursionError):
        raise OAuthError("invalid_client", "client_assertion is not a JWT") from None
    if not isinstance(value, dict):
        raise OAuthError("invalid_client", "client_assertion is not a JWT")
    return value


def _verified(connection: Connection, assertion: str, *, token_endpoint: str) -> tuple[Row[Any], dict[str, Any]]:
    segments = assertion.split(".")
    if len(assertion) > MAX_ASSERTION_CHARS or len(segments) != 3:
        raise OAuthError("invalid_client", "client_assertion is not a signed JWT (JWS compact serialization)")
    header, unverified = _unverified(segments[0]), _unverified(segments[1])
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS.values():
        raise OAuthError("invalid_client", "the assertion must be signed RS384 or ES384")
    if not isinstance(kid, str):
        raise OAuthError("invalid_client", "the assertion's header must name its key (kid)")
    client = _client(connection, unverified.get("iss"))
    jwk = next((key for key in client.jwks["keys"] if key.get("kid") == kid), None)
    if jwk is None or ALGORITHMS[jwk["kty"]] != alg:
        raise OAuthError("invalid_client", "no registered key of the client has this kid for this alg")
    try:
        claims = jwt.decode(assertion, public_key(jwk, "jwk"), algorithms=[alg]).claims
    except (JoseError, ValueError, TypeError, RecursionError):
        raise OAuthError("invalid_client", "the assertion's signature does not verify") from None
    _check_claims(claims, client_id=str(client.id), token_endpoint=token_endpoint)
    return client, claims


_CLIENT_BY_ID = select(
    SmartClient.id,
    SmartClient.key_id,
    SmartClient.clinic_id,
    SmartClient.jwks,
    SmartClient.scopes,
    SmartClient.revoked_at,
).where(SmartClient.id == bindparam("client_id"))


def _client(connection: Connection, issuer: object) -> Row[Any]:
    try:
        client_id = uuid.UUID(issuer) if isinstance(issuer, str) else None
    except ValueError:
        client_id = None
    client = connection.execute(_CLIENT_BY_ID, {"client_id": client_id}).first() if client_id is not None else None
    if client is None or client.revoked_at is not None:
        raise OAuthError("invalid_client", "unknown or revoked client (iss)")
    return client


def _check_claims(claims: dict[str, Any], *, client_id: str, token_endpoint: str) -> None:
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise OAuthError("invalid_client", "iss and sub must both be the client_id")
    audience = claims.get("aud")
    if audience != token_endpoint and not (isinstance(audience, list) and token_endpoint in audience):
        raise OAuthError("invalid_client", f"aud must be the token endpoint, {token_endpoint}")
    now = utcnow().timestamp()
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise OAuthError("invalid_client", "exp (seconds since the epoch) is required")
    if exp <= now:
        raise OAuthError("invalid_client", "the assertion has expired")
    if exp > now + ASSERTION_MAX_SECONDS + CLOCK_SKEW_SECONDS:
        raise OAuthError("invalid_client", f"exp may be at most {ASSERTION_MAX_SECONDS} seconds ahead")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int | float) or nbf > now + CLOCK_SKEW_SECONDS):
        raise OAuthError("invalid_client", "the assertion is not valid yet (nbf)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 255:
        raise OAuthError("invalid_client", "jti (1 to 255 characters, unique per assertion) is required")


def _spend(db: Session, client_id: uuid.UUID, *, jti: str, expires_at: datetime, now: datetime) -> None:
    """Record the assertion's ``jti``; one already recorded is a replay. Expired ones are forgotten here."""
    db.execute(delete(SmartAssertion).where(SmartAssertion.client_id == client_id, SmartAssertion.expires_at <= now))
    try:
        with db.begin_nested():
            db.add(SmartAssertion(client_id=client_id, jti=jti, expires_at=expires_at))
    except IntegrityError:
        raise OAuthError("invalid_client", "this assertion (jti) has been used already") from None


def _store_token(db: Session, verified: VerifiedRequest, *, pepper: str, now: datetime) -> str:
    db.execute(
        delete(SmartAccessToken).where(
            SmartAccessToken.client_id == verified.client_id, SmartAccessToken.expires_at <= now
        )
    )
    prefix = secrets.token_hex(PREFIX_BYTES)
    token = f"{TOKEN_TAG}_{prefix}_{secrets.token_urlsafe(32)}"
    db.add(
        SmartAccessToken(
            client_id=verified.client_id,
            clinic_id=verified.clinic_id,
            prefix=prefix,
            token_hash=hash_api_key(token, pepper),
            scopes=verified.scope,
            created_at=now,
            expires_at=now + timedelta(seconds=ACCESS_TOKEN_SECONDS),
        )
    )
    db.flush()
    return token


def is_access_token(presented: str) -> bool:
    return presented.startswith(f"{TOKEN_TAG}_")


_TOKEN_BY_PREFIX = (
    select(
        SmartClient.key_id,
        SmartAccessToken.clinic_id,
        SmartAccessToken.scopes,
        SmartAccessToken.token_hash,
        SmartAccessToken.expires_at,
        SmartClient.revoked_at,
    )
    .join(SmartClient, SmartClient.id == SmartAccessToken.client_id)
    .where(SmartAccessToken.prefix == bindparam("prefix"))
)


def authenticate(connection: Connection, *, presented: str, pepper: str) -> Authenticated:
    """The principal of a SMART access token: its client, in its clinic, with the scopes granted."""
    parts = presented.split("_", 2)
    prefix = parts[1] if len(parts) == 3 and len(parts[1]) == PREFIX_BYTES * 2 else None
    token = connection.execute(_TOKEN_BY_PREFIX, {"prefix": prefix}).first() if prefix else None
    if token is None or not key_matches(presented, token.token_hash, pepper):
        raise InvalidToken("the access token is not valid")
    if token.expires_at <= utcnow() or token.revoked_at is not None:
        raise InvalidToken("the access token has expired or its client has been revoked")
    principal = Principal(
        key_id=token.key_id,
        clinic_id=token.clinic_id,
        role=Role.SMART_CLIENT,
        grants=SmartGrants.of(token.scopes),
    )
    return Authenticated(principal, token.expires_at)
