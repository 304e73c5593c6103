"""How a request is served, top to bottom.

1. ``app.core.middleware`` counts a request without credentials against its address's rate limit, bounds the body
   and adds the security headers.
2. ``AppRoute.handle`` watches the response start: an answer that no transaction recorded (a refusal, a rejected
   body, a replay) is audited then, with the status it is sent with (``AppState.observe_answer``). A public route's
   request (no dependency authenticates its caller) is counted against its address's rate limit here.
3. FastAPI solves the handler's dependencies: the caller is authenticated and authorised (``app.auth.dependencies``),
   the input is parsed and validated. ``Db`` (or ``ReadDb``, ``BoundedReadDb``, ``BoundedWriteDb``, ``RecordDb``: the
   handler's signature says which transaction it needs) only *plans* the request's transaction: a
   ``RequestTransaction`` whose session has not begun. No dependency waits for a writer or writes.
4. ``serve``, the endpoint ``AppRoute`` puts around every handler, runs once every check has passed. So a refused
   or invalid request never waits for a writer, whatever the order of the handler's parameters:

   a. each write transaction waits for a writer's turn (``WriteTurns``); a transaction on the event loop's engine
      then waits for one of its pool's connections (``Database.loop_slots``); each begins. On SQLite a bounded write
      joins the open ``CommitGroup`` instead, if there is one, and takes a turn only to open the next
      (``app.core.commit_groups``);
   b. what must act in the write transaction before the handler (``JoinsTransaction``: the idempotency guard claims
      its key) joins it;
   c. the handler runs: in the threadpool; a bounded write (``BoundedWriteDb``: one record, no outside calls) on the
      event loop instead, since a thread's hand-offs cost more than its work. On SQLite it runs there while it holds
      the single writer; on PostgreSQL in ``AsyncSession.run_sync``, its statements awaiting the network through an
      asyncio driver (bench/README.md, changes 26 and 29). A bounded read (``BoundedReadDb``: a page, a chart's
      series) runs the same way on PostgreSQL; on SQLite in the threadpool, as any read;
   d. in the same thread, right after the handler returns, each transaction ends, last opened first: it writes its
      audit events (``AppState.observe_transaction``) and commits; except that a read on SQLite commits first and
      then writes its audit event in a short write transaction of its own (a read never holds SQLite's single
      writer), and that a commit group's member only flushes into the group's transaction and waits for the group's
      one commit, on the loop's next pass. Nothing is answered before its audit row is committed.
5. Whatever happened, ``AppRoute`` closes every session on the event loop (rolling back what was not committed) and
   gives back the writer's turns; an error is then rendered as problem+json by ``app.core.problems``.

Services only ``flush()``; nothing but step 4d commits a request's work.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Message, Receive, Scope, Send

from app.core.commit_groups import CommitGroup, CommitGroups
from app.core.config import Settings
from app.core.json_body import UniqueKeysRequest
from app.core.limits import UNLIMITED_PATHS, calls_authentication
from app.core.state import AppState, TransactionObserver, state_of
from app.core.write_turns import WriteTurns

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Kind(enum.Enum):
    READ = "read"
    WRITE = "write"
    BOUNDED_READ = "bounded read"
    BOUNDED_WRITE = "bounded write"


BOUNDED = frozenset({Kind.BOUNDED_READ, Kind.BOUNDED_WRITE})
"""Small work that runs on the event loop rather than in a thread (step 4c)."""


class JoinsTransaction(abc.ABC):
    """A dependency's value that acts in the request's write transaction before the handler runs (``join``)."""

    @abc.abstractmethod
    def join(self, db: Session) -> None: ...


class RequestTransaction:
    """One transaction of a request: planned by a ``Db`` dependency, begun and ended by ``serve``, closed by
    ``AppRoute``."""

    def __init__(
        self,
        kind: Kind,
        db: Session,
        *,
        async_db: AsyncSession | None,
        observer: TransactionObserver | None,
        audit_sessions: sessionmaker[Session],
        audit_sessions_single_writer: bool,
        loop_slots: asyncio.Semaphore | None = None,
        commit_groups: CommitGroups | None = None,
    ) -> None:
        self.kind = kind
        self.db = db
        self.async_db = async_db
        """Set for a bounded read or write on PostgreSQL: ``db`` is its ``sync_session``, used only in ``run_sync``."""
        self.loop_slots = loop_slots
        """Where a loop session waits for one of the loop pool's connections (``Database.loop_slots``)."""
        self.holds_slot = False
        self.observer = observer
        self.audit_sessions = audit_sessions
        self.audit_sessions_single_writer = audit_sessions_single_writer
        self.give_back_turn: Callable[[], None] | None = None
        self.commit_groups = commit_groups
        """Set for a bounded write on SQLite: it joins a ``CommitGroup`` instead of taking a turn of its own."""
        self.group: CommitGroup | None = None
        self.left_group = False

    @property
    def writes(self) -> bool:
        return self.kind in (Kind.WRITE, Kind.BOUNDED_WRITE)

    async def begin(self, turns: WriteTurns) -> None:
        """Step 4a: a write waits for its turn first; then a loop session waits, in order of arrival, for one of the
        loop pool's connections (in this order: nothing waits for a turn while it holds a connection). Beginning does
        no I/O (the connection is taken at first use)."""
        if self.commit_groups is not None:
            self.group = await self.commit_groups.join()
            self.db.bind = self.group.connection
        elif self.writes:
            self.give_back_turn = await turns.take()
        if self.loop_slots is not None:
            await self.loop_slots.acquire()
            self.holds_slot = True
        self.db.begin()
        if self.observer is not None:
            self.observer.watch(self.db)

    def end(self, status_code: int, location: str | None) -> None:
        """Step 4d, in the handler's thread: audit and commit. A read on SQLite commits first and then writes its audit
        event in a short write transaction of its own: it must not hold the single writer while it reads. On a server
        database the event joins the read's own transaction (one BEGIN and COMMIT fewer, bench/README.md)."""
        if self.writes or not self.audit_sessions_single_writer:
            if self.observer is not None:
                self.observer.finish(self.db, status_code=status_code, location=location)
            self.db.commit()
            if self.group is not None:  # flushed into the group's transaction, committed with it
                self.group.leave(succeeded=True)
                self.left_group = True
            return
        self.db.commit()
        if self.observer is not None:
            with self.audit_sessions() as audit_db, audit_db.begin():
                self.observer.finish(audit_db, status_code=status_code, location=location)

    async def committed(self) -> None:
        """A commit group's member waits for the group's commit before it answers."""
        if self.group is not None:
            await self.group.committed()

    async def close(self) -> None:
        """Step 5, on the event loop: roll back what was not committed, return the connection, give back the turn.
        A loop session's rollback awaits the network: shielded, so a cancelled request still returns its connection."""
        try:
            if self.async_db is not None:
                await asyncio.shield(self.async_db.close())
            else:
                self.db.close()
        finally:
            if self.group is not None and not self.left_group:
                self.left_group = True
                self.group.leave(succeeded=False)
            if self.holds_slot and self.loop_slots is not None:
                self.holds_slot = False
                self.loop_slots.release()
            if self.give_back_turn is not None:
                self.give_back_turn()
                self.give_back_turn = None


