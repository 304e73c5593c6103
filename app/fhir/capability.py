"""``GET /fhir/metadata``: the CapabilityStatement, listing exactly the interactions the router serves."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from app.fhir.codes import EXTRACT_OPERATION, FHIR_MEDIA_TYPE, FHIR_VERSION


@dataclass(frozen=True)
class Supported:
    interactions: tuple[str, ...]
    search: tuple[tuple[str, str, str], ...] = ()
    """(name, type, documentation) of each search parameter."""
    conditional_create: bool = False
    update_create: bool = False
    versioning: str = "versioned"
    """``versioned``: ``meta.versionId`` counts changes (an Observation's is its measurement's version)."""
    documentation: str = ""


SUPPORTED: dict[str, Supported] = {
    "Questionnaire": Supported(
        interactions=("read", "search-type", "create", "update"),
        search=(("url", "uri", "Canonical URL, optionally url|version."),),
        update_create=True,
        documentation=(
            "Every instrument as a Questionnaire (id = instrument id, '_' written '-'), plus the clinic's own forms. "
            "A registered form's items must map onto one instrument by their LOINC item codes, the server's list of "
            "known public forms, or the extension urn:compassion-outcomes:fhir:item-map."
        ),
    ),
    "QuestionnaireResponse": Supported(
        interactions=("read", "create", "update"),
        conditional_create=True,
        update_create=True,
        documentation=(
            "Scored on the server into a measurement (source fhir); kept verbatim. If-None-Exist: "
            "identifier=[system|]value. A declared total is stored and compared, never used."
        ),
    ),
    "Observation": Supported(
        interactions=("read", "search-type"),
        search=(
            ("subject", "reference", "Patient/<id> (required)."),
            ("code", "token", "[system|]code: a score's LOINC or product code, or a panel's LOINC code."),
            ("_count", "number", "Page size, 1 to 500 (default 100); the next page is the Bundle's next link."),
        ),
        documentation="Derived from stored measurements: one per score, plus the LOINC panel (PHQ-9, GAD-7).",
    ),
    "Task": Supported(
        interactions=("read", "search-type"),
        search=(
            ("patient", "reference", "Patient/<id>, or the bare id (required)."),
            (
                "status",
                "token",
                "Task status codes, comma-separated (any of them): requested, ready, completed, "
                "rejected, failed, cancelled.",
            ),
            ("_count", "number", "Page size, 1 to 500 (default 100); the next page is the Bundle's next link."),
        ),
        versioning="no-version",
        documentation=(
            "A patient's assessments (one instrument due in one window of a schedule) as SDC Tasks (sdc-task): code "
            "complete-questionnaire, the instrument's Questionnaire as the questionnaire input, restriction.period "
            "the window, output the QuestionnaireResponse and the score Observation once completed. Status: "
            "scheduled requested, due ready, completed completed, declined rejected, missed failed, cancelled "
            "cancelled. Read only: schedules are made with the JSON API."
        ),
    ),
    "Patient": Supported(
        interactions=("read", "create", "update"),
        conditional_create=True,
        update_create=True,
        versioning="no-version",
        documentation=(
            "The id is the API patient id (UUID). Only identifiers are stored. If-None-Exist: identifier=system|value."
        ),
    ),
}
SYSTEM_INTERACTIONS = ("transaction", "batch")
OPERATIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "QuestionnaireResponse": (
        (
            "extract",
            EXTRACT_OPERATION,
            "POST [base]/QuestionnaireResponse/$extract (type level): the body is the QuestionnaireResponse, or "
            "Parameters with one 'questionnaire-response'. Checked and scored as a create; answers a transaction "
            "Bundle of the Observations the server would store (one per score, plus the LOINC panel), storing "
            "nothing. The 'questionnaire' parameter is not taken (the form is resolved as for a create).",
        ),
    ),
}
"""(name, OperationDefinition, documentation) of each operation, by resource type."""


@lru_cache
def capability_statement(software_version: str, base_url: str) -> CapabilityStatement:
    return CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-11-25",
            "kind": "instance",
            "software": {"name": "Compassion Outcomes API", "version": software_version},
            "implementation": {"description": "Compassion Outcomes API FHIR R4 endpoint", "url": base_url},
            "fhirVersion": FHIR_VERSION,
            "format": [FHIR_MEDIA_TYPE, "json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "description": "Authorization: Bearer <API key>; every record belongs to the key's clinic."
                    },
                    "resource": [_resource(name, supported) for name, supported in SUPPORTED.items()],
                    "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
                }
            ],
        }
    )


def _resource(name: str, supported: Supported) -> dict[str, object]:
    resource: dict[str, object] = {
        "type": name,
        "documentation": supported.documentation,
        "interaction": [{"code": code} for code in supported.interactions],
        "versioning": supported.versioning,
        "readHistory": False,
        "updateCreate": supported.update_create,
        "conditionalCreate": supported.conditional_create,
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
    }
    if name in OPERATIONS:
        resource["operation"] = [
            {"name": operation, "definition": definition, "documentation": documentation}
            for operation, definition, documentation in OPERATIONS[name]
        ]
    if supported.search:
        resource["searchParam"] = [
            {"name": search_name, "type": search_type, "documentation": documentation}
            for search_name, search_type, documentation in supported.search
        ]
    return resource
