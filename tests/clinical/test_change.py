"""Jacobson–Truax and fixed-threshold change against hand computation, and every category boundary.

PHQ-9 defaults (scoring-decisions.md): r = 0.89, SD_clin = 5.5, caseness ≥ 10.
SE = 5.5·√0.11 = 5.5 × 0.331662 = 1.824144; S_diff = √2 × 1.824144 = 2.579745; 1.96 × S_diff = 5.056300.
"""

from __future__ import annotations

import math

import pytest

from app.clinical.change import Category, CutoffType, Method, Parameters, assess, cutoff_value, missing_parameters
from app.clinical.defaults import DEFAULTS

PHQ9_JT = DEFAULTS[("phq9", "total", Method.JACOBSON_TRUAX)]
PHQ9_FIXED = DEFAULTS[("phq9", "total", Method.FIXED_THRESHOLD)]
GAD7_FIXED = DEFAULTS[("gad7", "total", Method.FIXED_THRESHOLD)]
LOWER = "lower_is_better"
HIGHER = "higher_is_better"


def test_the_issue_example_18_to_11_is_minus_7_rci_minus_2_71_improved_not_recovered() -> None:
    result = assess(18, 11, direction=LOWER, method=Method.JACOBSON_TRUAX, parameters=PHQ9_JT)

    assert result.difference == -7
    # −7 / 2.579745 = −2.7134
    assert result.rci is not None
    assert round(result.rci, 2) == -2.71
    assert result.reliable_change_threshold is not None
    assert round(result.reliable_change_threshold, 2) == 5.06
    # Change-analytics §3.2: SE 1.82, S_diff 2.58.
    assert result.standard_error_of_measurement is not None
    assert round(result.standard_error_of_measurement, 2) == 1.82
    assert result.standard_error_of_difference is not None
    assert round(result.standard_error_of_difference, 2) == 2.58
    # 18 ≥ 10 and 11 ≥ 10: a case before and after, so reliably improved but not recovered.
    assert result.caseness_baseline is True
    assert result.caseness_latest is True
    assert result.category is Category.IMPROVED
    # 11 > 18 × 0.5 = 9: no response; 11 ≥ 5: no remission.
    assert result.response is False
    assert result.remission is False
    assert result.missing == ()


def test_the_issue_example_18_to_4_is_recovered_with_response_and_remission() -> None:
    result = assess(18, 4, direction=LOWER, method=Method.JACOBSON_TRUAX, parameters=PHQ9_JT)

    assert result.difference == -14
    # −14 / 2.579745 = −5.4269
    assert result.rci is not None
    assert round(result.rci, 2) == -5.43
    assert result.caseness_baseline is True
    assert result.caseness_latest is False
    assert result.category is Category.RECOVERED
    assert result.response is True  # 4 ≤ 9
    assert result.remission is True  # 4 < 5


@pytest.mark.parametrize(
    ("baseline", "latest", "category"),
    [
        # |RCI| > 1.96 needs |change| > 5.0563: 5 points is not reliable, 6 is.
        (18, 13, Category.UNCHANGED),  # −5 / 2.5797 = −1.94
        (18, 12, Category.IMPROVED),  # −6 / 2.5797 = −2.33; 12 is still a case
        (12, 17, Category.UNCHANGED),  # +5
        (12, 18, Category.DETERIORATED),  # +6, a case before: deteriorated, not harmed
        # Caseness ≥ 10 at both ends of recovery.
        (16, 10, Category.IMPROVED),  # −6, but 10 is a case
        (15, 9, Category.RECOVERED),  # −6 and 9 < 10
        (10, 4, Category.RECOVERED),  # 10 is a case at baseline
        (9, 3, Category.IMPROVED),  # 9 is not a case at baseline: improved, not recovered
        # Harmed: not a case before, a case after, reliably worse.
        (4, 10, Category.HARMED),
        (3, 9, Category.DETERIORATED),  # +6 but 9 is still below the cut-off
        (10, 16, Category.DETERIORATED),
    ],
)
def test_phq9_jacobson_truax_category_boundaries(baseline: int, latest: int, category: Category) -> None:
    result = assess(baseline, latest, direction=LOWER, method=Method.JACOBSON_TRUAX, parameters=PHQ9_JT)

    assert result.category is category


