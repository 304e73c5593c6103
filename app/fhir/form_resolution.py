"""How a QuestionnaireResponse's ``questionnaire`` reference resolves to the form it answers: a contained form, one
of the server's instruments, or a registered form of the clinic (never by fetching a URL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.fhir import codes, registered_questionnaires
from app.fhir.errors import Issue, UnprocessableResource
from app.fhir.form_mapping import compile_form
from app.fhir.instrument_questionnaires import builtin_definition, builtin_form
from app.fhir.models import RegisteredQuestionnaire
from app.fhir.schemas import FormMap
from app.instruments.registry import InstrumentRegistry
from app.scoring.definition import InstrumentDefinition


@dataclass(frozen=True)
class ResolvedForm:
    """The form a response answers, and the instrument it maps onto."""

    form: FormMap
    definition: InstrumentDefinition


def resolve(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    qr: dict[str, Any],
    root: str = "QuestionnaireResponse",
) -> ResolvedForm:
    """The form a response answers: ``#contained``, ``Questionnaire/<id>``, or a canonical ``url[|version]``."""
    reference = qr.get("questionnaire")
    path = (f"{root}.questionnaire",)
    if not isinstance(reference, str):
        raise UnprocessableResource(
            "questionnaire is required to score a response",
            issues=[Issue("required", "questionnaire (the form this response answers) is required", path)],
        )
    if reference.startswith("#"):
        return _contained(db, registry, clinic_id=clinic_id, qr=qr, reference=reference, root=root)
    resolved = _lookup(db, registry, clinic_id, reference)
    if resolved is None:
        raise UnprocessableResource(
            f"unknown Questionnaire {reference}",
            issues=[
                Issue(
                    "not-found",
                    f"unknown Questionnaire {reference!r}: use one of the server's (GET /fhir/Questionnaire) or "
                    "register the form first (PUT /fhir/Questionnaire/<id>)",
                    path,
                )
            ],
        )
    return resolved


def _lookup(db: Session, registry: InstrumentRegistry, clinic_id: uuid.UUID, reference: str) -> ResolvedForm | None:
    url, _, version = reference.partition("|")
    definition: InstrumentDefinition | None = None
    if url.startswith(f"{codes.QUESTIONNAIRE_BASE}:"):
        definition = registry.definitions.get(url.removeprefix(f"{codes.QUESTIONNAIRE_BASE}:"))
        if definition is not None and version and version != definition.version:
            return None
    elif url.startswith("Questionnaire/"):
        logical_id = url.removeprefix("Questionnaire/")
        definition = builtin_definition(registry, logical_id)
        if definition is None:
            row = registered_questionnaires.find(db, clinic_id, logical_id)
            return _registered(registry, row) if row is not None else None
    else:
        rows = registered_questionnaires.list_registered(db, clinic_id=clinic_id, url=reference)
        return _registered(registry, rows[-1]) if rows else None
    return ResolvedForm(builtin_form(definition), definition) if definition is not None else None


def _registered(registry: InstrumentRegistry, row: RegisteredQuestionnaire) -> ResolvedForm | None:
    form = FormMap.model_validate(row.mapping)
    definition = registry.definitions.get(form.instrument)
    return ResolvedForm(form, definition) if definition is not None else None


def _contained(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    qr: dict[str, Any],
    reference: str,
    root: str,
) -> ResolvedForm:
    """A form contained in the response (SDC adaptive forms): the form it derives from, if known, else itself."""
    contained = [resource for resource in qr.get("contained") or [] if isinstance(resource, dict)]
    index, form = next(
        (
            (i, resource)
            for i, resource in enumerate(contained)
            if resource.get("resourceType") == "Questionnaire" and f"#{resource.get('id')}" == reference
        ),
        (None, None),
    )
    if form is None:
        raise UnprocessableResource(
            f"no contained Questionnaire {reference}",
            issues=[Issue("not-found", f"no contained Questionnaire {reference!r}", (f"{root}.questionnaire",))],
        )
    for parent in form.get("derivedFrom") or []:
        if isinstance(parent, str) and (resolved := _lookup(db, registry, clinic_id, parent)) is not None:
            return resolved
    compiled = compile_form(form, registry, root=f"{root}.contained[{index}]", contained=contained)
    return ResolvedForm(compiled.form, registry.definitions[compiled.form.instrument])
