"""Questionnaires: the server's own (one per instrument) and the clinic's registered third-party forms, and how a
QuestionnaireResponse's ``questionnaire`` reference resolves to one of them (never by fetching a URL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.core.db import utcnow
from app.core.errors import Conflict, NotFound
from app.core.problems import echoed
from app.fhir import codes
from app.fhir.errors import Issue, MalformedResource, UnprocessableResource
from app.fhir.form_mapping import compile_form
from app.fhir.instrument_questionnaires import builtin_form
from app.fhir.models import RegisteredQuestionnaire
from app.fhir.schemas import FormMap
from app.fhir.validation import validate_leniently
from app.fhir.verbatim import as_served
from app.instruments.registry import InstrumentRegistry
from app.scoring.definition import InstrumentDefinition

QUESTIONNAIRE_STATUSES = ("draft", "active", "retired", "unknown")


@dataclass(frozen=True)
class ResolvedForm:
    form: FormMap
    definition: InstrumentDefinition


@dataclass(frozen=True)
class Registration:
    row: RegisteredQuestionnaire
    created: bool
    warnings: list[Issue]


def builtin_definition(registry: InstrumentRegistry, questionnaire_id: str) -> InstrumentDefinition | None:
    """The instrument whose Questionnaire has this id (``scs-sf``; ``scs_sf`` is accepted too)."""
    return registry.definitions.get(codes.instrument_id(questionnaire_id))


def register(
    session: Session,
    registry: InstrumentRegistry,
    *,
    principal: Principal,
    data: dict[str, Any],
    text: str,
    logical_id: str | None = None,
) -> Registration:
    """Register (POST) or create-or-replace (PUT, ``logical_id`` from the URL) a clinic's Questionnaire."""
    warnings = validate_leniently(data, "Questionnaire")
    if data.get("status") not in QUESTIONNAIRE_STATUSES:
        raise MalformedResource(
            "invalid status",
            issues=[
                Issue(
                    "code-invalid",
                    f"status must be one of {', '.join(QUESTIONNAIRE_STATUSES)}",
                    ("Questionnaire.status",),
                )
            ],
        )
    if logical_id is not None:
        check_put_id(data, logical_id, "Questionnaire")
        if builtin_definition(registry, logical_id) is not None:
            raise Conflict(f"Questionnaire/{logical_id} is one of the server's own instruments; use another id")
    if isinstance(data.get("url"), str) and data["url"].startswith(codes.QUESTIONNAIRE_BASE):
        raise Conflict(f"{data['url']} names one of the server's own Questionnaires; give the form its own url")
    compiled = compile_form(data, registry)
    url: str | None = data["url"] if isinstance(data.get("url"), str) else None
    version: str = data["version"] if isinstance(data.get("version"), str) else ""
    row = _find(session, principal.clinic_id, logical_id) if logical_id else None
    created = row is None
    if row is None:
        row = RegisteredQuestionnaire(clinic_id=principal.clinic_id, logical_id=logical_id or str(uuid.uuid4()))
        session.add(row)
    else:
        row.version_id += 1
        row.updated_at = utcnow()
    row.url, row.canonical_version, row.instrument_id = url, version, compiled.form.instrument
    row.mapping = compiled.form.model_dump(mode="json")
    row.raw = text
    row.recorded_by_key_id = principal.key_id
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"a Questionnaire with url {url}|{version} or id {row.logical_id} is already registered; "
            "PUT it to change it"
        ) from None
    return Registration(row=row, created=created, warnings=warnings + compiled.warnings)


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


def get(session: Session, *, clinic_id: uuid.UUID, logical_id: str) -> RegisteredQuestionnaire:
    row = _find(session, clinic_id, logical_id)
    if row is None:
        raise NotFound(f"no Questionnaire/{logical_id}")
    return row


def list_registered(session: Session, *, clinic_id: uuid.UUID, url: str | None = None) -> list[RegisteredQuestionnaire]:
    query = select(RegisteredQuestionnaire).where(RegisteredQuestionnaire.clinic_id == clinic_id)
    if url is not None:
        base, _, version = url.partition("|")
        query = query.where(RegisteredQuestionnaire.url == base)
        if version:
            query = query.where(RegisteredQuestionnaire.canonical_version == version)
    return list(session.scalars(query.order_by(RegisteredQuestionnaire.created_at, RegisteredQuestionnaire.id)))


def served(row: RegisteredQuestionnaire) -> dict[str, Any]:
    """The registered form as received, under its server id and version."""
    return as_served(
        row.raw,
        resource_type="Questionnaire",
        logical_id=row.logical_id,
        version_id=row.version_id,
        updated_at=row.updated_at,
    )


def resolve(
    session: Session,
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
        return _contained(session, registry, clinic_id=clinic_id, qr=qr, reference=reference, root=root)
    resolved = _lookup(session, registry, clinic_id, reference)
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


def _lookup(
    session: Session, registry: InstrumentRegistry, clinic_id: uuid.UUID, reference: str
) -> ResolvedForm | None:
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
            row = _find(session, clinic_id, logical_id)
            return _registered(registry, row) if row is not None else None
    else:
        rows = list_registered(session, clinic_id=clinic_id, url=reference)
        return _registered(registry, rows[-1]) if rows else None
    return ResolvedForm(builtin_form(definition), definition) if definition is not None else None


def _registered(registry: InstrumentRegistry, row: RegisteredQuestionnaire) -> ResolvedForm | None:
    form = FormMap.model_validate(row.mapping)
    definition = registry.definitions.get(form.instrument)
    return ResolvedForm(form, definition) if definition is not None else None


def _contained(
    session: Session,
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
        if isinstance(parent, str) and (resolved := _lookup(session, registry, clinic_id, parent)) is not None:
            return resolved
    compiled = compile_form(form, registry, root=f"{root}.contained[{index}]", contained=contained)
    return ResolvedForm(compiled.form, registry.definitions[compiled.form.instrument])


def _find(session: Session, clinic_id: uuid.UUID, logical_id: str | None) -> RegisteredQuestionnaire | None:
    return session.scalar(
        select(RegisteredQuestionnaire).where(
            RegisteredQuestionnaire.clinic_id == clinic_id, RegisteredQuestionnaire.logical_id == logical_id
        )
    )
