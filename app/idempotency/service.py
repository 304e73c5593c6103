"""``Idempotency-Key`` for every POST: the same key and request replays the first response and stores nothing new.

The record is claimed in the request's own transaction before the handler runs and completed with the response
before the commit, so the change and its record land together or not at all. A concurrent duplicate waits on the
unique constraint (PostgreSQL) or the write lock (SQLite) and then replays the committed response.

A replay repeats the status, the body and the headers that say where and which version (``REPLAYED_HEADERS``). A
response holding a secret (a field marked ``app.core.schemas.shown_once``) is recorded without it, and its replay is
refused with 409 ``secret-not-replayable`` naming what was issued: the secret was shown once and exists nowhere else.
A record older than ``IDEMPOTENCY_TTL_HOURS`` is not replayed (its key starts afresh) and is deleted by a periodic
job (``PURGE_TASK``; or ``python -m app purge-idempotency-records``). "Now" is ``utcnow()``
(``app.core.datetimes.CLOCK``, which tests move).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, cast
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import CursorResult, Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.dependencies import authenticate, bearer
from app.core.datetimes import utcnow
from app.core.errors import IdempotencyKeyReused, IdempotentRequestInProgress, InvalidInput, SecretNotReplayable
from app.core.jobs import JobRun
from app.core.lifecycle import JoinsTransaction, open_write_db
from app.core.schemas import shown_once_fields
from app.core.state import state_of
from app.idempotency.models import IdempotencyRecord

REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[\x20-\x7E]+$"
"""Printable ASCII, as the IETF Idempotency-Key draft's sf-string allows."""
REPLAYED_HEADERS = ("Location", "ETag", "Last-Modified", "Content-Location", "Content-Type")
"""The response headers a record keeps and a replay repeats (not Content-Length, dates or per-request ones)."""
PURGE_BATCH = 1000


class IdempotentReplay(Exception):
    """Raised by the guard to short-circuit a handler with the stored first response."""

    def __init__(self, status_code: int, body: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__("idempotent replay")
        self.status_code = status_code
        self.body = body
        self.headers = dict(headers or {})

    def replay_headers(self) -> dict[str, str]:
        """The recorded headers and ``Idempotent-Replayed: true``."""
        return {**self.headers, REPLAY_HEADER: "true"}


def replay_response(exc: IdempotentReplay) -> Response:
    return Response(
        content=exc.body,
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.replay_headers(),
    )


def canonical_query(query: str) -> str:
    """The query string with its parameters in a canonical order (blank values kept, repeated names all kept)."""
    return urlencode(sorted(parse_qsl(query, keep_blank_values=True)))


async def request_fingerprint(request: Request) -> str:
    """A hash of method, path, query string (canonical order) and (canonical JSON) body."""
    body = await request.body()
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse: fingerprint the raw bytes
        canonical = body
    digest = hashlib.sha256()
    query = canonical_query(request.url.query).encode()
    for part in (request.method.encode(), request.url.path.encode(), query, canonical):
        digest.update(part + b"\0")
    return digest.hexdigest()


@dataclass
class IdempotencyGuard(JoinsTransaction):
    """The request's ``Idempotency-Key``, claimed in its write transaction before the handler runs (``join``)."""

    key: str | None = None
    api_key_id: uuid.UUID | None = None
    fingerprint: str = ""
    ttl: timedelta = timedelta(hours=24)
    db: Session | None = None
    """The request's write transaction once the key was claimed in it (None without a key: nothing to record)."""
    record: IdempotencyRecord | None = None

    def join(self, db: Session) -> None:
        if self.key is None or self.api_key_id is None:
            return
        claimed = claim(
            db, api_key_id=self.api_key_id, key=self.key, fingerprint=self.fingerprint, now=utcnow(), ttl=self.ttl
        )
        self.db, self.record = claimed.db, claimed.record

    def respond(
        self,
        payload: BaseModel | Any,
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str = "application/json",
    ) -> Response:
        """Serialise the handler's result, remember it under the key (if any), and return it.

        The fields of a model marked ``shown_once`` (secrets) are left out of what is remembered.
        """
        if isinstance(payload, BaseModel):  # straight to JSON bytes in pydantic-core, no intermediate dict
            body = payload.model_dump_json().encode()
            response = Response(body, status_code=status_code, headers=headers, media_type=media_type)
        else:  # as JSONResponse renders it; only what json cannot write goes through jsonable_encoder
            body = json.dumps(
                payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=jsonable_encoder
            ).encode()
            response = Response(body, status_code=status_code, headers=headers, media_type=media_type)
        if self.record is not None and self.db is not None:
            secrets = shown_once_fields(type(payload)) if isinstance(payload, BaseModel) else frozenset()
            self.record.status_code = status_code
            self.record.response_headers = {
                name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers
            }
            if secrets:
                self.record.response_body = payload.model_dump_json(exclude=set(secrets))
                self.record.secret_withheld = True
            else:
                self.record.response_body = bytes(response.body).decode()
            self.db.flush()
        return response


def claim(
    db: Session,
    *,
    api_key_id: uuid.UUID,
    key: str | None,
    fingerprint: str,
    now: datetime,
    ttl: timedelta,
) -> IdempotencyGuard:
    if key is None:
        return IdempotencyGuard(db=db)
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    existing = _find(db, api_key_id, key)
    if existing is not None and existing.created_at < now - ttl:
        # Expired: forgotten, and the key starts afresh. Deleted only if still expired: a concurrent request that
        # renewed the key first keeps its record (this one then meets it below, through the unique constraint).
        db.execute(
            delete(IdempotencyRecord)
            .where(IdempotencyRecord.id == existing.id, IdempotencyRecord.created_at < now - ttl)
            .execution_options(synchronize_session=False)
        )
        db.expunge(existing)
        existing = None
    if existing is None:
        record = IdempotencyRecord(api_key_id=api_key_id, key=key, fingerprint=fingerprint, created_at=now)
        try:
            with db.begin_nested():
                db.add(record)
                db.flush()
            return IdempotencyGuard(key=key, api_key_id=api_key_id, db=db, record=record)
        except IntegrityError:
            existing = _find(db, api_key_id, key)
            if existing is None:  # pragma: no cover - the conflicting row vanished (rolled back) between two reads
                raise IdempotentRequestInProgress("retry the request") from None
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request; use a new key for a new request"
        )
    if existing.status_code is None or existing.response_body is None:
        raise IdempotentRequestInProgress("the first request with this key has not finished; retry shortly")
    if existing.secret_withheld:
        raise _not_replayable(existing.response_body)
    raise IdempotentReplay(existing.status_code, existing.response_body, existing.response_headers)


