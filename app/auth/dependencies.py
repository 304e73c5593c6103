"""Who is calling, and may they do this? Typed aliases that route handlers declare."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from app.auth import service
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.core.config import Settings
from app.core.errors import NotFound

bearer = HTTPBearer(auto_error=False, description="An API key created with `python -m app create-api-key`.")


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Check the key on a read connection of its own, outside any transaction (one statement), so a write request
    takes SQLite's single write connection only when it first writes (the profile in bench/README.md).

    On SQLite the lookup is an in-process call on a page that is always cached, cheaper than a hand-off to the
    threadpool, so it runs right here; a server database is waited for in the threadpool.
    """
    presented = credentials.credentials if credentials else None
    settings: Settings = request.app.state.settings  # not a dependency: every dependency costs each request
    pepper = settings.api_key_pepper.get_secret_value()
    lookups: Engine = request.app.state.lookups
    if lookups.dialect.name == "sqlite":
        principal = _authenticate(lookups, presented, pepper)
    else:
        principal = await run_in_threadpool(_authenticate, lookups, presented, pepper)
    request.state.principal = principal
    return principal


def _authenticate(lookups: Engine, presented: str | None, pepper: str) -> Principal:
    with lookups.connect() as connection:
        return service.authenticate(connection, presented=presented, pepper=pepper)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def requires(permission: Permission) -> Any:
    """``principal: Annotated[Principal, requires(Permission.X)]``: authenticated, and the role allows X.

    A patient token is also confined to its own patient: any other ``{patient_id}`` in the path does not exist for it.
    """

    async def check(request: Request, principal: CurrentPrincipal) -> Principal:
        principal.require(permission)
        if principal.patient_id is not None:
            addressed = request.path_params.get("patient_id")
            if addressed is not None and str(addressed) != str(principal.patient_id):
                raise NotFound(f"no patient {addressed}")
        return principal

    check.__name__ = f"requires_{permission.name.lower()}"
    dependency: Callable[..., Awaitable[Principal]] = check
    return Depends(dependency)
