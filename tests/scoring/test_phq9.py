"""PHQ-9 against scoring-decisions.md "PHQ-9": every expected number is worked out by hand in the test."""

from __future__ import annotations

from typing import Any

import pytest

from app.scoring.engine import InvalidAnswers, _band
from tests.scoring.support import definition, every, numbered, run, without

ITEMS_1_TO_9 = range(1, 10)


def test_issue_example_scores_ten_moderate_with_item9_flag() -> None:
    # 3 + 0 + 1 + 2 + 0 + 0 + 1 + 0 + 3 = 10 → moderate (10 ≤ 10 < 15); item 9 = 3 ≥ 1 → item9_positive.
    result = run("phq9", {"1": 3, "2": 0, "3": 1, "4": 2, "5": 0, "6": 0, "7": 1, "8": 0, "9": 3})

    total = result.scores["total"]
    assert total.value == 10
    assert total.band == "moderate"
    assert total.prorated is False
    assert total.missing_items == ()
    assert result.flags == ("item9_positive",)
    assert result.complete is True
    assert result.missing_items == ()
    assert result.warnings == ()
    assert result.instrument == "phq9"
    assert result.version == "1.0.0"


def test_best_possible_response() -> None:
    # 9 × 0 = 0 → minimal; item 9 = 0 → no flag.
    result = run("phq9", every(ITEMS_1_TO_9, 0))
    assert result.scores["total"].value == 0
    assert result.scores["total"].band == "minimal"
    assert result.flags == ()


def test_worst_possible_response() -> None:
    # 9 × 3 = 27 → severe; item 9 = 3 → item9_positive.
    result = run("phq9", every(ITEMS_1_TO_9, 3))
    assert result.scores["total"].value == 27
    assert result.scores["total"].band == "severe"
    assert result.flags == ("item9_positive",)


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        pytest.param([0, 0, 0, 0, 0, 0, 0, 0, 0], 0, "minimal", id="0=minimal(lower bound 0)"),
        pytest.param([1, 1, 1, 1, 0, 0, 0, 0, 0], 4, "minimal", id="1+1+1+1=4 minimal(just below 5)"),
        pytest.param([1, 1, 1, 1, 1, 0, 0, 0, 0], 5, "mild", id="1x5=5 mild(at 5)"),
        pytest.param([1, 1, 1, 1, 1, 1, 0, 0, 0], 6, "mild", id="1x6=6 mild(above 5)"),
        pytest.param([3, 3, 3, 0, 0, 0, 0, 0, 0], 9, "mild", id="3+3+3=9 mild(just below 10)"),
        pytest.param([3, 3, 3, 1, 0, 0, 0, 0, 0], 10, "moderate", id="3+3+3+1=10 moderate(at 10)"),
        pytest.param([3, 3, 3, 2, 0, 0, 0, 0, 0], 11, "moderate", id="3+3+3+2=11 moderate(above 10)"),
        pytest.param([3, 3, 3, 3, 2, 0, 0, 0, 0], 14, "moderate", id="3x4+2=14 moderate(just below 15)"),
        pytest.param([3, 3, 3, 3, 3, 0, 0, 0, 0], 15, "moderately_severe", id="3x5=15 moderately_severe(at 15)"),
        pytest.param([3, 3, 3, 3, 3, 1, 0, 0, 0], 16, "moderately_severe", id="3x5+1=16 mod_severe(above 15)"),
        pytest.param([3, 3, 3, 3, 3, 3, 1, 0, 0], 19, "moderately_severe", id="3x6+1=19 mod_severe(below 20)"),
        pytest.param([3, 3, 3, 3, 3, 3, 2, 0, 0], 20, "severe", id="3x6+2=20 severe(at 20)"),
        pytest.param([3, 3, 3, 3, 3, 3, 3, 0, 0], 21, "severe", id="3x7=21 severe(above 20)"),
    ],
)
def test_band_boundaries(answers: list[int], total: int, band: str) -> None:
    result = run("phq9", numbered(answers))
    assert result.scores["total"].value == total
    assert result.scores["total"].band == band


