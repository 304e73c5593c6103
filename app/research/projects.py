"""Research projects and their patients' consent: who a project's exports, codebooks and analyses may include.

A patient's status for a project is their latest consent row (by ``recorded_at``, then ``created_at``). Under an
``opt_in`` project only patients whose status is ``granted`` are included; under ``opt_out`` every patient of the
clinic is, unless their status is ``refused`` or ``withdrawn``. ``consenting_patient_ids`` says it as one SELECT,
which every export path (``export.measurement_query``, so the PostgreSQL COPY path too) and the analysis panel
filter on, so the status is read when the export reads its rows.

Withdrawals (``withdrawals``): the patients whose status now excludes them although an earlier export of the project
could have included them (their status allowed it when the export was made, as the service knew it then: consent
rows by ``created_at``, exports by theirs). What each export included is not stored row by row: it follows from the
consent history and the export record, and a patient who was allowed but had no data yet is listed too (the
researcher then finds no rows to delete), never the other way round.
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from app.patients.models import Patient
from app.research.models import ResearchConsent, ResearchExport, ResearchProject
from app.research.pseudonyms import Pseudonymiser
from app.research.schemas import ConsentChange, ConsentModel, ConsentStatus, ProjectCreate

BLOCKING = (ConsentStatus.REFUSED.value, ConsentStatus.WITHDRAWN.value)
"""Statuses that exclude a patient under either model."""


def create(
    db: Session, *, clinic_id: uuid.UUID, body: ProjectCreate, created_by_key_id: uuid.UUID | None
) -> ResearchProject:
    named = ResearchProject.name == body.name
    if db.scalar(select(ResearchProject.id).where(ResearchProject.clinic_id == clinic_id, named)):
        raise Conflict(f"the clinic already has a research project named {body.name!r}")
    project = ResearchProject(
        clinic_id=clinic_id,
        name=body.name,
        purpose=body.purpose,
        ethics_reference=body.ethics_reference,
        consent_model=body.consent_model.value,
        pseudonym_salt=secrets.token_hex(16),
        created_by_key_id=created_by_key_id,
    )
    db.add(project)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:  # the same name created concurrently
        raise Conflict(f"the clinic already has a research project named {body.name!r}") from None
    return project


def list_projects(db: Session, *, clinic_id: uuid.UUID) -> list[ResearchProject]:
    query = select(ResearchProject).where(ResearchProject.clinic_id == clinic_id)
    return list(db.scalars(query.order_by(ResearchProject.name)))


def get(db: Session, *, clinic_id: uuid.UUID, project_id: uuid.UUID) -> ResearchProject:
    """The clinic's project, or NotFound (another clinic's project is indistinguishable from a missing one)."""
    project = db.scalar(
        select(ResearchProject).where(ResearchProject.id == project_id, ResearchProject.clinic_id == clinic_id)
    )
    if project is None:
        raise NotFound(f"no research project {project_id}")
    return project


def by_name(db: Session, *, clinic_id: uuid.UUID, name: str) -> ResearchProject:
    project = db.scalar(
        select(ResearchProject).where(ResearchProject.clinic_id == clinic_id, ResearchProject.name == name)
    )
    if project is None:
        raise NotFound(f"no research project named {name!r}")
    return project


def of_key(
    db: Session, *, clinic_id: uuid.UUID, key_project_id: uuid.UUID | None, asked: str | None
) -> ResearchProject:
    """The project a de-identified export or analysis is of.

    A key issued for a project works on that project only (``asked``, if given, must name it). A key without one
    (an administrator's) must name the project; a researcher key without one cannot export at all: a key issued
    before projects existed is never taken to mean every patient.
    """
    if key_project_id is not None:
        project = get(db, clinic_id=clinic_id, project_id=key_project_id)
        if asked is not None and asked != project.name:
            raise PermissionDenied(f"this key is issued for the research project {project.name!r} only")
        return project
    if asked is None:
        raise InvalidInput(
            "name the research project (`project`); a researcher key must be issued for a project",
            errors=[FieldError(field="project", message="required for a key not issued for a project")],
        )
    return by_name(db, clinic_id=clinic_id, name=asked)


def require_researcher_project(role_is_researcher: bool, key_project_id: uuid.UUID | None) -> None:
    """A researcher key not issued for a project (one issued before projects existed) reaches no data."""
    if role_is_researcher and key_project_id is None:
        raise PermissionDenied("this researcher key is issued for no research project; ask for a key for one")


def pseudonymiser(project: ResearchProject, *, secret: str) -> Pseudonymiser:
    """The project's pseudonyms: its key is derived from the server secret and the project's stored salt."""
    return Pseudonymiser(secret=secret, project=f"salt:{project.pseudonym_salt}", clinic_id=project.clinic_id)


def _latest(project_id: uuid.UUID) -> Any:
    """Each patient's consent rows for the project, numbered from the latest (``n == 1`` is the status)."""
    order = (ResearchConsent.recorded_at.desc(), ResearchConsent.created_at.desc(), ResearchConsent.id.desc())
    return (
        select(
            ResearchConsent.patient_id,
            ResearchConsent.status,
            func.row_number().over(partition_by=ResearchConsent.patient_id, order_by=order).label("n"),
        )
        .where(ResearchConsent.project_id == project_id)
        .subquery()
    )


def consenting_patient_ids(project: ResearchProject) -> Select[Any]:
    """The ids of the patients the project's exports include now, as a SELECT to filter on (``IN``)."""
    latest = _latest(project.id)
    if project.consent_model == ConsentModel.OPT_IN.value:
        return select(latest.c.patient_id).where(latest.c.n == 1, latest.c.status == ConsentStatus.GRANTED.value)
    excluded = select(latest.c.patient_id).where(latest.c.n == 1, latest.c.status.in_(BLOCKING))
    return select(Patient.id).where(Patient.clinic_id == project.clinic_id, Patient.id.not_in(excluded))


def change_consent(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    project_id: uuid.UUID,
    change: ConsentChange,
    recorded_by_key_id: uuid.UUID,
) -> ResearchConsent:
    """A new row in the patient's consent history (the patient's existence is checked by the caller)."""
    project = get(db, clinic_id=clinic_id, project_id=project_id)
    now = utcnow()
    if change.recorded_at is not None and change.recorded_at > now:
        raise InvalidInput(
            "a consent cannot be recorded in the future",
            errors=[FieldError(field="recorded_at", message="must not be after now", value=change.recorded_at)],
        )
    consent = ResearchConsent(
        clinic_id=clinic_id,
        project_id=project.id,
        patient_id=patient_id,
        status=change.status.value,
        recorded_at=change.recorded_at or now,
        note=change.note,
        recorded_by_key_id=recorded_by_key_id,
        created_at=now,
    )
    db.add(consent)
    db.flush()
    return consent


def history(db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID) -> list[ResearchConsent]:
    """Every consent row of the patient, every project, in the order they were recorded."""
    query = select(ResearchConsent).where(
        ResearchConsent.clinic_id == clinic_id, ResearchConsent.patient_id == patient_id
    )
    return list(db.scalars(query.order_by(ResearchConsent.created_at, ResearchConsent.id)))


def current_status(rows: Sequence[ResearchConsent], project_id: uuid.UUID) -> ConsentStatus | None:
    """The patient's status for the project from their history rows (None: never asked)."""
    mine = [row for row in rows if row.project_id == project_id]
    if not mine:
        return None
    return ConsentStatus(max(mine, key=lambda row: (row.recorded_at, row.created_at, row.id)).status)


def allows(model: str, status: str | None) -> bool:
    """Whether a patient of this status is included under the consent model."""
    if model == ConsentModel.OPT_IN.value:
        return status == ConsentStatus.GRANTED.value
    return status not in BLOCKING


def _status_at(rows: Sequence[ResearchConsent], moment: datetime) -> str | None:
    """The status as the service knew it at ``moment``: the latest of the rows recorded by then."""
    known = [row for row in rows if row.created_at <= moment]
    if not known:
        return None
    return max(known, key=lambda row: (row.recorded_at, row.created_at, row.id)).status


def withdrawals(db: Session, project: ResearchProject) -> list[tuple[uuid.UUID, ResearchConsent, datetime]]:
    """(patient id, the excluding consent row, the last export that could have included them), by withdrawal date."""
    exports = list(
        db.scalars(
            select(ResearchExport.created_at)
            .where(ResearchExport.research_project_id == project.id, ResearchExport.identified.is_(False))
            .order_by(ResearchExport.created_at)
        )
    )
    if not exports:
        return []
    rows_of: defaultdict[uuid.UUID, list[ResearchConsent]] = defaultdict(list)
    for row in db.scalars(select(ResearchConsent).where(ResearchConsent.project_id == project.id)):
        rows_of[row.patient_id].append(row)
    found = []
    for patient_id, rows in rows_of.items():
        current = max(rows, key=lambda row: (row.recorded_at, row.created_at, row.id))
        if current.status not in BLOCKING:
            continue
        included = [moment for moment in exports if allows(project.consent_model, _status_at(rows, moment))]
        if included:
            found.append((patient_id, current, included[-1]))
    return sorted(found, key=lambda entry: (entry[1].recorded_at, entry[1].id))
