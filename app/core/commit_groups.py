"""SQLite: the bounded writes that reach the writer in one pass of the event loop share one transaction and one commit.

SQLite commits one transaction at a time, and every commit writes its pages to the WAL and waits for the disk
(``synchronous=FULL``). Under a stream of single-measurement ingests that was a third of the event loop's time
(bench/README.md, change 38). Bounded writes run inline on the loop while they hold the writer
(``app.core.lifecycle``, step 4c), so a group forms by waiting one pass of the loop before committing:

- the first bounded write takes the writer's turn and begins the group's transaction on the write engine's
  connection, and the group's commit is scheduled for the loop's next pass;
- each bounded write that reaches its turn before then joins: it runs in the same transaction, in a savepoint of its
  own, with a session bound to the group's connection (``join_transaction_mode="rollback_only"``: its ``commit``
  only flushes);
- one commit ends the group; its members answer only after it, and a failed commit fails them all.

A member that fails is rolled back to its savepoint alone. If its session rolled back the whole transaction instead
(the ORM does so when a flush fails outside a nested transaction), the group is broken: every other member fails with
``Busy`` (503, retry: nothing was stored). The savepoints are the driver's own ``SAVEPOINT`` statements: SQLAlchemy's
nested transactions cost more CPU than the shared commit saves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import Engine

from app.core.errors import Busy
from app.core.write_turns import WriteTurns

MOST_MEMBERS = 64
"""A group's size is bounded, so that a queued thread writer (a Bundle, an import) waits at most this many."""


class CommitGroup:
    """One shared transaction: its connection, its members' savepoints and its commit."""

    def __init__(self, engine: Engine, give_back_turn: Callable[[], None] | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.connection = engine.connect()
        try:
            self.transaction = self.connection.begin()
        except BaseException:  # BEGIN failed (another process held the lock past the busy timeout)
            self.connection.close()
            raise
        self._give_back_turn = give_back_turn
        self.members = 0
        self.active = False
        """A member has entered and not yet left (members run one after another, inline on the loop)."""
        self.broken = False
        self.error: BaseException | None = None
        self._committed = asyncio.Event()

    def accepts(self) -> bool:
        """Open to one more member: no member running, below the bound, on this event loop (a second test client
        runs its own). An ending group is no longer the open one."""
        usable = not (self.active or self.broken) and self.members < MOST_MEMBERS
        return usable and self.loop is asyncio.get_running_loop()

    def enter(self) -> None:
        self.members += 1
        self.active = True
        self._execute("SAVEPOINT member")

    def leave(self, *, succeeded: bool) -> None:
        """The member's work is done: kept (released into the group's transaction) or rolled back alone."""
        self.active = False
        if succeeded:
            self._execute("RELEASE member")
        elif self._intact():
            self._execute("ROLLBACK TO member")
            self._execute("RELEASE member")
        else:
            self.broken = True

    async def committed(self) -> None:
        """Wait for the group's commit; raise what ended it otherwise."""
        await self._committed.wait()
        if self.error is not None:
            raise self.error

    def end(self) -> None:
        """Commit (or, broken, roll back) the group's transaction, then give the writer's turn back."""
        try:
            if self.broken or not self._intact():
                self.error = Busy("another write in the same transaction failed; retry (nothing was stored)")
            else:
                self.transaction.commit()
        except Exception as error:  # a failed commit fails every member; nothing of theirs was stored
            self.error = error
        finally:
            if self.error is not None:  # in no known state: its DBAPI connection is discarded, not reused
                self.connection.invalidate()
            self.connection.close()
            self._committed.set()
            if self._give_back_turn is not None:
                self._give_back_turn()

    def _intact(self) -> bool:
        driver = self.connection.connection.driver_connection
        return self.transaction.is_active and bool(getattr(driver, "in_transaction", False))

    def _execute(self, statement: str) -> None:
        driver = self.connection.connection.driver_connection
        assert driver is not None
        driver.execute(statement)


class CommitGroups:
    """Where SQLite's bounded writes find the open group, or open the next one."""

    def __init__(self, engine: Engine, turns: WriteTurns) -> None:
        self.engine = engine
        self.turns = turns
        self._open: CommitGroup | None = None

    async def join(self) -> CommitGroup:
        group = self._open
        if group is None or not group.accepts():
            give_back_turn = await self.turns.take()
            try:
                group = CommitGroup(self.engine, give_back_turn)
            except BaseException:
                if give_back_turn is not None:
                    give_back_turn()
                raise
            self._open = group
            group.loop.call_soon(self._end, group)
        group.enter()
        return group

    def _end(self, group: CommitGroup) -> None:
        if group.active:  # a member is still running: after it
            group.loop.call_soon(self._end, group)
            return
        if self._open is group:
            self._open = None
        group.end()
