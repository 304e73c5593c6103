"""Read a QuestionnaireResponse against its form: flatten groups, map items, match answers, pick the declared total.

Everything is checked on the JSON as received (the R4B models coerce ``"3"`` to 3, so JSON types are checked here),
and every problem becomes its own issue with a FHIRPath, so one reply lists all of them.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.core.datetimes import clinical_time_problem
from app.fhir.errors import Issue, MalformedResource, ReferenceNotFound, UnprocessableResource
from app.fhir.schemas import FormMap, MappedItem
from app.scoring.engine import Answer

ROOT = "QuestionnaireResponse"
SCORED_STATUSES = ("completed", "amended")
NUMBER_TYPES = (int, float)


@dataclass(frozen=True)
class ResponseAnswers:
    """What a response says, in the instrument's terms."""

    items: dict[str, Answer]
    declared_total: float | None


@dataclass
class _Reader:
    form: FormMap
    items: dict[str, Answer] = field(default_factory=dict)
    declared_total: float | None = None
    answered_by: dict[str, str] = field(default_factory=dict)
    type_errors: list[Issue] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def read_answers(qr: dict[str, Any], form: FormMap) -> ResponseAnswers:
    """The instrument answers of a response, or 400 (JSON types) / 422 (meaning) listing every problem."""
    reader = _Reader(form)
    _read_items(reader, qr.get("item"), ROOT)
    if reader.type_errors:
        raise MalformedResource(
            f"{len(reader.type_errors)} answer(s) of the wrong JSON type", issues=reader.type_errors
        )
    if reader.issues:
        raise UnprocessableResource(
            f"{len(reader.issues)} problem(s) with the answers; nothing was stored", issues=reader.issues
        )
    return ResponseAnswers(items=reader.items, declared_total=reader.declared_total)


def _read_items(reader: _Reader, items: Any, parent: str) -> None:
    """Every item, at any depth (groups, and items nested under answers), in document order.

    An item's FHIRPath is written only for an issue or for the items under it: a Bundle reads thousands of items.
    """
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        _read_item(reader, item, parent, index)
        nested = item.get("item")
        answers = item.get("answer") or []
        if nested is None and not any(isinstance(answer, dict) and "item" in answer for answer in answers):
            continue
        path = _item_path(parent, index)
        _read_items(reader, nested, path)
        for answer_index, answer in enumerate(answers):
            if isinstance(answer, dict):
                _read_items(reader, answer.get("item"), f"{path}.answer[{answer_index}]")


def _item_path(parent: str, index: int) -> str:
    return f"{parent}.item[{index}]"


def _read_item(reader: _Reader, item: dict[str, Any], parent: str, index: int) -> None:
    link_id = str(item.get("linkId"))
    answers = [answer for answer in item.get("answer") or [] if isinstance(answer, dict)]
    form = reader.form
    if link_id in form.totals:
        if answers:
            path = f"{_item_path(parent, index)}.answer[0]"
            reader.declared_total = _declared_total(reader, answers[0], path)
        return
    mapped = form.items.get(link_id)
    if mapped is None:
        if link_id not in form.ignored:
            path = _item_path(parent, index)
            reader.issues.append(
                Issue("invalid", f"linkId {link_id!r} is not in the Questionnaire", (f"{path}.linkId",))
            )
        return
    if not answers:
        return
    if len(answers) > 1:
        path = _item_path(parent, index)
        reader.issues.append(Issue("invalid", f"item {link_id!r} takes one answer, got {len(answers)}", (path,)))
        return
    if mapped.item in reader.answered_by:
        path = _item_path(parent, index)
        reader.issues.append(Issue("duplicate", f"item {link_id!r} is answered twice", (f"{path}.linkId",)))
        return
    value = _answer_value(reader, mapped, answers[0], parent, index)
    if value is not None:
        reader.answered_by[mapped.item] = link_id
        reader.items[mapped.item] = value


