"""Request-scoped dependencies shared by every domain: settings and the database transaction."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from typing import Annotated, ParamSpec, Protocol, TypeVar
from weakref import WeakKeyDictionary

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.util import greenlet_spawn
from starlette.types import Scope

from app.core.config import Settings
from app.core.errors import Busy
from app.core.loop_db import runs_on_loop

_P = ParamSpec("_P")
_T = TypeVar("_T")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class TransactionObserver(Protocol):
    """Sees a request's transaction: ``watch`` when it opens, ``finish`` just before it commits (the audit trail)."""

    def watch(self, session: Session) -> None: ...

    def finish(self, session: Session, *, status_code: int, location: str | None) -> None: ...


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> Session:
    """Open the request's transaction; the route (``app.core.routing.AppRoute``) ends it: commit after the handler
    returns (before the response is sent), else roll back.

    Services only ``flush()``. Write methods open the transaction with SQLite's write lock taken up front; reads run
    in deferred (shared) transactions on the read pool. Opening a session does no I/O, so this runs on the event loop.
    A plain function, not a ``yield`` dependency: FastAPI's machinery for those (an exit stack, a context manager
    and a shielded cancel scope per request) cost more than the rest of the dependencies together (bench/README.md).
    Called again for the same request (a dependency may await it directly), it returns the same session.
    """
    opened: Session | None = request.scope.get(_SESSION)
    if opened is not None:  # asked for again by another dependency (the idempotency guard)
        return opened
    state = request.app.state
    writes = request.method in WRITE_METHODS and getattr(request.scope.get("route"), "path", None) not in (
        state.read_only_routes
    )
    observer: TransactionObserver | None = state.transaction_observer(request) if state.transaction_observer else None
    turn = await state.write_queue.take_turn() if writes else None
    factory = state.read_sessions
    if writes:
        bounded = state.loop_write_sessions is not None and is_bounded_write(request.scope.get("route"))
        factory = state.loop_write_sessions if bounded else state.write_sessions
    session = open_request_transaction(
        request,
        factory,
        writes=writes,
        observer=observer,
        give_back_turn=turn,
    )
    request.scope[_SESSION] = session
    return session


def open_request_transaction(
    request: Request,
    factory: Callable[[], Session],
    *,
    writes: bool,
    observer: TransactionObserver | None = None,
    give_back_turn: Callable[[], None] | None = None,
) -> Session:
    """Begin a transaction that the request's route ends: a write one in the handler's thread right after it
    returns, any other once the handler is done; all of them in the reverse order of opening, like an exit stack."""
    route = request.scope.get("route")
    if not isinstance(route, TransactionalRoute):
        if give_back_turn is not None:
            give_back_turn()
        raise RuntimeError(f"{getattr(route, 'path', route)!r} takes a session but does not end it: use AppRoute")
    session = factory()
    session.begin()
    if observer is not None:
        observer.watch(session)
    single_writer = request.app.state.write_queue.writers == 1
    ending = _Ending(session, observer, writes, request.app.state.write_sessions, give_back_turn, single_writer)
    session.info[_ENDING] = ending
    request.scope.setdefault(_OPEN, []).append(ending)
    return session


class TransactionalRoute:
    """Marks a route class that ends the transactions ``get_db`` opens (``end_request_transactions``)."""


async def end_request_transactions(
    scope: Scope, *, failed: bool, status_code: int = 200, location: str | None = None
) -> None:
    """End what ``get_db`` (or ``open_request_transaction``) opened for this request, last opened first: commit each
    transaction not yet ended (a read, an async handler), or, when the request ``failed``, close it, which rolls
    back (here on the event loop, not in the threadpool: a cancelled request cannot await a hand-off, and a leaked
    connection would hold SQLite's write lock). ``status_code`` and ``location``: the response's, for the audit."""
    endings: list[_Ending] = scope.pop(_OPEN, [])[::-1]
    try:
        for ending in endings:
            if not failed and not ending.done:
                await run_in_session(ending.session, ending, status_code, location)
    finally:
        for ending in endings:
            ending.done = True
            try:
                await _close(ending.session)  # rolls back what was not committed; nothing for an ended one
            finally:
                if ending.give_back_turn is not None:  # here on the event loop: the queue is not thread-safe
                    ending.give_back_turn()


async def _close(session: Session) -> None:
    """Close ``session``. A loop session still in its transaction rolls back over the network: shielded, so that a
    request cancelled meanwhile still returns its connection to the pool."""
    if runs_on_loop(session) and session.in_transaction():
        await asyncio.shield(greenlet_spawn(session.close))
    else:
        session.close()


