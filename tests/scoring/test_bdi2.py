"""BDI-II against scoring-decisions.md "BDI-II" and instruments-sources.md §5 (scoring facts only)."""

from __future__ import annotations

from typing import Any

import pytest

from app.scoring.engine import InvalidAnswers
from tests.scoring.support import every, numbered, run, value_of, without

ALL_ITEMS = range(1, 22)
LETTER_ITEMS = ("16", "18")
LETTER_CODES = ("1a", "1b", "2a", "2b", "3a", "3b")
# Every item scores 1: 21 × 1 = 21 (items 16 and 18 need a letter for 1).
ALL_ONES = {**every(ALL_ITEMS, 1), "16": "1a", "18": "1b"}


def test_worked_example_with_letter_codes() -> None:
    answers = numbered([1, 0, 2, 1, 0, 1, 0, 2, 0, 1, 1, 0, 1, 2, 0, "2a", 1, "1b", 0, 1, 0])
    result = run("bdi2", answers)
    # Items 1-15: 1 + 0 + 2 + 1 + 0 + 1 + 0 + 2 + 0 + 1 + 1 + 0 + 1 + 2 + 0 = 12
    # item 16 "2a" → 2, item 17 → 1, item 18 "1b" → 1, items 19-21: 0 + 1 + 0 = 1
    # total = 12 + 2 + 1 + 1 + 1 = 17 → mild (14 ≤ 17 < 20); item 9 = 0 → no flag.
    assert value_of(result, "total") == 17
    assert result.scores["total"].band == "mild"
    assert result.item_scores["16"] == 2
    assert result.item_scores["18"] == 1
    assert result.flags == ()
    assert result.complete is True


def test_best_possible_response() -> None:
    # 21 × 0 = 0 → minimal.
    result = run("bdi2", every(ALL_ITEMS, 0))
    assert value_of(result, "total") == 0
    assert result.scores["total"].band == "minimal"
    assert result.flags == ()


def test_worst_possible_response() -> None:
    # 19 items × 3 + "3a" (3) + "3b" (3) = 57 + 6 = 63 → severe; item 9 = 3 → item9_positive.
    result = run("bdi2", {**every(ALL_ITEMS, 3), "16": "3a", "18": "3b"})
    assert value_of(result, "total") == 63
    assert result.scores["total"].band == "severe"
    assert result.flags == ("item9_positive",)


@pytest.mark.parametrize("item", LETTER_ITEMS)
@pytest.mark.parametrize(
    ("code", "points"),
    [("1a", 1), ("1b", 1), ("2a", 2), ("2b", 2), ("3a", 3), ("3b", 3)],
)
def test_letter_codes_score_their_number(item: str, code: str, points: int) -> None:
    # Every other item 0 (item 16 or 18 answered 0 too), so the total is the letter's number.
    result = run("bdi2", {**every(ALL_ITEMS, 0), item: code})
    assert value_of(result, "total") == points
    assert result.item_scores[item] == points


@pytest.mark.parametrize("item", LETTER_ITEMS)
def test_zero_is_an_integer_on_the_letter_items(item: str) -> None:
    # 20 items × 1 + 0 = 20.
    assert value_of(run("bdi2", {**ALL_ONES, item: 0}), "total") == 20


@pytest.mark.parametrize("item", LETTER_ITEMS)
@pytest.mark.parametrize("plain", [1, 2, 3])
def test_letter_items_also_take_the_plain_number_when_the_direction_was_not_recorded(item: str, plain: int) -> None:
    # Every other item 0, so the total is the plain number (scoring-decisions.md: items 16 and 18 "also take" letters).
    assert value_of(run("bdi2", {**every(ALL_ITEMS, 0), item: plain}), "total") == plain


@pytest.mark.parametrize("item", LETTER_ITEMS)
@pytest.mark.parametrize("bad", [4, -1, "0", "1", "1c", "4a", "2A", " 2a", True])
def test_letter_items_take_only_their_published_options(item: str, bad: Any) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("bdi2", {**every(ALL_ITEMS, 0), item: bad})
    (error,) = caught.value.errors
    assert error.item == item
    assert error.allowed == (0, 1, 2, 3, "1a", "1b", "2a", "2b", "3a", "3b")
    assert "'1a'" in error.message


