"""Engine behaviour that no shipped instrument exercises, on small hand-made definitions."""

from __future__ import annotations

from typing import Any

import pytest

from app.scoring.definition import InstrumentDefinition
from app.scoring.engine import InvalidAnswers, score


def make(**overrides: Any) -> InstrumentDefinition:
    data: dict[str, Any] = {
        "id": "demo",
        "version": "1.0.0",
        "name": "Demo",
        "short_name": "DEMO",
        "citation": "test",
        "licence": {"summary": "test", "text_shippable": True},
        "option_sets": {"default": [{"value": 0}, {"value": 1}, {"value": 2}]},
        "items": [{"number": "1"}, {"number": "2"}, {"number": "3"}],
        "scores": [
            {
                "key": "a",
                "label": "A",
                "rule": "sum",
                "items": ["1", "2"],
                "minimum": 0,
                "maximum": 4,
                "direction": "lower_is_better",
                "missing": {"policy": "prorate", "max_missing": 1, "source": "test"},
            },
            {
                "key": "b",
                "label": "B",
                "rule": "sum",
                "items": ["2", "3"],
                "minimum": 0,
                "maximum": 4,
                "direction": "lower_is_better",
                "missing": {"policy": "require_all", "source": "test"},
            },
            {
                "key": "a_plus_b",
                "label": "A + B",
                "rule": "sum_of_scores",
                "components": [{"score": "a"}, {"score": "b"}],
                "minimum": 0,
                "maximum": 8,
                "direction": "lower_is_better",
            },
        ],
    }
    data.update(overrides)
    return InstrumentDefinition.model_validate(data)


def test_a_composite_lists_an_item_missing_from_two_components_once() -> None:
    # Item 2 is in both A and B. A is prorated: 1 × 2 / 1 = 2; B needs all its items, so it is null and so is A + B.
    result = score(make(), {"1": 1, "3": 2})
    assert result.scores["a"].value == 2
    assert result.scores["a"].prorated is True
    assert result.scores["b"].value is None
    assert result.scores["a_plus_b"].value is None
    assert result.scores["a_plus_b"].missing_items == ("2",)


def test_a_composite_of_a_prorated_score_is_marked_prorated() -> None:
    definition = make(
        items=[{"number": "1"}, {"number": "2"}, {"number": "3"}, {"number": "4"}],
        scores=[
            make().scores[0].model_dump(mode="json"),
            {**make().scores[1].model_dump(mode="json"), "items": ["3", "4"]},
            make().scores[2].model_dump(mode="json"),
        ],
    )
    # A = 2 × 2 / 1 = 4 (item 2 missing, prorated); B = 1 + 2 = 3; A + B = 7, prorated because A is.
    result = score(definition, {"1": 2, "3": 1, "4": 2})
    assert result.scores["a_plus_b"].value == 7
    assert result.scores["a_plus_b"].prorated is True
    assert result.scores["a_plus_b"].missing_items == ("2",)


def test_a_flag_without_a_missing_flag_stays_silent_when_its_item_is_missing() -> None:
    definition = make(flags=[{"key": "item3_high", "item": "3", "at_least": 2, "note": "test"}])
    assert score(definition, {"1": 0, "2": 0}).flags == ()
    assert score(definition, {"1": 0, "2": 0, "3": 1}).flags == ()
    assert score(definition, {"1": 0, "2": 0, "3": 2}).flags == ("item3_high",)


def test_an_instrument_without_a_flag_for_the_missing_item_raises_none() -> None:
    assert score(make(), {}).flags == ()


def test_allowed_values_that_are_not_a_run_are_listed() -> None:
    definition = make(option_sets={"default": [{"value": 0}, {"value": 2}, {"value": 4}]})
    with pytest.raises(InvalidAnswers) as caught:
        score(definition, {"1": 1})
    (error,) = caught.value.errors
    assert error.allowed == (0, 2, 4)
    assert "0, 2, 4" in error.message


def test_scoring_is_pure() -> None:
    definition = make()
    answers = {"1": 1, "2": 2, "3": 0}
    # A = 1 + 2 = 3, B = 2 + 0 = 2, A + B = 5.
    first = score(definition, answers)
    assert first == score(definition, answers)
    assert answers == {"1": 1, "2": 2, "3": 0}
    assert [first.scores[key].value for key in ("a", "b", "a_plus_b")] == [3, 2, 5]
