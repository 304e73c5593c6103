"""The expected-response model (pure): its form, its fit on completed courses, its prediction and band.

The form follows ``clinical-feedback.md`` (after Finch, Lambert & Schaalje 2001, who fitted a linear mixed model of
OQ-45 scores on log(session) by intake severity):

    y_it = b0 + b1·y0 + (b2 + b3·y0)·ln(t) + u0 + u1·ln(t) + e

- ``y0`` is the course's baseline (its first scored measurement); ``y_it`` a later score of the same course.
- ``t`` is **weeks since the baseline plus one** (t = 1 + days/7): the baseline sits at t = 1, where ln(t) = 0. Weeks,
  not session numbers, because a measurement need not name a session (questionnaires answered between sessions, or
  imports without session numbers), while every measurement has a time.
- ``(u0, u1)`` ~ N(0, G) per course (random intercept and slope on ln t), ``e`` ~ N(0, σ²).
- Only the measurements after the baseline are outcomes (the baseline is the condition, not a prediction).

The expected score of a new course with baseline y0 at week w is x'b with x = (1, y0, ln t, y0·ln t); its band is
that prediction ± z·SD, where SD² = x'·Cov(b)·x + (1, ln t)·G·(1, ln t)' + σ²: the spread of a new course's score
around the prediction (between-course and within-course variation, and the uncertainty of the coefficients).
Below the band is ``low``, within it ``expected``, above it ``high``; which side is worse follows the score's
direction. statsmodels MixedLM fits it (REML).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

MODEL_FORM = "y_it = b0 + b1*y0 + (b2 + b3*y0)*ln(t) + u0 + u1*ln(t) + e; t = 1 + weeks since baseline"
TIME_SCALE = "weeks_since_baseline"
DEFAULT_BAND_Z = 1.645
"""The band's half-width in SDs of the prediction: 1.645 leaves about 5 % of typical courses above it (and 5 % below)
at any one measurement, when the model holds. A design choice, stored with each table; an admin may choose another."""

MIN_COURSES = 50
"""Fewest completed courses a table is fitted from (see ``docs/progress.md``). The band's width rests on three
between-course variance components (intercept, slope on ln t, their covariance); a variance estimated from K
independent courses has a relative standard error of about √(2/(K − 1)): 20 % at K = 50, so the SD of the band about
10 % and its edge within about ±0.1·z SD. Below that the band is mostly noise. A statistical design choice, not a
clinical norm."""
MIN_FOLLOW_UPS = 2
"""Measurements after the baseline a course needs to be used: a course's own slope on ln t needs two points."""
MAX_WEEKS = 26.0
"""Measurements later than this after the baseline are not used in a fit (the first six months of a course): the
log curve flattens, and few courses reach further."""

COMPLETED_AFTER_DAYS = 28
"""A course is completed when its latest measurement is at least this many days before the fit: the service stores
no discharge, so four weeks without a measurement of the instrument is taken as the end of the course."""

Band = Literal["low", "expected", "high"]


class FitFailed(ValueError):
    """The model could not be fitted (too little variation, or no convergence)."""


@dataclass(frozen=True)
class Course:
    """One completed course: its baseline score and its later scores at weeks since the baseline."""

    baseline: float
    follow_ups: tuple[tuple[float, float], ...]
    """(weeks since baseline, score), in time order."""


@dataclass(frozen=True)
class Courses:
    courses: tuple[Course, ...]
    data_cut_at: datetime | None
    """The latest measurement used."""
    ongoing: int
    """Courses left out because they are not completed yet."""
    too_short: int
    """Completed courses left out for fewer than ``MIN_FOLLOW_UPS`` follow-ups within ``MAX_WEEKS``."""


def completed_courses(series: Iterable[Sequence[tuple[datetime, float]]], *, now: datetime) -> Courses:
    """Each patient's scored measurements of one score and version family, in time order, as courses: the first is
    the baseline, the later ones within ``MAX_WEEKS`` are its follow-ups; only completed courses with enough
    follow-ups are kept."""
    ended_before = now - timedelta(days=COMPLETED_AFTER_DAYS)
    kept: list[Course] = []
    cut: datetime | None = None
    ongoing = too_short = 0
    for points in series:
        if not points:
            continue
        if points[-1][0] > ended_before:
            ongoing += 1
            continue
        start, baseline = points[0]
        follow_ups: list[tuple[float, float]] = []
        last = start
        for measured_at, value in points[1:]:
            weeks = (measured_at - start).total_seconds() / (7 * 86400)
            if weeks <= MAX_WEEKS:
                follow_ups.append((weeks, value))
                last = measured_at
        if len(follow_ups) < MIN_FOLLOW_UPS:
            too_short += 1
            continue
        kept.append(Course(baseline, tuple(follow_ups)))
        cut = last if cut is None or last > cut else cut
    return Courses(tuple(kept), cut, ongoing, too_short)


