"""Properties that hold for every shipped instrument, whatever the answers (Hypothesis).

Generated answers are drawn from each item's own options, with any item possibly left out or null.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.scoring.definition import InstrumentDefinition, Rule, Score
from app.scoring.engine import Answer, score
from tests.scoring.support import INSTRUMENT_IDS, definition

SETTINGS = settings(max_examples=100, derandomize=True, database=None, deadline=None)


@st.composite
def answer_sets(draw: st.DrawFn, defn: InstrumentDefinition, *, allow_missing: bool = True) -> dict[str, Answer]:
    """An answer to every item of ``defn`` from its own options; with ``allow_missing``, some left absent or null."""
    answers: dict[str, Answer] = {
        item.number: draw(st.sampled_from([option.value for option in defn.options_for(item)])) for item in defn.items
    }
    if allow_missing:
        for number in draw(st.sets(st.sampled_from([item.number for item in defn.items]))):
            if draw(st.booleans()):
                del answers[number]
            else:
                answers[number] = None
    return answers


def item_sign(defn: InstrumentDefinition, spec: Score, number: str) -> set[int]:
    """How raising ``number`` can move ``spec``: {+1} up, {-1} down, {} not at all (through composites too)."""
    if spec.rule in (Rule.SUM, Rule.MEAN):
        if number not in spec.items:
            return set()
        return {-1} if number in spec.reverse_items else {+1}
    signs: set[int] = set()
    for component in spec.components:
        inner = item_sign(defn, defn.score(component.score), number)
        signs |= {-sign for sign in inner} if component.reverse else inner
    return signs


@pytest.mark.parametrize("instrument_id", INSTRUMENT_IDS)
@SETTINGS
@given(data=st.data())
def test_every_score_stays_within_its_range_and_gets_a_band(instrument_id: str, data: st.DataObject) -> None:
    defn = definition(instrument_id)
    result = score(defn, data.draw(answer_sets(defn)))
    for spec in defn.scores:
        value = result.scores[spec.key]
        if value.value is None:
            assert value.band is None
            continue
        assert spec.minimum <= value.value <= spec.maximum, spec.key
        # The first band starts at the minimum, so every computed value has a band when the score has bands.
        assert (value.band is not None) is bool(spec.bands), spec.key


@pytest.mark.parametrize("instrument_id", INSTRUMENT_IDS)
@SETTINGS
@given(data=st.data())
def test_complete_iff_no_scored_item_is_missing(instrument_id: str, data: st.DataObject) -> None:
    defn = definition(instrument_id)
    answers = data.draw(answer_sets(defn))
    result = score(defn, answers)
    unanswered = tuple(item.number for item in defn.scored_items if answers.get(item.number) is None)
    assert result.missing_items == unanswered
    assert result.complete is (not unanswered)
    assert set(result.item_scores) == {item.number for item in defn.scored_items} - set(unanswered)
    if result.complete:
        assert all(value.value is not None for value in result.scores.values())
        assert not any(value.prorated for value in result.scores.values())


@pytest.mark.parametrize("instrument_id", INSTRUMENT_IDS)
@SETTINGS
@given(data=st.data())
def test_raising_an_answer_moves_scores_only_in_the_keyed_direction(instrument_id: str, data: st.DataObject) -> None:
    defn = definition(instrument_id)
    answers = data.draw(answer_sets(defn))
    candidates = [item for item in defn.scored_items if answers.get(item.number) is not None]
    assume(candidates)
    item = data.draw(st.sampled_from(candidates))
    options = defn.options_for(item)
    current = next(option.numeric_score for option in options if option.value == answers[item.number])
    higher = [option.value for option in options if option.numeric_score > current]
    assume(higher)
    raised = {**answers, item.number: data.draw(st.sampled_from(higher))}

    before, after = score(defn, answers), score(defn, raised)
    for spec in defn.scores:
        old, new = before.scores[spec.key].value, after.scores[spec.key].value
        assert (old is None) == (new is None), spec.key
        if old is None or new is None:
            continue
        signs = item_sign(defn, spec, item.number)
        if signs == {+1}:
            assert new > old, spec.key
        elif signs == {-1}:
            assert new < old, spec.key
        else:
            assert signs == set()
            assert new == old, spec.key


@pytest.mark.parametrize("instrument_id", ["scs", "scs_sf"])
@SETTINGS
@given(data=st.data())
def test_mirrored_answers_mirror_every_score(instrument_id: str, data: st.DataObject) -> None:
    # Answering 6 − x instead of x on every item maps each 1-5 score s to 6 − s (the total t to 6 − t).
    defn = definition(instrument_id)
    answers = data.draw(answer_sets(defn, allow_missing=False))
    mirrored = {number: 6 - value for number, value in answers.items() if isinstance(value, int)}
    original, flipped = score(defn, answers), score(defn, mirrored)
    for key, value in original.scores.items():
        assert value.value is not None
        assert flipped.scores[key].value == pytest.approx(6 - value.value), key


PHQ9_ITEMS = [str(n) for n in range(1, 10)]


@SETTINGS
@given(data=st.data())
def test_phq9_prorating(data: st.DataObject) -> None:
    defn = definition("phq9")
    answers = data.draw(answer_sets(defn))
    answered = [value for number, value in answers.items() if number in PHQ9_ITEMS and isinstance(value, int)]
    missing = 9 - len(answered)
    total = score(defn, answers).scores["total"]

    assert total.prorated is (1 <= missing <= 2)
    if missing == 0:
        assert total.value == sum(answered)
    elif missing <= 2:
        assert total.value == pytest.approx(sum(answered) / len(answered) * 9)
    else:
        assert total.value is None


@SETTINGS
@given(k=st.integers(0, 3), missing=st.sets(st.sampled_from(PHQ9_ITEMS), max_size=2))
def test_phq9_all_answers_k_prorate_to_nine_k(k: int, missing: set[str]) -> None:
    answers: dict[str, Answer] = {number: k for number in PHQ9_ITEMS if number not in missing}
    total = score(definition("phq9"), answers).scores["total"]
    assert total.value == 9 * k
    assert total.prorated is bool(missing)


@pytest.mark.parametrize("instrument_id", INSTRUMENT_IDS)
@SETTINGS
@given(data=st.data())
def test_a_declared_total_equal_to_the_computed_one_never_warns(instrument_id: str, data: st.DataObject) -> None:
    defn = definition(instrument_id)
    answers = data.draw(answer_sets(defn))
    result = score(defn, answers)
    if defn.primary_score is None:
        (warning,) = score(defn, answers, declared_total=1).warnings
        assert warning.code == "declared_total_not_comparable"
        return
    computed = result.scores[defn.primary_score].value
    assume(computed is not None)
    assert computed is not None
    assert score(defn, answers, declared_total=computed).warnings == ()
    (warning,) = score(defn, answers, declared_total=computed + 1).warnings
    assert warning.code == "declared_total_mismatch"
