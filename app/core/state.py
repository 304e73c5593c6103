"""The application's long-lived objects, made when it starts serving and closed when it stops.

``AppState`` is the one typed place a request (or a test, or the CLI) reaches them: the settings, the database's
engines and session factories, the write turns, the rate limits. What belongs to one domain (the instrument
registry, the verified-key cache, FHIR's validation workers) is kept by its type (``part``), so ``app.core`` names
no domain. ``app.main``'s lifespan opens the state (``opened_state``) on the loop that serves the requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from fastapi import FastAPI, Request
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.commit_groups import CommitGroups
from app.core.config import Settings
from app.core.db import (
    JSON_CODEC,
    THREAD_ENGINE,
    create_db_engine,
    create_lookup_engine,
    create_write_engine,
    in_utc,
    make_sessionmaker,
    ping_when_idle,
)
from app.core.limits import GuessLimits, RateLimits
from app.core.write_turns import WriteTurns

_T = TypeVar("_T")


@dataclass
class Database:
    """Engines and session factories.

    ``read_sessions``: shared (deferred) transactions. ``write_sessions``: transactions that take SQLite's write lock
    at ``BEGIN`` (its single connection) and share the read pool elsewhere. ``lookups``: single statements outside
    any transaction (the API-key check). ``loop_writes``: on PostgreSQL, an asyncio engine for the small bounded
    reads and writes, whose statements await the network on the event loop (``app.core.lifecycle``); None on SQLite.
    ``turns``: where write requests wait for a writer.
    """

    engine: Engine
    write_engine: Engine
    lookups: Engine
    read_sessions: sessionmaker[Session]
    write_sessions: sessionmaker[Session]
    turns: WriteTurns
    commit_groups: CommitGroups | None = None
    """SQLite: where bounded writes share a transaction and its commit (``app.core.commit_groups``)."""
    member_sessions: sessionmaker[Session] = field(
        default_factory=lambda: sessionmaker(
            expire_on_commit=False, autoflush=False, join_transaction_mode="rollback_only"
        )
    )
    """Sessions of a commit group's members, bound to the group's connection as they join."""
    loop_writes: AsyncEngine | None = None
    loop: asyncio.AbstractEventLoop | None = None
    """The event loop ``loop_writes``' connections belong to (the one serving requests)."""
    loop_slots: asyncio.Semaphore | None = None
    """How many loop sessions may be open at once: ``loop_writes``' pool size, so the loop never opens a connection
    beyond its pool that would be closed again when given back (bench/README.md, change 37)."""
    _loop_sessions: async_sessionmaker[AsyncSession] | None = None

    @classmethod
    def open(cls, settings: Settings) -> Database:
        engine = create_db_engine(settings)
        write_engine = create_write_engine(settings, engine)
        single_writer = write_engine.dialect.name == "sqlite"
        turns = WriteTurns(
            writers=1 if single_writer else settings.db_write_concurrency or None,
            wait_seconds=settings.sqlite_busy_timeout_ms / 1000,
        )
        return cls(
            engine=engine,
            write_engine=write_engine,
            lookups=create_lookup_engine(settings, engine),
            read_sessions=make_sessionmaker(engine),
            write_sessions=make_sessionmaker(write_engine),
            turns=turns,
            commit_groups=CommitGroups(write_engine, turns) if single_writer else None,
        )

    def serve_on_this_loop(self, settings: Settings) -> None:
        """Make the bounded writes' asyncio engine on the running loop (PostgreSQL through psycopg only)."""
        url = loop_url(self.write_engine.url, settings.db_loop_driver)
        if url is None:
            return
        self.loop_writes = create_async_engine(
            url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow, **JSON_CODEC
        )
        in_utc(self.loop_writes.sync_engine)
        ping_when_idle(self.loop_writes.sync_engine, settings.db_ping_after_idle_seconds)
        self.loop = asyncio.get_running_loop()
        self.loop_slots = asyncio.Semaphore(settings.db_pool_size)
        self._loop_sessions = async_sessionmaker(
            self.loop_writes,
            expire_on_commit=False,
            autoflush=False,
            info={THREAD_ENGINE: self.write_engine},  # the engine for work outside the loop, in a thread
        )

    def loop_sessions(self) -> async_sessionmaker[AsyncSession] | None:
        """The bounded writes' sessions if the running loop is the one their engine serves (another loop, such as a
        second test client's, writes through threads instead: an asyncpg connection belongs to its loop)."""
        if self._loop_sessions is None or asyncio.get_running_loop() is not self.loop:
            return None
        return self._loop_sessions

    async def close(self) -> None:
        if self.loop_writes is not None:
            await self.loop_writes.dispose()
        for engine in (self.engine, self.write_engine, self.lookups):
            engine.dispose()


