"""Each patient's relative timeline: days and calendar weeks since their first measurement.

Days count UTC calendar dates, not 24-hour periods, so a weekly session at 09:00 and the next at 08:30 are 7 days
apart, and lags by calendar week line up with a weekly schedule whatever the time of day.
"""

from __future__ import annotations

from datetime import MAXYEAR, UTC, datetime
from typing import Any

from sqlalchemy import Integer
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


def days_between(first: datetime, at: datetime) -> int:
    return (at.astimezone(UTC).date() - first.astimezone(UTC).date()).days


class days_between_in_sql(FunctionElement[int]):
    """``days_between`` computed by the database, so an export reads one integer per row instead of converting two
    timestamps (bench/README.md, change 12). Same rule: UTC calendar dates."""

    type = Integer()
    name = "days_between"
    inherit_cache = True


@compiles(days_between_in_sql)
def _unsupported(element: days_between_in_sql, compiler: Any, **kw: Any) -> str:
    raise CompileError(f"days_between is not implemented for {compiler.dialect.name}")


@compiles(days_between_in_sql, "sqlite")
def _sqlite_days(element: days_between_in_sql, compiler: Any, **kw: Any) -> str:
    first, at = (compiler.process(clause, **kw) for clause in element.clauses)
    # The stored text starts with the UTC date (YYYY-MM-DD): date() would round 9999-12-31 23:59:59.999999 up into
    # a year it cannot hold and answer NULL.
    return f"CAST(julianday(substr({at}, 1, 10)) - julianday(substr({first}, 1, 10)) AS INTEGER)"


@compiles(days_between_in_sql, "postgresql")
def _postgresql_days(element: days_between_in_sql, compiler: Any, **kw: Any) -> str:
    first, at = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(CAST(({at}) AT TIME ZONE 'UTC' AS DATE) - CAST(({first}) AT TIME ZONE 'UTC' AS DATE))"


def week_of(days: int) -> int:
    return days // 7


def month_start(at: datetime) -> datetime:
    """The first instant (UTC) of ``at``'s calendar month."""
    utc = at.astimezone(UTC)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(at: datetime) -> datetime | None:
    """The first instant (UTC) of the month after ``at``'s; None after December 9999 (no datetime holds it)."""
    start = month_start(at)
    if start.month < 12:
        return start.replace(month=start.month + 1)
    return start.replace(year=start.year + 1, month=1) if start.year < MAXYEAR else None
