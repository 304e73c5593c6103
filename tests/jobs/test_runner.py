"""The in-process runner of SQLite (``app.jobs.runner``), driven with the time the test sets: the same task functions
and retry strategy as the workers, periodic jobs once per period, and jobs a killed process left behind run again."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from app.auth.permissions import Role
from app.core.config import Settings
from app.core.datetimes import CLOCK
from app.core.job_models import BackgroundJob, PeriodicRun
from app.core.jobs import Backoff, JobRun, TryAgain, defer
from app.core.state import state_of
from app.idempotency import service as idempotency
from app.idempotency.models import IdempotencyRecord
from app.jobs.registry import PERIODIC, TASKS, Periodic, Task
from app.jobs.runner import requeue_interrupted, run_due_jobs
from tests.conftest import SQLITE_ONLY, ClinicKeys

BACKOFF = Backoff(attempts=3, first=timedelta(minutes=1), factor=2.0, jitter=0.25)


@pytest.fixture
def engine(app: FastAPI) -> Engine:
    return state_of(app).database.write_engine


@pytest.fixture
def settings(app: FastAPI) -> Settings:
    return state_of(app).settings


@pytest.fixture
def seen() -> list[JobRun]:
    return []


@pytest.fixture
def tasks(seen: list[JobRun]) -> dict[str, Task]:
    """A task that fails with ``TryAgain`` while its argument says so, and one that crashes."""

    def flaky(run: JobRun, *, fail: bool) -> None:
        seen.append(run)
        if fail and run.retry_at is not None:
            raise TryAgain("HTTP 503", run.retry_at)

    def crashing(run: JobRun) -> None:
        seen.append(run)
        raise ValueError("unexpected")

    return {
        "tests.flaky": Task("tests.flaky", flaky, BACKOFF),
        "tests.crashing": Task("tests.crashing", crashing, BACKOFF),
    }


def start(engine: Engine, task: str, args: dict[str, Any], at: datetime) -> int:
    with engine.begin() as connection:
        connection.execute(delete(BackgroundJob).where(BackgroundJob.task_name.in_(["tests.flaky", "tests.crashing"])))
    with Session(engine) as db, db.begin():
        defer(db, task, args=args, scheduled_at=at)
        job_id: int | None = db.scalar(select(func.max(BackgroundJob.id)))
    assert job_id is not None
    return job_id


def job(engine: Engine, job_id: int) -> BackgroundJob:
    with Session(engine) as db:
        found = db.get(BackgroundJob, job_id)
        assert found is not None
        db.expunge(found)
        return found


T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)


@SQLITE_ONLY  # the in-process runner is SQLite's (PostgreSQL runs procrastinate's workers)
def test_a_job_that_tries_again_runs_again_later_with_growing_jittered_delays(
    engine: Engine, settings: Settings, tasks: dict[str, Task], seen: list[JobRun]
) -> None:
    while run_due_jobs(engine, settings, reads=engine, now=T0 - timedelta(days=1), tasks=tasks, periodic=()):
        pass  # the jobs other tests left due in the shared database go first: out of this test's way
    job_id = start(engine, "tests.flaky", {"fail": True}, T0)
    rng = random.Random(19)

    run_due_jobs(engine, settings, reads=engine, now=T0, rng=rng, tasks=tasks, periodic=())
    first = job(engine, job_id)
    run_due_jobs(
        engine, settings, reads=engine, now=first.scheduled_at - timedelta(seconds=1), rng=rng, tasks=tasks, periodic=()
    )
    early = len(seen)
    run_due_jobs(engine, settings, reads=engine, now=first.scheduled_at, rng=rng, tasks=tasks, periodic=())
    second = job(engine, job_id)
    run_due_jobs(engine, settings, reads=engine, now=second.scheduled_at, rng=rng, tasks=tasks, periodic=())
    last = job(engine, job_id)

    first_delay, second_delay = first.scheduled_at - T0, second.scheduled_at - first.scheduled_at
    assert timedelta(seconds=45) <= first_delay <= timedelta(minutes=1)
    assert timedelta(seconds=90) <= second_delay <= timedelta(minutes=2)
    assert early == 1
    assert [(run.attempt, run.retry_at is None) for run in seen] == [(1, False), (2, False), (3, True)]
    assert (first.status, first.attempts, first.last_error) == ("todo", 1, "HTTP 503")
    assert (last.status, last.attempts, last.last_error) == ("succeeded", 3, None)


def test_the_jitter_comes_from_the_random_source() -> None:
    delays = {BACKOFF.delay(1, random.Random(seed)) for seed in range(5)}
    same = {BACKOFF.delay(1, random.Random(7)) for _ in range(3)}

    assert len(delays) == 5
    assert len(same) == 1
    assert BACKOFF.delay(3, random.Random(7)) is None


@SQLITE_ONLY  # the in-process runner is SQLite's (PostgreSQL runs procrastinate's workers)
def test_a_job_that_crashes_is_retried_then_fails(
    engine: Engine, settings: Settings, tasks: dict[str, Task], seen: list[JobRun]
) -> None:
    job_id = start(engine, "tests.crashing", {}, T0)
    rng = random.Random(3)

    for _ in range(BACKOFF.attempts):
        run_due_jobs(
            engine, settings, reads=engine, now=job(engine, job_id).scheduled_at, rng=rng, tasks=tasks, periodic=()
        )
    failed = job(engine, job_id)

    assert len(seen) == 3
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 3, "ValueError")
    assert failed.finished_at is not None


@SQLITE_ONLY  # the in-process runner is SQLite's (PostgreSQL runs procrastinate's workers)
def test_a_job_left_doing_by_a_killed_process_runs_again_at_start(
    engine: Engine, settings: Settings, tasks: dict[str, Task], seen: list[JobRun]
) -> None:
    job_id = start(engine, "tests.flaky", {"fail": False}, T0)
    with engine.begin() as connection:
        connection.execute(update(BackgroundJob).where(BackgroundJob.id == job_id).values(status="doing", attempts=1))
    before = run_due_jobs(engine, settings, reads=engine, now=T0, tasks=tasks, periodic=())

    requeue_interrupted(engine)
    run_due_jobs(engine, settings, reads=engine, now=T0, tasks=tasks, periodic=())

    assert before == 0
    assert [run.attempt for run in seen] == [2]
    assert job(engine, job_id).status == "succeeded"


@SQLITE_ONLY  # the in-process runner is SQLite's (PostgreSQL runs procrastinate's workers)
def test_a_periodic_job_is_deferred_once_per_period(engine: Engine, settings: Settings) -> None:
    name = f"tests.periodic.{uuid.uuid4().hex}"
    runs: list[JobRun] = []
    tasks = {name: Task(name, lambda run: runs.append(run), BACKOFF, queueing_lock=name)}
    hourly = (Periodic(name, cron="17 * * * *"),)
    at = datetime(2031, 3, 3, 12, 20, tzinfo=UTC)

    run_due_jobs(engine, settings, reads=engine, now=at, tasks=tasks, periodic=hourly)
    run_due_jobs(engine, settings, reads=engine, now=at + timedelta(minutes=30), tasks=tasks, periodic=hourly)
    after_one_period = len(runs)
    run_due_jobs(engine, settings, reads=engine, now=at + timedelta(hours=1), tasks=tasks, periodic=hourly)

    with engine.connect() as connection:
        last_tick = connection.scalar(select(PeriodicRun.last_tick).where(PeriodicRun.task_name == name))
    assert after_one_period == 1
    assert len(runs) == 2
    assert last_tick is not None
    assert last_tick.replace(tzinfo=UTC) == datetime(2031, 3, 3, 13, 17, tzinfo=UTC)


def record_made_at(engine: Engine, clinic: ClinicKeys, at: datetime) -> uuid.UUID:
    with Session(engine) as db, db.begin():
        record = IdempotencyRecord(
            api_key_id=clinic.key_ids[Role.ADMIN], key=uuid.uuid4().hex, fingerprint="0" * 64, created_at=at
        )
        db.add(record)
        db.flush()
        return record.id


@SQLITE_ONLY  # the in-process runner is SQLite's (PostgreSQL runs procrastinate's workers)
def test_idempotency_records_expire_by_the_periodic_job(engine: Engine, settings: Settings, clinic: ClinicKeys) -> None:
    """The registered schedule: hourly, the records older than IDEMPOTENCY_TTL_HOURS are deleted."""
    at = datetime(2032, 1, 1, 9, 30, tzinfo=UTC)
    old = record_made_at(engine, clinic, at - timedelta(hours=25))
    recent = record_made_at(engine, clinic, at - timedelta(hours=1))

    with CLOCK.frozen_at(at):
        run_due_jobs(engine, settings, reads=engine, now=at, periodic=PERIODIC)

    with engine.connect() as connection:
        left = set(connection.scalars(select(IdempotencyRecord.id).where(IdempotencyRecord.id.in_([old, recent]))))
    assert left == {recent}
    assert TASKS[idempotency.PURGE_TASK].function is idempotency.purge_task