def _plan(request: Request, kind: Kind, *, observed: bool = True) -> Session:
    """Step 3: a transaction of ``kind`` for this request, not yet begun; its session for the handler."""
    route = request.scope.get("route")
    if not isinstance(route, AppRoute):
        raise RuntimeError(f"{getattr(route, 'path', route)!r} takes a database session but is not an AppRoute")
    transactions: list[RequestTransaction] = request.scope.setdefault(_TRANSACTIONS, [])
    for planned in transactions:  # asked for again (by the idempotency guard): the same transaction
        if planned.kind is kind and (planned.observer is not None) == observed:
            return planned.db
    state = state_of(request)
    database = state.database
    loop_sessions = database.loop_sessions() if kind in BOUNDED else None
    async_db = loop_sessions() if loop_sessions is not None else None
    if async_db is not None:
        db = async_db.sync_session
    elif kind is Kind.BOUNDED_WRITE and database.commit_groups is not None:
        db = database.member_sessions()  # bound to its commit group's connection as it begins
    else:
        db = (database.read_sessions if kind in (Kind.READ, Kind.BOUNDED_READ) else database.write_sessions)()
    observer = state.observe_transaction(request) if observed and state.observe_transaction is not None else None
    transaction = RequestTransaction(
        kind,
        db,
        async_db=async_db,
        observer=observer,
        audit_sessions=database.write_sessions,
        audit_sessions_single_writer=database.turns.single_writer,
        loop_slots=database.loop_slots if async_db is not None else None,
        commit_groups=database.commit_groups if kind is Kind.BOUNDED_WRITE else None,
    )
    transactions.append(transaction)
    return db


