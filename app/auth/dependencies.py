"""Who is calling, and may they do this? Typed aliases that route handlers declare."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from app.auth import service, smart_tokens
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.auth.verified_keys import VerifiedKeys
from app.core.db import utcnow
from app.core.errors import NotAuthenticated, NotFound
from app.core.limits import GuessLimits, authenticates
from app.core.security import hash_api_key
from app.core.state import state_of

bearer = HTTPBearer(
    auto_error=False,
    description="An API key created with `python -m app create-api-key`, or on `/fhir` a SMART Backend Services "
    "access token from the token endpoint (`/.well-known/smart-configuration`).",
)


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@authenticates
async def get_principal(request: Request, credentials: BearerCredentials) -> Principal:
    """Who is calling (``authenticate``)."""
    return await authenticate(request, credentials)


async def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The request's principal, once per request (kept on ``request.state``); a plain function, so that dependencies
    call it without declaring one more sub-dependency (each costs every request; bench/README.md).

    The request is counted against the key's own rate limit once it verified, or against the client address if it
    did not (``app.core.limits``): a made-up or merely known key spends no key's quota.

    Trust a key verified moments ago (``verified_keys``); else check it on a read connection of its own, outside
    any transaction (one statement).

    On SQLite the lookup is an in-process call on a page that is always cached, cheaper than a hand-off to the
    threadpool, so it runs right here; a server database is waited for in the threadpool.
    """
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    presented = credentials.credentials if credentials else None
    state = state_of(request)  # not a dependency: every dependency costs each request
    pepper = state.settings.api_key_pepper.get_secret_value()
    verified_keys = state.part(VerifiedKeys)
    limits = state.rate_limits
    key_hash = hash_api_key(presented, pepper) if presented else ""
    principal = verified_keys.principal(key_hash, utcnow()) if presented else None
    if principal is None:
        lookups = state.database.lookups
        try:
            if lookups.dialect.name == "sqlite":
                authenticated = _authenticate(lookups, presented, pepper)
            else:
                authenticated = await run_in_threadpool(_authenticate, lookups, presented, pepper)
        except NotAuthenticated:
            limits.count_address(request.scope)  # over the address's limit: 429 instead (and no refusal audited)
            raise
        principal = authenticated.principal
        verified_keys.remember(key_hash, principal, authenticated.expires_at)
    request.state.principal = principal
    limits.count_key(request.scope, principal.key_id)
    if principal.grants is not None:  # a SMART access token: /fhir only, the interactions its scopes grant
        route = request.scope.get("route")
        principal.grants.require_route(request.method, getattr(route, "path", request.url.path))
    return principal


def _authenticate(lookups: Engine, presented: str | None, pepper: str) -> service.Authenticated:
    with lookups.connect() as connection:
        if presented and smart_tokens.is_access_token(presented):
            return smart_tokens.authenticate(connection, presented=presented, pepper=pepper)
        return service.authenticate(connection, presented=presented, pepper=pepper)


def forget_when_committed(request: Request, db: Session, key_id: uuid.UUID) -> None:
    """Stop trusting a revoked key once its revocation is committed (forgotten any earlier, a concurrent request
    could verify it again from the still uncommitted row and trust it for another ``API_KEY_CACHE_SECONDS``)."""
    verified_keys = state_of(request).part(VerifiedKeys)
    event.listen(db, "after_commit", lambda _session: verified_keys.forget(key_id), once=True)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def requires(permission: Permission) -> Any:
    """``principal: Annotated[Principal, requires(Permission.X)]``: authenticated, and the role allows X.

    A patient token is also confined to its own patient: any other ``{patient_id}`` in the path does not exist for it.
    """

    async def check(request: Request, credentials: BearerCredentials) -> Principal:
        principal = await authenticate(request, credentials)
        principal.require(permission)
        if principal.patient_id is not None:
            addressed = request.path_params.get("patient_id")
            if addressed is not None and str(addressed) != str(principal.patient_id):
                raise NotFound(f"no patient {addressed}")
        return principal

    check.__name__ = f"requires_{permission.name.lower()}"
    authenticates(check)
    dependency: Callable[..., Awaitable[Principal]] = check
    return Depends(dependency)


class EnrolmentAttempt:
    """An attempt at an enrolment code, within its limits (``GuessLimits``): per client address, and wrong codes from
    every address together."""

    def __init__(self, limits: GuessLimits) -> None:
        self._limits = limits

    def failed(self) -> None:
        """The code was wrong (unknown, used, revoked or expired): count it against the shared budget."""
        self._limits.failed()


async def enrolment_attempt(request: Request) -> EnrolmentAttempt:
    limits = state_of(request).enrolment_limits
    limits.attempt(request.scope)
    return EnrolmentAttempt(limits)


EnrolmentAttemptDep = Annotated[EnrolmentAttempt, Depends(enrolment_attempt)]
