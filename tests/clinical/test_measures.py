"""The quality measures' pure logic (``app.clinical.measures``): calendar arithmetic, boundary days, which PHQ-9 counts.

Every expected day below is counted by hand from the definitions in ``../shared/reference/clinical-feedback.md`` and
the CMS159 library's intervals (denominator identification period closed at its start, open at its end; window
closed at both ends, by day).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from app.clinical.measures import (
    REMISSION_12M,
    RESPONSE_6M,
    GapStatus,
    Period,
    Rate,
    Total,
    add_months,
    data_days,
    evaluate,
    index_period,
    window,
)

YEAR_2026 = Period(date(2026, 1, 1), date(2026, 12, 31))


def at(day: str, clock: str = "09:00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+00:00")


def totals(patient: uuid.UUID, *points: tuple[str, float]) -> list[Total]:
    return [Total(patient, uuid.uuid4(), at(day), value) for day, value in points]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 3, 31), 12, date(2027, 3, 31)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),  # no 29 February in 2025: the month's last day
        (date(2023, 2, 28), 12, date(2024, 2, 28)),  # the same day, not the month's end
        (date(2025, 12, 31), -2, date(2025, 10, 31)),
        (date(2026, 4, 30), -14, date(2025, 2, 28)),
        (date(2028, 4, 30), -14, date(2027, 2, 28)),
        (date(2026, 5, 31), -1, date(2026, 4, 30)),
        (date(2026, 1, 15), -14, date(2024, 11, 15)),
    ],
)
def test_months_are_calendar_months_clamped_to_the_months_last_day(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_the_12_month_measures_periods_follow_cms159() -> None:
    # 1 January 2026 − 14 months = 1 November 2024 (included); − 2 months = 1 November 2025 (excluded).
    assert index_period(REMISSION_12M, YEAR_2026) == Period(date(2024, 11, 1), date(2025, 10, 31))
    # 1 November 2024 + 12 months = 1 November 2025; 60 days either side: 2 September and 31 December 2025.
    assert window(REMISSION_12M, date(2024, 11, 1)) == Period(date(2025, 9, 2), date(2025, 12, 31))
    # 29 February 2024 + 12 months = 28 February 2025; − 60 days = 30 December 2024, + 60 days = 29 April 2025.
    assert window(REMISSION_12M, date(2024, 2, 29)) == Period(date(2024, 12, 30), date(2025, 4, 29))
    # A period starting on 30 April: 28 February 2025 (30 February does not exist) to 27 February 2026.
    assert index_period(REMISSION_12M, Period(date(2026, 4, 30), date(2027, 4, 29))) == Period(
        date(2025, 2, 28), date(2026, 2, 27)
    )
    # The last index day (31 October 2025) + 12 months + 60 days = 30 December 2026: the last day the query reads.
    assert data_days(REMISSION_12M, YEAR_2026) == Period(date(2024, 11, 1), date(2026, 12, 30))


def test_the_6_month_measures_periods_are_the_measurement_period_240_days_earlier() -> None:
    # 1 January 2026 − 240 days = 6 May 2025; 31 December 2026 − 240 days = 5 May 2026.
    assert index_period(RESPONSE_6M, YEAR_2026) == Period(date(2025, 5, 6), date(2026, 5, 5))
    # 6 May 2025 + 120 days = 3 September 2025; + 240 days = 1 January 2026.
    assert window(RESPONSE_6M, date(2025, 5, 6)) == Period(date(2025, 9, 3), date(2026, 1, 1))
    # Every counted window closes by the period's end.
    assert data_days(RESPONSE_6M, YEAR_2026) == Period(date(2025, 5, 6), date(2026, 12, 31))


def test_the_index_is_the_first_total_above_9_in_the_period_by_the_utc_day() -> None:
    before, first, last, after, below = (uuid.uuid4() for _ in range(5))
    data = [
        Total(before, uuid.uuid4(), at("2024-10-31", "23:59:59"), 20),  # the day before the period
        Total(first, uuid.uuid4(), at("2024-11-01", "00:00:00"), 10),  # its first instant: 10 > 9
        Total(last, uuid.uuid4(), at("2025-10-31", "23:59:59"), 27),  # its last instant
        Total(after, uuid.uuid4(), at("2025-11-01", "00:00:00"), 27),  # 2 months before the start: excluded
        Total(below, uuid.uuid4(), at("2025-06-01"), 9),  # 9 is not > 9
        # Measured at 00:30 on 1 November in Berlin, which is 31 October 23:30 UTC: the UTC day counts.
        Total(after, uuid.uuid4(), datetime.fromisoformat("2025-11-01T00:30:00+01:00"), 15),
    ]

    result = evaluate(REMISSION_12M, YEAR_2026, data)

    assert {o.patient_id: o.index.value for o in result.outcomes} == {first: 10, last: 27, after: 15}
    assert result.denominator == 3


def test_a_prorated_total_above_9_is_an_index_and_a_later_total_does_not_replace_it() -> None:
    patient = uuid.uuid4()
    # 9.43 (a prorated total) > 9 is the index although under the caseness cut-off of 10; 25 later is not.
    data = totals(patient, ("2025-01-10", 9), ("2025-02-10", 9.43), ("2025-03-10", 25))

    [outcome] = evaluate(REMISSION_12M, YEAR_2026, data).outcomes

    assert (outcome.index.value, outcome.index.day) == (9.43, date(2025, 2, 10))


def test_remission_is_judged_on_the_last_total_in_the_window_and_5_is_not_remission() -> None:
    edges, five, outside = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    data = [
        # Index 1 Nov 2024, window 2 Sep to 31 Dec 2025: 1 September is outside, 31 December the last day inside.
        *totals(edges, ("2024-11-01", 10), ("2025-09-01", 2), ("2025-12-31", 4)),
        # Index 31 Oct 2025, window 1 Sep to 30 Dec 2026: 3 on its first day, then 5 on its last; 0 after it.
        *totals(five, ("2025-10-31", 20), ("2026-09-01", 3), ("2026-12-30", 5), ("2026-12-31", 0)),
        # Only outside the window (index 1 Jan 2025, window 2 Nov 2025 to 2 Mar 2026).
        *totals(outside, ("2025-01-01", 15), ("2025-11-01", 1), ("2026-03-03", 1)),
    ]

    result = evaluate(REMISSION_12M, YEAR_2026, data)
    by_patient = {o.patient_id: o for o in result.outcomes}

    assert by_patient[edges].window == Period(date(2025, 9, 2), date(2025, 12, 31))
    last_values = {
        name: getattr(by_patient[p].last_in_window, "value", None) for name, p in (("edges", edges), ("five", five))
    }
    assert last_values == {"edges": 4, "five": 5}
    assert by_patient[outside].window == Period(date(2025, 11, 2), date(2026, 3, 2))
    assert by_patient[outside].last_in_window is None
    assert (result.denominator, result.numerator(Rate.REMISSION), result.rate(Rate.REMISSION)) == (3, 1, 1 / 3)
    assert [gap.patient_id for gap in result.care_gaps] == [outside]


def test_the_last_total_of_a_day_is_the_later_one() -> None:
    patient = uuid.uuid4()
    data = [
        Total(patient, uuid.uuid4(), at("2025-01-01"), 15),
        Total(patient, uuid.uuid4(), at("2026-01-01", "17:00:00"), 8),
        Total(patient, uuid.uuid4(), at("2026-01-01", "08:00:00"), 2),
    ]

    [outcome] = evaluate(REMISSION_12M, YEAR_2026, data).outcomes

    assert outcome.last_in_window is not None
    assert outcome.last_in_window.value == 8
    assert not outcome.remission


def test_the_6_month_windows_edges_and_response_at_exactly_half() -> None:
    half, edge, late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    data = [
        # Index 6 May 2025 (10): day 119 (2 Sep) is outside, day 240 (1 Jan 2026) inside: 5 is half of 10.
        *totals(half, ("2025-05-06", 10), ("2025-09-02", 1), ("2026-01-01", 5)),
        # Index 5 May 2026 (12): day 120 (2 Sep) gives 2, but the most recent in the window, 7, decides.
        *totals(edge, ("2026-05-05", 12), ("2026-09-02", 2), ("2026-10-01", 7)),
        # Index 1 Aug 2025 (20): window 29 Nov 2025 to 29 Mar 2026; day 241 is outside.
        *totals(late, ("2025-07-01", 9), ("2025-08-01", 20), ("2026-03-30", 0)),
    ]

    result = evaluate(RESPONSE_6M, YEAR_2026, data)
    by_patient = {o.patient_id: o for o in result.outcomes}

    assert by_patient[half].window == Period(date(2025, 9, 3), date(2026, 1, 1))
    assert (by_patient[half].follow_up, by_patient[half].remission, by_patient[half].response) == (True, False, True)
    assert by_patient[edge].window == Period(date(2026, 9, 2), date(2026, 12, 31))
    assert (by_patient[edge].follow_up, by_patient[edge].remission, by_patient[edge].response) == (True, False, False)
    assert by_patient[late].window == Period(date(2025, 11, 29), date(2026, 3, 29))
    assert not by_patient[late].follow_up
    assert {rate: result.numerator(rate) for rate in RESPONSE_6M.rates} == {
        Rate.FOLLOW_UP: 2,
        Rate.REMISSION: 0,
        Rate.RESPONSE: 1,
    }


def test_a_care_gaps_status_follows_its_window() -> None:
    patient = uuid.uuid4()
    [gap] = evaluate(RESPONSE_6M, YEAR_2026, totals(patient, ("2025-08-01", 20))).care_gaps

    assert gap.gap_status(date(2025, 11, 28)) is GapStatus.UPCOMING
    assert gap.gap_status(date(2025, 11, 29)) is GapStatus.OPEN
    assert gap.gap_status(date(2026, 3, 29)) is GapStatus.OPEN
    assert gap.gap_status(date(2026, 3, 30)) is GapStatus.CLOSED


def test_no_index_no_denominator_and_no_rate() -> None:
    result = evaluate(REMISSION_12M, YEAR_2026, totals(uuid.uuid4(), ("2025-03-01", 9), ("2026-03-01", 2)))

    assert (result.denominator, result.numerator(Rate.REMISSION), result.rate(Rate.REMISSION)) == (0, 0, None)


def test_times_are_compared_in_utc() -> None:
    assert Total(uuid.uuid4(), uuid.uuid4(), datetime(2025, 1, 1, 23, 30, tzinfo=UTC), 1).day == date(2025, 1, 1)
