"""Mapping third-party Questionnaires onto our instruments: by item code, the known-forms list, or explicit mapping."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.fhir import codes
from app.fhir.errors import FhirError
from app.fhir.form_mapping import compile_form
from app.instruments.registry import InstrumentRegistry, load_registry
from tests.conftest import SCALES_DIR
from tests.fhir.conftest import (
    LFORMS_ARGONAUT,
    LFORMS_CALCULATED,
    MII_QUESTIONNAIRE,
    SDC_QUESTIONNAIRE,
    STANFORD_GAD7,
    US_CORE_QUESTIONNAIRE,
    fixture,
)

# PHQ-9 item LOINC codes in item order (fhir-interop.md §1): 1 44250-9 … 9 44260-8; item 10 (difficulty) 69722-7.
PHQ9_LOINC = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]


@pytest.fixture(scope="module")
def registry() -> InstrumentRegistry:
    return load_registry(SCALES_DIR)


def item_numbers(registry: InstrumentRegistry, form: dict[str, Any]) -> dict[str, str]:
    compiled = compile_form(form, registry)
    return {link_id: mapped.item for link_id, mapped in compiled.form.items.items()}


def test_us_core_maps_by_loinc_item_codes_and_its_total_is_a_declared_total(registry: InstrumentRegistry) -> None:
    compiled = compile_form(fixture(US_CORE_QUESTIONNAIRE), registry)

    assert compiled.form.instrument == "phq9"
    expected = {f"/{code}": str(number) for number, code in enumerate(PHQ9_LOINC, start=1)} | {"/69722-7": "10"}
    assert {link_id: mapped.item for link_id, mapped in compiled.form.items.items()} == expected
    assert compiled.form.totals == ("/44261-6",)
    # Each option's ordinalValue (0–3) agrees with the LA code's PHQ-9 score: LA6568-5 0 … LA6571-9 3.
    assert [(key.code, key.value) for key in compiled.form.items["/44250-9"].answers] == [
        ("LA6568-5", 0),
        ("LA6569-3", 1),
        ("LA6570-1", 2),
        ("LA6571-9", 3),
    ]
    # Item 10's answers carry no weight and map by their LOINC codes, out of numeric order (LA6575-0 is 2).
    assert [(key.code, key.value) for key in compiled.form.items["/69722-7"].answers] == [
        ("LA6572-7", 0),
        ("LA6573-5", 1),
        ("LA6575-0", 2),
        ("LA6574-3", 3),
    ]


def test_the_mii_form_maps_by_item_codes_and_its_external_answer_list_by_loinc(registry: InstrumentRegistry) -> None:
    compiled = compile_form(fixture(MII_QUESTIONNAIRE), registry)

    assert {link_id: mapped.item for link_id, mapped in compiled.form.items.items()} == {
        f"PHQ-9.{number}": str(number) for number in range(1, 11)
    }
    assert compiled.form.totals == ("PHQ-9.Score",)
    assert compiled.form.ignored == ("PHQ-9.Description",)
    # Its answerValueSet is a separate resource, so each of the 10 items warns that answers match by LOINC code.
    assert len(compiled.warnings) == 10


def test_the_mii_answer_value_set_weights_agree_with_our_phq9_scores(registry: InstrumentRegistry) -> None:
    value_set = fixture("valueset-phq9-answers-ll358-3-mii-de.json")
    ours = {option.loinc: option.numeric_score for option in registry.get("phq9").option_sets["default"]}

    weights = {
        concept["code"]: extension["valueDecimal"]
        for include in value_set["compose"]["include"]
        for concept in include["concept"]
        for extension in concept.get("extension", [])
        if extension["url"] == codes.ORDINAL_VALUE
    }

    assert weights == ours == {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA6571-9": 3}


def test_the_sdc_form_without_item_codes_maps_through_the_known_forms_list(registry: InstrumentRegistry) -> None:
    compiled = compile_form(fixture(SDC_QUESTIONNAIRE), registry)

    assert {link_id: mapped.item for link_id, mapped in compiled.form.items.items()} == {
        f"H1/T1/Q{number}": str(number) for number in range(1, 10)
    }
    assert compiled.form.totals == ("H1/TS",)  # coded 44261-6 itself
    # Answers are the local CSPHQ9 codes, weighted by the contained ValueSet's ordinalValue.
    assert [(key.code, key.value) for key in compiled.form.items["H1/T1/Q5"].answers] == [
        ("Not-at-all", 0),
        ("Several-days", 1),
        ("More than half the days", 2),
        ("Nearly every day", 3),
    ]


def test_the_stanford_gad7_maps_item_by_item_through_the_known_forms_list(registry: InstrumentRegistry) -> None:
    compiled = compile_form(fixture(STANFORD_GAD7), registry)

    assert compiled.form.instrument == "gad7"
    assert item_numbers(registry, fixture(STANFORD_GAD7))["8c6a877a-3867-4b36-c097-2b342649cadb"] == "7"
    assert sorted(mapped.item for mapped in compiled.form.items.values()) == ["1", "2", "3", "4", "5", "6", "7"]
    assert compiled.form.totals == ()


@pytest.mark.parametrize("name", [LFORMS_CALCULATED, LFORMS_ARGONAUT])
def test_the_lhc_forms_phq9s_map_by_loinc_codes(registry: InstrumentRegistry, name: str) -> None:
    numbers = item_numbers(registry, fixture(name))

    assert sorted(numbers.values(), key=int) == [str(n) for n in range(1, 11)]


def test_answers_in_a_contained_value_set_expansion_are_read(registry: InstrumentRegistry) -> None:
    compiled = compile_form(fixture(LFORMS_ARGONAUT), registry)

    # g1.q1 answers from the contained ValueSet #PHQ-9 (expansion.contains, ordinalValue 0–3).
    assert [(key.code, key.value) for key in compiled.form.items["g1.q1"].answers] == [
        ("LA6568-5", 0),
        ("LA6569-3", 1),
        ("LA6570-1", 2),
        ("LA6571-9", 3),
    ]
    assert compiled.form.ignored == ("g1", "g1.d", "g1.s", "g2")  # groups and display items


def test_sdc_4_item_weight_counts_like_ordinal_value(registry: InstrumentRegistry) -> None:
    form = copy.deepcopy(fixture(SDC_QUESTIONNAIRE))
    for concept in form["contained"][0]["compose"]["include"][0]["concept"]:
        concept["extension"][0]["url"] = codes.ITEM_WEIGHT

    compiled = compile_form(form, registry)

    assert [key.value for key in compiled.form.items["H1/T1/Q1"].answers] == [0, 1, 2, 3]


def test_a_form_without_codes_is_refused_naming_each_unmapped_item(registry: InstrumentRegistry) -> None:
    form = copy.deepcopy(fixture(SDC_QUESTIONNAIRE))
    form["url"] = "https://clinic.example/Questionnaire/our-phq9"

    with pytest.raises(FhirError) as caught:
        compile_form(form, registry)

    unmapped = [issue for issue in caught.value.issues if issue.code == "not-supported"]
    assert [issue.expression for issue in unmapped] == [(f"Questionnaire.item[0].item[{index}]",) for index in range(9)]
    assert codes.ITEM_MAP_EXTENSION in unmapped[0].diagnostics


def test_the_explicit_mapping_extension_maps_a_form_without_codes(registry: InstrumentRegistry) -> None:
    form = copy.deepcopy(fixture(SDC_QUESTIONNAIRE))
    form["url"] = "https://clinic.example/Questionnaire/our-phq9"
    for number, item in enumerate(form["item"][0]["item"][:9], start=1):
        coding = {"system": codes.ITEM_SYSTEM, "code": f"phq9.{number}"}
        item["extension"] = [{"url": codes.ITEM_MAP_EXTENSION, "valueCoding": coding}]

    assert item_numbers(registry, form) == {f"H1/T1/Q{number}": str(number) for number in range(1, 10)}


def test_a_weight_that_contradicts_the_instruments_scoring_is_refused(registry: InstrumentRegistry) -> None:
    form = copy.deepcopy(fixture(US_CORE_QUESTIONNAIRE))
    option = form["item"][0]["answerOption"][2]  # LA6570-1, which PHQ-9 scores 2
    for extension in option["extension"]:
        if extension["url"] == codes.ORDINAL_VALUE:
            extension["valueDecimal"] = 5

    with pytest.raises(FhirError) as caught:
        compile_form(form, registry)

    [issue] = caught.value.issues
    assert issue.code == "business-rule"
    assert issue.expression == ("Questionnaire.item[0].answerOption[2]",)


def test_a_form_missing_a_scored_item_cannot_be_scored(registry: InstrumentRegistry) -> None:
    form = copy.deepcopy(fixture(US_CORE_QUESTIONNAIRE))
    del form["item"][8]  # /44260-8, PHQ-9 item 9

    with pytest.raises(FhirError) as caught:
        compile_form(form, registry)

    [issue] = caught.value.issues
    assert issue.code == "required"
    assert "item(s) 9" in issue.diagnostics


def test_two_items_asking_the_same_instrument_item_are_refused(registry: InstrumentRegistry) -> None:
    form = copy.deepcopy(fixture(US_CORE_QUESTIONNAIRE))
    form["item"][1]["code"] = form["item"][0]["code"]  # item 2 now claims 44250-9 too

    with pytest.raises(FhirError) as caught:
        compile_form(form, registry)

    assert [issue.code for issue in caught.value.issues] == ["duplicate", "required"]


def test_items_of_two_instruments_are_refused(registry: InstrumentRegistry) -> None:
    form = copy.deepcopy(fixture(US_CORE_QUESTIONNAIRE))
    form["item"][0]["code"] = [{"system": codes.LOINC, "code": "69725-0"}]  # GAD-7 item 1

    with pytest.raises(FhirError) as caught:
        compile_form(form, registry)

    [issue] = caught.value.issues
    assert issue.code == "business-rule"
    assert "gad7, phq9" in issue.diagnostics
