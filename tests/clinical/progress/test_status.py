"""The progress status, by hand (pure).

PHQ-9 with the shipped Jacobson–Truax parameters (reliability 0.89, SD 5.5, caseness ≥ 10): S_diff =
5.5·√(1 − 0.89)·√2 = 2.5797, so a change is reliable beyond 1.96 × 2.5797 = 5.056 points.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.clinical.change import Method
from app.clinical.defaults import DEFAULTS
from app.clinical.progress.expected import ExpectedResponse
from app.clinical.progress.status import MIN_MEASUREMENTS, MethodKind, Observation, Rule, Status, history, judge

START = datetime(2026, 1, 5, 9, tzinfo=UTC)
JT = DEFAULTS[("phq9", "total", Method.JACOBSON_TRUAX)]
RULE = Rule(
    direction="lower_is_better", short_name="PHQ-9", change_method=Method.JACOBSON_TRUAX, parameters=JT, table=None
)
TABLE = ExpectedResponse(
    coefficients=(0.0, 1.0, -2.0, 0.0),
    random_effects_covariance=((0.0, 0.0), (0.0, 0.0)),
    residual_variance=1.0,
    band_z=2.0,
)
"""Expected y0 − 2·ln(1 + weeks), band ± 2 (SD 1, z 2)."""


def course(*totals: float) -> list[Observation]:
    return [Observation(uuid.uuid4(), START + timedelta(weeks=n), total) for n, total in enumerate(totals)]


def test_the_baseline_alone_is_insufficient_data() -> None:
    result = judge(course(15), RULE)
    assert result.status is Status.INSUFFICIENT_DATA
    assert result.method is MethodKind.RELIABLE_CHANGE_RULE
    assert result.points[0].band is None
    assert result.points[0].band_reason is not None


def test_still_a_case_and_not_reliably_improved_is_not_on_track_only_from_the_minimum() -> None:
    assert MIN_MEASUREMENTS == 6
    five = judge(course(15, 14, 15, 14, 12), RULE)
    assert (five.status, five.provisional) == (Status.INSUFFICIENT_DATA, True)
    six = judge(course(15, 14, 15, 14, 12, 10), RULE)  # 10 is a case; −5 is not reliable (5.056)
    assert (six.status, six.provisional) == (Status.NOT_ON_TRACK, False)
    assert all(point.band is None for point in six.points)
    assert history(course(15, 14, 15, 14, 12, 10), RULE) == [Status.INSUFFICIENT_DATA] * 5 + [Status.NOT_ON_TRACK]


def test_reliable_improvement_or_no_longer_a_case_is_on_track() -> None:
    improved = judge(course(22, 20, 18, 17, 16, 16), RULE)  # −6: reliable, still a case
    assert (improved.status, improved.provisional) == (Status.ON_TRACK, False)
    early = judge(course(22, 16), RULE)
    assert (early.status, early.provisional) == (Status.ON_TRACK, True)
    mild = judge(course(8, 9, 8, 9, 8, 9), RULE)  # never a case
    assert mild.status is Status.ON_TRACK


def test_reliable_deterioration_and_recovery_are_judged_from_the_second_measurement() -> None:
    assert judge(course(15, 21), RULE).status is Status.RELIABLE_DETERIORATION  # +6 > 5.056
    assert judge(course(15, 20), RULE).status is Status.INSUFFICIENT_DATA  # +5: not reliable, and too early
    assert judge(course(15, 9), RULE).status is Status.RECOVERED  # −6 and below 10


def test_without_change_parameters_the_rule_says_so() -> None:
    rule = Rule(
        direction="lower_is_better", short_name="X", change_method=Method.JACOBSON_TRUAX, parameters=None, table=None
    )
    result = judge(course(15, 14, 15, 14, 12, 10), rule)
    assert result.status is Status.INSUFFICIENT_DATA
    assert "change parameters" in result.reasons[-1]


def test_a_table_bands_each_later_measurement() -> None:
    rule = Rule(
        direction="lower_is_better", short_name="PHQ-9", change_method=Method.JACOBSON_TRUAX, parameters=JT, table=TABLE
    )
    # Week 1: 20 − 2·ln 2 = 18.614, band 16.614–20.614; week 2: 17.803 (upper 19.803); week 3: 17.227 (19.227);
    # week 4: 16.781 (18.781); week 5: 20 − 2·ln 6 = 16.416, band 14.416–18.416.
    result = judge(course(20, 21, 19, 19, 18, 19), rule)
    assert result.method is MethodKind.EXPECTED_RESPONSE_TABLE
    first = result.points[1]
    assert first.expected == pytest.approx(18.614, abs=1e-3)
    assert first.lower == pytest.approx(16.614, abs=1e-3)
    assert first.upper == pytest.approx(20.614, abs=1e-3)
    assert [p.band for p in result.points] == [None, "high", "expected", "expected", "expected", "high"]
    assert result.status is Status.NOT_ON_TRACK
    assert judge(course(20, 21, 19, 19, 18, 15), rule).status is Status.ON_TRACK  # within 14.416–18.416


def test_a_higher_is_better_score_is_off_track_below_its_band() -> None:
    table = ExpectedResponse(
        coefficients=(0.0, 1.0, 2.0, 0.0),
        random_effects_covariance=((0.0, 0.0), (0.0, 0.0)),
        residual_variance=1.0,
        band_z=2.0,
    )
    rule = Rule(
        direction="higher_is_better",
        short_name="SCS",
        change_method=Method.JACOBSON_TRUAX,
        parameters=None,
        table=table,
    )
    # Week 5: 10 + 2·ln 6 = 13.58, band 11.58–15.58.
    assert judge(course(10, 12, 12, 13, 13, 11), rule).status is Status.NOT_ON_TRACK
    assert judge(course(10, 12, 12, 13, 13, 17), rule).status is Status.ON_TRACK


def test_beyond_the_table_the_rule_judges() -> None:
    table = ExpectedResponse(
        coefficients=(0.0, 1.0, -2.0, 0.0),
        random_effects_covariance=((0.0, 0.0), (0.0, 0.0)),
        residual_variance=1.0,
        band_z=2.0,
        max_weeks=3.0,
    )
    rule = Rule(
        direction="lower_is_better", short_name="PHQ-9", change_method=Method.JACOBSON_TRUAX, parameters=JT, table=table
    )
    result = judge(course(15, 14, 15, 14, 12, 10), rule)
    assert result.points[-1].band is None
    assert "beyond" in (result.points[-1].band_reason or "")
    assert result.status is Status.NOT_ON_TRACK
    assert any("reliable change rule" in reason for reason in result.reasons)
