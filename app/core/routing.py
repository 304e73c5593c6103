"""The route class every router uses: a sync handler and the end of its request's transaction share one thread.

FastAPI runs a sync handler in the threadpool and a dependency's teardown in another hand-off after it. Ending the
transaction (the audit events, the commit) right after the handler, in the handler's own thread, saves that
hand-off, and on SQLite it means the single write connection is held by one thread call, never across a trip
through a busy event loop (bench/README.md). ``get_db`` opens the transaction; the route's handler ends it whenever
the handler did not (a read, an async handler, a session reached only through another dependency) and rolls it back
if anything failed.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.types import Message, Receive, Scope, Send

from app.core.deps import (
    BOUNDED_WRITE,
    TransactionalRoute,
    end_request_transactions,
    end_transaction,
    holds_single_writer,
    run_in_session,
)
from app.core.json_body import UniqueKeysRequest
from app.core.limits import UNLIMITED_PATHS, RateLimits, calls_authentication

_WRAPPED = "__ends_transaction__"


def ends_transaction(handler: Callable[..., Any], status_code: int | None = None) -> Callable[..., Any]:
    """Wrap a sync handler so that, once it returns, the request transaction of any session it was given ends.

    The wrapper is the route's ``endpoint`` (FastAPI builds an included route's dependencies from it); the handler
    as written is its ``__wrapped__``. ``status_code``: the route's, sent when the handler returns no response of its
    own (the audit records the status actually sent).
    """
    if inspect.iscoroutinefunction(handler) or getattr(handler, _WRAPPED, False):
        return handler

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = handler(*args, **kwargs)
        if isinstance(result, Response):
            sent, location = result.status_code, result.headers.get("location")
        else:
            sent, location = status_code or 200, None
        for value in kwargs.values():
            end_transaction(value, sent, location)
        return result

    setattr(run, _WRAPPED, True)
    if not getattr(handler, BOUNDED_WRITE, False):
        return run

    @functools.wraps(handler)
    async def run_bounded(*args: Any, **kwargs: Any) -> Any:
        if holds_single_writer(kwargs.values()):
            return run(*args, **kwargs)
        session = next((value for value in kwargs.values() if isinstance(value, Session)), None)
        if session is not None:
            return await run_in_session(session, run, *args, **kwargs)
        return await run_in_threadpool(run, *args, **kwargs)

    setattr(run_bounded, _WRAPPED, True)
    return run_bounded


def bounded_write(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a sync write handler whose work is small and bounded (one record, no outside calls): it runs on the
    event loop, not in the threadpool.

    On SQLite it runs while it holds the single writer: no other write can proceed meanwhile, and handing the work
    to a thread and back kept the writer busy about 0.5 ms longer per request (waiting for the event loop's
    attention both ways), a quarter of its turn. On PostgreSQL its session is a loop session
    (``app.core.loop_db``): its statements await the network on the event loop, which saves the thread's
    hand-offs and GIL contention (bench/README.md). Never for work that grows with the input (a Bundle, an import):
    it would stall every other request meanwhile.
    """
    setattr(handler, BOUNDED_WRITE, True)
    return handler


class AppRoute(APIRoute, TransactionalRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, ends_transaction(endpoint, kwargs.get("status_code")), **kwargs)
        self.counts_address = path not in UNLIMITED_PATHS and not calls_authentication(self.dependant)
        """A public route (no dependency authenticates the caller): its requests count against the client address
        (``app.core.limits``), credentials or not."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, then the end of every transaction ``get_db`` opened for the request: committed if not
        yet (a read, an async handler) once the handler returned, rolled back if anything failed, before the
        response is sent or the error rendered (the refusal audit needs SQLite's writer free)."""
        handle = super().get_route_handler()

        async def handle_and_end(request: Request) -> Response:
            if self.counts_address:
                limits: RateLimits = request.app.state.rate_limits
                limits.count_address(request.scope)
            if self.body_field is not None:
                request.__class__ = UniqueKeysRequest  # its JSON body refuses duplicate keys (app.core.json_body)
            try:
                response = await handle(request)
            except BaseException:
                await end_request_transactions(request.scope, failed=True)
                raise
            await end_request_transactions(
                request.scope,
                failed=False,
                status_code=response.status_code,
                location=response.headers.get("location"),
            )
            return response

        return handle_and_end

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle the request; when its response starts (before anything is sent), an answer its transaction did not
        record (a refusal, a rejected request, a replay) is recorded (``app.state.answer_observer``, the audit trail)
        with the status it is sent with."""
        if scope["type"] != "http":
            await super().handle(scope, receive, send)
            return
        observer: Callable[[Request, int], Awaitable[None]] | None = getattr(
            scope["app"].state, "answer_observer", None
        )
        if observer is None:
            await super().handle(scope, receive, send)
            return

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                await observer(Request(scope, receive), message["status"])
            await send(message)

        await super().handle(scope, receive, send_observed)
