"""SCS (26 items) against scoring-decisions.md "SCS (26)" and instruments-sources.md §1.3-§1.6.

Expected values are worked out by hand. Raw answers are what the client sends (1-5); a negative item's score after
reversal is 6 − raw.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.scoring.engine import InvalidAnswers
from tests.scoring.support import every, numbered, run, value_of, without

# The published coding key (scoring-decisions.md "SCS (26)").
SELF_KINDNESS = (5, 12, 19, 23, 26)
SELF_JUDGMENT = (1, 8, 11, 16, 21)
COMMON_HUMANITY = (3, 7, 10, 15)
ISOLATION = (4, 13, 18, 25)
MINDFULNESS = (9, 14, 17, 22)
OVER_IDENTIFICATION = (2, 6, 20, 24)
POSITIVE = SELF_KINDNESS + COMMON_HUMANITY + MINDFULNESS
NEGATIVE = SELF_JUDGMENT + ISOLATION + OVER_IDENTIFICATION
ALL_ITEMS = range(1, 27)

SUBSCALE_OF = {
    **dict.fromkeys(SELF_KINDNESS, "self_kindness"),
    **dict.fromkeys(SELF_JUDGMENT, "self_judgment"),
    **dict.fromkeys(COMMON_HUMANITY, "common_humanity"),
    **dict.fromkeys(ISOLATION, "isolation"),
    **dict.fromkeys(MINDFULNESS, "mindfulness"),
    **dict.fromkeys(OVER_IDENTIFICATION, "over_identification"),
}
SUBSCALES = (
    "self_kindness",
    "self_judgment",
    "common_humanity",
    "isolation",
    "mindfulness",
    "over_identification",
)


def from_scored(scored: list[int]) -> dict[str, Any]:
    """Raw answers whose scores after reversal are ``scored`` (item order): raw = 6 − score on negative items."""
    assert len(scored) == 26
    return {str(n): (6 - s if n in NEGATIVE else s) for n, s in zip(ALL_ITEMS, scored, strict=True)}


def test_sources_section_1_4_example_separates_the_two_total_keys() -> None:
    # instruments-sources.md §1.4: all 10 SK and SJ items score 5 after reversal (SK raw 5, SJ raw 1) and the other
    # 16 items score 1 after reversal (IS and OI raw 5, CH and MI raw 1).
    answers = {
        **every(SELF_KINDNESS, 5),
        **every(SELF_JUDGMENT, 1),
        **every(ISOLATION, 5),
        **every(OVER_IDENTIFICATION, 5),
        **every(COMMON_HUMANITY, 1),
        **every(MINDFULNESS, 1),
    }
    result = run("scs", answers)

    # total = (10 × 5 + 16 × 1) / 26 = 66 / 26 = 2.538… → moderate (2.5 ≤ 2.538 ≤ 3.5).
    assert value_of(result, "total") == pytest.approx(66 / 26)
    assert value_of(result, "total") == pytest.approx(2.538, abs=5e-4)
    assert result.scores["total"].band == "moderate"
    # total_subscale_mean = (SK 5 + (6 − SJ 1) + CH 1 + (6 − IS 5) + MI 1 + (6 − OI 5)) / 6 = 14 / 6 = 2.333…
    assert value_of(result, "total_subscale_mean") == pytest.approx(14 / 6)
    assert value_of(result, "total_subscale_mean") == pytest.approx(2.333, abs=5e-4)
    # Subscales are unreversed means: SK 5, SJ 1, CH 1, IS 5, MI 1, OI 5.
    assert value_of(result, "self_kindness") == 5
    assert value_of(result, "self_judgment") == 1
    assert value_of(result, "common_humanity") == 1
    assert value_of(result, "isolation") == 5
    assert value_of(result, "mindfulness") == 1
    assert value_of(result, "over_identification") == 5
    # CS = (5 SK × 5 + 4 CH × 1 + 4 MI × 1) / 13 = 33 / 13; UCS (raw) = (5 SJ × 1 + 4 IS × 5 + 4 OI × 5) / 13 = 45 / 13.
    assert value_of(result, "compassionate_self_responding") == pytest.approx(33 / 13)
    assert value_of(result, "uncompassionate_self_responding") == pytest.approx(45 / 13)
    assert result.complete is True
    assert result.flags == ()


def test_worked_example_with_mixed_answers() -> None:
    # Raw answers, items 1-26.
    raw = [2, 4, 3, 4, 3, 5, 2, 3, 4, 3, 2, 4, 5, 3, 4, 2, 3, 4, 4, 3, 1, 2, 3, 4, 5, 3]
    result = run("scs", numbered(raw))
    # SK items 5, 12, 19, 23, 26 = 3, 4, 4, 3, 3 → 17 / 5 = 3.4
    # SJ items 1, 8, 11, 16, 21 = 2, 3, 2, 2, 1 → 10 / 5 = 2.0 (reversed: 4, 3, 4, 4, 5 → 20 / 5 = 4.0)
    # CH items 3, 7, 10, 15 = 3, 2, 3, 4 → 12 / 4 = 3.0
    # IS items 4, 13, 18, 25 = 4, 5, 4, 5 → 18 / 4 = 4.5 (reversed: 2, 1, 2, 1 → 6 / 4 = 1.5)
    # MI items 9, 14, 17, 22 = 4, 3, 3, 2 → 12 / 4 = 3.0
    # OI items 2, 6, 20, 24 = 4, 5, 3, 4 → 16 / 4 = 4.0 (reversed: 2, 1, 3, 2 → 8 / 4 = 2.0)
    assert value_of(result, "self_kindness") == pytest.approx(3.4)
    assert value_of(result, "self_judgment") == pytest.approx(2.0)
    assert value_of(result, "common_humanity") == pytest.approx(3.0)
    assert value_of(result, "isolation") == pytest.approx(4.5)
    assert value_of(result, "mindfulness") == pytest.approx(3.0)
    assert value_of(result, "over_identification") == pytest.approx(4.0)
    # total: item scores after reversal sum to SK 17 + SJ 20 + CH 12 + IS 6 + MI 12 + OI 8 = 75 → 75 / 26 = 2.8846
    assert value_of(result, "total") == pytest.approx(75 / 26)
    assert result.scores["total"].band == "moderate"
    # total_subscale_mean = (3.4 + 4.0 + 3.0 + 1.5 + 3.0 + 2.0) / 6 = 16.9 / 6 = 2.81667
    assert value_of(result, "total_subscale_mean") == pytest.approx(16.9 / 6)
    # CS = (17 + 12 + 12) / 13 = 41 / 13; UCS (raw) = (10 + 18 + 16) / 13 = 44 / 13
    assert value_of(result, "compassionate_self_responding") == pytest.approx(41 / 13)
    assert value_of(result, "uncompassionate_self_responding") == pytest.approx(44 / 13)


def test_best_possible_response() -> None:
    # Positive items raw 5, negative items raw 1: every item scores 5 after reversal.
    result = run("scs", {**every(POSITIVE, 5), **every(NEGATIVE, 1)})
    assert value_of(result, "total") == 5
    assert result.scores["total"].band == "high"
    assert value_of(result, "total_subscale_mean") == 5
    assert [value_of(result, key) for key in SUBSCALES] == [5, 1, 5, 1, 5, 1]
    assert value_of(result, "compassionate_self_responding") == 5
    assert value_of(result, "uncompassionate_self_responding") == 1


def test_worst_possible_response() -> None:
    # Positive items raw 1, negative items raw 5: every item scores 1 after reversal.
    result = run("scs", {**every(POSITIVE, 1), **every(NEGATIVE, 5)})
    assert value_of(result, "total") == 1
    assert result.scores["total"].band == "low"
    assert value_of(result, "total_subscale_mean") == 1
    assert [value_of(result, key) for key in SUBSCALES] == [1, 5, 1, 5, 1, 5]
    assert value_of(result, "compassionate_self_responding") == 1
    assert value_of(result, "uncompassionate_self_responding") == 5


def test_all_threes_score_three_everywhere() -> None:
    # 6 − 3 = 3, so reversal changes nothing: every score is 3.0; total 3.0 → moderate.
    result = run("scs", every(ALL_ITEMS, 3))
    assert {key: value.value for key, value in result.scores.items()} == dict.fromkeys(result.scores, 3)
    assert result.scores["total"].band == "moderate"


# (item, its subscale's size, whether it is reverse-keyed): straight from the coding key.
ITEM_TABLE = [(n, 5 if n in SELF_KINDNESS + SELF_JUDGMENT else 4, n in NEGATIVE) for n in ALL_ITEMS]


@pytest.mark.parametrize(
    ("item", "subscale_size", "negative"),
    [pytest.param(n, size, neg, id=f"item{n}-{'reversed' if neg else 'positive'}") for n, size, neg in ITEM_TABLE],
)
def test_raising_one_item_by_one_moves_each_score_by_the_right_amount(
    item: int, subscale_size: int, negative: bool
) -> None:
    # From all raw 3 (every score 3.0), raise one item to raw 4.
    result = run("scs", {**every(ALL_ITEMS, 3), str(item): 4})

    # total: the item's score after reversal goes 3 → 2 (negative) or 3 → 4 (positive): 77 / 26 or 79 / 26.
    assert value_of(result, "total") == pytest.approx(77 / 26 if negative else 79 / 26)
    # Own subscale (always unreversed): (3 × (n − 1) + 4) / n = 3 + 1 / n; the other subscales stay 3.
    own = SUBSCALE_OF[item]
    assert value_of(result, own) == pytest.approx(3 + 1 / subscale_size)
    assert all(value_of(result, key) == 3 for key in SUBSCALES if key != own)
    # total_subscale_mean: a negative subscale enters as 6 − mean, so it moves by ∓ 1 / (6 × n): ±1/30 or ±1/24.
    step = 1 / (6 * subscale_size)
    assert value_of(result, "total_subscale_mean") == pytest.approx(3 - step if negative else 3 + step)
    # CS / UCS are unreversed means of 13 items: the item's half moves by + 1 / 13, the other half stays 3.
    assert value_of(result, "uncompassionate_self_responding") == pytest.approx(3 + 1 / 13 if negative else 3)
    assert value_of(result, "compassionate_self_responding") == pytest.approx(3 if negative else 3 + 1 / 13)


@pytest.mark.parametrize(
    ("scored", "total", "band"),
    [
        pytest.param([1] * 26, 1.0, "low", id="26x1=26/26=1.0 low(lower bound 1)"),
        pytest.param([2] * 14 + [3] * 12, 64 / 26, "low", id="14x2+12x3=64/26=2.4615 low(below 2.5)"),
        pytest.param([2] * 13 + [3] * 13, 2.5, "moderate", id="13x2+13x3=65/26=2.5 moderate(at 2.5)"),
        pytest.param([2] * 12 + [3] * 14, 66 / 26, "moderate", id="12x2+14x3=66/26=2.5385 moderate(above 2.5)"),
        pytest.param([3] * 14 + [4] * 12, 90 / 26, "moderate", id="14x3+12x4=90/26=3.4615 moderate(below 3.5)"),
        pytest.param([3] * 13 + [4] * 13, 3.5, "moderate", id="13x3+13x4=91/26=3.5 moderate(exactly 3.5)"),
        pytest.param([3] * 12 + [4] * 14, 92 / 26, "high", id="12x3+14x4=92/26=3.5385 high(above 3.5)"),
        pytest.param([5] * 26, 5.0, "high", id="26x5=130/26=5.0 high"),
    ],
)
def test_total_band_boundaries(scored: list[int], total: float, band: str) -> None:
    result = run("scs", from_scored(scored))
    assert value_of(result, "total") == pytest.approx(total)
    assert result.scores["total"].band == band


def test_only_the_total_has_bands() -> None:
    result = run("scs", every(ALL_ITEMS, 3))
    assert {key for key, value in result.scores.items() if value.band is not None} == {"total"}


@pytest.mark.parametrize(
    ("item", "nulled"),
    [
        pytest.param(
            n,
            {
                "total",
                "total_subscale_mean",
                SUBSCALE_OF[n],
                "uncompassionate_self_responding" if n in NEGATIVE else "compassionate_self_responding",
            },
            id=f"item{n}-missing",
        )
        for n in ALL_ITEMS
    ],
)
def test_a_score_is_computed_only_when_all_of_its_items_are_present(item: int, nulled: set[str]) -> None:
    result = run("scs", without(every(ALL_ITEMS, 3), str(item)))

    assert {key for key, value in result.scores.items() if value.value is None} == nulled
    assert all(value.value == 3 for key, value in result.scores.items() if key not in nulled)
    assert all(result.scores[key].missing_items == (str(item),) for key in nulled)
    assert not any(value.prorated for value in result.scores.values())
    assert result.complete is False
    assert result.missing_items == (str(item),)


def test_missing_self_kindness_item_leaves_the_other_subscales() -> None:
    # Item 5 (self-kindness) missing; every other item raw 3.
    result = run("scs", {**every(ALL_ITEMS, 3), "5": None})
    for key in ("self_kindness", "total", "total_subscale_mean", "compassionate_self_responding"):
        assert value_of(result, key) is None, key
    for key in (
        "self_judgment",
        "common_humanity",
        "isolation",
        "mindfulness",
        "over_identification",
        "uncompassionate_self_responding",
    ):
        assert value_of(result, key) == 3, key
    assert result.scores["total"].band is None


def test_declared_total_equal_to_the_mean_gives_no_warning() -> None:
    assert run("scs", every(ALL_ITEMS, 3), declared_total=3.0).warnings == ()


def test_declared_sum_based_total_is_a_mismatch() -> None:
    # A client using the 26-130 sum variant declares 26 × 3 = 78; the computed total is the mean, 3.
    result = run("scs", every(ALL_ITEMS, 3), declared_total=78)
    (warning,) = result.warnings
    assert warning.code == "declared_total_mismatch"
    assert warning.details == {"declared": 78, "computed": 3.0, "score": "total"}


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(0, id="0-below-range"),
        pytest.param(6, id="6-above-range"),
        pytest.param(True, id="True"),
        pytest.param(False, id="False"),
        pytest.param("3", id="string-3"),
        pytest.param(3.0, id="float-3.0"),
    ],
)
def test_answers_must_be_option_values_of_the_right_type(bad: Any) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("scs", {**every(ALL_ITEMS, 3), "7": bad})
    (error,) = caught.value.errors
    assert error.item == "7"
    assert error.allowed == (1, 2, 3, 4, 5)
    assert "1–5" in error.message


@pytest.mark.parametrize("number", ["0", "27"])
def test_item_numbers_outside_the_instrument_are_errors(number: str) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("scs", {**every(ALL_ITEMS, 3), number: 3})
    (error,) = caught.value.errors
    assert error.item == number
    assert '"1" to "26"' in error.message
