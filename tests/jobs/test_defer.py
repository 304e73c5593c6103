"""``app.core.jobs.defer``: a job is written in the caller's transaction (committed with it, gone if it rolls back),
once per queueing lock while one waits; on PostgreSQL it is a procrastinate job that a real worker runs, whichever
driver (psycopg, or asyncpg inside ``AsyncSession.run_sync``) wrote it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from app.clinical import webhooks
from app.core.job_models import BackgroundJob
from app.core.jobs import defer, waiting_locks
from app.core.state import loop_url, state_of
from tests.conftest import POSTGRESQL_ONLY, run_jobs


def jobs_with(engine: Engine, task: str, args: dict[str, Any] | None = None) -> list[tuple[str, int]]:
    """(status, attempts) of each job of ``task`` (with ``args``, if given), in either engine's table."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(
                select(BackgroundJob.status, BackgroundJob.attempts, BackgroundJob.args).where(
                    BackgroundJob.task_name == task
                )
            ).all()
        else:
            rows = connection.execute(
                text("SELECT status::text, attempts, args FROM procrastinate_jobs WHERE task_name = :task"),
                {"task": task},
            ).all()
    return [(status, attempts) for status, attempts, found in rows if args is None or found == args]


@pytest.fixture
def task(app: FastAPI) -> Iterator[str]:
    """A task name no worker knows: its jobs are deleted afterwards, before any worker tries them."""
    name = f"tests.noop.{uuid.uuid4().hex}"
    yield name
    engine = state_of(app).database.write_engine
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(delete(BackgroundJob).where(BackgroundJob.task_name == name))
        else:
            connection.execute(text("DELETE FROM procrastinate_jobs WHERE task_name = :task"), {"task": name})


def test_a_job_is_deferred_with_the_transaction_that_commits(app: FastAPI, task: str) -> None:
    with state_of(app).write_sessions() as db, db.begin():
        defer(db, task, args={"n": 1})

    assert jobs_with(state_of(app).database.write_engine, task) == [("todo", 0)]


def test_a_job_deferred_in_a_transaction_that_rolls_back_is_gone(app: FastAPI, task: str) -> None:

    def defer_then_fail() -> None:
        with state_of(app).write_sessions() as db, db.begin():
            defer(db, task, args={"n": 1})
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        defer_then_fail()

    assert jobs_with(state_of(app).database.write_engine, task) == []


def test_a_queueing_lock_keeps_one_job_waiting_and_the_transaction_goes_on(app: FastAPI, task: str) -> None:
    lock = f"lock-{uuid.uuid4().hex}"
    with state_of(app).write_sessions() as db, db.begin():
        defer(db, task, queueing_lock=lock)
        defer(db, task, queueing_lock=lock)
        still_usable = db.scalar(select(func.count()).select_from(BackgroundJob).where(BackgroundJob.id < 0))

    assert jobs_with(state_of(app).database.write_engine, task) == [("todo", 0)]
    assert still_usable == 0


def test_a_lock_already_waiting_from_an_earlier_transaction_defers_nothing(app: FastAPI, task: str) -> None:
    lock = f"lock-{uuid.uuid4().hex}"
    for n in range(3):
        with state_of(app).write_sessions() as db, db.begin():
            defer(db, task, args={"n": n}, queueing_lock=lock)

    assert jobs_with(state_of(app).database.write_engine, task) == [("todo", 0)]


def test_waiting_locks_names_the_locks_a_waiting_job_holds(app: FastAPI, task: str) -> None:
    held, free = f"lock-{uuid.uuid4().hex}", f"lock-{uuid.uuid4().hex}"
    with state_of(app).write_sessions() as db, db.begin():
        defer(db, task, queueing_lock=held)

    with state_of(app).write_sessions() as db, db.begin():
        assert waiting_locks(db, [held, free]) == {held}
        assert waiting_locks(db, []) == set()


async def _defer_on_asyncpg(url: str, task: str, args: dict[str, Any]) -> None:
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as db, db.begin():
            await db.run_sync(lambda sync_db: defer(sync_db, task, args=args))
    finally:
        await engine.dispose()


@POSTGRESQL_ONLY
def test_jobs_deferred_through_either_driver_are_run_by_a_procrastinate_worker(app: FastAPI) -> None:
    """A delivery job for a delivery that does not exist: the task finds nothing to do, and the job succeeds."""
    engine = state_of(app).database.write_engine
    on_psycopg, on_asyncpg = {"delivery_id": str(uuid.uuid4())}, {"delivery_id": str(uuid.uuid4())}
    with Session(engine) as db, db.begin():
        defer(db, webhooks.DELIVER_TASK, args=on_psycopg)
    url = loop_url(engine.url, "asyncpg")
    assert url is not None
    assert url.get_driver_name() == "asyncpg"
    asyncio.run(_defer_on_asyncpg(url.render_as_string(hide_password=False), webhooks.DELIVER_TASK, on_asyncpg))
    waiting = jobs_with(engine, webhooks.DELIVER_TASK, on_psycopg) + jobs_with(
        engine, webhooks.DELIVER_TASK, on_asyncpg
    )

    run_jobs(app)

    assert waiting == [("todo", 0), ("todo", 0)]
    assert jobs_with(engine, webhooks.DELIVER_TASK, on_psycopg) == [("succeeded", 1)]
    assert jobs_with(engine, webhooks.DELIVER_TASK, on_asyncpg) == [("succeeded", 1)]
