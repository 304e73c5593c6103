"""When an assessment is due, and what an occurrence's status is at a given moment: pure (no web, no database).

A recurring schedule's occurrence k opens at the start of the local calendar day ``starts_on + k * every_days`` in
the schedule's time zone and closes ``window_days`` local days later, at the start of that day. Both ends are
computed in the time zone and stored in UTC, so a window that spans a daylight-saving change is 23 or 25 hours
longer or shorter than ``window_days * 24`` hours, as the patient's calendar says it should be. A window is the
half-open interval [due_from, due_by).

A day whose midnight does not exist locally (a change at 00:00, as some zones have had) starts at its first
existing instant: Python's ``fold=0`` reading of the missing time gives exactly that instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Protocol
from zoneinfo import ZoneInfo, available_timezones

HORIZON = timedelta(days=365)
"""How far ahead a recurring schedule's occurrences are stored: every window opening before now plus this.

Occurrences are stored, not recomputed (so history stays true when a schedule changes); an open-ended schedule
cannot store them all, so it stores a year ahead and ``app.care.service.extend_horizons`` (a periodic job,
``EXTEND_HORIZONS_TASK``) keeps it a year ahead."""
LONGEST_PERIOD_DAYS = 366
"""``every_days`` and ``window_days`` are at most this: one measure a year is the rarest schedule that makes sense."""
START_WITHIN = timedelta(days=366)
"""A schedule starts at most this long ago (backdating a course already under way) and at most this far ahead."""

OPEN = "open"
COMPLETED = "completed"
DECLINED = "declined"
CANCELLED = "cancelled"
STATES = (OPEN, COMPLETED, DECLINED, CANCELLED)
"""What an occurrence stores. ``open`` is read as scheduled, due or missed depending on the time (``status_at``)."""

SCHEDULED = "scheduled"
DUE = "due"
MISSED = "missed"
STATUSES = (SCHEDULED, DUE, COMPLETED, DECLINED, MISSED, CANCELLED)
"""What the API says an occurrence is."""
DECLINABLE = frozenset({DUE, MISSED})
"""Statuses a patient or clinician may decline: an open window, or one that closed empty (said afterwards). A
window not yet open is not declined in advance (end the schedule or let it pass); a completed, declined or cancelled
one is settled."""


class Stored(Protocol):
    """What ``status_at`` needs of an occurrence (its table row, or any object with these attributes)."""

    @property
    def state(self) -> str: ...

    @property
    def due_from(self) -> datetime: ...

    @property
    def due_by(self) -> datetime: ...


def status_at(occurrence: Stored, now: datetime) -> str:
    """The occurrence's status at ``now``: an open one is scheduled before its window, due in it, missed after it
    (whether or not any job has looked at it since); any other stored state is its status."""
    if occurrence.state != OPEN:
        return occurrence.state
    if now < occurrence.due_from:
        return SCHEDULED
    if now < occurrence.due_by:
        return DUE
    return MISSED


@dataclass(frozen=True)
class Window:
    due_from: datetime
    due_by: datetime

    def contains(self, moment: datetime) -> bool:
        return self.due_from <= moment < self.due_by


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local calendar day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The local calendar day a moment falls on."""
    return moment.astimezone(zone).date()


def window(starts_on: date, k: int, *, every_days: int, window_days: int, zone: ZoneInfo) -> Window:
    """Occurrence k of a recurring schedule."""
    opens_on = starts_on + timedelta(days=k * every_days)
    return Window(start_of_day(opens_on, zone), start_of_day(opens_on + timedelta(days=window_days), zone))


def session_window(started_at: datetime, *, window_days: int) -> Window:
    """An at-each-session occurrence: from the session's start, for ``window_days`` days (24-hour days: it starts at
    a moment, not at a day's start)."""
    return Window(started_at, started_at + timedelta(days=window_days))


def windows(
    starts_on: date,
    *,
    every_days: int,
    window_days: int,
    zone: ZoneInfo,
    ends_on: date | None,
    opening_from: datetime,
    opening_before: datetime,
) -> Iterator[Window]:
    """The schedule's windows that open in [opening_from, opening_before) and on or before ``ends_on``, in order."""
    first_day = local_day(opening_from, zone)
    k = max(0, (first_day - starts_on).days // every_days - 1)
    while True:
        opens_on = starts_on + timedelta(days=k * every_days)
        if ends_on is not None and opens_on > ends_on:
            return
        found = window(starts_on, k, every_days=every_days, window_days=window_days, zone=zone)
        if found.due_from >= opening_before:
            return
        if found.due_from >= opening_from:
            yield found
        k += 1


@cache
def time_zones() -> frozenset[str]:
    """The IANA time zone names this installation knows (from the ``tzdata`` package or the system's)."""
    return frozenset(available_timezones())


def time_zone(name: str) -> ZoneInfo | None:
    """The named IANA zone, or None if there is none by that name (never a path on disk: only listed names)."""
    return ZoneInfo(name) if name in time_zones() else None
