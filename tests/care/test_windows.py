"""Window arithmetic in the patient's time zone, and the status an occurrence has at a given moment (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from app.care.windows import Window, local_day, session_window, status_at, time_zone, window, windows

OSLO = ZoneInfo("Europe/Oslo")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_weekly_window_opens_at_local_midnight_and_closes_window_days_later() -> None:
    # 2026-11-20 is in winter time (CET, UTC+1): local midnight is 23:00 UTC the day before.
    assert window(date(2026, 11, 20), 0, every_days=7, window_days=3, zone=OSLO) == Window(
        utc("2026-11-19T23:00:00+00:00"), utc("2026-11-22T23:00:00+00:00")
    )
    assert window(date(2026, 11, 20), 2, every_days=7, window_days=3, zone=OSLO) == Window(
        utc("2026-12-03T23:00:00+00:00"), utc("2026-12-06T23:00:00+00:00")
    )


def test_a_window_across_the_march_change_is_an_hour_short_and_the_next_opens_at_summer_midnight() -> None:
    # Oslo springs forward on Sunday 2026-03-29 at 02:00 CET (to 03:00 CEST, UTC+2).
    spanning = window(date(2026, 3, 22), 1, every_days=7, window_days=3, zone=OSLO)
    after = window(date(2026, 3, 22), 2, every_days=7, window_days=3, zone=OSLO)

    assert spanning == Window(utc("2026-03-28T23:00:00+00:00"), utc("2026-03-31T22:00:00+00:00"))
    assert spanning.due_by - spanning.due_from == timedelta(hours=71)
    assert after.due_from == utc("2026-04-04T22:00:00+00:00")
    assert after.due_from.astimezone(OSLO).time() == time(0)


def test_a_window_across_the_october_change_is_an_hour_long() -> None:
    # Oslo falls back on Sunday 2026-10-25 at 03:00 CEST (to 02:00 CET): that day has 25 hours.
    day = window(date(2026, 10, 25), 0, every_days=7, window_days=1, zone=OSLO)

    assert day == Window(utc("2026-10-24T22:00:00+00:00"), utc("2026-10-25T23:00:00+00:00"))
    assert day.due_by - day.due_from == timedelta(hours=25)


def test_a_day_without_a_midnight_starts_at_its_first_instant() -> None:
    # Santiago (Chile) moved its clocks forward at 00:00 on 2022-09-11: that day began at 01:00 -03.
    santiago = ZoneInfo("America/Santiago")
    opened = window(date(2022, 9, 11), 0, every_days=7, window_days=1, zone=santiago)

    assert opened.due_from == utc("2022-09-11T04:00:00+00:00")
    assert opened.due_from.astimezone(santiago).hour == 1


def test_windows_are_listed_from_a_moment_up_to_a_horizon_and_stop_after_ends_on() -> None:
    found = list(
        windows(
            date(2026, 11, 2),
            every_days=7,
            window_days=3,
            zone=OSLO,
            ends_on=date(2026, 11, 23),
            opening_from=utc("2026-11-05T00:00:00+00:00"),
            opening_before=utc("2027-01-01T00:00:00+00:00"),
        )
    )

    assert [local_day(w.due_from, OSLO) for w in found] == [date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23)]


def test_a_session_window_starts_at_the_session() -> None:
    started = utc("2026-11-20T09:30:00+01:00")

    assert session_window(started, window_days=1) == Window(started, started + timedelta(days=1))


@dataclass(frozen=True)
class Occurrence:
    state: str
    due_from: datetime
    due_by: datetime


OPENS = utc("2026-11-20T00:00:00+01:00")
CLOSES = utc("2026-11-23T00:00:00+01:00")


def test_an_open_occurrence_is_scheduled_then_due_then_missed_and_a_settled_one_keeps_its_state() -> None:
    open_one = Occurrence("open", OPENS, CLOSES)
    second = timedelta(seconds=1)

    assert status_at(open_one, OPENS - second) == "scheduled"
    assert status_at(open_one, OPENS) == "due"
    assert status_at(open_one, CLOSES - second) == "due"
    assert status_at(open_one, CLOSES) == "missed"
    for state in ("completed", "declined", "cancelled"):
        assert status_at(Occurrence(state, OPENS, CLOSES), CLOSES) == state


def test_only_listed_iana_names_are_time_zones() -> None:
    assert time_zone("Europe/Oslo") == OSLO
    assert time_zone("Europe/Atlantis") is None
    assert time_zone("../../etc/passwd") is None


ZONES = st.sampled_from(["Europe/Oslo", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"])


@given(
    zone_name=ZONES,
    starts_on=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    every_days=st.integers(min_value=1, max_value=60),
    data=st.data(),
)
def test_every_window_opens_at_local_midnight_of_its_day_and_none_overlaps_the_next(
    zone_name: str, starts_on: date, every_days: int, data: st.DataObject
) -> None:
    zone = ZoneInfo(zone_name)
    window_days = data.draw(st.integers(min_value=1, max_value=every_days))
    k = data.draw(st.integers(min_value=0, max_value=200))
    this = window(starts_on, k, every_days=every_days, window_days=window_days, zone=zone)
    following = window(starts_on, k + 1, every_days=every_days, window_days=window_days, zone=zone)

    opened = this.due_from.astimezone(zone)
    assert opened.date() == starts_on + timedelta(days=k * every_days)
    assert opened.time() == time(0)
    assert this.due_by.astimezone(zone).date() == opened.date() + timedelta(days=window_days)
    assert this.due_from < this.due_by <= following.due_from


@given(
    zone_name=ZONES,
    starts_on=st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)),
    every_days=st.integers(min_value=1, max_value=30),
    offset_days=st.integers(min_value=-40, max_value=400),
)
def test_listing_windows_from_any_moment_gives_exactly_those_opening_in_the_range(
    zone_name: str, starts_on: date, every_days: int, offset_days: int
) -> None:
    zone = ZoneInfo(zone_name)
    opening_from = datetime.combine(starts_on, time(12), tzinfo=UTC) + timedelta(days=offset_days)
    opening_before = opening_from + timedelta(days=90)
    every = [window(starts_on, k, every_days=every_days, window_days=1, zone=zone) for k in range(0, 600)]
    expected = [w for w in every if opening_from <= w.due_from < opening_before]

    found = windows(
        starts_on,
        every_days=every_days,
        window_days=1,
        zone=zone,
        ends_on=None,
        opening_from=opening_from,
        opening_before=opening_before,
    )

    assert list(found) == expected
