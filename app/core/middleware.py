"""Hygiene for every response: security headers, rate limits (``app.core.limits``), CORS closed unless configured."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import DomainError, PayloadTooLarge, RateLimited
from app.core.limits import UNLIMITED_PATHS, RateLimits, bears_credentials
from app.core.problems import domain_problem

DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"


class BodyLimit:
    """Refuse a body whose Content-Length is over the limit with a 413 problem before reading it.

    Bodies without a Content-Length are counted as they stream by FastAPI's per-router ``max_body_size`` (set in
    ``create_app``), whose 413 the problem handlers render the same way.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, refusals: Refusals) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            refused = PayloadTooLarge(f"the request body is larger than {self.max_bytes} bytes")
            await self.refusals.render(scope, refused)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Hygiene:
    """Rate limits of requests without credentials, and security headers, as plain ASGI (no per-request task or body
    re-buffering). A request is counted once (``app.core.limits``): one without credentials here, before it is routed
    (429 when its address's bucket is spent); one with credentials against its key once verified, or against its
    address if it fails or needs none; one answered before any of that, after it was answered."""

    def __init__(self, app: ASGIApp, limits: RateLimits, refusals: Refusals) -> None:
        self.app = app
        self.limits = limits
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if self.limits.addresses is None or path in UNLIMITED_PATHS:
            await self.app(scope, receive, _secured(send, path))
            return
        if not bears_credentials(scope):
            try:
                self.limits.count_address(scope)
            except RateLimited as refused:
                response = self.refusals.render(scope, refused, {"Retry-After": str(refused.retry_after)})
                await response(scope, receive, _secured(send, path))
                return
        await self.app(scope, receive, _secured(send, path))
        self.limits.count_answered(scope)


def _secured(send: Send, path: str) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            _secure(path, headers)
        await send(message)

    return send_with_headers


RefusalRenderer = Callable[[Request, DomainError, Mapping[str, str]], Response]
"""Writes a refusal made before routing (request, error, extra headers): problem+json unless a path says otherwise."""


@dataclass(frozen=True)
class Refusals:
    """How the middleware's refusals (413, 429) are written, by path prefix: under ``/fhir`` an OperationOutcome,
    as a FHIR client expects of every answer there, elsewhere problem+json (RFC 9457)."""

    by_prefix: Mapping[str, RefusalRenderer]

    def render(self, scope: Scope, error: DomainError, headers: Mapping[str, str] | None = None) -> Response:
        request = Request(scope)
        path: str = scope["path"]
        for prefix, renderer in self.by_prefix.items():
            if path == prefix or path.startswith(prefix + "/"):
                return renderer(request, error, headers or {})
        response = domain_problem(request, error)
        response.headers.update(headers or {})
        return response


def install_middleware(
    app: FastAPI,
    settings: Settings,
    rate_limits: RateLimits,
    refusal_renderers: Mapping[str, RefusalRenderer] | None = None,
) -> None:
    """Rate limits, security headers, body limit and CORS; ``refusal_renderers`` by path
    prefix (``Refusals``)."""
    refusals = Refusals(refusal_renderers or {})
    app.add_middleware(Hygiene, limits=rate_limits, refusals=refusals)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, refusals=refusals)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Location", "ETag", "Content-Location", "Idempotent-Replayed", "Retry-After"],
            allow_credentials=False,
        )


def _secure(path: str, headers: MutableHeaders) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cache-Control", "no-store")
    if path.startswith(DOCS_PATHS):
        return
    content_type = headers.get("content-type", "")
    if "frame-ancestors" not in headers.get("content-security-policy", ""):  # else the route chose who may frame it
        headers.setdefault("X-Frame-Options", "SAMEORIGIN" if "html" in content_type else "DENY")
    headers.setdefault(
        "Content-Security-Policy", HTML_CSP if "html" in content_type or "svg" in content_type else API_CSP
    )
