"""The total a form filler computes from our Questionnaires (the SDC ``calculatedExpression`` of the read-only total
item, evaluated with fhirpathpy as LHC-Forms or Smart Forms evaluate it with fhirpath.js) is exactly the server's
score: on random complete responses, and on partial ones (PHQ-9 prorates one or two missing items; every other
instrument has no total once an item is missing)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import fhirpathpy
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from app.auth.permissions import Role
from app.fhir import codes
from app.fhir.form_mapping import compile_form
from app.fhir.instrument_questionnaires import questionnaire
from app.scoring.engine import Answer, score
from tests.conftest import new_clinic
from tests.scoring.support import INSTRUMENT_IDS, definition, registry

WITH_TOTAL = ("bdi2", "fcs_for_others", "fcs_for_self", "fcs_from_others", "gad7", "phq9", "scs", "scs_sf")
"""Every instrument with a single total; FSCRS has four scores and no total, so no total item."""
SETTINGS = settings(max_examples=25, derandomize=True, database=None, deadline=None)
"""fhirpathpy takes about 0.2 s to evaluate the SCS total over a 26-item response."""
DECLARED = {"linkId": "total", "answer": [{"valueDecimal": 99}]}
"""A total the form filler filled in earlier: the expression must not count it."""


@pytest.fixture(scope="module")
def forms() -> dict[str, dict[str, Any]]:
    """Every instrument's Questionnaire as served to a clinic without licensed text of its own (by instrument id);
    ``test_the_served_questionnaires_are_these`` checks that ``GET /fhir/Questionnaire`` serves exactly these."""
    return {
        instrument: json.loads(
            questionnaire(definition(instrument), definition(instrument).model_dump()).model_dump_json()
        )
        for instrument in INSTRUMENT_IDS
    }


def calculated(questionnaire: dict[str, Any]) -> str:
    [total] = [item for item in questionnaire["item"] if item.get("readOnly")]
    [expression] = [e for e in total.get("extension", []) if e["url"] == codes.CALCULATED_EXPRESSION]
    assert expression["valueExpression"]["language"] == "text/fhirpath"
    text: str = expression["valueExpression"]["expression"]
    return text


@cache
def compiled(expression: str) -> Callable[..., list[Any]]:
    return fhirpathpy.compile(expression)


def form_filler_total(questionnaire: dict[str, Any], response: dict[str, Any]) -> list[float]:
    """What a form filler shows in the total item: the expression over the response (``%resource``).

    fhirpathpy hands a non-integer result back as ``Decimal(repr(x))`` of the double ``x`` it computed, so it is
    read back as that double (fhirpath.js, in the browser, keeps the double itself).
    """
    resource = copy.deepcopy(response)  # fhirpathpy annotates what it evaluates
    found = compiled(calculated(questionnaire))(resource, {"resource": resource, "questionnaire": questionnaire})
    return [value if isinstance(value, int) else float(value) for value in found]


def response(questionnaire: dict[str, Any], chosen: dict[str, int]) -> dict[str, Any]:
    """A response choosing, for each linkId, the answer option at that index, coded as the form codes it."""
    items = {item["linkId"]: item for item in questionnaire["item"]}
    answered = [
        {"linkId": link_id, "answer": [{"valueCoding": items[link_id]["answerOption"][index]["valueCoding"]}]}
        for link_id, index in chosen.items()
    ]
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "item": [*answered, DECLARED]}


def server_total(instrument: str, chosen: dict[str, int]) -> float | int | None:
    instrument_definition = definition(instrument)
    items = {item.number: item for item in instrument_definition.items}
    answers: dict[str, Answer] = {
        number: instrument_definition.options_for(items[number])[index].value for number, index in chosen.items()
    }
    assert instrument_definition.primary_score is not None
    return score(instrument_definition, answers).scores[instrument_definition.primary_score].value


def draw_answers(data: st.DataObject, instrument: str) -> dict[str, int]:
    """Every scored item answered (an unscored one, PHQ-9's item 10, sometimes): option indexes by item number."""
    instrument_definition = definition(instrument)
    chosen: dict[str, int] = {}
    for item in instrument_definition.items:
        last = len(instrument_definition.options_for(item)) - 1
        if item.scored or data.draw(st.booleans()):
            chosen[item.number] = data.draw(st.integers(0, last))
    return chosen


@pytest.mark.parametrize("instrument", WITH_TOTAL)
@SETTINGS
@given(data=st.data())
def test_on_a_complete_response_the_calculated_total_is_the_servers_score(
    forms: dict[str, dict[str, Any]], instrument: str, data: st.DataObject
) -> None:
    chosen = draw_answers(data, instrument)

    expected = server_total(instrument, chosen)

    assert expected is not None
    assert form_filler_total(forms[instrument], response(forms[instrument], chosen)) == [expected]


@pytest.mark.parametrize("instrument", WITH_TOTAL)
@SETTINGS
@given(data=st.data())
def test_with_items_missing_the_calculated_total_is_the_servers_prorated_score_or_none(
    forms: dict[str, dict[str, Any]], instrument: str, data: st.DataObject
) -> None:
    chosen = draw_answers(data, instrument)
    scored = [item.number for item in definition(instrument).scored_items]
    dropped = data.draw(st.lists(st.sampled_from(scored), min_size=1, max_size=3, unique=True))
    partial = {number: index for number, index in chosen.items() if number not in dropped}

    expected = server_total(instrument, partial)

    found = form_filler_total(forms[instrument], response(forms[instrument], partial))
    assert found == ([] if expected is None else [expected])


def test_the_served_questionnaires_are_these(
    app: FastAPI, client: TestClient, forms: dict[str, dict[str, Any]]
) -> None:
    clinic = new_clinic(app)
    for instrument in INSTRUMENT_IDS:
        questionnaire_id = codes.questionnaire_id(instrument)
        response = client.get(f"/fhir/Questionnaire/{questionnaire_id}", headers=clinic.headers(Role.CLINICIAN))

        assert response.json() == forms[instrument]


def test_hand_derived_totals(forms: dict[str, dict[str, Any]]) -> None:
    phq9, scs_sf = forms["phq9"], forms["scs_sf"]
    # PHQ-9 as the US Core example answers it: 2+2+2+2+1+1+2+0+0 = 12.
    us_core = dict(zip(map(str, range(1, 10)), [2, 2, 2, 2, 1, 1, 2, 0, 0], strict=True))
    assert form_filler_total(phq9, response(phq9, us_core)) == [12]
    # Items 1-8 "Nearly every day" (3), item 9 unanswered: prorated 24 × 9 / 8 = 27.
    assert form_filler_total(phq9, response(phq9, {str(n): 3 for n in range(1, 9)})) == [27.0]
    # Three items unanswered: no total (the server refuses to score it).
    assert form_filler_total(phq9, response(phq9, {str(n): 3 for n in range(1, 7)})) == []
    # SCS-SF all "Almost never" (1): items 1, 4, 8, 9, 11, 12 reversed to 5: (6 × 5 + 6 × 1) / 12 = 3.
    assert form_filler_total(scs_sf, response(scs_sf, {str(n): 0 for n in range(1, 13)})) == [3.0]


def test_every_instrument_with_a_single_total_has_a_calculated_total_and_fscrs_has_none(
    forms: dict[str, dict[str, Any]],
) -> None:
    assert sorted(instrument for instrument, q in forms.items() if any(i.get("readOnly") for i in q["item"])) == list(
        WITH_TOTAL
    )
    for instrument in WITH_TOTAL:
        assert calculated(forms[instrument]).startswith("iif(")


def test_our_questionnaires_map_onto_their_own_instrument_as_a_registered_copy_would(
    forms: dict[str, dict[str, Any]],
) -> None:
    """The options' ordinalValue is each option's own score (reversal belongs to the total's expression), so the
    form compiler, which refuses a weight that contradicts the instrument's scoring, accepts every served form."""
    for instrument, served in forms.items():
        form = compile_form(served, registry()).form

        assert form.instrument == instrument
        assert {mapped.item for mapped in form.items.values()} == {item.number for item in definition(instrument).items}