@dataclass(frozen=True)
class Prediction:
    expected: float
    sd: float
    lower: float
    upper: float

    def band(self, value: float) -> Band:
        if value < self.lower:
            return "low"
        if value > self.upper:
            return "high"
        return "expected"


@dataclass(frozen=True)
class ExpectedResponse:
    """A fitted (or cited) table: the coefficients and variances that give the expected score and its band."""

    coefficients: tuple[float, float, float, float]
    """b0, b1, b2, b3."""
    random_effects_covariance: tuple[tuple[float, float], tuple[float, float]]
    """G: ((var u0, cov), (cov, var u1))."""
    residual_variance: float
    band_z: float
    coefficients_covariance: tuple[tuple[float, ...], ...] | None = None
    """Cov(b), 4×4; a cited table may have none (its band then ignores the coefficients' uncertainty)."""
    max_weeks: float | None = None
    """The latest week the table describes (no prediction beyond it); None for a cited table that gives none."""

    def predict(self, baseline: float, weeks: float) -> Prediction:
        log_t = log_time(max(weeks, 0.0))
        x = np.array([1.0, baseline, log_t, baseline * log_t])
        expected = float(x @ np.array(self.coefficients))
        z = np.array([1.0, log_t])
        variance = float(z @ np.array(self.random_effects_covariance) @ z) + self.residual_variance
        if self.coefficients_covariance is not None:
            variance += float(x @ np.array(self.coefficients_covariance) @ x)
        sd = math.sqrt(max(variance, 0.0))
        return Prediction(expected, sd, expected - self.band_z * sd, expected + self.band_z * sd)

    def covers(self, weeks: float) -> bool:
        return self.max_weeks is None or weeks <= self.max_weeks + 1e-9


def log_time(weeks: float) -> float:
    """ln(t) with t = 1 + weeks since the baseline."""
    return math.log1p(weeks)


@dataclass(frozen=True)
class Fit:
    table: ExpectedResponse
    courses: int
    measurements: int
    """Measurements used as outcomes (after the baselines), plus the baselines."""
    notices: tuple[str, ...]


def fit(courses: Sequence[Course], *, band_z: float = DEFAULT_BAND_Z) -> Fit:
    """Fit the model on completed courses (each with at least ``MIN_FOLLOW_UPS`` follow-ups within ``MAX_WEEKS``)."""
    rows = [
        (index, course.baseline, log_time(weeks), value)
        for index, course in enumerate(courses)
        for weeks, value in course.follow_ups
    ]
    data = pd.DataFrame(rows, columns=["course", "y0", "lt", "y"])
    if data.empty or data["y"].std() == 0 or data["y0"].nunique() < 2 or data["lt"].nunique() < 2:
        raise FitFailed("the courses do not vary enough (in baseline, time or score) to fit the model")
    import statsmodels.formula.api as smf  # type: ignore[import-untyped]  # slow to import: only a fit needs it
    from statsmodels.tools.sm_exceptions import ConvergenceWarning  # type: ignore[import-untyped]

    notices: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = smf.mixedlm("y ~ y0 + lt + y0:lt", data, groups=data["course"], re_formula="~lt")
        try:
            result = model.fit(reml=True)
        except (np.linalg.LinAlgError, ValueError) as error:
            raise FitFailed(f"the mixed model could not be fitted ({type(error).__name__})") from None
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            notices.append(str(warning.message).splitlines()[0])
    if not result.converged:
        raise FitFailed("the mixed model did not converge")
    names = ["Intercept", "y0", "lt", "y0:lt"]
    fe = result.fe_params
    covariance = result.cov_params().loc[names, names].to_numpy()
    g = np.asarray(result.cov_re)
    table = ExpectedResponse(
        coefficients=(float(fe["Intercept"]), float(fe["y0"]), float(fe["lt"]), float(fe["y0:lt"])),
        random_effects_covariance=((float(g[0, 0]), float(g[0, 1])), (float(g[1, 0]), float(g[1, 1]))),
        residual_variance=float(result.scale),
        band_z=band_z,
        coefficients_covariance=tuple(tuple(float(v) for v in row) for row in covariance),
        max_weeks=max(weeks for course in courses for weeks, _ in course.follow_ups),
    )
    if not all(math.isfinite(v) for v in (*table.coefficients, table.residual_variance)):
        raise FitFailed("the mixed model gave non-finite estimates")
    return Fit(table, len(courses), len(rows) + len(courses), tuple(dict.fromkeys(notices)))
