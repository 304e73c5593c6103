"""Loop sessions: sync SQLAlchemy sessions whose PostgreSQL connections await the network on the event loop.

The small bounded writes (an ingest, an amendment; ``app.core.routing.bounded_write``) run their plain sync code on
the event loop; their session's connection is an asyncio driver's, bridged by SQLAlchemy's greenlet machinery, so a
statement waiting on the network lets the loop serve other requests. Such a session works only inside
``app.core.deps.run_in_session``. Run in threads instead, an ingest cost ~0.45 ms more CPU (hand-offs, and worker
threads and the event loop contending for the GIL at every round trip), and asyncpg costs ~0.2 ms less than
psycopg's asyncio connection (bench/README.md change 29).
"""

from __future__ import annotations

import asyncio
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.core.config import Settings
from app.core.db import JSON_CODEC, in_utc, ping_when_idle


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


class LoopSessions:
    """Makes loop sessions, from one engine per event loop: an asyncpg connection belongs to the loop that opened
    it. The server's loop (the one the app's lifespan runs on, ``serve_here``) keeps a pool; any other loop (an
    in-process client's, a test's) opens a connection per session and closes it with the session, so nothing is
    left open when that loop ends. ``thread_engine`` is what work after the commit uses from other threads (a
    webhook delivery).
    """

    def __init__(self, url: URL, settings: Settings, thread_engine: Engine) -> None:
        self.url = url
        self.settings = settings
        self.thread_engine = thread_engine
        self._engines: WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = WeakKeyDictionary()
        self._makers: WeakKeyDictionary[asyncio.AbstractEventLoop, sessionmaker[Session]] = WeakKeyDictionary()
        self._home: asyncio.AbstractEventLoop | None = None

    def serve_here(self) -> None:
        """Pool connections on the running loop: the app's lifespan calls it on the server's loop."""
        self._home = asyncio.get_running_loop()

    def __call__(self) -> Session:
        loop = asyncio.get_running_loop()
        maker = self._makers.get(loop)
        if maker is None:
            engine = self._engines[loop] = self._engine(pooled=loop is self._home)
            maker = self._makers[loop] = sessionmaker(
                bind=engine.sync_engine,
                expire_on_commit=False,
                autoflush=False,
                info={_ON_LOOP: True, _THREAD_ENGINE: self.thread_engine},
            )
        return maker()

    def _engine(self, *, pooled: bool) -> AsyncEngine:
        settings = self.settings
        if not pooled:
            unpooled = create_async_engine(self.url, poolclass=NullPool, **JSON_CODEC)
            in_utc(unpooled.sync_engine)
            return unpooled
        engine = create_async_engine(
            self.url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow, **JSON_CODEC
        )
        in_utc(engine.sync_engine)
        ping_when_idle(engine.sync_engine, settings.db_ping_after_idle_seconds)
        return engine

    @property
    def driver(self) -> str:
        return self.url.get_driver_name()

    def checked_out(self) -> int:
        """Connections in use, over every loop's engine."""
        return sum(engine.sync_engine.pool.checkedout() for engine in list(self._engines.values()))  # type: ignore[attr-defined]

    async def dispose(self) -> None:
        """Close the pooled connections (on the server's loop, at shutdown); other loops' engines hold none."""
        running = asyncio.get_running_loop()
        for loop, engine in list(self._engines.items()):
            await engine.dispose(close=loop is running)
        self._engines.clear()
        self._makers.clear()
        self._home = None


def create_loop_sessions(settings: Settings, write_engine: Engine) -> LoopSessions | None:
    """Loop sessions for ``write_engine``'s database, or None where bounded writes need none (``loop_url``)."""
    url = loop_url(write_engine.url, settings.db_loop_driver)
    return LoopSessions(url, settings, write_engine) if url is not None else None


def runs_on_loop(session: Session) -> bool:
    """Whether ``session``'s statements await on the event loop (a loop session)."""
    return bool(session.info.get(_ON_LOOP))


def thread_engine(session: Session) -> Engine:
    """An engine for work that outlives ``session`` in another thread (a webhook delivery after the commit): the
    session's own, unless its connections belong to the event loop."""
    engine = session.info.get(_THREAD_ENGINE) or session.get_bind()
    if not isinstance(engine, Engine):
        raise TypeError(f"session bound to {engine!r}, not an engine")
    return engine


_ON_LOOP = "connection_on_event_loop"
_THREAD_ENGINE = "thread_engine"
