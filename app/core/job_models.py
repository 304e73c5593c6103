"""The tables of the in-process job runner on SQLite (``app.core.jobs``; ``app.jobs.runner`` takes them).

On PostgreSQL jobs are procrastinate's (its own tables, made by its own schema in a migration); these two tables
exist there too, so both databases have one schema, but stay empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime

WAITING, DOING, SUCCEEDED, FAILED = "todo", "doing", "succeeded", "failed"
"""A job's states, named as procrastinate names its own (a waiting job is "todo")."""


class BackgroundJob(Base):
    """A deferred job: ``task_name`` with ``args``, due at ``scheduled_at``, taken by the runner (``doing``) and
    finished (``succeeded``/``failed``), or back to ``todo`` for its next attempt. ``queueing_lock``: at most one
    job waiting (``todo``) per lock, as procrastinate's queueing locks."""

    __tablename__ = "background_job"
    __table_args__ = (
        Index("ix_background_job_status_scheduled_at", "status", "scheduled_at"),
        Index(
            "uq_background_job_queueing_lock",
            "queueing_lock",
            unique=True,
            sqlite_where=text("status = 'todo'"),
            postgresql_where=text("status = 'todo'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(String(128))
    args: Mapped[dict[str, Any]] = mapped_column(JSONType)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Runs started so far."""
    status: Mapped[str] = mapped_column(String(20), default=WAITING)
    queueing_lock: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))


class PeriodicRun(Base):
    """The last period each periodic task was deferred for on SQLite: a period's job is deferred once, durably."""

    __tablename__ = "periodic_run"

    task_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_tick: Mapped[datetime] = mapped_column(UTCDateTime)
