"""The in-process job runner of the embedded SQLite database: the same task functions as procrastinate's workers.

``run_due_jobs(engine, settings, now=...)`` first defers each periodic task's job once per period (``periodic_run``
holds the last period deferred, in the same transaction as the job: durable, and never twice), then runs the jobs
due by ``now``, oldest first, one at a time: each is taken (``doing``, an attempt counted) in a short transaction,
run outside any transaction, and finished in another: ``succeeded``; back to ``todo`` at the time its task's
``Backoff`` gives if it raised ``TryAgain`` (or failed unexpectedly) with attempts left; else ``failed``.

``InProcessRunner`` is the thread the app's lifespan starts on SQLite (``JOBS_IN_PROCESS``): at start it puts back
the jobs a killed process left ``doing`` (the embedded database has one app process), then calls ``run_due_jobs``
every ``JOBS_POLL_SECONDS``. Jobs are rows in the database, so a job caused by a committed change survives kill -9.
Tests call ``run_due_jobs`` themselves, with the time they set and a seeded random source: nothing waits.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from croniter import croniter
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import utcnow
from app.core.job_models import DOING, FAILED, SUCCEEDED, WAITING, BackgroundJob, PeriodicRun
from app.core.jobs import JobRun, TryAgain, defer
from app.jobs.registry import PERIODIC, TASKS, Periodic, Task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Taken:
    id: int
    task_name: str
    args: dict[str, Any]
    attempt: int


def run_due_jobs(
    engine: Engine,
    settings: Settings,
    *,
    reads: Engine,
    now: datetime,
    rng: random.Random | None = None,
    limit: int = 100,
    tasks: dict[str, Task] | None = None,
    periodic: tuple[Periodic, ...] = PERIODIC,
    deferred: dict[str, datetime] | None = None,
) -> int:
    """Defer the periodic jobs due by ``now``, then run up to ``limit`` jobs due by ``now``; how many ran.
    ``deferred``: the periods this caller already saw deferred (the runner's memory: no transaction until the next)."""
    tasks = TASKS if tasks is None else tasks
    rng = rng or random.SystemRandom()
    defer_periodic(engine, now=now, periodic=periodic, tasks=tasks, deferred=deferred)
    ran = 0
    while ran < limit:
        job = _take(engine, now)
        if job is None:
            break
        _run(job, engine, reads, settings, tasks, now=now, rng=rng)
        ran += 1
    return ran


def defer_periodic(
    engine: Engine,
    *,
    now: datetime,
    periodic: tuple[Periodic, ...],
    tasks: dict[str, Task],
    deferred: dict[str, datetime] | None = None,
) -> None:
    """Defer each periodic task's job for its latest period by ``now``, unless that period's job was deferred."""
    seen = {} if deferred is None else deferred
    for entry in periodic:
        tick: datetime = croniter(entry.cron, now).get_prev(datetime)
        if entry.task in seen and seen[entry.task] >= tick:
            continue
        with Session(engine) as db, db.begin():
            last = db.get(PeriodicRun, entry.task)
            if last is None or last.last_tick < tick:
                if last is None:
                    db.add(PeriodicRun(task_name=entry.task, last_tick=tick))
                else:
                    last.last_tick = tick
                defer(db, entry.task, scheduled_at=tick, queueing_lock=tasks[entry.task].queueing_lock)
        seen[entry.task] = tick


def requeue_interrupted(engine: Engine) -> int:
    """Put back the jobs left ``doing`` by a process that stopped mid-job (kill -9): they run again."""
    with Session(engine) as db, db.begin():
        result = db.execute(update(BackgroundJob).where(BackgroundJob.status == DOING).values(status=WAITING))
        return int(getattr(result, "rowcount", 0) or 0)


def _take(engine: Engine, now: datetime) -> _Taken | None:
    with Session(engine) as db, db.begin():
        job = db.scalars(
            select(BackgroundJob)
            .where(BackgroundJob.status == WAITING, BackgroundJob.scheduled_at <= now)
            .order_by(BackgroundJob.scheduled_at, BackgroundJob.id)
            .limit(1)
        ).first()
        if job is None:
            return None
        job.status, job.attempts, job.started_at = DOING, job.attempts + 1, now
        return _Taken(id=job.id, task_name=job.task_name, args=dict(job.args), attempt=job.attempts)


def _run(
    job: _Taken,
    engine: Engine,
    reads: Engine,
    settings: Settings,
    tasks: dict[str, Task],
    *,
    now: datetime,
    rng: random.Random,
) -> None:
    task = tasks.get(job.task_name)
    if task is None:
        _finish(engine, job.id, FAILED, error=f"unknown task {job.task_name}")
        return
    delay = task.backoff.delay(job.attempt, rng)
    retry_at = None if delay is None else now + delay
    try:
        run = JobRun(settings=settings, engine=engine, reads=reads, attempt=job.attempt, retry_at=retry_at)
        task.function(run, **job.args)
    except TryAgain as again:
        _finish(engine, job.id, WAITING, scheduled_at=again.retry_at, error=str(again))
    except Exception as error:
        logger.exception("background job %s failed", job.task_name)
        name = type(error).__name__
        if retry_at is None:
            _finish(engine, job.id, FAILED, error=name)
        else:
            _finish(engine, job.id, WAITING, scheduled_at=retry_at, error=name)
    else:
        _finish(engine, job.id, SUCCEEDED)


def _finish(
    engine: Engine, job_id: int, status: str, *, scheduled_at: datetime | None = None, error: str | None = None
) -> None:
    values: dict[str, Any] = {"status": status, "last_error": None if error is None else error[:200]}
    if scheduled_at is not None:
        values["scheduled_at"] = scheduled_at
    if status in (SUCCEEDED, FAILED):
        values["finished_at"] = utcnow()
    with Session(engine) as db, db.begin():
        db.execute(update(BackgroundJob).where(BackgroundJob.id == job_id).values(values))


class InProcessRunner:
    """A daemon thread running ``run_due_jobs`` every ``poll_seconds`` until ``stop``."""

    def __init__(self, engine: Engine, settings: Settings, *, reads: Engine) -> None:
        self.engine = engine
        self.reads = reads
        self.settings = settings
        self._stop = threading.Event()
        self._deferred: dict[str, datetime] = {}
        self._thread = threading.Thread(target=self._loop, name="jobs-in-process", daemon=True)

    def start(self) -> None:
        requeue_interrupted(self.engine)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the job being run, if any (a delivery's attempt is bounded by its timeout)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            ran = 0
            try:
                ran = run_due_jobs(
                    self.engine, self.settings, reads=self.reads, now=utcnow(), limit=1, deferred=self._deferred
                )
            except Exception:
                logger.exception("the in-process job runner failed; it goes on")
            if not ran:
                self._stop.wait(self.settings.jobs_poll_seconds)
