"""FSCRS against scoring-decisions.md "FSCRS" and instruments-sources.md §7.3."""

from __future__ import annotations

from typing import Any

import pytest

from app.scoring.engine import InvalidAnswers
from tests.scoring.support import every, numbered, run, value_of, without

INADEQUATE_SELF = (1, 2, 4, 6, 7, 14, 17, 18, 20)
HATED_SELF = (9, 10, 12, 15, 22)
REASSURED_SELF = (3, 5, 8, 11, 13, 16, 19, 21)
ALL_ITEMS = range(1, 23)
KEYS = ("inadequate_self", "hated_self", "reassured_self", "self_criticism")


def scores(answers: dict[str, Any]) -> tuple[float | int | None, ...]:
    result = run("fscrs", answers)
    return tuple(value_of(result, key) for key in KEYS)


def test_worked_example() -> None:
    # Item i answered (i mod 5): items 1-22 = 1 2 3 4 0 1 2 3 4 0 1 2 3 4 0 1 2 3 4 0 1 2.
    result = run("fscrs", numbered([1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2]))
    # IS items 1, 2, 4, 6, 7, 14, 17, 18, 20 = 1 + 2 + 4 + 1 + 2 + 4 + 2 + 3 + 0 = 19
    # HS items 9, 10, 12, 15, 22 = 4 + 0 + 2 + 0 + 2 = 8
    # RS items 3, 5, 8, 11, 13, 16, 19, 21 = 3 + 0 + 3 + 1 + 3 + 1 + 4 + 1 = 16
    # self_criticism = IS + HS = 19 + 8 = 27; item 9 = 4 ≥ 1 → item9_endorsed.
    assert value_of(result, "inadequate_self") == 19
    assert value_of(result, "hated_self") == 8
    assert value_of(result, "reassured_self") == 16
    assert value_of(result, "self_criticism") == 27
    assert result.flags == ("item9_endorsed",)
    assert result.complete is True
    assert all(value.band is None for value in result.scores.values())


def test_best_possible_response() -> None:
    # IS and HS items 0, RS items 4: IS 0, HS 0, RS 8 × 4 = 32, self-criticism 0; item 9 = 0, no flag.
    answers = {**every(INADEQUATE_SELF + HATED_SELF, 0), **every(REASSURED_SELF, 4)}
    assert scores(answers) == (0, 0, 32, 0)
    assert run("fscrs", answers).flags == ()


def test_worst_possible_response() -> None:
    # IS 9 × 4 = 36, HS 5 × 4 = 20, RS 0, self-criticism 36 + 20 = 56.
    answers = {**every(INADEQUATE_SELF + HATED_SELF, 4), **every(REASSURED_SELF, 0)}
    assert scores(answers) == (36, 20, 0, 56)
    assert run("fscrs", answers).flags == ("item9_endorsed",)


def test_all_fours_reach_every_maximum() -> None:
    # 9 × 4 = 36, 5 × 4 = 20, 8 × 4 = 32, 36 + 20 = 56.
    assert scores(every(ALL_ITEMS, 4)) == (36, 20, 32, 56)


@pytest.mark.parametrize(
    ("item", "expected"),
    [pytest.param(n, (19, 10, 16, 29), id=f"IS-item{n}") for n in INADEQUATE_SELF]
    + [pytest.param(n, (18, 11, 16, 29), id=f"HS-item{n}") for n in HATED_SELF]
    + [pytest.param(n, (18, 10, 17, 28), id=f"RS-item{n}") for n in REASSURED_SELF],
)
def test_each_item_moves_only_its_own_subscale_by_one(item: int, expected: tuple[int, ...]) -> None:
    # From all 2: IS 9 × 2 = 18, HS 5 × 2 = 10, RS 8 × 2 = 16, self-criticism 28. Raising one item to 3 adds 1 to
    # its subscale (and to self-criticism for IS and HS items); no item is reversed.
    assert scores({**every(ALL_ITEMS, 2), str(item): 3}) == expected


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        pytest.param("1", (None, 10, 16, None), id="IS-item-missing"),
        pytest.param("10", (18, None, 16, None), id="HS-item-missing"),
        pytest.param("3", (18, 10, None, 28), id="RS-item-missing"),
    ],
)
def test_all_items_of_a_score_are_required(missing: str, expected: tuple[int | None, ...]) -> None:
    # All answered 2 except one: only the scores containing that item become null.
    result = run("fscrs", without(every(ALL_ITEMS, 2), missing))
    assert tuple(value_of(result, key) for key in KEYS) == expected
    assert result.complete is False
    assert result.missing_items == (missing,)


def test_self_criticism_lists_the_missing_items_of_its_components() -> None:
    result = run("fscrs", without(every(ALL_ITEMS, 2), "1", "10"))
    assert result.scores["self_criticism"].missing_items == ("1", "10")
    assert result.scores["self_criticism"].value is None


def test_missing_item9_raises_item9_missing() -> None:
    result = run("fscrs", {**every(ALL_ITEMS, 0), "9": None})
    assert result.flags == ("item9_missing",)
    # Item 9 is a hated-self item: HS and self-criticism are null; IS 0 and RS 0 stand.
    assert tuple(value_of(result, key) for key in KEYS) == (0, None, 0, None)


@pytest.mark.parametrize(("item9", "flags"), [(0, ()), (1, ("item9_endorsed",)), (4, ("item9_endorsed",))])
def test_item9_flag(item9: int, flags: tuple[str, ...]) -> None:
    assert run("fscrs", {**every(ALL_ITEMS, 0), "9": item9}).flags == flags


def test_a_declared_total_is_stored_but_never_compared() -> None:
    # The FSCRS has no single total (primary_score is null).
    (warning,) = run("fscrs", every(ALL_ITEMS, 1), declared_total=22).warnings
    assert warning.code == "declared_total_not_comparable"
    assert warning.details == {"declared": 22}


@pytest.mark.parametrize("bad", [5, -1, True, "2", 2.0])
def test_answers_must_be_option_values_of_the_right_type(bad: Any) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("fscrs", {**every(ALL_ITEMS, 0), "9": bad})
    assert [error.item for error in caught.value.errors] == ["9"]


@pytest.mark.parametrize("number", ["0", "23"])
def test_item_numbers_outside_the_instrument_are_errors(number: str) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        run("fscrs", {**every(ALL_ITEMS, 0), number: 0})
    assert [error.item for error in caught.value.errors] == [number]
