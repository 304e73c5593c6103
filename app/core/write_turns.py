"""Where write requests wait for a writer's turn: on the event loop, first come first served.

SQLite has one writer; waiting here instead of in a threadpool thread blocked on the one-connection pool keeps 30-odd
threads from waking and contending for the GIL under load. A server database gets a few concurrent write
transactions (``DB_WRITE_CONCURRENCY``): more only add threads and database backends that contend for the same cores,
and let late requests overtake early ones (bench/README.md, changes 21-22).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from weakref import WeakKeyDictionary

from app.core.errors import Busy


class WriteTurns:
    def __init__(self, *, writers: int | None, wait_seconds: float = 30.0) -> None:
        self.writers = writers
        """Turns at once; ``None``: no turns at all."""
        self.wait_seconds = wait_seconds
        """As long as a writer waited on SQLite's busy timeout before: then 503, never an endless queue."""
        self._turns: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = WeakKeyDictionary()

    @property
    def single_writer(self) -> bool:
        return self.writers == 1

    async def take(self) -> Callable[[], None] | None:
        """Wait for a writer's turn; returns what gives it back (None where writers need no turns)."""
        if self.writers is None:
            return None
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop)
        if turns is None:  # one per event loop (a second test client runs its own)
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