def _not_replayable(stored_body: str) -> SecretNotReplayable:
    """409 naming what the first request issued, so the client can revoke it and issue another."""
    try:
        stored = json.loads(stored_body)
    except ValueError:  # pragma: no cover - the guard stores JSON only
        stored = None
    issued_id = stored.get("id") if isinstance(stored, dict) else None
    what = f"issued {issued_id}" if issued_id is not None else "issued a secret"
    return SecretNotReplayable(
        f"the first request with this Idempotency-Key {what}; its secret was shown once, in that response, and is "
        "not stored, so it cannot be replayed. If that response was lost, revoke what was issued and create another "
        "(with a new Idempotency-Key).",
        issued_id=issued_id,
    )


def purge_expired(db: Session, *, now: datetime, ttl: timedelta, batch: int = PURGE_BATCH) -> int:
    """Delete up to ``batch`` records older than ``ttl`` (oldest first); the number deleted."""
    expired = (
        select(IdempotencyRecord.id)
        .where(IdempotencyRecord.created_at < now - ttl)
        .order_by(IdempotencyRecord.created_at)
        .limit(batch)
    )
    ids = list(db.scalars(expired))
    if not ids:
        return 0
    deleted = db.execute(
        delete(IdempotencyRecord)
        .where(IdempotencyRecord.id.in_(ids), IdempotencyRecord.created_at < now - ttl)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], deleted).rowcount


PURGE_TASK = "idempotency.purge_expired"


def purge_all_expired(engine: Engine, *, now: datetime, ttl: timedelta) -> int:
    """Delete every record older than ``ttl``, a batch per transaction (no long write holds SQLite's single
    writer); the number deleted."""
    purged = 0
    while True:
        with Session(engine) as db, db.begin():
            deleted = purge_expired(db, now=now, ttl=ttl)
        purged += deleted
        if deleted < PURGE_BATCH:
            return purged


def purge_task(run: JobRun) -> None:
    """The periodic job (``PURGE_TASK``): records expire after ``IDEMPOTENCY_TTL_HOURS``."""
    purge_all_expired(run.engine, now=utcnow(), ttl=timedelta(hours=run.settings.idempotency_ttl_hours))


def _find(db: Session, api_key_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
    return db.scalar(
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
    """Read the key and fingerprint the request; the claim waits for the write transaction (``join``). Without a key
    there is nothing to claim: no transaction is planned for it and no database work is done."""
    if idempotency_key is None:
        return IdempotencyGuard()
    principal = await authenticate(request, await bearer(request))
    await open_write_db(request)
    return IdempotencyGuard(
        key=idempotency_key,
        api_key_id=principal.key_id,
        fingerprint=await request_fingerprint(request),
        ttl=timedelta(hours=state_of(request).settings.idempotency_ttl_hours),
    )


Idempotent = Annotated[IdempotencyGuard, Depends(get_guard)]
