"""The expected-response model (pure): which courses a fit uses, and that it recovers a known model."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app.clinical.progress.expected import (
    COMPLETED_AFTER_DAYS,
    Course,
    FitFailed,
    completed_courses,
    fit,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def weekly(start: datetime, *values: float) -> list[tuple[datetime, float]]:
    return [(start + timedelta(weeks=n), value) for n, value in enumerate(values)]


def test_only_completed_courses_with_two_follow_ups_within_26_weeks_are_used() -> None:
    ended = NOW - timedelta(days=COMPLETED_AFTER_DAYS)
    done = weekly(ended - timedelta(weeks=2), 15, 12, 10)  # the latest exactly 28 days ago: completed
    ongoing = weekly(ended - timedelta(weeks=2) + timedelta(seconds=1), 15, 12, 10)
    short = weekly(ended - timedelta(weeks=1), 15, 12)
    late = [(ended - timedelta(weeks=40), 20.0), (ended - timedelta(weeks=39), 18.0), (ended, 5.0)]  # 1 within 26

    found = completed_courses([done, ongoing, short, late, []], now=NOW)

    assert found.courses == (Course(15, ((1.0, 12), (2.0, 10))),)
    assert (found.ongoing, found.too_short) == (1, 2)
    assert found.data_cut_at == ended


def test_a_fit_recovers_the_coefficients_of_a_known_model() -> None:
    # Simulated from b = (1, 0.9, −1, −0.1), Var(u0) = 1, Var(u1) = 0.25, σ = 1; 300 courses, weeks 1–9.
    rng = np.random.default_rng(7)
    courses = []
    for _ in range(300):
        y0 = float(rng.integers(10, 23))
        u0, u1 = rng.normal(0, 1.0), rng.normal(0, 0.5)
        follow_ups = []
        for week in range(1, 10):
            lt = math.log1p(week)
            follow_ups.append((float(week), 1 + 0.9 * y0 + (-1 - 0.1 * y0) * lt + u0 + u1 * lt + rng.normal(0, 1.0)))
        courses.append(Course(y0, tuple(follow_ups)))

    result = fit(courses)

    b0, b1, b2, b3 = result.table.coefficients
    assert b0 == pytest.approx(1, abs=0.6)
    assert b1 == pytest.approx(0.9, abs=0.05)
    assert b2 == pytest.approx(-1, abs=0.5)
    assert b3 == pytest.approx(-0.1, abs=0.05)
    assert result.table.residual_variance == pytest.approx(1, abs=0.15)
    assert (result.courses, result.measurements) == (300, 3000)
    assert result.table.max_weeks == 9
    prediction = result.table.predict(16, 4)
    assert prediction.lower < prediction.expected < prediction.upper
    assert prediction.band(prediction.upper + 0.01) == "high"


def test_courses_that_do_not_vary_cannot_be_fitted() -> None:
    with pytest.raises(FitFailed):
        fit([Course(10, ((1.0, 10), (2.0, 10)))] * 60)