async def open_db(request: Request) -> Session:
    """The request's transaction: a write one for POST, PUT, PATCH and DELETE, else a read."""
    return _plan(request, Kind.WRITE if request.method in WRITE_METHODS else Kind.READ)


async def open_read_db(request: Request) -> Session:
    """A read transaction whatever the method (a POST that only reads must not hold SQLite's writer)."""
    return _plan(request, Kind.READ)


async def open_bounded_read_db(request: Request) -> Session:
    """A bounded read: a few queries of at most a few hundred rows, no outside calls, so on PostgreSQL it runs on the
    event loop (step 4c). Never for a read that grows with the data (an export, an analysis)."""
    return _plan(request, Kind.BOUNDED_READ)


async def open_bounded_write_db(request: Request) -> Session:
    """A bounded write: small work, one record, no outside calls, so it runs on the event loop (step 4c). Never for
    work that grows with the input (a Bundle, an import): it would stall every other request meanwhile."""
    return _plan(request, Kind.BOUNDED_WRITE)


async def open_write_db(request: Request) -> Session:
    """The route's write transaction, planned if its handler declared none (the idempotency guard's record on a route
    that stores nothing else)."""
    route = request.scope.get("route")
    kind = route.write_kind if isinstance(route, AppRoute) else None
    return _plan(request, kind or Kind.WRITE)


async def open_record_db(request: Request) -> Session:
    """A write transaction beside a read's, for a record a GET leaves (an export's), committed before the read's."""
    return _plan(request, Kind.WRITE, observed=False)


async def get_settings_of_app(request: Request) -> Settings:
    return state_of(request).settings


Db = Annotated[Session, Depends(open_db)]
ReadDb = Annotated[Session, Depends(open_read_db)]
BoundedReadDb = Annotated[Session, Depends(open_bounded_read_db)]
BoundedWriteDb = Annotated[Session, Depends(open_bounded_write_db)]
RecordDb = Annotated[Session, Depends(open_record_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_of_app)]


_TRANSACTIONS = "app.request_transactions"
_REQUEST = "request_served__"
"""The parameter ``serve`` adds to a handler's signature to receive the request."""


