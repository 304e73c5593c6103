"""Request-scoped dependencies shared by every domain: settings and the database transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class TransactionObserver(Protocol):
    """Sees a request's transaction: ``watch`` when it opens, ``finish`` just before it commits (the audit trail)."""

    def watch(self, session: Session) -> None: ...

    def finish(self, session: Session) -> None: ...


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[Session]:
    """Own the request's transaction: commit after the handler returns (before the response is sent), else roll back.

    Services only ``flush()``. Write methods open the transaction with SQLite's write lock taken up front; reads run
    in deferred (shared) transactions on the read pool. Opening a session does no I/O, so this runs on the event loop
    and only the ending (audit, commit) is handed to the threadpool: one hand-off fewer per request.
    """
    state = request.app.state
    route = getattr(request.scope.get("route"), "path", None)
    writes = request.method in WRITE_METHODS and route not in state.read_only_routes
    factory = state.write_sessions if writes else state.read_sessions
    observer: TransactionObserver | None = state.transaction_observer(request) if state.transaction_observer else None
    session = factory()
    session.begin()
    if observer is not None:
        observer.watch(session)
    ending = _Ending(session, observer, writes, state.write_sessions)
    session.info[_ENDING] = ending
    try:
        yield session
    except BaseException:
        # Closing rolls back. Done here, not in the threadpool: a cancelled request cannot await a hand-off, and a
        # leaked connection would hold SQLite's write lock.
        session.close()
        raise
    if not ending.done:
        await run_in_threadpool(ending)


def end_transaction(value: object) -> None:
    """End a request transaction now, in the calling thread, if ``value`` is a request's session (else nothing).

    ``app.core.routing`` calls it right after a sync handler returns; ``get_db`` then has nothing left to do.
    """
    if isinstance(value, Session):
        ending = value.info.get(_ENDING)
        if isinstance(ending, _Ending) and not ending.done:
            ending()


_ENDING = "request_transaction_ending"


class _Ending:
    """Audit, then commit; for a read, commit and record the audit event in a short write transaction."""

    def __init__(
        self,
        session: Session,
        observer: TransactionObserver | None,
        writes: bool,
        write_sessions: sessionmaker[Session],
    ) -> None:
        self.session = session
        self.observer = observer
        self.writes = writes
        self.write_sessions = write_sessions
        self.done = False

    def __call__(self) -> None:
        self.done = True
        with self.session:
            if self.observer is not None and self.writes:
                self.observer.finish(self.session)
            self.session.commit()
        if self.observer is not None and not self.writes:
            # A read changes nothing, so its audit event gets a short write transaction of its own, committed before
            # the response is sent: no read is served unaudited, and reads never take the (SQLite) write lock.
            with self.write_sessions() as audit_session, audit_session.begin():
                self.observer.finish(audit_session)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
