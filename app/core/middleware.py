"""Hygiene for every response: security headers, per-key rate limits, and CORS closed unless configured."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import DomainError, PayloadTooLarge, RateLimited
from app.core.problems import domain_problem
from app.core.security import key_prefix

DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per caller (API key prefix, else client address), in this process's memory.

    With several app servers each enforces its own share; put a shared limiter in the load balancer for a global cap.
    """

    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, caller: str, now: float | None = None) -> float:
        """0 if the request may proceed, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                if len(self._buckets) > 100_000:
                    self._buckets.clear()
                bucket = self._buckets[caller] = _Bucket(tokens=self.capacity, updated=now)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate


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


def _caller(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            prefix = key_prefix(value[7:].strip().decode("latin-1"))
            if prefix:
                return f"key:{prefix}"
    client = scope.get("client")
    return f"addr:{client[0] if client else '?'}"


class Hygiene:
    """Per-caller rate limit and security headers, as plain ASGI (no per-request task or body re-buffering)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter | None, per_minute: int, refusals: Refusals) -> None:
        self.app = app
        self.limiter = limiter
        self.per_minute = per_minute
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if self.limiter is not None and path not in ("/health", "/livez"):
            wait = self.limiter.allow(_caller(scope))
            if wait > 0:
                refused = RateLimited(f"rate limit of {self.per_minute} requests per minute exceeded")
                response = self.refusals.render(scope, refused, {"Retry-After": str(max(1, round(wait)))})
                await response(scope, receive, _secured(send, path))
                return
        await self.app(scope, receive, _secured(send, path))


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
    app: FastAPI, settings: Settings, refusal_renderers: Mapping[str, RefusalRenderer] | None = None
) -> None:
    """Rate limit, security headers, body limit and CORS; ``refusal_renderers`` by path prefix (``Refusals``)."""
    limiter = (
        RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        if settings.rate_limit_per_minute
        else None
    )
    refusals = Refusals(refusal_renderers or {})
    app.add_middleware(Hygiene, limiter=limiter, per_minute=settings.rate_limit_per_minute, refusals=refusals)
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
    headers.setdefault("X-Frame-Options", "SAMEORIGIN" if "html" in content_type else "DENY")
    headers.setdefault(
        "Content-Security-Policy", HTML_CSP if "html" in content_type or "svg" in content_type else API_CSP
    )
