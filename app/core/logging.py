"""Request logging that never records item responses or identifiers: route templates, never concrete paths."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

logger = logging.getLogger("app.requests")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def install_request_logging(app: FastAPI) -> None:
    @app.middleware("http")
    async def _log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "<unmatched>")
        logger.info(
            "%s %s %d %.1fms", request.method, template, response.status_code, (time.perf_counter() - started) * 1000
        )
        return response
