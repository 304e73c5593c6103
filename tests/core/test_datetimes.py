"""The bounds of the service's datetimes (app/core/datetimes.py), read against a clock the tests set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from app.core.datetimes import (
    CLOCK,
    CLOCK_SKEW,
    EARLIEST_CLINICAL_TIME,
    EARLIEST_UTC,
    LATEST_UTC,
    LONGEST_EXPIRY,
    ClinicalTime,
    ExpiryTime,
    FilterTime,
)
from app.core.db import utcnow

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
clinical = TypeAdapter(ClinicalTime)
filters = TypeAdapter(FilterTime)
expiries = TypeAdapter(ExpiryTime)
EXTREMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-12:00",
    "1899-12-31T23:59:59.999999Z",
]


def test_the_service_reads_now_from_a_clock_tests_can_set() -> None:
    with CLOCK.frozen_at(NOW):
        assert utcnow() == NOW
    assert utcnow() != NOW


def test_a_clinical_time_is_accepted_from_1900_up_to_now_plus_the_clock_skew_in_utc() -> None:
    with CLOCK.frozen_at(NOW):
        assert clinical.validate_python("1900-01-01T00:00:00Z") == EARLIEST_CLINICAL_TIME
        latest = clinical.validate_python((NOW + CLOCK_SKEW).astimezone(UTC).isoformat())
        assert latest == NOW + CLOCK_SKEW
        in_oslo = clinical.validate_python("2026-11-20T10:30:00+01:00")
        assert in_oslo == NOW
        assert in_oslo.tzinfo is UTC


@pytest.mark.parametrize("value", [*EXTREMES, (NOW + CLOCK_SKEW + timedelta(microseconds=1)).isoformat()])
def test_a_clinical_time_outside_1900_to_now_plus_the_clock_skew_is_refused_stating_the_range(value: str) -> None:
    with CLOCK.frozen_at(NOW), pytest.raises(ValidationError) as refused:
        clinical.validate_python(value)
    message = refused.value.errors()[0]["msg"]
    assert "1900-01-01T00:00:00Z" in message
    assert "2026-11-20T09:35:00Z" in message  # now plus the clock skew


@pytest.mark.parametrize("value", ["2026-11-20T09:30:00", "2016-12-31T23:59:60Z", "2026-02-30T00:00:00Z", 1.5e9])
def test_naive_impossible_and_numeric_times_are_refused(value: object) -> None:
    for adapter in (clinical, filters, expiries):
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def test_a_filter_time_is_clamped_into_the_utc_calendar_instead_of_overflowing() -> None:
    assert filters.validate_python("0001-01-01T00:00:00+14:00") == EARLIEST_UTC
    assert filters.validate_python("9999-12-31T23:59:59-12:00") == LATEST_UTC
    assert filters.validate_python("2026-11-20T10:30:00+01:00") == NOW


def test_an_expiry_is_after_now_and_at_most_the_longest_expiry_ahead() -> None:
    with CLOCK.frozen_at(NOW):
        assert expiries.validate_python((NOW + LONGEST_EXPIRY).isoformat()) == NOW + LONGEST_EXPIRY
        assert expiries.validate_python("2026-11-20T10:30:01+01:00") == NOW + timedelta(seconds=1)
        for value in [
            NOW.isoformat(),
            "2026-11-19T00:00:00Z",
            (NOW + LONGEST_EXPIRY + timedelta(seconds=1)).isoformat(),
            *EXTREMES,
        ]:
            with pytest.raises(ValidationError) as refused:
                expiries.validate_python(value)
            assert "after now (2026-11-20T09:30:00Z)" in refused.value.errors()[0]["msg"]