@pytest.mark.parametrize(
    ("baseline", "latest", "response", "remission"),
    [
        (18, 9, True, False),  # 9 ≤ 18 × 0.5 exactly: a response; 9 ≥ 5
        (18, 10, False, False),
        (10, 5, True, False),  # 5 is not below 5
        (10, 4, True, True),
        (9, 2, None, None),  # 9 is not a case (caseness is 10 or more): neither is defined
        (0, 0, None, None),
    ],
)
def test_phq9_response_and_remission_boundaries(
    baseline: int, latest: int, response: bool | None, remission: bool | None
) -> None:
    result = assess(baseline, latest, direction=LOWER, method=Method.JACOBSON_TRUAX, parameters=PHQ9_JT)

    assert result.response is response
    assert result.remission is remission


@pytest.mark.parametrize(
    ("parameters", "baseline", "latest", "category"),
    [
        # PHQ-9: 6 points or more is reliable (inclusive), caseness ≥ 10.
        (PHQ9_FIXED, 18, 13, Category.UNCHANGED),
        (PHQ9_FIXED, 18, 12, Category.IMPROVED),
        (PHQ9_FIXED, 15, 9, Category.RECOVERED),
        (PHQ9_FIXED, 4, 10, Category.HARMED),
        (PHQ9_FIXED, 12, 18, Category.DETERIORATED),
        # GAD-7: 4 points or more, caseness ≥ 8.
        (GAD7_FIXED, 11, 8, Category.UNCHANGED),  # −3
        (GAD7_FIXED, 12, 8, Category.IMPROVED),  # −4, but 8 is a case
        (GAD7_FIXED, 12, 7, Category.RECOVERED),
        (GAD7_FIXED, 8, 4, Category.RECOVERED),  # 8 is a case at baseline
        (GAD7_FIXED, 7, 11, Category.HARMED),
        (GAD7_FIXED, 8, 12, Category.DETERIORATED),
    ],
)
def test_fixed_threshold_boundaries(parameters: Parameters, baseline: int, latest: int, category: Category) -> None:
    result = assess(baseline, latest, direction=LOWER, method=Method.FIXED_THRESHOLD, parameters=parameters)

    assert result.category is category
    assert result.rci is None
    assert result.reliable_change_threshold == parameters.minimum_change


def test_gad7_fixed_threshold_defines_no_response_or_remission() -> None:
    result = assess(12, 4, direction=LOWER, method=Method.FIXED_THRESHOLD, parameters=GAD7_FIXED)

    assert result.response is None
    assert result.remission is None
    assert [m.name for m in result.missing] == ["response_reduction", "remission_below"]


UNIT_S_DIFF = Parameters(method=Method.JACOBSON_TRUAX, source="clinic", reliability=0.5, clinical_sd=1.0)
"""SE = 1 × √0.5; S_diff = √(2 × 0.5) = 1, so RCI equals the raw change."""


@pytest.mark.parametrize(
    ("latest", "category"),
    [
        (-1.96, Category.UNCHANGED),
        (-1.97, Category.IMPROVED),
        (1.96, Category.UNCHANGED),
        (1.97, Category.DETERIORATED),
    ],
)
def test_an_rci_of_exactly_1_96_is_not_reliable(latest: float, category: Category) -> None:
    result = assess(0, latest, direction=LOWER, method=Method.JACOBSON_TRUAX, parameters=UNIT_S_DIFF)

    assert result.rci is not None
    assert math.isclose(result.rci, latest)
    assert result.category is category


def test_higher_is_better_reverses_improvement() -> None:
    result = assess(2.0, 4.0, direction=HIGHER, method=Method.JACOBSON_TRUAX, parameters=UNIT_S_DIFF)

    # RCI = +2 > 1.96 on a higher-is-better score: improvement. No cut-off: improved, never recovered.
    assert result.rci == pytest.approx(2.0)
    assert result.category is Category.IMPROVED
    assert result.caseness_baseline is None
    assert result.response is None


LOWER_NORMS = Parameters(
    method=Method.JACOBSON_TRUAX,
    source="clinic",
    reliability=0.5,
    clinical_mean=30,
    clinical_sd=10,
    functional_mean=10,
    functional_sd=5,
)


