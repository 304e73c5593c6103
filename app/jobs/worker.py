"""procrastinate on PostgreSQL: the App with every task of ``app.jobs.registry``, and ``python -m app worker``.

Jobs are rows of procrastinate's tables (its schema is applied by a migration), taken by workers with
``FOR UPDATE SKIP LOCKED``: a job runs once across any number of app processes and workers. Each task function
runs in a worker thread with a ``JobRun`` made from the job's context: the worker's settings and engine (given as
procrastinate's ``additional_context``, never module state), the attempt, and when it runs again if it raises
``TryAgain`` (its task's ``Backoff``, the strategy the SQLite runner follows too). Workers defer the periodic jobs
(procrastinate's periodic deferrer; one job per period whatever the number of workers) and send heartbeats; a
periodic job (``STALLED_TASK``) runs again the jobs of a worker silent for ``JOBS_STALLED_AFTER_SECONDS`` (one
killed mid-job, say).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

import procrastinate
from procrastinate.jobs import Job
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.db import create_db_engine, utcnow, writer
from app.core.jobs import Backoff, JobRun, TryAgain
from app.jobs.registry import PERIODIC, TASKS, Task

logger = logging.getLogger(__name__)

STALLED_TASK = "jobs.retry_stalled"


def conninfo(database_url: str) -> str:
    """DATABASE_URL (an SQLAlchemy URL: ``postgresql+psycopg://…``) as libpq takes it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class BackoffRetry(procrastinate.BaseRetryStrategy):
    """A task's ``Backoff`` as procrastinate's retry strategy: a ``TryAgain`` runs the job again when its task said
    (the time the task recorded); any other failure at the backoff's next time, while attempts are left."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> procrastinate.RetryDecision | None:
        if isinstance(exception, TryAgain):
            return procrastinate.RetryDecision(retry_at=exception.retry_at)
        delay = self.backoff.delay(job.attempts + 1, random.SystemRandom())
        return None if delay is None else procrastinate.RetryDecision(retry_at=utcnow() + delay)


def _job_function(task: Task) -> Callable[..., None]:
    def run(context: procrastinate.JobContext, **args: Any) -> None:
        args.pop("timestamp", None)  # a periodic job's period, which no task function takes
        extra = context.additional_context
        attempt = context.job.attempts + 1
        delay = task.backoff.delay(attempt, extra["rng"])
        retry_at: datetime | None = None if delay is None else utcnow() + delay
        task.function(
            JobRun(
                settings=extra["settings"],
                engine=extra["engine"],
                reads=extra["reads"],
                attempt=attempt,
                retry_at=retry_at,
            ),
            **args,
        )

    run.__name__ = run.__qualname__ = task.name.replace(".", "_")
    return run


async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    """Run again the jobs of workers silent for ``JOBS_STALLED_AFTER_SECONDS`` (procrastinate's heartbeats)."""
    settings: Settings = context.additional_context["settings"]
    manager = context.app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=settings.jobs_stalled_after_seconds):
        logger.warning("running again a job of a stalled worker (task %s)", job.task_name)
        await manager.retry_job(job)


def every(seconds: int) -> str:
    """A cron (croniter's: a sixth field is seconds) for every ``seconds``: a divisor of 60 below a minute, else
    whole minutes."""
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"*/{max(1, seconds // 60)} * * * *"


def build_app(settings: Settings, *, periodic: bool = True, pool_size: int = 4) -> procrastinate.App:
    """The procrastinate App on DATABASE_URL with every task (and, with ``periodic``, the periodic ones)."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=conninfo(settings.database_url), min_size=1, max_size=pool_size
        )
    )
    for task in TASKS.values():
        app.task(name=task.name, pass_context=True, retry=BackoffRetry(task.backoff), queueing_lock=task.queueing_lock)(
            _job_function(task)
        )
    app.task(name=STALLED_TASK, pass_context=True, queueing_lock=STALLED_TASK)(retry_stalled_jobs)
    if periodic:
        for entry in PERIODIC:
            app.periodic(cron=entry.cron, periodic_id=entry.task)(app.tasks[entry.task])
        app.periodic(cron=every(settings.jobs_stalled_check_seconds), periodic_id=STALLED_TASK)(app.tasks[STALLED_TASK])
    return app


def worker_context(
    settings: Settings, engine: Any, rng: random.Random | None = None, *, reads: Any = None
) -> dict[str, Any]:
    """What every job's context carries (``additional_context``); ``reads``: the engine for long reads, the same
    engine by default (on PostgreSQL both share one pool)."""
    return {"settings": settings, "engine": engine, "reads": reads or engine, "rng": rng or random.SystemRandom()}


def run_worker(settings: Settings, *, concurrency: int, name: str | None = None) -> None:
    """Run jobs until stopped (SIGINT or SIGTERM: the jobs being run finish first)."""
    engine = writer(create_db_engine(settings))
    try:
        build_app(settings, pool_size=concurrency + 3).run_worker(
            concurrency=concurrency,
            name=name,
            additional_context=worker_context(settings, engine),
            update_heartbeat_interval=settings.jobs_heartbeat_seconds,
            stalled_worker_timeout=settings.jobs_stalled_after_seconds,
            delete_jobs="successful",
        )
    finally:
        engine.dispose()
