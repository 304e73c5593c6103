"""Every file in ``scales/`` against scoring-decisions.md, and the load-time validators against bad definitions.

The expected facts below are transcribed by hand from scoring-decisions.md ("Fixed names", "Rules", "Licensed item
text") and instruments-sources.md (LOINC tables §4.5 and §6.3). They are deliberately literal: a reviewer checks this
file against the decisions page, not against the YAML.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from pydantic import ValidationError

from app.instruments.registry import DefinitionFileError, load_definition, load_registry
from app.scoring.definition import Direction, InstrumentDefinition, MissingPolicy, Rule
from tests.scoring.support import SCALES_DIR, definition

# --- scoring-decisions.md "Fixed names" -------------------------------------------------------------------------

ITEM_COUNTS = {
    "phq9": 10,
    "gad7": 7,
    "scs": 26,
    "scs_sf": 12,
    "fcs_for_others": 10,
    "fcs_from_others": 13,
    "fcs_for_self": 15,
    "fscrs": 22,
    "bdi2": 21,
}
UNSCORED_ITEMS = {"phq9": {"10"}}
RESPONSE_VALUES = {
    "phq9": (0, 1, 2, 3),
    "gad7": (0, 1, 2, 3),
    "scs": (1, 2, 3, 4, 5),
    "scs_sf": (1, 2, 3, 4, 5),
    "fcs_for_others": (0, 1, 2, 3, 4),
    "fcs_from_others": (0, 1, 2, 3, 4),
    "fcs_for_self": (0, 1, 2, 3, 4),
    "fscrs": (0, 1, 2, 3, 4),
    "bdi2": (0, 1, 2, 3),
}
# BDI-II items 16 and 18: 0-3 "also take" 1a, 1b, 2a, 2b, 3a, 3b, each scored by its number.
BDI2_LETTER_ITEMS = {"16", "18"}
BDI2_LETTER_OPTIONS = ((0, 0), (1, 1), (2, 2), (3, 3), ("1a", 1), ("1b", 1), ("2a", 2), ("2b", 2), ("3a", 3), ("3b", 3))
PHQ9_DIFFICULTY_VALUES = (0, 1, 2, 3)

SCORE_KEYS = {
    "phq9": ("total",),
    "gad7": ("total",),
    # The key table's order, except that total_subscale_mean follows the six subscales it is computed from.
    "scs": (
        "total",
        "self_kindness",
        "self_judgment",
        "common_humanity",
        "isolation",
        "mindfulness",
        "over_identification",
        "total_subscale_mean",
        "compassionate_self_responding",
        "uncompassionate_self_responding",
    ),
    "scs_sf": (
        "total",
        "self_kindness",
        "self_judgment",
        "common_humanity",
        "isolation",
        "mindfulness",
        "over_identification",
    ),
    "fcs_for_others": ("total",),
    "fcs_from_others": ("total",),
    "fcs_for_self": ("total",),
    "fscrs": ("inadequate_self", "hated_self", "reassured_self", "self_criticism"),
    "bdi2": ("total",),
}

# --- scoring-decisions.md "Rules" ----------------------------------------------------------------------------------

LOWER = Direction.LOWER_IS_BETTER  # "lower-is-better", and also "higher-is-worse"
HIGHER = Direction.HIGHER_IS_BETTER


def numbers(*values: int) -> frozenset[str]:
    return frozenset(str(value) for value in values)


def one_to(n: int) -> frozenset[str]:
    return numbers(*range(1, n + 1))


class ItemScore(NamedTuple):
    rule: Rule
    items: frozenset[str]
    reverse: frozenset[str]
    minimum: float
    maximum: float
    direction: Direction


class CompositeScore(NamedTuple):
    rule: Rule
    components: tuple[tuple[str, bool], ...]
    minimum: float
    maximum: float
    direction: Direction


SCS_NEGATIVE = numbers(1, 8, 11, 16, 21, 4, 13, 18, 25, 2, 6, 20, 24)
SCS_POSITIVE = numbers(5, 12, 19, 23, 26, 3, 7, 10, 15, 9, 14, 17, 22)
NONE: frozenset[str] = frozenset()

SCORES: dict[tuple[str, str], ItemScore | CompositeScore] = {
    ("phq9", "total"): ItemScore(Rule.SUM, one_to(9), NONE, 0, 27, LOWER),
    ("gad7", "total"): ItemScore(Rule.SUM, one_to(7), NONE, 0, 21, LOWER),
    ("scs", "total"): ItemScore(Rule.MEAN, one_to(26), SCS_NEGATIVE, 1, 5, HIGHER),
    ("scs", "self_kindness"): ItemScore(Rule.MEAN, numbers(5, 12, 19, 23, 26), NONE, 1, 5, HIGHER),
    ("scs", "self_judgment"): ItemScore(Rule.MEAN, numbers(1, 8, 11, 16, 21), NONE, 1, 5, LOWER),
    ("scs", "common_humanity"): ItemScore(Rule.MEAN, numbers(3, 7, 10, 15), NONE, 1, 5, HIGHER),
    ("scs", "isolation"): ItemScore(Rule.MEAN, numbers(4, 13, 18, 25), NONE, 1, 5, LOWER),
    ("scs", "mindfulness"): ItemScore(Rule.MEAN, numbers(9, 14, 17, 22), NONE, 1, 5, HIGHER),
    ("scs", "over_identification"): ItemScore(Rule.MEAN, numbers(2, 6, 20, 24), NONE, 1, 5, LOWER),
    ("scs", "total_subscale_mean"): CompositeScore(
        Rule.MEAN_OF_SCORES,
        (
            ("self_kindness", False),
            ("self_judgment", True),
            ("common_humanity", False),
            ("isolation", True),
            ("mindfulness", False),
            ("over_identification", True),
        ),
        1,
        5,
        HIGHER,
    ),
    ("scs", "compassionate_self_responding"): ItemScore(Rule.MEAN, SCS_POSITIVE, NONE, 1, 5, HIGHER),
    ("scs", "uncompassionate_self_responding"): ItemScore(Rule.MEAN, SCS_NEGATIVE, NONE, 1, 5, LOWER),
    ("scs_sf", "total"): ItemScore(Rule.MEAN, one_to(12), numbers(1, 4, 8, 9, 11, 12), 1, 5, HIGHER),
    ("scs_sf", "self_kindness"): ItemScore(Rule.MEAN, numbers(2, 6), NONE, 1, 5, HIGHER),
    ("scs_sf", "self_judgment"): ItemScore(Rule.MEAN, numbers(11, 12), NONE, 1, 5, LOWER),
    ("scs_sf", "common_humanity"): ItemScore(Rule.MEAN, numbers(5, 10), NONE, 1, 5, HIGHER),
    ("scs_sf", "isolation"): ItemScore(Rule.MEAN, numbers(4, 8), NONE, 1, 5, LOWER),
    ("scs_sf", "mindfulness"): ItemScore(Rule.MEAN, numbers(3, 7), NONE, 1, 5, HIGHER),
    ("scs_sf", "over_identification"): ItemScore(Rule.MEAN, numbers(1, 9), NONE, 1, 5, LOWER),
    ("fcs_for_others", "total"): ItemScore(Rule.SUM, one_to(10), NONE, 0, 40, LOWER),
    ("fcs_from_others", "total"): ItemScore(Rule.SUM, one_to(13), NONE, 0, 52, LOWER),
    ("fcs_for_self", "total"): ItemScore(Rule.SUM, one_to(15), NONE, 0, 60, LOWER),
    ("fscrs", "inadequate_self"): ItemScore(Rule.SUM, numbers(1, 2, 4, 6, 7, 14, 17, 18, 20), NONE, 0, 36, LOWER),
    ("fscrs", "hated_self"): ItemScore(Rule.SUM, numbers(9, 10, 12, 15, 22), NONE, 0, 20, LOWER),
    ("fscrs", "reassured_self"): ItemScore(Rule.SUM, numbers(3, 5, 8, 11, 13, 16, 19, 21), NONE, 0, 32, HIGHER),
    ("fscrs", "self_criticism"): CompositeScore(
        Rule.SUM_OF_SCORES, (("inadequate_self", False), ("hated_self", False)), 0, 56, LOWER
    ),
    ("bdi2", "total"): ItemScore(Rule.SUM, one_to(21), NONE, 0, 63, LOWER),
}

# (label, lower bound, lower bound inclusive). Scores not listed have no bands.
SCS_BANDS = (("low", 1, True), ("moderate", 2.5, True), ("high", 3.5, False))
BANDS = {
    ("phq9", "total"): (
        ("minimal", 0, True),
        ("mild", 5, True),
        ("moderate", 10, True),
        ("moderately_severe", 15, True),
        ("severe", 20, True),
    ),
    ("gad7", "total"): (("minimal", 0, True), ("mild", 5, True), ("moderate", 10, True), ("severe", 15, True)),
    ("scs", "total"): SCS_BANDS,
    ("scs_sf", "total"): SCS_BANDS,
    ("bdi2", "total"): (("minimal", 0, True), ("mild", 14, True), ("moderate", 20, True), ("severe", 29, True)),
}

# Missing policy of every item-rule score: (policy, max_missing, whether a published rule exists).
MISSING = {
    "phq9": (MissingPolicy.PRORATE, 2, True),
    "gad7": (MissingPolicy.REQUIRE_ALL, 0, False),
    "scs": (MissingPolicy.REQUIRE_ALL, 0, False),
    "scs_sf": (MissingPolicy.REQUIRE_ALL, 0, False),
    "fcs_for_others": (MissingPolicy.REQUIRE_ALL, 0, False),
    "fcs_from_others": (MissingPolicy.REQUIRE_ALL, 0, False),
    "fcs_for_self": (MissingPolicy.REQUIRE_ALL, 0, False),
    "fscrs": (MissingPolicy.REQUIRE_ALL, 0, False),
    "bdi2": (MissingPolicy.REQUIRE_ALL, 0, False),
}

PRIMARY_SCORE = {**dict.fromkeys(ITEM_COUNTS, "total"), "fscrs": None}

# (key, item, at least, flag raised instead when the item is missing).
FLAGS = {
    "phq9": (("item9_positive", "9", 1, "item9_missing"),),
    "bdi2": (("item9_positive", "9", 1, "item9_missing"),),
    "fscrs": (("item9_endorsed", "9", 1, "item9_missing"),),
}

# --- scoring-decisions.md "Licensed item text" -------------------------------------------------------------------

TEXT_SHIPPED = {
    "phq9": True,
    "gad7": True,
    "scs": True,
    "scs_sf": True,
    "fcs_for_others": False,
    "fcs_from_others": False,
    "fcs_for_self": False,
    "fscrs": False,
    "bdi2": False,
}
# Instructions ship only where the text may be shipped and the wording is confirmed (GAD-7 lead-in and SCS-SF
# instructions are UNCONFIRMED).
INSTRUCTIONS_SHIPPED = {"phq9", "scs"}

# --- instruments-sources.md §4.5 and §6.3 --------------------------------------------------------------------------

LOINC = {
    "phq9": {
        "panel": "44249-1",
        "total": "44261-6",
        "items": ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8")
        + ("69722-7",),
        "answers": ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"),
    },
    "gad7": {
        "panel": "69737-5",
        "total": "70274-6",
        "items": ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"),
        "answers": ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"),
    },
}

CITATIONS = {
    "phq9": ("Kroenke", "2001", "J Gen Intern Med"),
    "gad7": ("Spitzer", "2006", "Arch Intern Med"),
    "scs": ("Neff", "2003", "Self and Identity"),
    "scs_sf": ("Raes", "2011", "Clin Psychol Psychother"),
    "fcs_for_others": ("Gilbert", "2011", "Psychol Psychother"),
    "fcs_from_others": ("Gilbert", "2011", "Psychol Psychother"),
    "fcs_for_self": ("Gilbert", "2011", "Psychol Psychother"),
    "fscrs": ("Gilbert", "2004", "Br J Clin Psychol"),
    "bdi2": ("Beck", "1996", "Beck Depression Inventory-II"),
}

IDS = list(ITEM_COUNTS)


def test_scales_holds_exactly_the_nine_instruments() -> None:
    assert sorted(path.stem for path in SCALES_DIR.glob("*.yaml")) == sorted(IDS)
    assert load_registry(SCALES_DIR).ids() == sorted(IDS)


@pytest.mark.parametrize("instrument_id", IDS)
def test_identity_and_provenance(instrument_id: str) -> None:
    defn = definition(instrument_id)
    assert defn.id == instrument_id
    assert defn.version == "1.0.0"
    assert defn.name
    assert defn.short_name
    for fragment in CITATIONS[instrument_id]:
        assert fragment in defn.citation
    assert defn.licence.summary
    assert defn.licence.terms


@pytest.mark.parametrize("instrument_id", IDS)
def test_items_are_numbered_and_scored_as_published(instrument_id: str) -> None:
    defn = definition(instrument_id)
    assert [item.number for item in defn.items] == [str(n) for n in range(1, ITEM_COUNTS[instrument_id] + 1)]
    unscored = {item.number for item in defn.items if not item.scored}
    assert unscored == UNSCORED_ITEMS.get(instrument_id, set())


@pytest.mark.parametrize("instrument_id", IDS)
def test_response_values(instrument_id: str) -> None:
    defn = definition(instrument_id)
    for item in defn.items:
        options = tuple((option.value, option.numeric_score) for option in defn.options_for(item))
        if instrument_id == "bdi2" and item.number in BDI2_LETTER_ITEMS:
            assert options == BDI2_LETTER_OPTIONS, item.number
        elif not item.scored:
            assert options == tuple((value, value) for value in PHQ9_DIFFICULTY_VALUES)
        else:
            assert options == tuple((value, value) for value in RESPONSE_VALUES[instrument_id]), item.number


@pytest.mark.parametrize("instrument_id", IDS)
def test_item_text_ships_only_where_the_licence_allows(instrument_id: str) -> None:
    defn = definition(instrument_id)
    shipped = TEXT_SHIPPED[instrument_id]
    assert defn.licence.text_shippable is shipped
    assert all((item.text is not None) is shipped for item in defn.items)
    if not shipped:
        # Response labels are part of the licensed form too: a clinic uploads them with the item wording.
        assert all(option.label is None for options in defn.option_sets.values() for option in options)
    assert (defn.instructions is not None) is (instrument_id in INSTRUCTIONS_SHIPPED)


@pytest.mark.parametrize("instrument_id", ["scs", "scs_sf"])
def test_scs_labels_only_the_end_points(instrument_id: str) -> None:
    defn = definition(instrument_id)
    labels = {option.value: option.label for option in defn.option_sets["default"]}
    assert labels == {1: "Almost never", 2: None, 3: None, 4: None, 5: "Almost always"}
    if instrument_id == "scs":
        # The online test's labels for 2-4 disagree with the researcher form: the note says so.
        assert any("Occasionally" in note and "DISAGREE" in note for note in defn.notes)


def test_scs_item_7_uses_the_down_and_out_wording() -> None:
    assert definition("scs").items[6].text == (
        "When I'm down and out, I remind myself that there are lots of other people in the world feeling like I am."
    )


@pytest.mark.parametrize("instrument_id", IDS)
def test_score_keys(instrument_id: str) -> None:
    assert tuple(score.key for score in definition(instrument_id).scores) == SCORE_KEYS[instrument_id]


@pytest.mark.parametrize(("instrument_id", "key"), list(SCORES))
def test_score_rules(instrument_id: str, key: str) -> None:
    spec = definition(instrument_id).score(key)
    expected = SCORES[(instrument_id, key)]
    assert spec.rule is expected.rule
    assert (spec.minimum, spec.maximum) == (expected.minimum, expected.maximum)
    assert spec.direction is expected.direction
    if isinstance(expected, ItemScore):
        assert frozenset(spec.items) == expected.items
        assert frozenset(spec.reverse_items) == expected.reverse
        assert spec.components == ()
    else:
        assert tuple((component.score, component.reverse) for component in spec.components) == expected.components
        assert spec.items == ()


def test_every_score_has_an_expected_row() -> None:
    listed = {(defn_id, key) for defn_id in IDS for key in SCORE_KEYS[defn_id]}
    assert listed == set(SCORES)


@pytest.mark.parametrize("instrument_id", IDS)
def test_bands(instrument_id: str) -> None:
    for spec in definition(instrument_id).scores:
        bands = tuple((band.label, band.lower, band.lower_inclusive) for band in spec.bands)
        assert bands == BANDS.get((instrument_id, spec.key), ()), spec.key


@pytest.mark.parametrize("instrument_id", ["scs", "scs_sf"])
def test_scs_bands_are_labelled_a_rough_guide(instrument_id: str) -> None:
    note = definition(instrument_id).score("total").bands_note
    assert note is not None
    assert "rough guide" in note
    assert "not clinical norms" in note


def test_scs_sf_subscales_are_marked_not_recommended() -> None:
    for spec in definition("scs_sf").scores[1:]:
        assert spec.note is not None
        assert spec.note.startswith("Not recommended for interpretation on the short form"), spec.key


@pytest.mark.parametrize("instrument_id", IDS)
def test_missing_item_policy(instrument_id: str) -> None:
    policy, max_missing, published = MISSING[instrument_id]
    for spec in definition(instrument_id).scores:
        if spec.missing is None:
            assert spec.components, spec.key  # composites inherit their components' missing items
            continue
        assert (spec.missing.policy, spec.missing.max_missing) == (policy, max_missing), spec.key
        assert spec.missing.source
        assert spec.missing.source.startswith("No published rule") is not published, spec.key


def test_phq9_missing_rule_cites_its_sources() -> None:
    source = definition("phq9").score("total").missing
    assert source is not None
    assert "NHS Data Dictionary" in source.source
    assert "Arrieta" in source.source


@pytest.mark.parametrize("instrument_id", IDS)
def test_primary_score(instrument_id: str) -> None:
    assert definition(instrument_id).primary_score == PRIMARY_SCORE[instrument_id]


@pytest.mark.parametrize("instrument_id", IDS)
def test_flags(instrument_id: str) -> None:
    flags = tuple((flag.key, flag.item, flag.at_least, flag.missing_flag) for flag in definition(instrument_id).flags)
    assert flags == FLAGS.get(instrument_id, ())


def test_fscrs_flag_is_labelled_a_product_convention() -> None:
    (flag,) = definition("fscrs").flags
    assert "product convention for clinician review" in flag.note
    assert "not a published cut-off" in flag.note


@pytest.mark.parametrize("instrument_id", IDS)
def test_loinc_codes_only_where_sourced(instrument_id: str) -> None:
    defn = definition(instrument_id)
    expected = LOINC.get(instrument_id)
    item_codes = tuple(item.loinc for item in defn.items)
    answer_codes = tuple(option.loinc for option in defn.option_sets["default"])
    if expected is None:
        assert defn.loinc_panel is None
        assert set(item_codes) == {None}
        assert all(spec.loinc is None for spec in defn.scores)
        assert all(option.loinc is None for options in defn.option_sets.values() for option in options)
    else:
        assert defn.loinc_panel == expected["panel"]
        assert defn.score("total").loinc == expected["total"]
        assert item_codes == expected["items"]
        assert answer_codes == expected["answers"]


def test_bdi2_unconfirmed_loinc_is_explained_not_used() -> None:
    defn = definition("bdi2")
    assert defn.score("total").loinc is None
    assert any("89209-1" in note and "UNCONFIRMED" in note for note in defn.notes)


@pytest.mark.parametrize("instrument_id", [i for i in IDS if i != "phq9"])
def test_unconfirmed_facts_are_said_so(instrument_id: str) -> None:
    assert any("UNCONFIRMED" in note for note in definition(instrument_id).notes)


# --- load-time validation ----------------------------------------------------------------------------------------


def valid() -> dict[str, Any]:
    """A small definition that exercises every part of the schema and passes validation."""
    return {
        "id": "demo",
        "version": "1.0.0",
        "name": "Demo instrument",
        "short_name": "DEMO",
        "citation": "Nobody. A demo. 2024.",
        "licence": {"summary": "test only", "text_shippable": True},
        "option_sets": {
            "default": [{"value": 0}, {"value": 1}, {"value": 2}],
            "coded": [{"value": 0}, {"value": "1x", "score": 1}],
        },
        "items": [
            {"number": "1", "text": "one"},
            {"number": "2"},
            {"number": "3", "option_set": "coded"},
            {"number": "4", "scored": False},
        ],
        "scores": [
            {
                "key": "total",
                "label": "Total",
                "rule": "sum",
                "items": ["1", "2", "3"],
                "minimum": 0,
                "maximum": 5,
                "direction": "lower_is_better",
                "bands": [{"label": "low", "lower": 0}, {"label": "high", "lower": 3}],
                "missing": {"policy": "prorate", "max_missing": 1, "source": "test"},
            },
            {
                "key": "part",
                "label": "Part",
                "rule": "mean",
                "items": ["1", "2"],
                "reverse_items": ["2"],
                "minimum": 0,
                "maximum": 2,
                "direction": "higher_is_better",
                "missing": {"policy": "require_all", "source": "test"},
            },
            {
                "key": "both",
                "label": "Both",
                "rule": "sum_of_scores",
                "components": [{"score": "total"}, {"score": "part", "reverse": True}],
                "minimum": 0,
                "maximum": 7,
                "direction": "lower_is_better",
            },
        ],
        "primary_score": "total",
        "flags": [{"key": "item1_high", "item": "1", "at_least": 2, "note": "test"}],
    }


def test_the_valid_base_definition_loads() -> None:
    defn = InstrumentDefinition.model_validate(valid())
    assert [item.number for item in defn.scored_items] == ["1", "2", "3"]
    assert [option.numeric_score for option in defn.options_for(defn.items[2])] == [0, 1]
    assert defn.score("part").reverse_items == ("2",)


DELETE = object()


def mutate(path: str, value: Any) -> dict[str, Any]:
    """A copy of the valid definition with one value replaced; ``path`` is dotted (list indices as numbers)."""
    data = copy.deepcopy(valid())
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is DELETE:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            mutate("option_sets.coded.1", {"value": "1x"}), "needs an explicit score", id="coded-option-without-score"
        ),
        pytest.param(
            mutate("option_sets.default.1", {"value": 1.0}), "Input should be a valid integer", id="float-option-value"
        ),
        pytest.param(
            mutate("option_sets.default.1", {"value": True}), "Input should be a valid integer", id="bool-option-value"
        ),
        pytest.param(mutate("scores.0.items", []), "an item rule needs items", id="item-rule-without-items"),
        pytest.param(
            mutate("scores.0.components", [{"score": "part"}]), "an item rule needs items", id="item-rule-components"
        ),
        pytest.param(mutate("scores.0.missing", DELETE), "an item rule needs items", id="item-rule-no-missing-rule"),
        pytest.param(mutate("scores.2.components", []), "a composite rule needs components", id="composite-empty"),
        pytest.param(mutate("scores.2.items", ["1"]), "a composite rule needs components", id="composite-items"),
        pytest.param(
            mutate("scores.2.reverse_items", ["1"]), "a composite rule needs components", id="composite-reverse-items"
        ),
        pytest.param(mutate("scores.1.reverse_items", ["3"]), "reverse_items must be among", id="reverse-not-in-score"),
        pytest.param(mutate("scores.1.items", ["1", "2", "1"]), "an item is listed twice", id="item-listed-twice"),
        pytest.param(
            mutate("scores.1.missing", {"policy": "prorate", "max_missing": 1, "source": "x"}),
            "prorating is defined for sums only",
            id="prorate-on-a-mean",
        ),
        pytest.param(
            mutate("scores.0.bands", [{"label": "high", "lower": 3}, {"label": "low", "lower": 0}]),
            "strictly increasing",
            id="unordered-bands",
        ),
        pytest.param(
            mutate("scores.0.bands", [{"label": "low", "lower": 0}, {"label": "high", "lower": 0}]),
            "strictly increasing",
            id="duplicate-band-bound",
        ),
        pytest.param(
            mutate("scores.0.bands", [{"label": "low", "lower": 1}]), "first band must start", id="band-above-minimum"
        ),
        pytest.param(mutate("items.1.number", "3"), "numbered 1..n", id="items-not-numbered-1-to-n"),
        pytest.param(
            mutate("items", [{"number": "2"}, {"number": "1"}, {"number": "3"}, {"number": "4"}]),
            "numbered 1..n",
            id="items-out-of-order",
        ),
        pytest.param(mutate("items.0.number", "0"), "String should match pattern", id="item-number-0"),
        pytest.param(mutate("items.0.number", "01"), "String should match pattern", id="item-number-leading-zero"),
        pytest.param(mutate("items.1.option_set", "nope"), "unknown option set 'nope'", id="option-set-unknown"),
        pytest.param(
            mutate("licence.text_shippable", False), "the licence forbids shipping it", id="text-when-not-shippable"
        ),
        pytest.param(mutate("option_sets.coded", []), "empty or repeats a value", id="option-set-empty"),
        pytest.param(
            mutate("option_sets.default.1", {"value": 0}), "empty or repeats a value", id="option-value-repeated"
        ),
        pytest.param(mutate("scores.1.key", "total"), "duplicate score key", id="duplicate-score-key"),
        pytest.param(
            mutate("scores.0.items", ["1", "2", "9"]), "score total names item 9", id="score-names-missing-item"
        ),
        pytest.param(
            mutate("scores.0.items", ["1", "2", "4"]), "score total names item 4", id="score-names-unscored-item"
        ),
        pytest.param(
            mutate("scores.2.components", [{"score": "total"}, {"score": "later"}]),
            "needs later defined before it",
            id="component-unknown",
        ),
        pytest.param(
            {**valid(), "scores": [valid()["scores"][2], *valid()["scores"][:2]]},
            "needs total defined before it",
            id="component-before-definition",
        ),
        pytest.param(mutate("primary_score", "grand"), "primary score grand is not defined", id="primary-undefined"),
        pytest.param(mutate("flags.0.item", "7"), "flag item1_high names unknown item 7", id="flag-unknown-item"),
        pytest.param({**valid(), "colour": "blue"}, "Extra inputs are not permitted", id="unknown-field"),
        pytest.param(mutate("version", "1.0"), "String should match pattern", id="version-not-semver"),
        pytest.param(mutate("scores.0.key", "Total"), "String should match pattern", id="key-not-snake-case"),
        pytest.param(mutate("scores.0.rule", "median"), "Input should be", id="rule-unknown"),
        pytest.param(mutate("scores.0.direction", "higher_is_worse"), "Input should be", id="direction-unknown"),
    ],
)
def test_invalid_definitions_are_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        InstrumentDefinition.model_validate(data)


def test_definitions_are_frozen() -> None:
    defn = definition("phq9")
    with pytest.raises(ValidationError, match="frozen"):
        defn.version = "9.9.9"  # type: ignore[misc]


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_a_file_whose_id_does_not_match_its_name_is_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "other.yaml", valid())
    with pytest.raises(DefinitionFileError, match="id 'demo' does not match the file name"):
        load_definition(path)


def test_a_file_with_a_matching_name_loads(tmp_path: Path) -> None:
    assert load_definition(write_yaml(tmp_path / "demo.yaml", valid())).id == "demo"


def test_an_invalid_definition_file_is_rejected_with_its_name(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "demo.yaml", mutate("scores.1.key", "total"))
    with pytest.raises(DefinitionFileError, match=r"(?s)demo\.yaml: .*duplicate score key"):
        load_definition(path)


def test_a_file_that_is_not_yaml_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(DefinitionFileError, match="demo.yaml"):
        load_definition(path)


def test_an_empty_scales_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DefinitionFileError, match="no instrument definitions found"):
        load_registry(tmp_path)
