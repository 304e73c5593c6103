"""Write requests take turns for the database's writers, on the event loop, and never wait forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from app.core.errors import Busy
from app.core.write_turns import WriteTurns


@asynccontextmanager
async def turn(turns: WriteTurns) -> AsyncIterator[None]:
    give_back = await turns.take()
    try:
        yield
    finally:
        if give_back is not None:
            give_back()


def test_write_requests_take_turns_as_many_at_a_time_as_there_are_writers() -> None:
    async def scenario(turns: WriteTurns) -> int:
        inside = 0
        most = 0

        async def request() -> None:
            nonlocal inside, most
            async with turn(turns):
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                inside -= 1

        await asyncio.gather(*(request() for _ in range(5)))
        return most

    assert asyncio.run(scenario(WriteTurns(writers=1))) == 1
    assert asyncio.run(scenario(WriteTurns(writers=3))) == 3
    assert asyncio.run(scenario(WriteTurns(writers=None))) == 5


def test_a_writer_that_waits_too_long_is_told_the_service_is_busy() -> None:
    async def scenario() -> None:
        turns = WriteTurns(writers=1, wait_seconds=0.01)
        async with turn(turns):
            with pytest.raises(Busy, match="retry"):
                async with turn(turns):
                    pass  # pragma: no cover - never reached
        async with turn(turns):  # the turn was given back after the refusal
            pass

    asyncio.run(scenario())
