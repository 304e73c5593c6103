"""The service's clock, and the bounds every datetime it is sent must respect.

Every reading of "now" goes through ``CLOCK`` (``app.core.db.utcnow`` reads it), so tests set the time instead of
patching ``datetime``. Datetimes arrive in three kinds:

- **Clinical times** (``ClinicalTime``: a measurement's ``measured_at``, a session's ``started_at``, a FHIR
  ``authored``, an imported or amended ``measured_at``): when something happened. They are refused (422 naming the
  field and the range) before 1900-01-01T00:00:00Z or later than now plus ``CLOCK_SKEW`` (a client's clock may run
  a little ahead of the server's).
- **Filters** (``FilterTime``: the ``from``/``to`` query parameters): any well-formed time with a zone is taken and
  clamped into the range a UTC datetime can hold, so ``from=0001-01-01T00:00:00+14:00`` means "since the
  beginning" instead of an overflow.
- **Expiries** (``ExpiryTime``: an API key's ``expires_at``): after now, and no more than ``LONGEST_EXPIRY``
  ahead, so a key is never created already expired and its expiry is always a time that can be computed with.

Datetimes are compared before they are converted: ``9999-12-31T23:59:59-12:00`` is a valid ISO 8601 time whose UTC
form (year 10000) Python cannot hold, so converting first would fail with an overflow instead of a 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

EARLIEST_CLINICAL_TIME = datetime(1900, 1, 1, tzinfo=UTC)
"""No clinical event (a measurement, a session, a response) is recorded before this."""
CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of the server's clock a client's may run: a clinical time up to now plus this is accepted."""
LONGEST_EXPIRY = timedelta(days=3653)
"""An expiry is at most about ten years ahead (a key that should not expire is given none)."""
EARLIEST_UTC = datetime.min.replace(tzinfo=UTC)
LATEST_UTC = datetime.max.replace(tzinfo=UTC)
"""The range a UTC datetime can hold (years 1 to 9999): filters are clamped into it."""


class Clock:
    """Where the service reads the time: the system's UTC clock unless a test has set it."""

    def __init__(self) -> None:
        self._fixed: datetime | None = None

    def now(self) -> datetime:
        return self._fixed if self._fixed is not None else datetime.now(UTC)

    @contextmanager
    def frozen_at(self, moment: datetime) -> Iterator[None]:
        """Within the block, ``now()`` is ``moment`` (aware) for every thread."""
        if moment.tzinfo is None:
            raise ValueError("the clock is set to an aware datetime")
        previous, self._fixed = self._fixed, moment.astimezone(UTC)
        try:
            yield
        finally:
            self._fixed = previous

    def move_to(self, moment: datetime) -> None:
        """Inside ``frozen_at``, set the time again (a test that lets hours pass between two requests)."""
        if self._fixed is None or moment.tzinfo is None:
            raise ValueError("move the clock to an aware datetime, inside frozen_at")
        self._fixed = moment.astimezone(UTC)


CLOCK = Clock()


def utcnow() -> datetime:
    return CLOCK.now()


def iso(moment: datetime) -> str:
    """``2026-11-20T09:30:00Z``: a UTC moment as the messages state it (seconds, no fraction)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clinical_time_problem(value: datetime) -> str | None:
    """Why an aware datetime cannot be a clinical time, or None if it can (compared without converting it)."""
    latest = utcnow() + CLOCK_SKEW
    if EARLIEST_CLINICAL_TIME <= value <= latest:
        return None
    return (
        f"must be from {iso(EARLIEST_CLINICAL_TIME)} to now plus {_minutes(CLOCK_SKEW)} ({iso(latest)}), "
        "with a time zone"
    )


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _written_datetime(value: Any) -> Any:
    """A number is not a date-time here (pydantic would read it as seconds since 1970): refuse it."""
    if isinstance(value, int | float):
        raise ValueError("a date-time is an ISO 8601 string with a time zone, such as 2026-11-20T09:30:00+01:00")
    return value


def _clinical_time(value: datetime) -> datetime:
    problem = clinical_time_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value.astimezone(UTC)


def _expiry(value: datetime) -> datetime:
    now = utcnow()
    if not now < value <= now + LONGEST_EXPIRY:
        raise ValueError(
            f"must be after now ({iso(now)}) and at most {LONGEST_EXPIRY.days} days ahead "
            f"({iso(now + LONGEST_EXPIRY)}), with a time zone; leave it out for no expiry"
        )
    return value.astimezone(UTC)


def clamp_to_utc(value: datetime) -> datetime:
    """The UTC form of an aware datetime, clamped into the years a UTC datetime can hold (1 to 9999)."""
    if value <= EARLIEST_UTC:
        return EARLIEST_UTC
    if value >= LATEST_UTC:
        return LATEST_UTC
    return value.astimezone(UTC)


ClinicalTime = Annotated[AwareDatetime, BeforeValidator(_written_datetime), AfterValidator(_clinical_time)]
"""When something clinical happened: with a time zone, from 1900-01-01 to now plus ``CLOCK_SKEW``; stored in UTC."""


ExpiryTime = Annotated[AwareDatetime, BeforeValidator(_written_datetime), AfterValidator(_expiry)]
"""When something stops being valid: after now, at most ``LONGEST_EXPIRY`` ahead; stored in UTC."""

FilterTime = Annotated[AwareDatetime, BeforeValidator(_written_datetime), AfterValidator(clamp_to_utc)]
"""A ``from``/``to`` bound of a query: with a time zone; normalised to UTC, clamped to years 1 to 9999."""
