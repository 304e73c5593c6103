"""Domain errors. They know nothing of HTTP: ``app.core.problems`` renders them as RFC 9457 problem details."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One invalid field: where it is (``items.4``), what is wrong, and what would have been accepted."""

    field: str
    message: str
    value: Any = None
    allowed: list[Any] | None = None


class DomainError(Exception):
    """Base of every error the service reports on purpose; ``slug`` names its problem type."""

    slug: ClassVar[str] = "domain-error"
    title: ClassVar[str] = "Request could not be completed"
    status: ClassVar[int] = 400

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class NotFound(DomainError):
    """Missing, or belonging to another clinic: the two are indistinguishable on purpose."""

    slug = "not-found"
    title = "Not found"
    status = 404


class InvalidInput(DomainError):
    slug = "validation-error"
    title = "Invalid request"
    status = 422


class Gone(DomainError):
    """Existed, but no longer answers (an expired or revoked report link)."""

    slug = "gone"
    title = "Gone"
    status = 410


class Conflict(DomainError):
    slug = "conflict"
    title = "Conflict"
    status = 409


class IdempotencyKeyReused(DomainError):
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"
    status = 422


class IdempotentRequestInProgress(DomainError):
    slug = "idempotent-request-in-progress"
    title = "A request with this Idempotency-Key is still being processed"
    status = 409


class SecretNotReplayable(DomainError):
    """The first response to this Idempotency-Key carried a secret: shown once, never stored, so never replayed."""

    slug = "secret-not-replayable"
    title = "The response to this Idempotency-Key held a secret that is shown once and not stored"
    status = 409


class NotAuthenticated(DomainError):
    slug = "not-authenticated"
    title = "Missing or invalid credentials"
    status = 401
    challenge: ClassVar[str] = "Bearer"
    """The ``WWW-Authenticate`` header sent with it (RFC 6750)."""


class InvalidToken(NotAuthenticated):
    """An OAuth access token that is unknown, expired or whose client was revoked (RFC 6750 ``invalid_token``)."""

    challenge: ClassVar[str] = 'Bearer error="invalid_token"'


class PermissionDenied(DomainError):
    slug = "forbidden"
    title = "Not allowed for this role"
    status = 403


class Busy(DomainError):
    """Waited too long for a shared resource (SQLite's single writer); safe to retry."""

    slug = "busy"
    title = "Busy: retry shortly"
    status = 503


class PayloadTooLarge(DomainError):
    slug = "payload-too-large"
    title = "Request body too large"
    status = 413


class RateLimited(DomainError):
    slug = "rate-limited"
    title = "Too Many Requests"
    status = 429

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        """Whole seconds before a retry can succeed (the ``Retry-After`` header)."""