def serve(handler: Callable[..., Any], *, status_code: int | None) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The endpoint that runs ``handler`` (sync) inside its request's transactions: step 4. ``status_code``: the
    route's, sent when the handler returns no response of its own (the audit records the status actually sent)."""
    signature = inspect.signature(handler, eval_str=True)
    joiners = tuple(
        name
        for name, parameter in signature.parameters.items()
        if isinstance(hint := _dependency_type(parameter.annotation), type) and issubclass(hint, JoinsTransaction)
    )

    asked = next((name for name, p in signature.parameters.items() if p.annotation is Request), None)
    """The handler's own ``Request`` parameter: FastAPI gives the request to one parameter only."""

    async def run(**kwargs: Any) -> Any:
        request: Request = kwargs[asked] if asked is not None else kwargs.pop(_REQUEST)
        transactions: list[RequestTransaction] = request.scope.get(_TRANSACTIONS, [])
        if not transactions:
            return await run_in_threadpool(handler, **kwargs)
        turns = state_of(request).database.turns
        for transaction in transactions:
            await transaction.begin(turns)
        writing = next((t for t in transactions if t.writes), None)

        def work() -> Any:
            if writing is not None:
                for name in joiners:
                    kwargs[name].join(writing.db)
            result = handler(**kwargs)
            if isinstance(result, Response):
                sent, location = result.status_code, result.headers.get("location")
            else:
                sent, location = status_code or 200, None
            for transaction in reversed(transactions):
                transaction.end(sent, location)
            return result

        bounded = next((t for t in transactions if t.kind in BOUNDED), None)
        if bounded is None:
            return await run_in_threadpool(work)
        if bounded.async_db is not None:
            return await bounded.async_db.run_sync(lambda _db: work())
        if bounded.writes and turns.single_writer:  # it holds SQLite's single writer: on the loop, no hand-off
            result = work()
            await bounded.committed()
            return result
        return await run_in_threadpool(work)

    run.__name__ = handler.__name__
    run.__qualname__ = handler.__qualname__
    run.__doc__ = handler.__doc__
    run.__wrapped__ = handler  # type: ignore[attr-defined]
    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
    if asked is None:
        parameters.append(inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request))
    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return run


def _write_kind(handler: Callable[..., Any], methods: set[str]) -> Kind | None:
    declared = {_dependency_of(p.annotation) for p in inspect.signature(handler, eval_str=True).parameters.values()}
    if open_bounded_write_db in declared:
        return Kind.BOUNDED_WRITE
    if open_db in declared and methods & WRITE_METHODS:
        return Kind.WRITE
    return None


def _dependency_of(annotation: Any) -> Any:
    """The dependency of ``Annotated[T, Depends(dependency)]`` (else None)."""
    for metadata in getattr(annotation, "__metadata__", ()):
        dependency = getattr(metadata, "dependency", None)
        if dependency is not None:
            return dependency
    return None


def _dependency_type(annotation: Any) -> Any:
    """``T`` of ``Annotated[T, Depends(...)]`` (or ``T`` itself)."""
    metadata = getattr(annotation, "__metadata__", None)
    return annotation.__origin__ if metadata is not None else annotation


class AppRoute(APIRoute):
    """The route class every router uses: its handler is served by ``serve``; the request's transactions are closed
    whatever happens (step 5), and any answer they did not audit is audited as it starts (step 2)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, serve(endpoint, status_code=kwargs.get("status_code")), **kwargs)
        self.write_kind = _write_kind(endpoint, self.methods or set())
        """The kind of the handler's write transaction, if it declares one."""
        self.counts_address = path not in UNLIMITED_PATHS and not calls_authentication(self.dependant)
        """A public route (no dependency authenticates the caller): its requests count against the client address
        (``app.core.limits``), credentials or not."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_and_close(request: Request) -> Response:
            if self.counts_address:
                state_of(request).rate_limits.count_address(request.scope)
            if self.body_field is not None:
                request.__class__ = UniqueKeysRequest  # its JSON body refuses duplicate keys (app.core.json_body)
            try:
                return await handle(request)
            finally:
                await close_transactions(request.scope)

        return handle_and_close

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().handle(scope, receive, send)
            return
        observe: Callable[[Request, int], Awaitable[None]] | None = state_of_scope(scope).observe_answer

        if observe is None:
            await super().handle(scope, receive, send)
            return

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                await observe(Request(scope, receive), message["status"])
            await send(message)

        await super().handle(scope, receive, send_observed)


def state_of_scope(scope: Scope) -> AppState:
    return state_of(scope["app"])


async def close_transactions(scope: Scope) -> None:
    """Step 5: close what the request opened, last opened first."""
    transactions: list[RequestTransaction] = scope.pop(_TRANSACTIONS, [])
    await _close_each(transactions[::-1])


async def _close_each(transactions: list[RequestTransaction]) -> None:
    if not transactions:
        return
    try:
        await transactions[0].close()
    finally:
        await _close_each(transactions[1:])
