"""Roles and what each may do: the single permission table (the README shows the same table)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    CLINICIAN = "clinician"
    INTEGRATION = "integration"
    RESEARCHER = "researcher"


class Permission(StrEnum):
    SCORE = "score"
    INSTRUMENTS_READ = "instruments:read"
    INSTRUMENTS_MANAGE = "instruments:manage"
    PATIENTS_READ = "patients:read"
    PATIENTS_WRITE = "patients:write"
    MEASUREMENTS_READ = "measurements:read"
    MEASUREMENTS_WRITE = "measurements:write"
    MEASUREMENTS_AMEND = "measurements:amend"
    RESEARCH_EXPORT = "research:export"


_EVERYONE = {Permission.SCORE, Permission.INSTRUMENTS_READ}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.CLINICIAN: frozenset(
        _EVERYONE
        | {
            Permission.PATIENTS_READ,
            Permission.PATIENTS_WRITE,
            Permission.MEASUREMENTS_READ,
            Permission.MEASUREMENTS_WRITE,
            Permission.MEASUREMENTS_AMEND,
        }
    ),
    Role.INTEGRATION: frozenset(
        _EVERYONE
        | {
            Permission.PATIENTS_READ,
            Permission.PATIENTS_WRITE,
            Permission.MEASUREMENTS_READ,
            Permission.MEASUREMENTS_WRITE,
        }
    ),
    Role.RESEARCHER: frozenset(_EVERYONE | {Permission.RESEARCH_EXPORT}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
