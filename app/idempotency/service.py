"""``Idempotency-Key`` for every POST: the same key and body replays the first response and stores nothing new.

The record is claimed in the request's own transaction before the handler runs and completed with the response
before the commit, so the change and its record land together or not at all. A concurrent duplicate waits on the
unique constraint (PostgreSQL) or the write lock (SQLite) and then replays the committed response.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.dependencies import authenticate, bearer
from app.core.deps import get_db, run_in_session
from app.core.errors import IdempotencyKeyReused, IdempotentRequestInProgress, InvalidInput
from app.idempotency.models import IdempotencyRecord

REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[\x20-\x7E]+$"
"""Printable ASCII, as the IETF Idempotency-Key draft's sf-string allows."""


class IdempotentReplay(Exception):
    """Raised by the guard to short-circuit a handler with the stored first response."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__("idempotent replay")
        self.status_code = status_code
        self.body = body


def replay_response(exc: IdempotentReplay) -> Response:
    return Response(
        content=exc.body,
        status_code=exc.status_code,
        media_type="application/json",
        headers={REPLAY_HEADER: "true"},
    )


async def request_fingerprint(request: Request) -> str:
    """A hash of method, path and (canonical JSON) body."""
    body = await request.body()
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse: fingerprint the raw bytes
        canonical = body
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), canonical):
        digest.update(part + b"\0")
    return digest.hexdigest()


@dataclass
class IdempotencyGuard:
    session: Session | None
    """The request's session when a key was claimed in it (None without a key: nothing to record)."""
    record: IdempotencyRecord | None

    def respond(
        self, payload: BaseModel | Any, *, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        """Serialise the handler's result, remember it under the key (if any), and return it."""
        if isinstance(payload, BaseModel):  # straight to JSON bytes in pydantic-core, no intermediate dict
            body = payload.model_dump_json().encode()
            response = Response(body, status_code=status_code, headers=headers, media_type="application/json")
        else:
            response = JSONResponse(content=jsonable_encoder(payload), status_code=status_code, headers=headers)
        if self.record is not None and self.session is not None:
            self.record.status_code = status_code
            self.record.response_body = bytes(response.body).decode()
            self.session.flush()
        return response


def claim(session: Session, *, api_key_id: uuid.UUID, key: str | None, fingerprint: str) -> IdempotencyGuard:
    if key is None:
        return IdempotencyGuard(session=session, record=None)
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    existing = _find(session, api_key_id, key)
    if existing is None:
        record = IdempotencyRecord(api_key_id=api_key_id, key=key, fingerprint=fingerprint)
        try:
            with session.begin_nested():
                session.add(record)
                session.flush()
            return IdempotencyGuard(session=session, record=record)
        except IntegrityError:
            existing = _find(session, api_key_id, key)
            if existing is None:  # pragma: no cover - the conflicting row vanished (rolled back) between two reads
                raise IdempotentRequestInProgress("retry the request") from None
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request; use a new key for a new request"
        )
    if existing.status_code is None or existing.response_body is None:
        raise IdempotentRequestInProgress("the first request with this key has not finished; retry shortly")
    raise IdempotentReplay(existing.status_code, existing.response_body)


def _find(session: Session, api_key_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
    )


async def get_guard(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Make a retried POST safe: the same key and body replays the first response.",
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            pattern=KEY_PATTERN,
        ),
    ] = None,
) -> IdempotencyGuard:
    """The request's session and principal are reached directly, not declared: the route declares them already, and
    each declared sub-dependency costs every request (bench/README.md). Without a key there is nothing to claim: no
    session (so SQLite's writer is not taken any earlier), no database work, no threadpool hand-off."""
    if idempotency_key is None:
        return IdempotencyGuard(session=None, record=None)
    session = await get_db(request)
    principal = await authenticate(request, await bearer(request))
    fingerprint = await request_fingerprint(request)
    return await run_in_session(
        session, claim, session, api_key_id=principal.key_id, key=idempotency_key, fingerprint=fingerprint
    )


Idempotent = Annotated[IdempotencyGuard, Depends(get_guard)]
