"""Deferring a background job in the caller's transaction, and what a task function is given when its job runs.

``defer(db, task, args=..., scheduled_at=..., queueing_lock=...)`` writes the job with the caller's other changes:
committed with them, gone if they roll back (an outbox without a second table). A domain names the task by a string
constant it owns (``app.clinical.webhooks.DELIVER_TASK``); the functions are registered in ``app.jobs.registry``,
which no domain imports.

- **PostgreSQL**: a procrastinate job. ``defer`` calls procrastinate's own SQL function, ``procrastinate_defer_jobs_v1``
  (the one its ``defer`` sends; its schema is applied by a migration from the pinned package), through SQLAlchemy
  ``text()`` with plain bind parameters, each cast to its SQL type. Our writes run on psycopg (the threadpool) or on
  asyncpg (a bounded write inside ``AsyncSession.run_sync``, ``app.core.lifecycle``), and procrastinate's
  ``configure(connection=...)`` needs a psycopg connection: the statement on the session's own connection works on
  both drivers and in the same transaction, and a procrastinate worker fetches and runs the job like any other
  (the insert's trigger notifies the workers at commit). Tests check both drivers against a real worker.
- **SQLite**: a ``background_job`` row, taken by the in-process runner (``app.jobs.runner``).

A queueing lock keeps at most one job waiting per lock: deferring another while one waits does nothing (procrastinate
refuses it with a unique violation, which a savepoint contains so the caller's transaction goes on).

A task function is ``fn(run: JobRun, **args)``: ``run`` carries the settings, the engine for its short writes and
the one for its long reads (from the worker's job context or the runner, never module state), the attempt, and when
the job runs again if the function raises
``TryAgain`` (None on the last attempt). ``Backoff`` is the retry strategy both engines follow.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, bindparam, insert, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import utcnow
from app.core.job_models import WAITING, BackgroundJob

QUEUE = "default"

_DEFER = text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW("
    "CAST(:queue_name AS varchar), CAST(:task_name AS varchar), CAST(0 AS integer), CAST(NULL AS text), "
    "CAST(:queueing_lock AS text), CAST(CAST(:args AS text) AS jsonb), CAST(:scheduled_at AS timestamptz)"
    ")]::procrastinate_job_to_defer_v1[]))"
)
"""procrastinate's ``defer_jobs`` query for one job; every parameter typed by a cast, as asyncpg needs."""
_WAITING = text(
    "SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = CAST(:queueing_lock AS text) AND status = 'todo' LIMIT 1"
)
"""Whether a job of the lock waits: an index probe (procrastinate's unique index on waiting jobs' locks), far cheaper
than the savepoint and the INSERT the index refuses. A job deferred concurrently is still caught by the index."""


def defer(
    db: Session,
    task: str,
    *,
    args: Mapping[str, Any] | None = None,
    scheduled_at: datetime | None = None,
    queueing_lock: str | None = None,
) -> None:
    """Defer job ``task`` with ``args`` (JSON values), due at ``scheduled_at`` (now if None), in ``db``'s
    transaction. With ``queueing_lock``, nothing is deferred while a job with that lock waits."""
    values = dict(args or {})
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        parameters = {
            "queue_name": QUEUE,
            "task_name": task,
            "queueing_lock": queueing_lock,
            "args": orjson.dumps(values).decode(),
            "scheduled_at": scheduled_at,
        }
        if queueing_lock is None:
            connection.execute(_DEFER, parameters)
            return
        if connection.execute(_WAITING, {"queueing_lock": queueing_lock}).first() is not None:
            return  # the common case (a job of this lock already waits): no savepoint, no refused INSERT
        try:
            with db.begin_nested():
                db.connection().execute(_DEFER, parameters)
        except IntegrityError:
            return
        return
    row = {
        "task_name": task,
        "args": values,
        "scheduled_at": scheduled_at or utcnow(),
        "attempts": 0,
        "status": WAITING,
        "queueing_lock": queueing_lock,
    }
    connection.execute(insert(BackgroundJob) if queueing_lock is None else _INSERT_UNLESS_WAITING, row)


_INSERT_UNLESS_WAITING = (
    sqlite.insert(BackgroundJob)
    .values(
        {name: bindparam(name) for name in ("task_name", "args", "scheduled_at", "attempts", "status", "queueing_lock")}
    )
    .on_conflict_do_nothing(index_elements=["queueing_lock"], index_where=text("status = 'todo'"))
)
"""SQLite's job row unless a job of its lock waits; built once (building it cost more than running it)."""


def waiting_locks(db: Session, locks: Collection[str]) -> set[str]:
    """Which of the queueing ``locks`` a waiting job holds (``defer`` would defer nothing for them): one query for
    a batch, e.g. an import's courses, instead of a probe each."""
    if not locks:
        return set()
    connection = db.connection()
    found: set[str] = set()
    for start in range(0, len(locks), _LOCKS_PER_QUERY):
        chunk = sorted(locks)[start : start + _LOCKS_PER_QUERY]
        if connection.dialect.name == "postgresql":
            rows = connection.execute(_WAITING_OF, {"locks": chunk})
        else:
            rows = connection.execute(
                select(BackgroundJob.queueing_lock).where(
                    BackgroundJob.queueing_lock.in_(chunk), BackgroundJob.status == WAITING
                )
            )
        found.update(lock for (lock,) in rows)
    return found


_LOCKS_PER_QUERY = 500
_WAITING_OF = text(
    "SELECT queueing_lock FROM procrastinate_jobs WHERE queueing_lock = ANY(CAST(:locks AS text[])) AND status = 'todo'"
)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: the delay after failed attempt n (1-based) is
    ``min(first * factor ** (n - 1), longest)``, less a random share of up to ``jitter`` of it (so retries of many
    jobs that failed together spread out instead of arriving together). ``attempts``: runs in all."""

    attempts: int
    first: timedelta
    factor: float = 2.0
    longest: timedelta = timedelta(hours=6)
    jitter: float = 0.25

    def base_delay(self, attempt: int) -> timedelta:
        """The delay after failed attempt ``attempt`` before jitter."""
        seconds = self.first.total_seconds() * self.factor ** (attempt - 1)
        return timedelta(seconds=min(seconds, self.longest.total_seconds()))

    def delay(self, attempt: int, rng: random.Random) -> timedelta | None:
        """The delay after failed attempt ``attempt``, in [base·(1 − jitter), base]; None after the last one."""
        if attempt >= self.attempts:
            return None
        return self.base_delay(attempt) * (1 - self.jitter * rng.random())


NO_RETRY = Backoff(attempts=1, first=timedelta(0))


@dataclass(frozen=True)
class JobRun:
    """What a task function is given when its job runs."""

    settings: Settings
    engine: Engine
    """For the task's own short transactions (on SQLite the single writer's engine: take it briefly)."""
    reads: Engine
    """For reads that may take long (a patient's whole series): never SQLite's single writer, whose one connection
    and write lock every write request would wait for meanwhile."""
    attempt: int
    """1 for the first run."""
    retry_at: datetime | None
    """When the job runs again if the function raises ``TryAgain``; None if this is its last attempt."""


class TryAgain(Exception):
    """Raised by a task function whose attempt failed: its job runs again at ``JobRun.retry_at``."""

    def __init__(self, reason: str, retry_at: datetime) -> None:
        super().__init__(reason)
        self.retry_at = retry_at
