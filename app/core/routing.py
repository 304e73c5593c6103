"""The route class every router uses: a sync handler and the end of its request's transaction share one thread.

FastAPI runs a sync handler in the threadpool and a dependency's teardown in another hand-off after it. Ending the
transaction (the audit events, the commit) right after the handler, in the handler's own thread, saves that
hand-off, and on SQLite it means the single write connection is held by one thread call, never across a trip
through a busy event loop (bench/README.md). ``get_db`` still owns the transaction: it creates it, and ends it
itself whenever the handler did not (an async handler, or a session reached only through another dependency).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute

from app.core.deps import end_transaction

_WRAPPED = "__ends_transaction__"


def ends_transaction(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a sync handler so that, once it returns, the request transaction of any session it was given ends.

    The wrapper is the route's ``endpoint`` (FastAPI builds an included route's dependencies from it); the handler
    as written is its ``__wrapped__``.
    """
    if inspect.iscoroutinefunction(handler) or getattr(handler, _WRAPPED, False):
        return handler

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = handler(*args, **kwargs)
        for value in kwargs.values():
            end_transaction(value)
        return result

    setattr(run, _WRAPPED, True)
    return run


class AppRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, ends_transaction(endpoint), **kwargs)