@pytest.mark.parametrize("item", [str(n) for n in ALL_ITEMS if str(n) not in LETTER_ITEMS])
@pytest.mark.parametrize("code", LETTER_CODES)
def test_letter_codes_are_errors_on_other_items(item: str, code: str) -> None:
    # "1a" on item 1 (or any item but 16 and 18) is an error.
    with pytest.raises(InvalidAnswers) as caught:
        run("bdi2", {**every(ALL_ITEMS, 0), "16": 0, "18": 0, item: code})
    (error,) = caught.value.errors
    assert error.item == item
    assert error.allowed == (0, 1, 2, 3)


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        pytest.param([3, 3, 3, 3, 1] + [0] * 16, 13, "minimal", id="3x4+1=13 minimal(just below 14)"),
        pytest.param([3, 3, 3, 3, 2] + [0] * 16, 14, "mild", id="3x4+2=14 mild(at 14)"),
        pytest.param([3, 3, 3, 3, 3] + [0] * 16, 15, "mild", id="3x5=15 mild(above 14)"),
        pytest.param([3, 3, 3, 3, 3, 3, 1] + [0] * 14, 19, "mild", id="3x6+1=19 mild(just below 20)"),
        pytest.param([3, 3, 3, 3, 3, 3, 2] + [0] * 14, 20, "moderate", id="3x6+2=20 moderate(at 20)"),
        pytest.param([3, 3, 3, 3, 3, 3, 3] + [0] * 14, 21, "moderate", id="3x7=21 moderate(above 20)"),
        pytest.param([3] * 9 + [1] + [0] * 11, 28, "moderate", id="3x9+1=28 moderate(just below 29)"),
        pytest.param([3] * 9 + [2] + [0] * 11, 29, "severe", id="3x9+2=29 severe(at 29)"),
        pytest.param([3] * 10 + [0] * 11, 30, "severe", id="3x10=30 severe(above 29)"),
    ],
)
def test_band_boundaries(answers: list[int], total: int, band: str) -> None:
    result = run("bdi2", numbered(answers))
    assert value_of(result, "total") == total
    assert result.scores["total"].band == band


@pytest.mark.parametrize("missing", [str(n) for n in ALL_ITEMS])
def test_any_missing_item_makes_the_total_null(missing: str) -> None:
    result = run("bdi2", without(ALL_ONES, missing))
    assert value_of(result, "total") is None
    assert result.scores["total"].band is None
    assert result.complete is False
    assert result.missing_items == (missing,)


def test_missing_item9_raises_item9_missing() -> None:
    result = run("bdi2", without(every(ALL_ITEMS, 0), "9"))
    assert result.flags == ("item9_missing",)


@pytest.mark.parametrize(("item9", "flags"), [(0, ()), (1, ("item9_positive",)), (3, ("item9_positive",))])
def test_item9_flag_whatever_the_total(item9: int, flags: tuple[str, ...]) -> None:
    # Every other item 0: the total equals item 9 (≤ 3, minimal).
    result = run("bdi2", {**every(ALL_ITEMS, 0), "9": item9})
    assert value_of(result, "total") == item9
    assert result.scores["total"].band == "minimal"
    assert result.flags == flags


def test_declared_total() -> None:
    # 21 × 1 = 21.
    assert run("bdi2", ALL_ONES, declared_total=21).warnings == ()
    (warning,) = run("bdi2", ALL_ONES, declared_total=20).warnings
    assert warning.details == {"declared": 20, "computed": 21, "score": "total"}


@pytest.mark.parametrize("bad", [4, -1, True, False, "3", 2.0])
def test_answers_must_be_option_values_of_the_right_type(bad: Any) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("bdi2", {**every(ALL_ITEMS, 0), "1": bad})
    assert [error.item for error in caught.value.errors] == ["1"]


@pytest.mark.parametrize("number", ["0", "22"])
def test_item_numbers_outside_the_instrument_are_errors(number: str) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("bdi2", {**every(ALL_ITEMS, 0), number: 0})
    assert [error.item for error in caught.value.errors] == [number]
