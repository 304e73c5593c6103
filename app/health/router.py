from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.core.lifecycle import AppRoute, Db

router = APIRouter(route_class=AppRoute, tags=["health"])


class HealthResponse(JSONResponse):
    media_type = "application/health+json"


@router.get(
    "/health",
    response_class=HealthResponse,
    responses={503: {"description": "The database does not answer", "content": {HealthResponse.media_type: {}}}},
)
def health(db: Db) -> JSONResponse:
    """Ready to serve: the database answers. 503 (``application/health+json``) when it does not."""
    try:
        db.execute(text("SELECT 1"))
    except Exception:  # any database failure means "not ready"; the reason is logged, not shown
        return JSONResponse(
            {"status": "fail", "checks": {"database:connection": [{"status": "fail"}]}},
            status_code=503,
            media_type="application/health+json",
        )
    return JSONResponse(
        {"status": "pass", "checks": {"database:connection": [{"status": "pass"}]}},
        media_type="application/health+json",
    )


@router.get("/livez", include_in_schema=False)
def livez() -> JSONResponse:
    return JSONResponse({"status": "pass"}, media_type="application/health+json")
