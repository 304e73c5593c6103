"""SCS-SF against scoring-decisions.md "SCS-SF" and instruments-sources.md §2.3-§2.5 (Raes item order)."""

from __future__ import annotations

from typing import Any

import pytest

from app.scoring.engine import InvalidAnswers
from tests.scoring.support import every, numbered, run, value_of, without

REVERSED = (1, 4, 8, 9, 11, 12)
ALL_ITEMS = range(1, 13)
SUBSCALE_ITEMS = {
    "self_kindness": (2, 6),
    "self_judgment": (11, 12),
    "common_humanity": (5, 10),
    "isolation": (4, 8),
    "mindfulness": (3, 7),
    "over_identification": (1, 9),
}
SUBSCALE_OF = {item: key for key, items in SUBSCALE_ITEMS.items() for item in items}


def from_scored(scored: list[int]) -> dict[str, Any]:
    """Raw answers whose scores after reversal are ``scored`` (item order): raw = 6 − score on reversed items."""
    assert len(scored) == 12
    return {str(n): (6 - s if n in REVERSED else s) for n, s in zip(ALL_ITEMS, scored, strict=True)}


def test_worked_example() -> None:
    # Raw answers, items 1-12.
    result = run("scs_sf", numbered([2, 4, 3, 2, 5, 4, 3, 1, 2, 4, 1, 2]))
    # After reversing 1, 4, 8, 9, 11, 12 (6 − x): 4, 4, 3, 4, 5, 4, 3, 5, 4, 4, 5, 4 → sum 49 → 49 / 12 = 4.0833.
    assert value_of(result, "total") == pytest.approx(49 / 12)
    assert result.scores["total"].band == "high"
    # Unreversed subscale means: SK (2, 6) = (4 + 4) / 2 = 4; SJ (11, 12) = (1 + 2) / 2 = 1.5;
    # CH (5, 10) = (5 + 4) / 2 = 4.5; IS (4, 8) = (2 + 1) / 2 = 1.5; MI (3, 7) = (3 + 3) / 2 = 3; OI (1, 9) = 2.
    assert value_of(result, "self_kindness") == 4
    assert value_of(result, "self_judgment") == 1.5
    assert value_of(result, "common_humanity") == 4.5
    assert value_of(result, "isolation") == 1.5
    assert value_of(result, "mindfulness") == 3
    assert value_of(result, "over_identification") == 2
    # The grand mean of subscale means on reversed items gives the same total on the short form:
    # (4 + (6 − 1.5) + 4.5 + (6 − 1.5) + 3 + (6 − 2)) / 6 = 24.5 / 6 = 4.0833.
    assert value_of(result, "total") == pytest.approx(24.5 / 6)
    assert result.complete is True
    assert result.flags == ()


def test_the_short_form_has_a_single_total_and_six_subscales() -> None:
    result = run("scs_sf", every(ALL_ITEMS, 3))
    assert tuple(result.scores) == ("total", *SUBSCALE_ITEMS)


def test_best_possible_response() -> None:
    # Reversed items raw 1, the others raw 5: every item scores 5.
    result = run("scs_sf", from_scored([5] * 12))
    assert value_of(result, "total") == 5
    assert result.scores["total"].band == "high"
    assert [value_of(result, key) for key in SUBSCALE_ITEMS] == [5, 1, 5, 1, 5, 1]


def test_worst_possible_response() -> None:
    result = run("scs_sf", from_scored([1] * 12))
    assert value_of(result, "total") == 1
    assert result.scores["total"].band == "low"
    assert [value_of(result, key) for key in SUBSCALE_ITEMS] == [1, 5, 1, 5, 1, 5]


@pytest.mark.parametrize(
    ("item", "reversed_item"),
    [pytest.param(n, n in REVERSED, id=f"item{n}-{'reversed' if n in REVERSED else 'positive'}") for n in ALL_ITEMS],
)
def test_raising_one_item_by_one_moves_the_total_by_one_twelfth(item: int, reversed_item: bool) -> None:
    # From all raw 3 (total 36 / 12 = 3), raise one item to raw 4: its score goes to 2 if reversed (35 / 12),
    # else to 4 (37 / 12). Its own subscale (unreversed) goes to (3 + 4) / 2 = 3.5.
    result = run("scs_sf", {**every(ALL_ITEMS, 3), str(item): 4})
    assert value_of(result, "total") == pytest.approx(35 / 12 if reversed_item else 37 / 12)
    assert value_of(result, SUBSCALE_OF[item]) == 3.5
    assert all(value_of(result, key) == 3 for key in SUBSCALE_ITEMS if key != SUBSCALE_OF[item])


@pytest.mark.parametrize(
    ("scored", "total", "band"),
    [
        pytest.param([1] * 12, 1.0, "low", id="12x1=12/12=1.0 low(lower bound 1)"),
        pytest.param([2] * 7 + [3] * 5, 29 / 12, "low", id="7x2+5x3=29/12=2.4167 low(below 2.5)"),
        pytest.param([2] * 6 + [3] * 6, 2.5, "moderate", id="6x2+6x3=30/12=2.5 moderate(at 2.5)"),
        pytest.param([2] * 5 + [3] * 7, 31 / 12, "moderate", id="5x2+7x3=31/12=2.5833 moderate(above 2.5)"),
        pytest.param([3] * 7 + [4] * 5, 41 / 12, "moderate", id="7x3+5x4=41/12=3.4167 moderate(below 3.5)"),
        pytest.param([3] * 6 + [4] * 6, 3.5, "moderate", id="6x3+6x4=42/12=3.5 moderate(exactly 3.5)"),
        pytest.param([3] * 5 + [4] * 7, 43 / 12, "high", id="5x3+7x4=43/12=3.5833 high(above 3.5)"),
    ],
)
def test_total_band_boundaries(scored: list[int], total: float, band: str) -> None:
    result = run("scs_sf", from_scored(scored))
    assert value_of(result, "total") == pytest.approx(total)
    assert result.scores["total"].band == band


@pytest.mark.parametrize("item", list(ALL_ITEMS))
def test_a_missing_item_nulls_the_total_and_its_subscale_only(item: int) -> None:
    result = run("scs_sf", without(every(ALL_ITEMS, 3), str(item)))
    nulled = {"total", SUBSCALE_OF[item]}
    assert {key for key, value in result.scores.items() if value.value is None} == nulled
    assert all(value.value == 3 for key, value in result.scores.items() if key not in nulled)
    assert result.complete is False
    assert result.missing_items == (str(item),)


def test_declared_total_mismatch() -> None:
    # Blueprint's sum variant: 12 × 3 = 36, against the computed mean 3.0.
    result = run("scs_sf", every(ALL_ITEMS, 3), declared_total=36)
    (warning,) = result.warnings
    assert warning.details == {"declared": 36, "computed": 3.0, "score": "total"}
    assert run("scs_sf", every(ALL_ITEMS, 3), declared_total=3).warnings == ()


@pytest.mark.parametrize("bad", [0, 6, True, "3", 3.0])
def test_answers_must_be_option_values_of_the_right_type(bad: Any) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("scs_sf", {**every(ALL_ITEMS, 3), "12": bad})
    assert [error.item for error in caught.value.errors] == ["12"]


@pytest.mark.parametrize("number", ["0", "13", "26"])
def test_item_numbers_outside_the_instrument_are_errors(number: str) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("scs_sf", {**every(ALL_ITEMS, 3), number: 3})
    assert [error.item for error in caught.value.errors] == [number]
