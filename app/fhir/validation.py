"""Structural validation with the R4B models (the closest to R4 4.0.1 that runs on pydantic 2).

The models coerce JSON types (``"3"`` → 3) and ignore required bindings (``status: "bogus"`` passes), so callers
check the codes and the JSON types of what they read themselves; this module only turns the models' verdict into
OperationOutcome issues with a FHIRPath each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from app.fhir.errors import Issue, MalformedResource


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


def validate(data: dict[str, Any], resource_type: str) -> FHIRAbstractModel:
    """Validate strictly: any structural error is a 400 with one issue per error."""
    require_type(data, resource_type)
    model, errors = _validated(data, resource_type)
    refuse_if_any(errors, resource_type)
    assert model is not None
    return model


def structural_issues(data: dict[str, Any], resource_type: str) -> list[Issue]:
    """``validate``'s verdict without raising: the issues of a resource (``[]`` when valid)."""
    return _validated(data, resource_type)[1]


def refuse_if_any(issues: list[Issue], resource_type: str) -> None:
    if issues:
        raise MalformedResource(f"{len(issues)} structural error(s) in the {resource_type}", issues=issues)


def validate_leniently(data: dict[str, Any], resource_type: str) -> list[Issue]:
    """Validate, but accept errors confined to the narrative or to (non-modifier) extensions, as warnings.

    Published forms carry such defects (an LHC-Forms PHQ-9 has a ``text`` without ``div``, another names its
    FHIRPath variables ``q1_value``, which R4's ``id`` type forbids); neither changes what the form asks.
    """
    require_type(data, resource_type)
    _model, errors = _validated(data, resource_type)
    fatal = [issue for issue in errors if not _harmless(issue)]
    if fatal:
        raise MalformedResource(f"{len(fatal)} structural error(s) in the {resource_type}", issues=fatal)
    return [Issue(issue.code, issue.diagnostics, issue.expression, "warning") for issue in errors]


def _harmless(issue: Issue) -> bool:
    path = issue.expression[0] if issue.expression else ""
    _resource, _, rest = path.partition(".")
    return rest.startswith("text.") or rest == "text" or ".extension[" in f".{rest}"


def _validated(data: dict[str, Any], resource_type: str) -> tuple[FHIRAbstractModel | None, list[Issue]]:
    try:
        return get_fhir_model_class(resource_type).model_validate(data), []
    except ValidationError as exc:
        return None, [
            Issue(
                "structure" if error["type"] == "extra_forbidden" else "invalid",
                str(error["msg"]).removeprefix("Value error, "),
                (fhirpath(resource_type, error["loc"]),),
            )
            for error in exc.errors()
        ]
