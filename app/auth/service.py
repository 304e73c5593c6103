"""Clinics and API keys: create them, and authenticate a presented key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.auth.models import ApiKey, Clinic
from app.auth.permissions import Permission, Role, allows
from app.auth.scopes import SmartGrants
from app.core.db import utcnow
from app.core.errors import FieldError, InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from app.core.security import generate_api_key, hash_api_key, key_matches, key_prefix


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its clinic and its role. Every query is scoped by ``clinic_id``."""

    key_id: uuid.UUID
    clinic_id: uuid.UUID
    role: Role
    patient_id: uuid.UUID | None = None
    """Set for a patient token (mobile app): it may act for this one patient only."""
    grants: SmartGrants | None = None
    """Set for a SMART access token (``key_id`` is then its client's id): the FHIR interactions its scopes grant."""
    research_project_id: uuid.UUID | None = None
    """Set for a researcher key issued for a research project: its exports and analyses are of that project only."""

    def require(self, permission: Permission) -> None:
        if not allows(self.role, permission):
            raise PermissionDenied(f"the {self.role.value} role may not {permission.value}")
        if self.grants is not None and permission not in self.grants.permissions:
            raise PermissionDenied(f"the access token's scopes do not grant {permission.value}")

    def require_entry(self, method: str, url: str) -> None:
        """A FHIR Bundle entry's interaction is allowed: always for a key (its route checks its permissions), only if
        its scopes grant it for a SMART access token."""
        if self.grants is not None:
            self.grants.require_entry(method, url)


@dataclass(frozen=True)
class IssuedKey:
    key: str
    api_key: ApiKey
    clinic: Clinic


def get_or_create_clinic(db: Session, *, name: str) -> Clinic:
    clinic = db.scalar(select(Clinic).where(Clinic.name == name))
    if clinic is None:
        clinic = Clinic(name=name)
        db.add(clinic)
        db.flush()
    return clinic


def clinic_is_synthetic(db: Session, *, clinic_id: uuid.UUID) -> bool:
    """Whether the clinic was made by the synthetic cohort generator (``Clinic.synthetic``)."""
    return bool(db.scalar(select(Clinic.synthetic).where(Clinic.id == clinic_id)))


def issue_api_key(
    db: Session,
    *,
    clinic: Clinic,
    role: Role,
    pepper: str,
    label: str | None = None,
    expires_at: datetime | None = None,
    patient_id: uuid.UUID | None = None,
    created_by_key_id: uuid.UUID | None = None,
    research_project_id: uuid.UUID | None = None,
) -> IssuedKey:
    """A new key; ``research_project_id`` (a project of the clinic, checked by the caller) for a researcher key."""
    if (role is Role.PATIENT) != (patient_id is not None):
        raise InvalidInput("a patient token needs a patient, and only a patient token has one")
    if research_project_id is not None and role is not Role.RESEARCHER:
        raise InvalidInput(
            "only a researcher key is issued for a research project",
            errors=[
                FieldError(
                    field="research_project_id",
                    message="only for role researcher",
                    value=str(research_project_id),
                )
            ],
        )
    generated = generate_api_key()
    api_key = ApiKey(
        clinic_id=clinic.id,
        role=role.value,
        prefix=generated.prefix,
        key_hash=hash_api_key(generated.key, pepper),
        label=label,
        expires_at=expires_at,
        patient_id=patient_id,
        created_by_key_id=created_by_key_id,
        research_project_id=research_project_id,
    )
    db.add(api_key)
    db.flush()
    return IssuedKey(key=generated.key, api_key=api_key, clinic=clinic)


_KEY_BY_PREFIX = select(
    ApiKey.id,
    ApiKey.clinic_id,
    ApiKey.role,
    ApiKey.patient_id,
    ApiKey.key_hash,
    ApiKey.revoked_at,
    ApiKey.expires_at,
    ApiKey.research_project_id,
).where(ApiKey.prefix == bindparam("prefix"))
"""Columns, not the entity, and built once: this runs on every request (bench/README.md, change 2)."""


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    expires_at: datetime | None


def authenticate(connection: Connection, *, presented: str | None, pepper: str) -> Authenticated:
    if not presented:
        raise NotAuthenticated("send Authorization: Bearer <api key>")
    prefix = key_prefix(presented)
    api_key = connection.execute(_KEY_BY_PREFIX, {"prefix": prefix}).first() if prefix else None
    if api_key is None or api_key.role == Role.SMART_CLIENT or not key_matches(presented, api_key.key_hash, pepper):
        raise NotAuthenticated("the API key is not valid")
    now = utcnow()
    if api_key.revoked_at is not None or (api_key.expires_at is not None and api_key.expires_at <= now):
        raise NotAuthenticated("the API key has been revoked or has expired")
    principal = Principal(
        key_id=api_key.id,
        clinic_id=api_key.clinic_id,
        role=Role(api_key.role),
        patient_id=api_key.patient_id,
        research_project_id=api_key.research_project_id,
    )
    return Authenticated(principal, api_key.expires_at)


def find_clinic(db: Session, *, name: str) -> Clinic:
    clinic = db.scalar(select(Clinic).where(Clinic.name == name))
    if clinic is None:
        raise NotFound(f"no clinic named {name!r}")
    return clinic


def get_clinic(db: Session, clinic_id: uuid.UUID) -> Clinic:
    clinic = db.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"no clinic {clinic_id}")
    return clinic


def list_keys(
    db: Session, *, clinic_id: uuid.UUID, limit: int, offset: int, patient_id: uuid.UUID | None = None
) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.clinic_id == clinic_id, ApiKey.role != Role.SMART_CLIENT.value)
    query = query.where(ApiKey.patient_id == patient_id) if patient_id else query.where(ApiKey.patient_id.is_(None))
    return list(db.scalars(query.order_by(ApiKey.created_at, ApiKey.id).limit(limit).offset(offset)))


def revoke_key(db: Session, *, clinic_id: uuid.UUID, key_id: uuid.UUID, patient_id: uuid.UUID | None = None) -> ApiKey:
    query = select(ApiKey).where(
        ApiKey.id == key_id, ApiKey.clinic_id == clinic_id, ApiKey.role != Role.SMART_CLIENT.value
    )  # a SMART client's key is revoked with its client (/v1/smart-clients/{id}/revoke)
    query = query.where(ApiKey.patient_id == patient_id) if patient_id else query.where(ApiKey.patient_id.is_(None))
    api_key = db.scalar(query)
    if api_key is None:
        raise NotFound(f"no key {key_id}")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        db.flush()
    return api_key
