"""Rate limits: token buckets in this process's memory, charged to whoever a request can be pinned on.

Every request is counted once (``rate_counted`` in the request's state):

- against its **API key**, once the key is verified (``app.auth.dependencies.authenticate``): a key's quota is
  spent only by requests that prove they hold the key, never by someone who merely knows its public prefix;
- else against its **client address**, in a separate, stricter bucket: a request without credentials (counted
  before it is routed), one whose key fails verification (counted then: over the limit it is answered 429 instead of
  401, and no refusal is audited), and one bearing credentials to an endpoint that needs none (counted as it is
  routed). A request refused before its key is even looked at (a body that is not JSON) is counted after it is
  answered.

Enrolment-code exchanges have limits of their own (``GuessLimits``). All limits are per process: with N worker
processes the effective limit is N times the setting. ``/health`` and ``/livez`` are never limited (probes).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.dependencies.models import Dependant
from starlette.types import Scope

from app.core.config import Settings
from app.core.errors import RateLimited

COUNTED = "rate_counted"
"""Key of the request's state (``scope["state"]``) set once the request has been charged to a bucket."""

AUTHENTICATES = "__authenticates__"
"""Marks a dependency that authenticates the caller: a route with none is public, its requests are the address's."""

UNLIMITED_PATHS = frozenset({"/health", "/livez"})

Clock = Callable[[], float]
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per caller (``burst`` at once, refilled at ``per_minute``), in this process's memory."""

    def __init__(self, per_minute: int, burst: int, clock: Clock = time.monotonic) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = float(max(1, burst))
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, caller: str, now: float | None = None) -> float:
        """Take a token: 0 if the request may proceed, else the seconds to wait before retrying (nothing taken)."""
        with self._lock:
            bucket = self._refilled(caller, self.clock() if now is None else now)
            wait = self._wait(bucket)
            if wait == 0:
                bucket.tokens -= 1
            return wait

    def charge(self, caller: str, now: float | None = None) -> None:
        """Take a token for a request already answered, into debt if none is left (at most ``burst`` deep)."""
        with self._lock:
            bucket = self._refilled(caller, self.clock() if now is None else now)
            bucket.tokens = max(-self.capacity, bucket.tokens - 1)

    def wait(self, caller: str, now: float | None = None) -> float:
        """The seconds before a token is available (0: one is), taking none."""
        with self._lock:
            return self._wait(self._refilled(caller, self.clock() if now is None else now))

    def _wait(self, bucket: _Bucket) -> float:
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def _refilled(self, caller: str, now: float) -> _Bucket:
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            bucket = self._buckets[caller] = _Bucket(tokens=self.capacity, updated=now)
        bucket.tokens = min(self.capacity, bucket.tokens + max(0.0, now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket


def limiter(per_minute: int, burst: int, clock: Clock) -> RateLimiter | None:
    return RateLimiter(per_minute, burst, clock) if per_minute > 0 else None


def retry_after(wait: float) -> int:
    """Whole seconds for ``Retry-After`` (at least 1, never before a token is back)."""
    return max(1, math.ceil(wait))


@dataclass
class RateLimits:
    """The buckets requests are counted in: per verified key, and per client address for all else."""

    keys: RateLimiter | None
    addresses: RateLimiter | None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = time.monotonic) -> RateLimits:
        return cls(
            keys=limiter(settings.rate_limit_per_minute, settings.rate_limit_burst, clock),
            addresses=limiter(settings.unverified_rate_limit_per_minute, settings.unverified_rate_limit_burst, clock),
        )

    def count_key(self, scope: Scope, key_id: object) -> None:
        """Charge a verified key's own quota; 429 (``RateLimited``) when it is spent."""
        if not _first_count(scope) or self.keys is None:
            return
        wait = self.keys.allow(str(key_id))
        if wait > 0:
            raise RateLimited(
                f"rate limit of {self.keys.per_minute} requests per minute for this API key exceeded",
                retry_after=retry_after(wait),
            )

    def count_address(self, scope: Scope) -> None:
        """Charge the client address for a request no verified key answers for; 429 when its bucket is spent."""
        if not _first_count(scope) or self.addresses is None:
            return
        wait = self.addresses.allow(client_address(scope))
        if wait > 0:
            raise RateLimited(
                f"rate limit of {self.addresses.per_minute} requests per minute without a valid API key exceeded "
                "for this address",
                retry_after=retry_after(wait),
            )

    def count_answered(self, scope: Scope) -> None:
        """Charge the address for a request answered without being counted (it never reached a key check)."""
        state = scope.get("state")
        if self.addresses is not None and (state is None or not state.get(COUNTED)):
            self.addresses.charge(client_address(scope))


def _first_count(scope: Scope) -> bool:
    """Mark the request counted (``COUNTED``); whether it was not yet."""
    state = scope.setdefault("state", {})
    if state.get(COUNTED):
        return False
    state[COUNTED] = True
    return True


@dataclass
class GuessLimits:
    """Guesses at a secret that names nobody until it is right (an enrolment code): a wrong code belongs to no clinic,
    so the guesses every clinic's codes face are bounded together.

    ``per_address``: attempts (right or wrong) per client address. ``failures``: wrong attempts from all addresses
    together; once spent, every attempt is refused until it refills (an attack from many addresses delays enrolment
    for everyone a while instead of getting unbounded guesses).
    """

    per_address: RateLimiter | None
    failures: RateLimiter | None

    @classmethod
    def for_enrolment(cls, settings: Settings, clock: Clock = time.monotonic) -> GuessLimits:
        per_minute = settings.enrolment_exchange_failures_per_minute
        return cls(
            per_address=limiter(settings.enrolment_exchange_per_minute, settings.enrolment_exchange_burst, clock),
            failures=limiter(per_minute, per_minute, clock),
        )

    def attempt(self, scope: Scope) -> None:
        """Take an attempt for the client's address; 429 when its bucket or the shared failure budget is spent."""
        if self.failures is not None and (wait := self.failures.wait(_ALL)) > 0:
            raise RateLimited(
                "too many wrong enrolment codes were tried lately; retry later", retry_after=retry_after(wait)
            )
        if self.per_address is not None and (wait := self.per_address.allow(client_address(scope))) > 0:
            raise RateLimited(
                f"at most {self.per_address.per_minute} enrolment code attempts per minute from one address",
                retry_after=retry_after(wait),
            )

    def failed(self) -> None:
        """Count a wrong guess against the shared failure budget."""
        if self.failures is not None:
            self.failures.charge(_ALL)


_ALL = "*"


def client_address(scope: Scope) -> str:
    """The peer's address as the server saw it (behind a proxy: the proxy's, unless the server is told to trust its
    ``X-Forwarded-For``, e.g. uvicorn's ``--proxy-headers --forwarded-allow-ips``)."""
    client = scope.get("client")
    return str(client[0]) if client else "?"


def bears_credentials(scope: Scope) -> bool:
    return any(name == b"authorization" for name, _value in scope.get("headers", ()))


def authenticates(call: _F) -> _F:
    """Mark a dependency as one that authenticates the caller (``AUTHENTICATES``)."""
    setattr(call, AUTHENTICATES, True)
    return call


def calls_authentication(dependant: Dependant) -> bool:
    """Whether any of a route's dependencies, at any depth, authenticates the caller."""
    return any(
        getattr(dependency.call, AUTHENTICATES, False) or calls_authentication(dependency)
        for dependency in dependant.dependencies
    )
