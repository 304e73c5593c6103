"""Who is calling, and may they do this? Typed aliases that route handlers declare."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import service
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.core.deps import SessionDep, SettingsDep

bearer = HTTPBearer(auto_error=False, description="An API key created with `python -m app create-api-key`.")


def get_principal(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    presented = credentials.credentials if credentials else None
    return service.authenticate(session, presented=presented, pepper=settings.api_key_pepper.get_secret_value())


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def requires(permission: Permission) -> Any:
    """``principal: Annotated[Principal, requires(Permission.X)]``: authenticated, and the role allows X."""

    def check(principal: CurrentPrincipal) -> Principal:
        principal.require(permission)
        return principal

    check.__name__ = f"requires_{permission.name.lower()}"
    dependency: Callable[..., Principal] = check
    return Depends(dependency)