def _answer_value(
    reader: _Reader, mapped: MappedItem, answer: dict[str, Any], parent: str, index: int
) -> Answer | None:
    kinds = [key for key in answer if key.startswith("value")]
    if len(kinds) != 1:
        path = f"{_item_path(parent, index)}.answer[0]"
        reader.issues.append(Issue("invalid", f"answer to {mapped.link_id!r} needs exactly one value[x]", (path,)))
        return None
    kind = kinds[0]
    value = answer[kind]
    if kind == "valueCoding":
        system = value.get("system") if isinstance(value, dict) else None
        code = value.get("code") if isinstance(value, dict) else None
        if isinstance(code, str) and (system is None or isinstance(system, str)):
            pairs = mapped.codings.get(code, ())
            values = {
                found for key_system, found in pairs if key_system is None or system is None or key_system == system
            }
            if len(values) == 1:
                return values.pop()
            shown = f"{system}|{code}" if system else code
            _unmatched(reader, mapped, values, shown, _answer_path(parent, index, kind))
            return None
        path = _answer_path(parent, index, kind)
        reader.type_errors.append(Issue("structure", "valueCoding needs a string code (and a string system)", (path,)))
        return None
    if kind == "valueInteger":
        if type(value) is not int:
            path = _answer_path(parent, index, kind)
            reader.type_errors.append(Issue("structure", "valueInteger must be a JSON integer", (path,)))
            return None
        values = set(mapped.integers.get(str(value), ()))
        if len(values) == 1:
            return values.pop()
        _unmatched(reader, mapped, values, str(value), _answer_path(parent, index, kind))
        return None
    reader.issues.append(
        Issue(
            "invalid",
            f"item {mapped.link_id!r} is a choice: answer with valueCoding, not {kind}",
            (_answer_path(parent, index, kind),),
        )
    )
    return None


def _answer_path(parent: str, index: int, kind: str) -> str:
    return f"{_item_path(parent, index)}.answer[0].{kind}"


def _unmatched(reader: _Reader, mapped: MappedItem, values: set[Any], shown: str, path: str) -> None:
    """No option, or more than one, matches the answer: an issue naming the allowed answers."""
    allowed = ", ".join(f"{key.system}|{key.code}" if key.system else key.code for key in mapped.answers)
    problem = "is ambiguous" if values else "is not an answer"
    reader.issues.append(
        Issue("code-invalid", f"answer {shown!r} {problem} of item {mapped.link_id!r}; allowed: {allowed}", (path,))
    )


def _declared_total(reader: _Reader, answer: dict[str, Any], path: str) -> float | None:
    for kind in ("valueDecimal", "valueInteger"):
        if kind in answer:
            return _number(reader, answer[kind], f"{path}.{kind}")
    if "valueQuantity" in answer:
        quantity = answer["valueQuantity"]
        value = quantity.get("value") if isinstance(quantity, dict) else None
        return _number(reader, value, f"{path}.valueQuantity.value")
    if isinstance(answer.get("valueString"), str):
        try:
            number = float(answer["valueString"])
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    reader.issues.append(Issue("invalid", "a declared total must be a number", (path,)))
    return None


def _number(reader: _Reader, value: Any, path: str) -> float | None:
    if isinstance(value, NUMBER_TYPES) and not isinstance(value, bool):
        return float(value)
    reader.type_errors.append(Issue("structure", "a declared total must be a JSON number", (path,)))
    return None


def check_status(qr: dict[str, Any]) -> None:
    status = qr.get("status")
    if status not in SCORED_STATUSES:
        raise UnprocessableResource(
            f"only completed or amended responses are scored; status is {status!r}",
            issues=[
                Issue(
                    "value",
                    f"status {status!r}: only 'completed' or 'amended' responses are scored",
                    (f"{ROOT}.status",),
                )
            ],
        )


def authored(qr: dict[str, Any]) -> datetime:
    """When the patient answered (``authored``), to the microsecond: nanoseconds (Spezi) are truncated."""
    value = qr.get("authored")
    if not isinstance(value, str):
        raise UnprocessableResource(
            "authored is required: when the patient answered",
            issues=[Issue("required", "authored (when the patient answered) is required", (f"{ROOT}.authored",))],
        )
    try:
        parsed = datetime.fromisoformat(value) if "T" in value else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise UnprocessableResource(
            "authored must give a time with a time zone",
            issues=[Issue("value", f"authored {value!r} must give a time with a time zone", (f"{ROOT}.authored",))],
        )
    problem = clinical_time_problem(parsed)
    if problem is not None:
        raise UnprocessableResource(
            f"authored {problem}",
            issues=[Issue("value", f"authored {value[:40]!r} {problem}", (f"{ROOT}.authored",))],
        )
    return parsed


def subject_patient_id(qr: dict[str, Any]) -> uuid.UUID:
    """The Patient the response is about: ``Patient/<id>`` where the id is the API patient id."""
    subject = qr.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    path = (f"{ROOT}.subject",)
    if not isinstance(reference, str):
        raise UnprocessableResource(
            "subject is required: a reference to the Patient who answered",
            issues=[Issue("required", "subject (Patient/<id>) is required", path)],
        )
    resource_type, _, logical_id = reference.rpartition("/")
    if resource_type != "Patient":
        raise UnprocessableResource(
            "subject must reference a Patient of this server",
            issues=[Issue("invalid", f"subject {reference!r} is not a Patient/<id> reference on this server", path)],
        )
    try:
        return uuid.UUID(logical_id)
    except ValueError:
        raise ReferenceNotFound(
            f"no {reference} in this clinic", issues=[Issue("not-found", f"no {reference} in this clinic", path)]
        ) from None
