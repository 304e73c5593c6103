"""Relative time is counted in UTC calendar days, the same in Python and in each database's SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, select

from app.core.datetimes import EARLIEST_UTC, LATEST_UTC
from app.core.db import UTCDateTime
from app.core.state import state_of
from app.research.timeline import days_between, days_between_in_sql, month_start, next_month_start, week_of

OSLO = timezone(timedelta(hours=1))
CASES = [
    (datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2026, 1, 12, 8, 30, tzinfo=UTC), 7),
    (datetime(2026, 1, 5, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 1, 6, 0, 0, tzinfo=UTC), 1),
    (datetime(2026, 1, 6, 0, 30, tzinfo=OSLO), datetime(2026, 1, 6, 1, 30, tzinfo=OSLO), 1),
    (datetime(2025, 12, 29, 12, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC), 62),
    (datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC), 0),
    # The ends of the calendar (rows stored before times were bounded): date.max's ordinal 3,652,059 less date.min's 1.
    (EARLIEST_UTC, LATEST_UTC, 3_652_058),
]


@pytest.mark.parametrize(("first", "at", "days"), CASES)
def test_days_count_utc_calendar_dates(first: datetime, at: datetime, days: int) -> None:
    assert days_between(first, at) == days


@pytest.mark.parametrize(("first", "at", "days"), CASES)
def test_the_database_counts_the_same_days(app: FastAPI, first: datetime, at: datetime, days: int) -> None:
    query = select(
        days_between_in_sql(bindparam("first", first, type_=UTCDateTime()), bindparam("at", at, type_=UTCDateTime()))
    )
    with state_of(app).read_sessions() as db:
        assert db.scalar(query) == days


def test_weeks_start_at_day_zero() -> None:
    assert [week_of(days) for days in (0, 6, 7, 13, 14)] == [0, 0, 1, 1, 2]


def test_the_month_after_december_9999_has_no_start_and_every_other_month_has_one() -> None:
    assert next_month_start(datetime(2026, 12, 31, 23, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    # 1 December 00:30 in Oslo is still 30 November in UTC.
    assert next_month_start(datetime(2026, 12, 1, 0, 30, tzinfo=OSLO)) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_month_start(LATEST_UTC) is None
    assert month_start(EARLIEST_UTC) == EARLIEST_UTC