def test_decisions_page_prorated_example_9_43_is_mild() -> None:
    # The decisions page's 9.43 cannot come from PHQ-9 answers (a prorated total is 9·s/8 or 9·s/7 for integer s),
    # so the band lookup is checked directly on the shipped PHQ-9 bands: 5 ≤ 9.43 < 10 → mild.
    bands = definition("phq9").score("total").bands
    assert _band(bands, 9.43) == "mild"
    assert _band(bands, 9.999) == "mild"
    assert _band(bands, 4.999) == "minimal"


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        # One missing (item 9 answered 0): 9 × s / 8.
        pytest.param([1, 1, 1, 1, None, 0, 0, 0, 0], 4.5, "minimal", id="9x4/8=4.5 minimal"),
        pytest.param([1, 1, 1, 1, 1, 1, 1, 1, None], 9.0, "mild", id="9x8/8=9.0 mild"),
        pytest.param([3, 3, 3, None, 0, 0, 0, 0, 0], 10.125, "moderate", id="9x9/8=10.125 moderate"),
        pytest.param([3, 3, 3, 3, 1, None, 0, 0, 0], 14.625, "moderate", id="9x13/8=14.625 moderate"),
        pytest.param([3, 3, 3, 3, 3, 2, None, 0, 0], 19.125, "moderately_severe", id="9x17/8=19.125 mod_severe"),
        # Two missing: 9 × s / 7.
        pytest.param([1, 1, 1, 1, None, None, 0, 0, 0], 36 / 7, "mild", id="9x4/7=5.142857 mild"),
        pytest.param([1, 1, 1, 1, 1, 1, 1, None, None], 9.0, "mild", id="9x7/7=9.0 mild"),
        pytest.param([3, 3, 2, None, None, 0, 0, 0, 0], 72 / 7, "moderate", id="9x8/7=10.285714 moderate"),
        pytest.param([3, 3, 3, 3, None, None, 0, 0, 0], 108 / 7, "moderately_severe", id="9x12/7=15.428571 ms"),
        pytest.param([3, 3, 3, 3, 3, None, None, 1, 0], 144 / 7, "severe", id="9x16/7=20.571429 severe"),
    ],
)
def test_prorated_totals_keep_their_unrounded_value_and_band(
    answers: list[int | None], total: float, band: str
) -> None:
    result = run("phq9", numbered(answers))
    assert result.scores["total"].value == pytest.approx(total)
    assert result.scores["total"].band == band
    assert result.scores["total"].prorated is True


def test_one_missing_item_is_prorated() -> None:
    # 8 answered (item 3 missing), summing to 3 + 0 + 2 + 1 + 1 + 2 + 1 + 0 = 10 → 10 × 9 / 8 = 11.25, moderate.
    answers = {"1": 3, "2": 0, "4": 2, "5": 1, "6": 1, "7": 2, "8": 1, "9": 0}
    result = run("phq9", answers)

    total = result.scores["total"]
    assert total.value == 11.25
    assert total.band == "moderate"
    assert total.prorated is True
    assert total.missing_items == ("3",)
    assert result.complete is False
    assert result.missing_items == ("3",)


def test_two_missing_items_are_prorated() -> None:
    # 7 answered (items 2 and 6 null), summing to 3 + 1 + 2 + 1 + 2 + 1 + 0 = 10 → 10 × 9 / 7 = 12.857142…, moderate.
    answers = {"1": 3, "2": None, "3": 1, "4": 2, "5": 1, "6": None, "7": 2, "8": 1, "9": 0}
    result = run("phq9", answers)

    total = result.scores["total"]
    assert total.value == pytest.approx(90 / 7)
    assert total.value == pytest.approx(12.857142857)
    assert total.band == "moderate"
    assert total.prorated is True
    assert total.missing_items == ("2", "6")
    assert result.complete is False


def test_three_missing_items_give_no_total() -> None:
    # 6 answered: more than two missing → null, not prorated; the missing items are still listed.
    answers = {"1": 3, "4": 2, "5": 1, "6": 1, "8": 1, "9": 0}
    result = run("phq9", answers)

    total = result.scores["total"]
    assert total.value is None
    assert total.band is None
    assert total.prorated is False
    assert total.missing_items == ("2", "3", "7")
    assert result.missing_items == ("2", "3", "7")
    assert result.complete is False


def test_nothing_answered_lists_every_scored_item_but_not_item_10() -> None:
    result = run("phq9", {})
    assert result.scores["total"].value is None
    assert result.missing_items == ("1", "2", "3", "4", "5", "6", "7", "8", "9")
    assert result.flags == ("item9_missing",)


def test_null_and_absent_are_the_same_missing_item() -> None:
    answers = every(ITEMS_1_TO_9, 1)
    absent = run("phq9", without(answers, "4"))
    null = run("phq9", {**answers, "4": None})
    # 8 × 1 = 8 → 8 × 9 / 8 = 9.0 either way.
    assert absent.scores["total"].value == null.scores["total"].value == 9.0
    assert absent.missing_items == null.missing_items == ("4",)


