"""GAD-7 against scoring-decisions.md "GAD-7": every expected number is worked out by hand in the test."""

from __future__ import annotations

from typing import Any

import pytest

from app.scoring.engine import InvalidAnswers
from tests.scoring.support import every, numbered, run, without

ITEMS = range(1, 8)


def test_worked_example() -> None:
    # 1 + 2 + 0 + 3 + 1 + 2 + 0 = 9 → mild (5 ≤ 9 < 10).
    result = run("gad7", numbered([1, 2, 0, 3, 1, 2, 0]))

    total = result.scores["total"]
    assert total.value == 9
    assert total.band == "mild"
    assert total.prorated is False
    assert result.complete is True
    assert result.flags == ()
    assert result.warnings == ()
    assert result.item_scores == {"1": 1, "2": 2, "3": 0, "4": 3, "5": 1, "6": 2, "7": 0}


def test_best_possible_response() -> None:
    # 7 × 0 = 0 → minimal.
    result = run("gad7", every(ITEMS, 0))
    assert result.scores["total"].value == 0
    assert result.scores["total"].band == "minimal"


def test_worst_possible_response() -> None:
    # 7 × 3 = 21 → severe. The GAD-7 has no risk flag.
    result = run("gad7", every(ITEMS, 3))
    assert result.scores["total"].value == 21
    assert result.scores["total"].band == "severe"
    assert result.flags == ()


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        pytest.param([1, 1, 1, 1, 0, 0, 0], 4, "minimal", id="1x4=4 minimal(just below 5)"),
        pytest.param([1, 1, 1, 1, 1, 0, 0], 5, "mild", id="1x5=5 mild(at 5)"),
        pytest.param([1, 1, 1, 1, 1, 1, 0], 6, "mild", id="1x6=6 mild(above 5)"),
        pytest.param([3, 3, 3, 0, 0, 0, 0], 9, "mild", id="3x3=9 mild(just below 10)"),
        pytest.param([3, 3, 3, 1, 0, 0, 0], 10, "moderate", id="3x3+1=10 moderate(at 10)"),
        pytest.param([3, 3, 3, 2, 0, 0, 0], 11, "moderate", id="3x3+2=11 moderate(above 10)"),
        pytest.param([3, 3, 3, 3, 2, 0, 0], 14, "moderate", id="3x4+2=14 moderate(just below 15)"),
        pytest.param([3, 3, 3, 3, 3, 0, 0], 15, "severe", id="3x5=15 severe(at 15)"),
        pytest.param([3, 3, 3, 3, 3, 1, 0], 16, "severe", id="3x5+1=16 severe(above 15)"),
    ],
)
def test_band_boundaries(answers: list[int], total: int, band: str) -> None:
    result = run("gad7", numbered(answers))
    assert result.scores["total"].value == total
    assert result.scores["total"].band == band


@pytest.mark.parametrize("missing", [str(number) for number in ITEMS])
def test_any_missing_item_makes_the_total_null_and_the_response_incomplete(missing: str) -> None:
    # No published missing-item rule: never prorated.
    result = run("gad7", without(every(ITEMS, 2), missing))

    total = result.scores["total"]
    assert total.value is None
    assert total.band is None
    assert total.prorated is False
    assert total.missing_items == (missing,)
    assert result.complete is False
    assert result.missing_items == (missing,)


def test_a_null_answer_is_missing_too() -> None:
    result = run("gad7", {**every(ITEMS, 2), "5": None})
    assert result.scores["total"].value is None
    assert result.missing_items == ("5",)


def test_declared_total_equal_to_computed_gives_no_warning() -> None:
    # 1 + 2 + 0 + 3 + 1 + 2 + 0 = 9.
    assert run("gad7", numbered([1, 2, 0, 3, 1, 2, 0]), declared_total=9).warnings == ()


def test_declared_total_mismatch_warns_with_both_numbers() -> None:
    # Computed 9; declared 10.
    result = run("gad7", numbered([1, 2, 0, 3, 1, 2, 0]), declared_total=10)
    (warning,) = result.warnings
    assert warning.code == "declared_total_mismatch"
    assert warning.details == {"declared": 10, "computed": 9, "score": "total"}
    assert result.scores["total"].value == 9


def test_declared_total_with_a_missing_item_is_a_mismatch_against_null() -> None:
    result = run("gad7", without(every(ITEMS, 1), "7"), declared_total=6)
    (warning,) = result.warnings
    assert warning.details == {"declared": 6, "computed": None, "score": "total"}


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(True, id="True"),
        pytest.param(False, id="False"),
        pytest.param("3", id="string-3"),
        pytest.param(2.0, id="float-2.0"),
        pytest.param(4, id="4"),
        pytest.param(-1, id="-1"),
    ],
)
def test_answers_must_be_option_values_of_the_right_type(bad: Any) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("gad7", {**every(ITEMS, 0), "1": bad})
    (error,) = caught.value.errors
    assert error.item == "1"
    assert error.allowed == (0, 1, 2, 3)


@pytest.mark.parametrize("number", ["0", "8", "10"])
def test_item_numbers_outside_the_instrument_are_errors(number: str) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("gad7", {**every(ITEMS, 0), number: 0})
    (error,) = caught.value.errors
    assert error.item == number
    assert '"1" to "7"' in error.message
