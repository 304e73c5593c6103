"""Structural validation with the R4B models (the closest to R4 4.0.1 that runs on pydantic 2).

The models coerce JSON types (``"3"`` → 3) and ignore required bindings (``status: "bogus"`` passes), so callers
check the codes and the JSON types of what they read themselves; this module only turns the models' verdict into
OperationOutcome issues with a FHIRPath each. ``check_put_id`` is FHIR's one rule of an update's body: its id is the
URL's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from app.core.problems import echoed
from app.fhir.errors import Issue, MalformedResource

VALIDATED_TYPES = ("Bundle", "Patient", "Questionnaire", "QuestionnaireResponse")


def load_fhir_models() -> None:
    """Import the models of the resources this service validates (each is imported on its first use otherwise)."""
    for resource_type in VALIDATED_TYPES:
        get_fhir_model_class(resource_type)


def fhirpath(resource_type: str, loc: Sequence[int | str]) -> str:
    """``("item", 9, "extension", 3)`` → ``Questionnaire.item[9].extension[3]``."""
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def require_type(data: dict[str, Any], resource_type: str) -> None:
    if data.get("resourceType") != resource_type:
        raise MalformedResource(
            f"expected a {resource_type}, got a {data.get('resourceType')}",
            issues=[
                Issue("invalid", f"expected a {resource_type}, got a {data.get('resourceType')}", ("resourceType",))
            ],
        )


def validate(data: dict[str, Any], resource_type: str) -> None:
    """Validate strictly: any structural error is a 400 with one issue per error."""
    require_type(data, resource_type)
    refuse_if_any(structural_issues(data, resource_type), resource_type)


def structural_issues(data: dict[str, Any], resource_type: str) -> list[Issue]:
    """``validate``'s verdict without raising: the issues of a resource (``[]`` when valid).

    A QuestionnaireResponse whose items were all seen before in valid responses is validated without them: the
    models validate each item on its own, whatever else the response holds, so an item valid once is valid always
    (``VALID_ITEMS``). A PHQ-9 has 36 possible answered items, and validating them was most of the time
    (bench/README.md, change 23).
    """
    if resource_type == QUESTIONNAIRE_RESPONSE:
        items = _item_keys(data.get("item"))
        if items is not None and VALID_ITEMS.contains_all(items):
            return _models_issues({name: value for name, value in data.items() if name != "item"}, resource_type)
        issues = _models_issues(data, resource_type)
        if items is not None and not issues:
            VALID_ITEMS.add(items)
        return issues
    return _models_issues(data, resource_type)


QUESTIONNAIRE_RESPONSE = "QuestionnaireResponse"


class ItemVerdicts:
    """Canonical JSON of QuestionnaireResponse items the models accepted, up to ``limit`` (then started afresh)."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._valid: set[bytes] = set()

    def contains_all(self, keys: list[bytes]) -> bool:
        return all(key in self._valid for key in keys)

    def add(self, keys: list[bytes]) -> None:
        if len(self._valid) + len(keys) > self.limit:
            self._valid.clear()
        self._valid.update(keys)


VALID_ITEMS = ItemVerdicts()


def _item_keys(items: object) -> list[bytes] | None:
    """Each item as canonical JSON (sorted keys), or None when the items cannot be remembered that way."""
    if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
        return None
    try:
        return [orjson.dumps(item, option=orjson.OPT_SORT_KEYS) for item in items]
    except (orjson.JSONEncodeError, TypeError):  # e.g. an integer beyond 64 bits: validated the long way
        return None


def distinct_content(elements: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The elements without repeats (equal JSON content, first of each kept, in order), or None when they cannot
    be compared that way."""
    keys = _item_keys(elements)
    if keys is None:
        return None
    first: dict[bytes, dict[str, Any]] = {}
    for key, element in zip(keys, elements, strict=True):
        first.setdefault(key, element)
    return list(first.values())


def refuse_if_any(issues: list[Issue], resource_type: str) -> None:
    if issues:
        raise MalformedResource(f"{len(issues)} structural error(s) in the {resource_type}", issues=issues)


def validate_leniently(data: dict[str, Any], resource_type: str) -> list[Issue]:
    """Validate, but accept errors confined to the narrative or to (non-modifier) extensions, as warnings.

    Published forms carry such defects (an LHC-Forms PHQ-9 has a ``text`` without ``div``, another names its
    FHIRPath variables ``q1_value``, which R4's ``id`` type forbids); neither changes what the form asks.
    """
    require_type(data, resource_type)
    errors = _models_issues(data, resource_type)
    fatal = [issue for issue in errors if not _harmless(issue)]
    if fatal:
        raise MalformedResource(f"{len(fatal)} structural error(s) in the {resource_type}", issues=fatal)
    return [Issue(issue.code, issue.diagnostics, issue.expression, "warning") for issue in errors]


def _harmless(issue: Issue) -> bool:
    path = issue.expression[0] if issue.expression else ""
    _resource, _, rest = path.partition(".")
    return rest.startswith("text.") or rest == "text" or ".extension[" in f".{rest}"


def _models_issues(data: dict[str, Any], resource_type: str) -> list[Issue]:
    """The R4B models' verdict on the whole resource, as issues (``[]`` when valid)."""
    try:
        get_fhir_model_class(resource_type).model_validate(data)
    except ValidationError as exc:
        return [
            Issue(
                "structure" if error["type"] == "extra_forbidden" else "invalid",
                str(error["msg"]).removeprefix("Value error, "),
                (fhirpath(resource_type, error["loc"]),),
            )
            for error in exc.errors()
        ]
    return []


def check_put_id(data: dict[str, Any], logical_id: str, resource_type: str) -> None:
    """FHIR update: the resource's id must equal the id in the URL (400 otherwise)."""
    if data.get("id") != logical_id:
        raise MalformedResource(
            "the resource id differs from the id in the URL",
            issues=[
                Issue(
                    "invalid",
                    f"the URL names {resource_type}/{logical_id} but the resource's id is {echoed(data.get('id'))!r}",
                    (f"{resource_type}.id",),
                )
            ],
        )