def test_missing_item9_raises_item9_missing_not_item9_positive() -> None:
    # Items 1–8 all 2: 8 × 2 = 16 → 16 × 9 / 8 = 18.0 (prorated, moderately severe); item 9 never inferred.
    result = run("phq9", every(range(1, 9), 2))
    assert result.flags == ("item9_missing",)
    assert result.scores["total"].value == 18.0
    assert result.scores["total"].band == "moderately_severe"
    assert result.scores["total"].prorated is True


def test_null_item9_also_raises_item9_missing() -> None:
    result = run("phq9", {**every(range(1, 9), 0), "9": None})
    assert result.flags == ("item9_missing",)


@pytest.mark.parametrize(("item9", "flags"), [(0, ()), (1, ("item9_positive",)), (2, ("item9_positive",))])
def test_item9_flag_whatever_the_total(item9: int, flags: tuple[str, ...]) -> None:
    # Items 1–8 all 0, so the total equals item 9 (≤ 2, minimal) and the flag still rises at item 9 ≥ 1.
    result = run("phq9", {**every(range(1, 9), 0), "9": item9})
    assert result.scores["total"].value == item9
    assert result.scores["total"].band == "minimal"
    assert result.flags == flags


@pytest.mark.parametrize("item10", [0, 1, 2, 3])
def test_item10_is_stored_but_never_summed(item10: int) -> None:
    # Items 1–9 all 1: 9 × 1 = 9 whatever item 10 says.
    result = run("phq9", {**every(ITEMS_1_TO_9, 1), "10": item10})
    assert result.scores["total"].value == 9
    assert "10" not in result.item_scores
    assert result.complete is True


def test_item10_is_not_required_for_completeness() -> None:
    result = run("phq9", every(ITEMS_1_TO_9, 1))
    assert result.complete is True
    assert result.missing_items == ()


@pytest.mark.parametrize("bad", [4, -1, True, "3", 2.0])
def test_item10_answers_are_validated(bad: Any) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("phq9", {**every(ITEMS_1_TO_9, 1), "10": bad})
    assert [error.item for error in caught.value.errors] == ["10"]


def test_declared_total_equal_to_computed_gives_no_warning() -> None:
    result = run("phq9", every(ITEMS_1_TO_9, 1), declared_total=9)
    assert result.warnings == ()


def test_declared_total_equal_to_prorated_total_gives_no_warning() -> None:
    # 8 × 1 = 8 → 8 × 9 / 8 = 9.0.
    result = run("phq9", every(range(1, 9), 1), declared_total=9.0)
    assert result.warnings == ()


def test_declared_total_mismatch_warns_with_both_numbers_and_keeps_the_computed_total() -> None:
    # Computed 9 × 1 = 9; the client declared 12.
    result = run("phq9", every(ITEMS_1_TO_9, 1), declared_total=12)

    assert result.scores["total"].value == 9
    (warning,) = result.warnings
    assert warning.code == "declared_total_mismatch"
    assert warning.details == {"declared": 12, "computed": 9, "score": "total"}
    assert "12" in warning.message
    assert "9" in warning.message


def test_declared_total_when_no_total_can_be_computed_is_a_mismatch() -> None:
    result = run("phq9", every(range(1, 7), 1), declared_total=6)
    (warning,) = result.warnings
    assert warning.code == "declared_total_mismatch"
    assert warning.details == {"declared": 6, "computed": None, "score": "total"}


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(True, id="True"),
        pytest.param(False, id="False"),
        pytest.param("3", id="string-3"),
        pytest.param(2.0, id="float-2.0"),
        pytest.param(4, id="4-above-range"),
        pytest.param(-1, id="-1-below-range"),
        pytest.param("1a", id="letter-code"),
    ],
)
def test_answers_must_be_option_values_of_the_right_type(bad: Any) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("phq9", {**every(ITEMS_1_TO_9, 0), "2": bad})

    (error,) = caught.value.errors
    assert error.item == "2"
    assert error.value == bad
    assert error.allowed == (0, 1, 2, 3)
    assert "0–3" in error.message
    assert caught.value.instrument_id == "phq9"


@pytest.mark.parametrize("number", ["0", "11", "01", " 1", "q1", ""])
def test_item_numbers_outside_the_instrument_are_errors(number: str) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("phq9", {**every(ITEMS_1_TO_9, 0), number: 1})

    (error,) = caught.value.errors
    assert error.item == number
    assert error.allowed == ()
    assert '"1" to "10"' in error.message


def test_every_invalid_answer_is_reported_at_once() -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("phq9", {"1": True, "2": "2", "12": 0, "3": 1})
    assert [error.item for error in caught.value.errors] == ["1", "2", "12"]
    assert str(caught.value) == "3 invalid answer(s) for phq9"
