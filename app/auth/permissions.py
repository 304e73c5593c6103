"""Roles and what each may do: the single permission table (the README shows the same table)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    CLINICIAN = "clinician"
    INTEGRATION = "integration"
    RESEARCHER = "researcher"
    PATIENT = "patient"
    """A patient token held by a mobile app: definitions in, that patient's responses out, nothing else."""
    SMART_CLIENT = "smart_client"
    """A SMART Backend Services client's access token: on ``/fhir`` only, what its scopes grant (``auth.scopes``)."""


class Permission(StrEnum):
    SCORE = "score"
    INSTRUMENTS_READ = "instruments:read"
    INSTRUMENTS_MANAGE = "instruments:manage"
    PATIENTS_READ = "patients:read"
    PATIENTS_WRITE = "patients:write"
    MEASUREMENTS_READ = "measurements:read"
    MEASUREMENTS_WRITE = "measurements:write"
    MEASUREMENTS_AMEND = "measurements:amend"
    QUESTIONNAIRES_MANAGE = "questionnaires:manage"
    ALERTS_READ = "alerts:read"
    ALERTS_ACKNOWLEDGE = "alerts:acknowledge"
    OUTCOMES_READ = "outcomes:read"
    CLINIC_CONFIGURE = "clinic:configure"
    MEASUREMENTS_IMPORT = "measurements:import"
    RESEARCH_EXPORT = "research:export"
    RESEARCH_ANALYSE = "research:analyse"
    RESEARCH_EXPORT_IDENTIFIED = "research:export-identified"
    RESEARCH_PROJECTS_MANAGE = "research:projects"
    RESEARCH_PROJECTS_READ = "research:projects-read"
    CONSENTS_MANAGE = "consents:manage"
    CONSENTS_OWN = "consents:own"
    KEYS_MANAGE = "keys:manage"
    AUDIT_READ = "audit:read"
    ENROLMENTS_MANAGE = "enrolments:manage"


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
            Permission.ALERTS_READ,
            Permission.ALERTS_ACKNOWLEDGE,
            Permission.OUTCOMES_READ,
            Permission.ENROLMENTS_MANAGE,
            Permission.RESEARCH_PROJECTS_READ,
            Permission.CONSENTS_MANAGE,
        }
    ),
    Role.INTEGRATION: frozenset(
        _EVERYONE
        | {
            Permission.PATIENTS_READ,
            Permission.PATIENTS_WRITE,
            Permission.MEASUREMENTS_READ,
            Permission.MEASUREMENTS_WRITE,
            Permission.MEASUREMENTS_IMPORT,
            Permission.QUESTIONNAIRES_MANAGE,
        }
    ),
    # De-identified data only: a researcher never names a patient, so never imports (an import resolves patients
    # by the clinic's identifiers, and its report would say which exist and when they were measured).
    # A researcher key reaches one project's data (its key's project): ``research.projects.of_key``.
    Role.RESEARCHER: frozenset(
        _EVERYONE | {Permission.RESEARCH_EXPORT, Permission.RESEARCH_ANALYSE, Permission.RESEARCH_PROJECTS_READ}
    ),
    Role.PATIENT: frozenset(
        {Permission.INSTRUMENTS_READ, Permission.SCORE, Permission.MEASUREMENTS_WRITE, Permission.CONSENTS_OWN}
    ),
    # The most any SMART scope maps to (``app.auth.scopes.PERMISSIONS``); each token has only what its scopes grant.
    Role.SMART_CLIENT: frozenset(
        {
            Permission.INSTRUMENTS_READ,
            Permission.PATIENTS_READ,
            Permission.PATIENTS_WRITE,
            Permission.MEASUREMENTS_READ,
            Permission.MEASUREMENTS_WRITE,
            Permission.QUESTIONNAIRES_MANAGE,
        }
    ),
}
STAFF_ROLES = (Role.ADMIN, Role.CLINICIAN, Role.INTEGRATION, Role.RESEARCHER)
"""Roles an API key may be issued for; patient tokens come only from an enrolment, SMART tokens from the token
endpoint."""


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
