"""The three Fears of Compassion Scales against scoring-decisions.md "FCS (three scales)".

The FCS is one instrument published as three separately scored scales, so the three definitions share this file.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.scoring.engine import InvalidAnswers
from tests.scoring.support import every, numbered, run, value_of, without

# id → number of items (scoring-decisions.md "Fixed names").
ITEM_COUNTS = {"fcs_for_others": 10, "fcs_from_others": 13, "fcs_for_self": 15}
SCALES = list(ITEM_COUNTS)


@pytest.mark.parametrize(
    ("instrument_id", "answers", "total"),
    [
        pytest.param("fcs_for_others", [0, 1, 2, 3, 4, 0, 1, 2, 3, 4], 20, id="for_others 2x(0+1+2+3+4)=20"),
        pytest.param(
            "fcs_from_others",
            [4, 3, 2, 1, 0, 4, 3, 2, 1, 0, 4, 3, 2],
            29,
            id="from_others 2x(4+3+2+1+0)+4+3+2=29",
        ),
        pytest.param(
            "fcs_for_self",
            [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 4],
            25,
            id="for_self 7x(1+2)+4=25",
        ),
    ],
)
def test_worked_examples(instrument_id: str, answers: list[int], total: int) -> None:
    result = run(instrument_id, numbered(answers))
    assert value_of(result, "total") == total
    assert result.scores["total"].band is None
    assert result.complete is True
    assert result.flags == ()


@pytest.mark.parametrize(
    ("instrument_id", "worst"),
    [
        pytest.param("fcs_for_others", 40, id="for_others 10x4=40"),
        pytest.param("fcs_from_others", 52, id="from_others 13x4=52"),
        pytest.param("fcs_for_self", 60, id="for_self 15x4=60"),
    ],
)
def test_best_and_worst_possible_responses(instrument_id: str, worst: int) -> None:
    items = range(1, ITEM_COUNTS[instrument_id] + 1)
    assert value_of(run(instrument_id, every(items, 0)), "total") == 0
    assert value_of(run(instrument_id, every(items, 4)), "total") == worst


@pytest.mark.parametrize("instrument_id", SCALES)
def test_every_item_counts_once_and_none_is_reversed(instrument_id: str) -> None:
    # From all 2 (total 2n), raising any single item to 3 adds exactly 1.
    n = ITEM_COUNTS[instrument_id]
    for item in range(1, n + 1):
        result = run(instrument_id, {**every(range(1, n + 1), 2), str(item): 3})
        assert value_of(result, "total") == 2 * n + 1, item


@pytest.mark.parametrize("instrument_id", SCALES)
def test_any_missing_item_makes_the_total_null(instrument_id: str) -> None:
    n = ITEM_COUNTS[instrument_id]
    for item in range(1, n + 1):
        result = run(instrument_id, without(every(range(1, n + 1), 2), str(item)))
        assert value_of(result, "total") is None, item
        assert result.scores["total"].prorated is False
        assert result.complete is False
        assert result.missing_items == (str(item),)


@pytest.mark.parametrize("instrument_id", SCALES)
def test_declared_total(instrument_id: str) -> None:
    n = ITEM_COUNTS[instrument_id]
    answers = every(range(1, n + 1), 1)
    # n × 1 = n.
    assert run(instrument_id, answers, declared_total=n).warnings == ()
    (warning,) = run(instrument_id, answers, declared_total=n + 1).warnings
    assert warning.details == {"declared": n + 1, "computed": n, "score": "total"}


@pytest.mark.parametrize("instrument_id", SCALES)
@pytest.mark.parametrize("bad", [5, -1, True, "4", 4.0])
def test_answers_must_be_option_values_of_the_right_type(instrument_id: str, bad: Any) -> None:
    n = ITEM_COUNTS[instrument_id]
    with pytest.raises(InvalidAnswers) as caught:
        run(instrument_id, {**every(range(1, n + 1), 0), "1": bad})
    (error,) = caught.value.errors
    assert error.allowed == (0, 1, 2, 3, 4)
    assert "0–4" in error.message


@pytest.mark.parametrize(
    ("instrument_id", "number"),
    [
        ("fcs_for_others", "0"),
        ("fcs_for_others", "11"),
        ("fcs_from_others", "14"),
        ("fcs_for_self", "16"),
        ("fcs_for_self", "38"),
    ],
)
def test_item_numbers_outside_the_scale_are_errors(instrument_id: str, number: str) -> None:
    n = ITEM_COUNTS[instrument_id]
    with pytest.raises(InvalidAnswers) as caught:
        run(instrument_id, {**every(range(1, n + 1), 0), number: 0})
    assert [error.item for error in caught.value.errors] == [number]