def loop_url(url: URL, driver: str) -> URL | None:
    """The URL of ``url``'s database through the asyncio ``driver`` (``DB_LOOP_DRIVER``); None for SQLite, whose
    bounded writes run on the event loop already (in process, no network waits), and for drivers other than psycopg.

    asyncpg takes psycopg's ``sslmode`` as ``ssl`` (same values); a URL with any other connection option keeps
    psycopg, whose options they are, rather than failing at the first write.
    """
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "psycopg":
        return None
    if driver == "psycopg" or set(url.query) - {"sslmode"}:
        return url
    query = {"ssl": url.query["sslmode"]} if "sslmode" in url.query else {}
    return url.set(drivername="postgresql+asyncpg", query=query)


class TransactionObserver(Protocol):
    """Sees a request's transaction: ``watch`` when it begins, ``finish`` just before it commits (the audit trail)."""

    def watch(self, db: Session) -> None: ...

    def finish(self, db: Session, *, status_code: int, location: str | None) -> None: ...


@dataclass
class AppState:
    settings: Settings
    database: Database
    rate_limits: RateLimits
    enrolment_limits: GuessLimits
    observe_transaction: Callable[[Request], TransactionObserver] | None = None
    """Makes the observer of a request's transactions (``app.audit.service.AuditTrail``)."""
    observe_answer: Callable[[Request, int], Awaitable[None]] | None = None
    """Records, as its response starts, an answer that no transaction recorded (``app.audit.service``)."""
    parts: dict[type, Any] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def read_sessions(self) -> sessionmaker[Session]:
        return self.database.read_sessions

    @property
    def write_sessions(self) -> sessionmaker[Session]:
        return self.database.write_sessions

    @property
    def engine(self) -> Engine:
        return self.database.engine

    def provide(self, part: _T, close: Callable[[], None] | None = None) -> _T:
        """Keep a domain's object under its type (``close``: called when the app stops)."""
        self.parts[type(part)] = part
        if close is not None:
            self.closers.append(close)
        return part

    def part(self, kind: type[_T]) -> _T:
        return cast(_T, self.parts[kind])


def state_of(owner: FastAPI | Request) -> AppState:
    """The app's state (started by its lifespan: a request, or a test inside ``with TestClient(app)``)."""
    app = owner if isinstance(owner, FastAPI) else owner.app
    state: AppState | None = getattr(app.state, _STATE, None)
    if state is None:
        raise RuntimeError("the app has not started: serve it (uvicorn) or use it inside `with TestClient(app)`")
    return state


@asynccontextmanager
async def opened_state(app: FastAPI, make: Callable[[], AppState]) -> AsyncIterator[AppState]:
    """Open the app's state for the time it serves; nested starts (two test clients of one app) share it."""
    state: AppState | None = getattr(app.state, _STATE, None)
    if state is not None:
        setattr(app.state, _USERS, getattr(app.state, _USERS) + 1)
        try:
            yield state
        finally:
            setattr(app.state, _USERS, getattr(app.state, _USERS) - 1)
        return
    state = make()
    state.database.serve_on_this_loop(state.settings)
    setattr(app.state, _STATE, state)
    setattr(app.state, _USERS, 1)
    try:
        yield state
    finally:
        setattr(app.state, _USERS, getattr(app.state, _USERS) - 1)
        if getattr(app.state, _USERS) == 0:
            delattr(app.state, _STATE)
            for close in state.closers:
                close()
            await state.database.close()


_STATE = "app_state"
_USERS = "app_state_users"