async def run_in_session(session: Session, work: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run sync database ``work`` for the request whose transaction is ``session``: on the event loop for a loop
    session (its statements await the network there, through SQLAlchemy's greenlet bridge), else in the threadpool."""
    if runs_on_loop(session):
        return await greenlet_spawn(functools.partial(work, *args, **kwargs))
    return await run_in_threadpool(work, *args, **kwargs)


BOUNDED_WRITE = "__bounded_write__"
"""The mark of a bounded write handler (``app.core.routing.bounded_write``)."""


def is_bounded_write(route: object) -> bool:
    """Whether ``route``'s handler is a bounded write: on PostgreSQL its transaction is a loop session's."""
    return bool(getattr(getattr(route, "endpoint", None), BOUNDED_WRITE, False))


class WriteQueue:
    """Where write requests wait for a writer's turn: on the event loop, first come first served.

    SQLite has one writer; waiting here instead of in a threadpool thread blocked on the one-connection pool keeps
    30-odd threads from waking and contending for the GIL under load. A server database gets a few concurrent write
    transactions (``DB_WRITE_CONCURRENCY``): more only add threads and database backends that contend for the same
    cores, and let late requests overtake early ones (bench/README.md). ``None``: no queue at all.
    """

    def __init__(self, *, writers: int | None, wait_seconds: float = 30.0) -> None:
        self.writers = writers
        self.wait_seconds = wait_seconds
        """As long as a writer waited on SQLite's busy timeout before: then 503, never an endless queue."""
        self._turns: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = WeakKeyDictionary()

    async def take_turn(self) -> Callable[[], None] | None:
        """Wait for a writer's turn; returns what gives it back (None where writers need no turns)."""
        if self.writers is None:
            return None
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop)
        if turns is None:  # one per event loop (tests run several)
            turns = self._turns[loop] = asyncio.Semaphore(self.writers)
        if not turns.locked():  # a turn is free and nobody waits: take it without arming a timer
            await turns.acquire()
            return turns.release
        try:
            async with asyncio.timeout(self.wait_seconds):
                await turns.acquire()
        except TimeoutError:
            raise Busy("other writes kept the database busy; retry shortly (nothing was stored)") from None
        return turns.release


def end_transaction(value: object, status_code: int = 200, location: str | None = None) -> None:
    """End a request's write transaction now, in the calling thread, if ``value`` is its session (else nothing).
    ``status_code`` and ``location``: what the handler answers with, for the audit.

    ``app.core.routing`` calls it right after a sync handler returns; ``get_db`` then has nothing left to do. A read's
    ending is left to ``get_db``: it writes the read's audit event through the write pool, which a handler's own
    write session (an export's record) holds until that dependency's teardown, which comes first.
    """
    if isinstance(value, Session):
        ending = value.info.get(_ENDING)
        if isinstance(ending, _Ending) and ending.writes and not ending.done:
            ending(status_code, location)


def holds_single_writer(values: Iterable[object]) -> bool:
    """Whether one of ``values`` is a session holding the writer's turn of a single-writer database (SQLite)."""
    for value in values:
        if isinstance(value, Session):
            ending = value.info.get(_ENDING)
            if (
                isinstance(ending, _Ending)
                and ending.writes
                and ending.give_back_turn is not None
                and ending.single_writer
            ):
                return True
    return False


_ENDING = "request_transaction_ending"
_OPEN = "app.open_transactions"
"""The request scope's list of what ``get_db`` opened and the route must end."""
_SESSION = "app.request_session"
"""The request scope's session from ``get_db``, returned again to whoever asks for it."""


class _Ending:
    """Audit, then commit; for a read, commit and record the audit event in a short write transaction."""

    def __init__(
        self,
        session: Session,
        observer: TransactionObserver | None,
        writes: bool,
        write_sessions: sessionmaker[Session],
        give_back_turn: Callable[[], None] | None = None,
        single_writer: bool = False,
    ) -> None:
        self.session = session
        self.observer = observer
        self.writes = writes
        self.write_sessions = write_sessions
        self.give_back_turn = give_back_turn
        self.single_writer = single_writer
        """The turn held is that of a database with one writer (SQLite)."""
        self.done = False

    def __call__(self, status_code: int = 200, location: str | None = None) -> None:
        self.done = True
        with self.session:
            if self.observer is not None and self.writes:
                self.observer.finish(self.session, status_code=status_code, location=location)
            self.session.commit()
        if self.observer is not None and not self.writes:
            # A read changes nothing, so its audit event gets a short write transaction of its own, committed before
            # the response is sent: no read is served unaudited, and reads never take the (SQLite) write lock.
            with self.write_sessions() as audit_session, audit_session.begin():
                self.observer.finish(audit_session, status_code=status_code, location=location)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_db)]
