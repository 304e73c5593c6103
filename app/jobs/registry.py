"""Every background task, in one place: its name, its function (in its domain), its retry strategy, its queueing
lock, and the periodic ones' schedules. Both engines (procrastinate's worker, the SQLite runner) run exactly these.

A task function is ``fn(run: JobRun, **args)`` (``app.core.jobs``). A periodic task's job has no arguments; its
queueing lock keeps one waiting at most, however many processes defer it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from app.care import service as care
from app.clinical import reminders, webhooks
from app.clinical.progress import alerts as progress_alerts
from app.core.jobs import Backoff
from app.idempotency import service as idempotency


@dataclass(frozen=True)
class Task:
    name: str
    function: Callable[..., None]
    backoff: Backoff
    queueing_lock: str | None = None


@dataclass(frozen=True)
class Periodic:
    task: str
    cron: str
    """When its job is deferred (cron, UTC; a sixth field is seconds)."""


ONCE_MORE = Backoff(attempts=2, first=timedelta(minutes=1))
"""For periodic housekeeping: one retry after a failure, the next period does the rest."""

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(webhooks.DELIVER_TASK, webhooks.deliver, webhooks.BACKOFF),
        Task(progress_alerts.CHECK_TASK, progress_alerts.check, ONCE_MORE),
        Task(idempotency.PURGE_TASK, idempotency.purge_task, ONCE_MORE, queueing_lock=idempotency.PURGE_TASK),
        Task(reminders.RAISE_TASK, reminders.raise_reminders, ONCE_MORE, queueing_lock=reminders.RAISE_TASK),
        Task(care.EXTEND_HORIZONS_TASK, care.extend_horizons_task, ONCE_MORE, queueing_lock=care.EXTEND_HORIZONS_TASK),
    )
}

PERIODIC: tuple[Periodic, ...] = (
    Periodic(idempotency.PURGE_TASK, cron="17 * * * *"),
    Periodic(reminders.RAISE_TASK, cron="* * * * *"),
    Periodic(care.EXTEND_HORIZONS_TASK, cron="43 2 * * *"),
)
"""Idempotency records: hourly, at 17 minutes past (not on the hour, when other systems' cron jobs crowd).
Reminders: every minute (a reminder goes out within a minute of its moment; a new schedule's at once).
Occurrence horizons: daily at 02:43 UTC (a year ahead is kept; a day's lag is nothing)."""
