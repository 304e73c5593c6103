from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.core.lifecycle import AppRoute, Db

router = APIRouter(route_class=AppRoute, tags=["health"])


class HealthResponse(JSONResponse):
    media_type = "application/health+json"


HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Health Check Response Format for HTTP APIs (draft-inadarei-api-health-check).",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["pass", "fail"]},
        "checks": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "object"}}},
    },
}


@router.get(
    "/health",
    response_class=HealthResponse,
    responses={
        status: {"description": description, "content": {HealthResponse.media_type: {"schema": HEALTH_SCHEMA}}}
        for status, description in {200: "The database answers", 503: "The database does not answer"}.items()
    },
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
