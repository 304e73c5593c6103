"""Our instruments as SDC-style Questionnaires, generated from the same definitions that drive scoring.

Each scored option carries its score as ``ordinalValue``; LOINC codes are used wherever the definition has them
(panel, items, answers, total) and product codes otherwise. Item text and option labels come from the clinic's view
of the definition, so licensed wording appears only where the licence or the clinic's own copy allows it. Its
``meta.versionId`` is a digest of its content (``versioning.content_version``): the definition's version is the
Questionnaire's business ``version``, but the clinic's item text changes the resource too.

What SDC form fillers (LHC-Forms, Smart Forms) need to render and score the form: each question is a radio-button
choice (``questionnaire-itemControl``), and the read-only total item carries a FHIRPath ``calculatedExpression``
giving the server's score (``calculated_totals``) and the ``observationExtract`` flag: the total is what this server
makes an Observation of (``QuestionnaireResponse/$extract`` returns them; the items themselves are not extracted).
"""

from __future__ import annotations

import re
from typing import Any

from fhir.resources.R4B.questionnaire import Questionnaire

from app.fhir import codes
from app.fhir.calculated_totals import total_expression
from app.fhir.content_version import with_content_version
from app.fhir.schemas import AnswerKey, FormMap, MappedItem
from app.instruments.registry import InstrumentRegistry
from app.scoring.definition import InstrumentDefinition, ResponseOption

INSTRUCTIONS_LINK_ID = "instructions"
RADIO_BUTTON = {
    "url": codes.ITEM_CONTROL,
    "valueCodeableConcept": {"coding": [{"system": codes.ITEM_CONTROL_SYSTEM, "code": "radio-button"}]},
}


def questionnaire(definition: InstrumentDefinition, view: dict[str, Any]) -> Questionnaire:
    """The instrument's Questionnaire; ``view`` is ``app.instruments.text.clinic_view`` of the definition."""
    items: list[dict[str, Any]] = []
    if view.get("instructions"):
        items.append({"linkId": INSTRUCTIONS_LINK_ID, "type": "display", "text": view["instructions"]})
    items.extend(_item(definition, item, view["option_sets"][item["option_set"]]) for item in view["items"])
    if definition.primary_score is not None:
        items.append(_total_item(definition))
    licence = definition.licence
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": codes.questionnaire_id(definition.id),
        "url": codes.questionnaire_url(definition.id),
        "version": definition.version,
        "name": re.sub(r"[^A-Za-z0-9]", "", definition.short_name),
        "title": definition.name,
        "status": "active",
        "subjectType": ["Patient"],
        "description": definition.citation,
        "copyright": licence.terms or licence.summary,
        "item": items,
    }
    if definition.loinc_panel:
        resource["code"] = [{"system": codes.LOINC, "code": definition.loinc_panel}]
    return Questionnaire.model_validate(with_content_version(resource))


def _item(definition: InstrumentDefinition, item: dict[str, Any], options: list[dict[str, Any]]) -> dict[str, Any]:
    number = item["number"]
    coding = (
        {"system": codes.LOINC, "code": item["loinc"]}
        if item["loinc"]
        else {"system": codes.ITEM_SYSTEM, "code": codes.item_code(definition.id, number)}
    )
    result: dict[str, Any] = {
        "linkId": number,
        "prefix": f"{number}.",
        "code": [coding],
        "type": "choice",
        "required": item["scored"],
        "extension": [RADIO_BUTTON],
        "answerOption": [_option(definition.id, item, option) for option in options],
    }
    if item["text"] is not None:
        result["text"] = item["text"]
    return result


def _option(instrument: str, item: dict[str, Any], option: dict[str, Any]) -> dict[str, Any]:
    system, code = _option_code(instrument, item["option_set"], option["loinc"], option["value"])
    coding: dict[str, Any] = {"system": system, "code": code}
    if option["label"] is not None:
        coding["display"] = option["label"]
    answer: dict[str, Any] = {"valueCoding": coding}
    if item["scored"]:
        score = option["score"] if option["score"] is not None else option["value"]
        answer["extension"] = [{"url": codes.ORDINAL_VALUE, "valueDecimal": score}]
    return answer


def _option_code(instrument: str, option_set: str, loinc: str | None, value: int | str) -> tuple[str, str]:
    if loinc:
        return codes.LOINC, loinc
    return codes.answer_system(instrument, option_set), str(value)


def _total_item(definition: InstrumentDefinition) -> dict[str, Any]:
    assert definition.primary_score is not None
    spec = definition.score(definition.primary_score)
    coding = (
        {"system": codes.LOINC, "code": spec.loinc}
        if spec.loinc
        else {"system": codes.SCORE_SYSTEM, "code": codes.score_code(definition.id, spec.key)}
    )
    extensions: list[dict[str, Any]] = []
    expression = total_expression(
        definition, lambda option_set, option: _answer_key(definition.id, option_set, option).code
    )
    if expression is not None:
        extensions.append(
            {
                "url": codes.CALCULATED_EXPRESSION,
                "valueExpression": {
                    "description": f"{spec.label}, as the server scores it",
                    "language": codes.FHIRPATH,
                    "expression": expression,
                },
            }
        )
    extensions.append({"url": codes.OBSERVATION_EXTRACT, "valueBoolean": True})
    return {
        "linkId": spec.key,
        "text": spec.label,
        "code": [coding],
        "type": "decimal",
        "readOnly": True,
        "extension": extensions,
    }


def builtin_definition(registry: InstrumentRegistry, questionnaire_id: str) -> InstrumentDefinition | None:
    """The instrument whose Questionnaire has this id (``scs-sf``; ``scs_sf`` is accepted too)."""
    return registry.definitions.get(codes.instrument_id(questionnaire_id))


def builtin_form(definition: InstrumentDefinition) -> FormMap:
    """How a response to our own Questionnaire maps: linkIds are the item numbers."""
    return FormMap(
        instrument=definition.id,
        items={
            item.number: MappedItem(
                link_id=item.number,
                item=item.number,
                answers=tuple(
                    _answer_key(definition.id, item.option_set, option) for option in definition.options_for(item)
                ),
            )
            for item in definition.items
        },
        totals=(definition.primary_score,) if definition.primary_score else (),
        ignored=(INSTRUCTIONS_LINK_ID,),
    )


def _answer_key(instrument: str, option_set: str, option: ResponseOption) -> AnswerKey:
    system, code = _option_code(instrument, option_set, option.loinc, option.value)
    return AnswerKey(system=system, code=code, value=option.value)
