"""Structural validation remembers valid QuestionnaireResponse items, and gives exactly the models' verdicts."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from app.fhir import validation
from app.fhir.errors import Issue
from app.fhir.validation import ItemVerdicts, structural_issues
from tests.fhir.conftest import FIXTURES, fixture

PUBLIC_RESPONSES = sorted(path.name for path in FIXTURES.glob("qr-*.json"))


@pytest.fixture(autouse=True)
def fresh_verdicts(monkeypatch: pytest.MonkeyPatch) -> ItemVerdicts:
    verdicts = ItemVerdicts(limit=1_000)
    monkeypatch.setattr(validation, "VALID_ITEMS", verdicts)
    return verdicts


def models_verdict(data: dict[str, Any]) -> list[Issue]:
    """The R4B models on the whole resource, nothing remembered."""
    return validation._models_issues(data, "QuestionnaireResponse")


def variants(valid: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The response, and broken copies: in an item, in a nested answer, beside the items, and in both places."""
    yield valid
    first = valid["item"][0]
    broken_item = copy.deepcopy(valid)
    broken_item["item"][0] = {**first, "colour": "blue"}
    yield broken_item
    no_link = copy.deepcopy(valid)
    no_link["item"][-1] = {key: value for key, value in no_link["item"][-1].items() if key != "linkId"}
    yield no_link
    outside = {**copy.deepcopy(valid), "status": 3, "authored": "yesterday"}
    yield outside
    both = {**copy.deepcopy(broken_item), "subject": "Patient/1"}
    yield both
    null_item = {**copy.deepcopy(valid), "item": [*valid["item"], None]}
    yield null_item
    answers = copy.deepcopy(valid)
    answers["item"][0]["answer"] = [{"valueInteger": 1, "valueString": "one"}]
    yield answers


@pytest.mark.parametrize("name", PUBLIC_RESPONSES)
def test_every_public_response_and_its_broken_copies_get_the_models_verdict_first_and_remembered(name: str) -> None:
    valid = fixture(name)
    assert models_verdict(valid) == [], "the public fixtures are valid responses"
    for _round in ("first seen", "items remembered"):
        for data in variants(valid):
            assert structural_issues(data, "QuestionnaireResponse") == models_verdict(data)


def test_only_items_of_valid_responses_are_remembered(fresh_verdicts: ItemVerdicts) -> None:
    valid = fixture("qr-phq9-uscore.json")
    structural_issues({**valid, "status": 3}, "QuestionnaireResponse")
    assert not fresh_verdicts.contains_all(validation._item_keys(valid["item"]) or [b"?"])
    structural_issues(valid, "QuestionnaireResponse")
    assert fresh_verdicts.contains_all(validation._item_keys(valid["item"]) or [b"?"])


def test_a_remembered_item_is_found_whatever_the_order_of_its_keys() -> None:
    item = {"linkId": "1", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6568-5"}}]}
    reordered = {"answer": item["answer"], "linkId": "1"}
    assert validation._item_keys([item]) == validation._item_keys([reordered])


def test_items_that_cannot_be_written_as_json_are_validated_the_long_way() -> None:
    huge = {"linkId": "1", "answer": [{"valueInteger": 2**70}]}
    assert validation._item_keys([huge]) is None
    assert validation._item_keys([]) is None
    assert validation._item_keys("not a list") is None
    data = {"resourceType": "QuestionnaireResponse", "status": "completed", "item": [huge]}
    assert structural_issues(data, "QuestionnaireResponse") == models_verdict(data)


def test_the_memory_is_bounded_and_starts_afresh_when_full() -> None:
    verdicts = ItemVerdicts(limit=3)
    verdicts.add([b"a", b"b"])
    verdicts.add([b"c"])
    assert verdicts.contains_all([b"a", b"b", b"c"])
    verdicts.add([b"d", b"e"])
    assert verdicts.contains_all([b"d", b"e"])
    assert not verdicts.contains_all([b"a"])
