"""Each patient's relative timeline: days and calendar weeks since their first measurement.

Days count UTC calendar dates, not 24-hour periods, so a weekly session at 09:00 and the next at 08:30 are 7 days
apart, and lags by calendar week line up with a weekly schedule whatever the time of day.
"""

from __future__ import annotations

from datetime import UTC, datetime


def days_between(first: datetime, at: datetime) -> int:
    return (at.astimezone(UTC).date() - first.astimezone(UTC).date()).days


def week_of(days: int) -> int:
    return days // 7


def month_start(at: datetime) -> datetime:
    """The first instant (UTC) of ``at``'s calendar month."""
    utc = at.astimezone(UTC)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(at: datetime) -> datetime:
    start = month_start(at)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
