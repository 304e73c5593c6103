"""Who is calling, and may they do this? Typed aliases that route handlers declare."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import service
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.core.deps import SettingsDep
from app.core.errors import NotFound

bearer = HTTPBearer(auto_error=False, description="An API key created with `python -m app create-api-key`.")


def get_principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Check the key on a read connection of its own, so a write request takes SQLite's single write connection
    only when it first writes, not for its whole life (the profile in bench/README.md)."""
    presented = credentials.credentials if credentials else None
    with request.app.state.engine.connect() as connection:
        principal = service.authenticate(
            connection, presented=presented, pepper=settings.api_key_pepper.get_secret_value()
        )
    request.state.principal = principal
    return principal


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
