"""API keys verified a moment ago, so that a client's burst of requests does not look its key up each time.

A request's key lookup is a statement of its own (on PostgreSQL a thread hand-off and a round trip), the largest
fixed cost of a small write after the write itself (bench/README.md, change 18). A verified key is trusted for
``API_KEY_CACHE_SECONDS`` (default 5): its expiry is still checked on every request, a revocation through this
process's API forgets it at once, and a revocation elsewhere (another worker process, the CLI) takes effect within
that time. ``0`` looks every key up every time. Only keys that passed are remembered, under their keyed hash (never
the key itself), and the cache is bounded.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from app.auth.service import Principal

CAPACITY = 10_000
"""Keys remembered at most; past it the cache starts again empty (a clinic network has far fewer active keys)."""


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    expires_at: datetime | None
    trusted_until: float
    """The clock's reading (``time.monotonic``) after which the key is looked up again."""


@dataclass
class VerifiedKeys:
    seconds: float
    clock: Callable[[], float] = time.monotonic
    _by_hash: dict[str, _Verified] = field(default_factory=dict)

    def principal(self, key_hash: str, now: datetime) -> Principal | None:
        """The principal of a key verified less than ``seconds`` ago and not expired since; else None."""
        verified = self._by_hash.get(key_hash)
        if verified is None:
            return None
        if self.clock() >= verified.trusted_until or (verified.expires_at is not None and verified.expires_at <= now):
            self._by_hash.pop(key_hash, None)
            return None
        return verified.principal

    def remember(self, key_hash: str, principal: Principal, expires_at: datetime | None) -> None:
        if self.seconds <= 0:
            return
        if len(self._by_hash) >= CAPACITY:
            self._by_hash.clear()
        self._by_hash[key_hash] = _Verified(principal, expires_at, self.clock() + self.seconds)

    def forget(self, key_id: uuid.UUID) -> None:
        """Stop trusting a key (it was just revoked)."""
        for key_hash, verified in list(self._by_hash.items()):
            if verified.principal.key_id == key_id:
                self._by_hash.pop(key_hash, None)
