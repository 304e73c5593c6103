"""The clinic's registered (third-party) Questionnaires: registered or replaced (mapped onto one instrument on the
way in), listed, read and served back as received."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import Conflict, NotFound
from app.fhir import codes, kept_versions
from app.fhir.errors import Issue, MalformedResource
from app.fhir.form_mapping import compile_form
from app.fhir.instrument_questionnaires import builtin_definition
from app.fhir.models import RegisteredQuestionnaire
from app.fhir.validation import check_put_id, validate_leniently
from app.fhir.verbatim import as_served
from app.fhir.versioning import require_version
from app.fhir.write_context import FhirWrite

QUESTIONNAIRE_STATUSES = ("draft", "active", "retired", "unknown")


@dataclass(frozen=True)
class Registration:
    row: RegisteredQuestionnaire
    created: bool
    warnings: list[Issue]


def register(
    write: FhirWrite, *, data: dict[str, Any], text: str, logical_id: str | None = None, if_match: str | None = None
) -> Registration:
    """Register (POST) or create-or-replace (PUT, ``logical_id`` from the URL) a clinic's Questionnaire.

    ``If-Match`` (PUT): only if the form is at that version (412 otherwise), compared under a lock on its row."""
    db, registry, principal = write.db, write.registry, write.principal
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
    row = find(db, principal.clinic_id, logical_id, for_update=True) if logical_id else None
    require_version(if_match, str(row.version_id) if row else None, f"Questionnaire/{logical_id}")
    created = row is None
    if row is None:
        row = RegisteredQuestionnaire(clinic_id=principal.clinic_id, logical_id=logical_id or str(uuid.uuid4()))
        db.add(row)
    else:
        kept_versions.keep(db, row, resource_type="Questionnaire")
        row.version_id += 1
        row.updated_at = utcnow()
    row.url, row.canonical_version, row.instrument_id = url, version, compiled.form.instrument
    row.mapping = compiled.form.model_dump(mode="json")
    row.raw = text
    row.recorded_by_key_id = principal.key_id
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:
        raise Conflict(
            f"a Questionnaire with url {url}|{version} or id {row.logical_id} is already registered; "
            "PUT it to change it"
        ) from None
    return Registration(row=row, created=created, warnings=warnings + compiled.warnings)


def get(db: Session, *, clinic_id: uuid.UUID, logical_id: str) -> RegisteredQuestionnaire:
    row = find(db, clinic_id, logical_id)
    if row is None:
        raise NotFound(f"no Questionnaire/{logical_id}")
    return row


def list_registered(db: Session, *, clinic_id: uuid.UUID, url: str | None = None) -> list[RegisteredQuestionnaire]:
    query = select(RegisteredQuestionnaire).where(RegisteredQuestionnaire.clinic_id == clinic_id)
    if url is not None:
        base, _, version = url.partition("|")
        query = query.where(RegisteredQuestionnaire.url == base)
        if version:
            query = query.where(RegisteredQuestionnaire.canonical_version == version)
    return list(db.scalars(query.order_by(RegisteredQuestionnaire.created_at, RegisteredQuestionnaire.id)))


def served(row: RegisteredQuestionnaire) -> dict[str, Any]:
    """The registered form as received, under its server id and version."""
    return as_served(
        row.raw,
        resource_type="Questionnaire",
        logical_id=row.logical_id,
        version_id=row.version_id,
        updated_at=row.updated_at,
    )


def find(
    db: Session, clinic_id: uuid.UUID, logical_id: str | None, *, for_update: bool = False
) -> RegisteredQuestionnaire | None:
    """The clinic's form; ``for_update``: its row locked until the transaction ends (PostgreSQL's
    ``FOR NO KEY UPDATE``, which SQLAlchemy spells ``key_share``), and read afresh."""
    query = select(RegisteredQuestionnaire).where(
        RegisteredQuestionnaire.clinic_id == clinic_id, RegisteredQuestionnaire.logical_id == logical_id
    )
    if for_update:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    return db.scalar(query)