@pytest.mark.parametrize(
    ("cutoff_type", "direction", "expected"),
    [
        # Lower is better (d = −1): a = 30 − 2·10 = 10; b = 10 + 2·5 = 20; c = (10·10 + 5·30)/(10 + 5) = 16.667.
        (CutoffType.A, -1, 10.0),
        (CutoffType.B, -1, 20.0),
        (CutoffType.C, -1, 250 / 15),
        # Higher is better (d = +1): a = 30 + 20 = 50; b = 10 − 10 = 0; c is direction-free.
        (CutoffType.A, 1, 50.0),
        (CutoffType.B, 1, 0.0),
        (CutoffType.C, 1, 250 / 15),
    ],
)
def test_cutoffs_a_b_c(cutoff_type: CutoffType, direction: int, expected: float) -> None:
    parameters = Parameters(**{**LOWER_NORMS.__dict__, "cutoff_type": cutoff_type})

    assert cutoff_value(parameters, direction) == pytest.approx(expected)


def test_a_score_exactly_on_a_computed_cutoff_is_neither_clinical_nor_functional() -> None:
    # Cut-off a = 10 (lower is better), S_diff = 10·√0.5·√2 = 10, threshold 19.6.
    parameters = Parameters(**{**LOWER_NORMS.__dict__, "cutoff_type": CutoffType.A})

    on_cutoff_then_worse = assess(10, 30, direction=LOWER, method=Method.JACOBSON_TRUAX, parameters=parameters)
    # RCI = 20/10 = 2 > 1.96; 10 is not clinical (strict), 30 is not functional: harmed (as in clinicalsignificance).
    assert on_cutoff_then_worse.caseness_baseline is False
    assert on_cutoff_then_worse.category is Category.HARMED

    worse_then_on_cutoff = assess(30, 10, direction=LOWER, method=Method.JACOBSON_TRUAX, parameters=parameters)
    # RCI = −2: improved; 10 is not functional (strict), so not recovered.
    assert worse_then_on_cutoff.caseness_latest is False
    assert worse_then_on_cutoff.category is Category.IMPROVED


def test_prorated_scores_are_compared_unrounded() -> None:
    # 7 answered items summing to 8 prorate to 8 × 9/7 = 10.2857 (a case); 18 → 10.2857 is −7.71 (RCI −2.99).
    result = assess(18, 8 * 9 / 7, direction=LOWER, method=Method.JACOBSON_TRUAX, parameters=PHQ9_JT)

    assert result.caseness_latest is True
    assert result.category is Category.IMPROVED


def test_without_parameters_every_derived_output_is_null_and_the_missing_ones_are_named() -> None:
    result = assess(30, 20, direction=LOWER, method=Method.JACOBSON_TRUAX, parameters=None)

    assert result.difference == -10
    assert result.rci is None
    assert result.reliable_change_threshold is None
    assert result.category is None
    assert result.caseness_baseline is None
    assert result.response is None
    assert {m.name: m.needed_for for m in result.missing} == {
        "reliability": ("rci", "reliable_change_threshold", "category"),
        "clinical_sd": ("rci", "reliable_change_threshold", "category"),
        "cutoff_type": ("caseness_baseline", "caseness_latest", "recovered", "harmed", "response", "remission"),
        "response_reduction": ("response",),
        "remission_below": ("remission",),
    }


def test_a_cutoff_that_needs_norms_names_them_with_every_output_they_feed() -> None:
    parameters = Parameters(
        method=Method.JACOBSON_TRUAX, source="clinic", reliability=0.8, cutoff_type=CutoffType.C, clinical_mean=3.0
    )

    missing = {m.name: m.needed_for for m in missing_parameters(parameters, Method.JACOBSON_TRUAX, HIGHER)}

    assert missing == {
        "clinical_sd": ("rci", "reliable_change_threshold", "category", "caseness_baseline", "caseness_latest")
        + ("recovered", "harmed"),
        "functional_mean": ("caseness_baseline", "caseness_latest", "recovered", "harmed"),
        "functional_sd": ("caseness_baseline", "caseness_latest", "recovered", "harmed"),
    }


def test_fixed_threshold_needs_only_the_minimum_change() -> None:
    missing = missing_parameters(None, Method.FIXED_THRESHOLD, LOWER)

    assert [m.name for m in missing] == ["minimum_change", "cutoff_type", "response_reduction", "remission_below"]
