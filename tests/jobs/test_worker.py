"""procrastinate's side (``app.jobs.worker``): every registered task and periodic schedule, the same retry strategy,
and the periodic expiry of idempotency records run by a real worker on PostgreSQL."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from procrastinate.jobs import Job
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.permissions import Role
from app.clinical import webhooks
from app.core.datetimes import CLOCK
from app.core.jobs import TryAgain, defer
from app.core.state import state_of
from app.idempotency import service as idempotency
from app.idempotency.models import IdempotencyRecord
from app.jobs.registry import PERIODIC, TASKS
from app.jobs.worker import STALLED_TASK, BackoffRetry, build_app, conninfo, every
from tests.conftest import POSTGRESQL_ONLY, ClinicKeys, make_settings, run_jobs


def test_the_app_has_every_task_and_schedule() -> None:
    app = build_app(make_settings("postgresql+psycopg://u:p@db.example:5432/outcomes"))
    ours = {name for name in app.tasks if not name.startswith(("builtin:", "procrastinate."))}

    assert ours == set(TASKS) | {STALLED_TASK}
    assert {task for task, _periodic_id in app.periodic_registry.periodic_tasks} == {
        *(entry.task for entry in PERIODIC),
        STALLED_TASK,
    }
    assert app.tasks[webhooks.DELIVER_TASK].queueing_lock is None
    assert app.tasks[idempotency.PURGE_TASK].queueing_lock == idempotency.PURGE_TASK


def test_the_database_url_is_given_to_libpq_as_such() -> None:
    assert conninfo("postgresql+psycopg://u:p@db:5432/outcomes?sslmode=require") == (
        "postgresql://u:p@db:5432/outcomes?sslmode=require"
    )


def test_the_stalled_job_check_runs_as_often_as_configured() -> None:
    assert every(1) == "* * * * * */1"
    assert every(60) == "*/1 * * * *"
    assert every(300) == "*/5 * * * *"


def test_procrastinate_retries_as_the_task_asked_and_else_by_the_backoff() -> None:
    strategy = BackoffRetry(webhooks.BACKOFF)
    at = datetime(2031, 1, 1, tzinfo=UTC)
    job = Job(id=1, queue="default", lock=None, queueing_lock=None, task_name=webhooks.DELIVER_TASK, attempts=0)
    last = Job(id=1, queue="default", lock=None, queueing_lock=None, task_name=webhooks.DELIVER_TASK, attempts=9)

    asked = strategy.get_retry_decision(exception=TryAgain("HTTP 503", at), job=job)
    with CLOCK.frozen_at(at):
        crashed = strategy.get_retry_decision(exception=ValueError(), job=job)
        crashed_last = strategy.get_retry_decision(exception=ValueError(), job=last)

    assert asked is not None
    assert asked.retry_at == at
    assert crashed is not None
    assert crashed.retry_at is not None
    assert at + timedelta(seconds=22.5) <= crashed.retry_at <= at + timedelta(seconds=30)
    assert crashed_last is None
    assert webhooks.BACKOFF.delay(10, random.Random(1)) is None


@POSTGRESQL_ONLY
def test_idempotency_records_expire_by_their_job_on_a_worker(app: FastAPI, clinic: ClinicKeys) -> None:
    engine = state_of(app).database.write_engine
    at = datetime.now(UTC) + timedelta(days=3000)
    with Session(engine) as db, db.begin():
        records = [
            IdempotencyRecord(api_key_id=clinic.key_ids[Role.ADMIN], key=uuid.uuid4().hex, fingerprint="0" * 64)
            for _ in range(2)
        ]
        records[0].created_at, records[1].created_at = at - timedelta(hours=25), at - timedelta(hours=1)
        db.add_all(records)
        db.flush()
        old, recent = records[0].id, records[1].id
        defer(db, idempotency.PURGE_TASK, queueing_lock=idempotency.PURGE_TASK)

    with CLOCK.frozen_at(at):
        run_jobs(app, now=at)

    with Session(engine) as db:
        left = set(db.scalars(select(IdempotencyRecord.id).where(IdempotencyRecord.id.in_([old, recent]))))
    assert left == {recent}
