"""``GET /fhir/metadata``: the CapabilityStatement, listing exactly the interactions the router serves."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from app.fhir.codes import EVALUATE_MEASURE_OPERATION, EXTRACT_OPERATION, FHIR_MEDIA_TYPE, FHIR_VERSION

SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE_SYSTEM = "http://terminology.hl7.org/CodeSystem/restful-security-service"


@dataclass(frozen=True)
class Supported:
    interactions: tuple[str, ...]
    search: tuple[tuple[str, str, str], ...] = ()
    """(name, type, documentation) of each search parameter."""
    conditional_create: bool = False
    update_create: bool = False
    versioning: str = "versioned"
    """``versioned``: every read carries ``meta.versionId`` and the same ``ETag`` (``If-None-Match`` answers 304);
    ``versioned-update``: updates also honour ``If-Match`` (412 on another version). See ``app.fhir.versioning``."""
    read_history: bool = False
    """vread can return past versions, not only the current one."""
    documentation: str = ""


DATES = (
    "Prefixes eq, ne, gt, lt, ge, le, sa, eb (ap is refused); a year to fractions of a second; no zone means UTC; "
    "repeat the parameter for a range (date=ge2026-11-01&date=lt2026-12-01)."
)
PATIENT_REFERENCE = "Patient/<id>, <id>, or <this server's base>/Patient/<id>; comma-separated: any of them."
PAGING: tuple[tuple[str, str, str], ...] = (
    ("_count", "number", "Page size, 0 (the total only) to 500; a larger count is capped at 500. Default 100."),
    ("_offset", "number", "Results to skip; the next and previous links carry it."),
    ("_summary", "token", "Only count: the total, no entries."),
)
SEARCH_RULES = (
    "Searches list the parameters they applied in the self link. An unsupported parameter or modifier is ignored "
    "and reported in an OperationOutcome entry (search.mode outcome), or refused with 400 under "
    "Prefer: handling=strict."
)

SUPPORTED: dict[str, Supported] = {
    "Questionnaire": Supported(
        interactions=("read", "vread", "search-type", "create", "update", "history-instance"),
        search=(
            ("url", "uri", "Canonical URL, optionally url|version."),
            ("version", "token", "The business version; comma-separated: any of them."),
            ("code", "token", "[system|]code of the form (a LOINC panel code); comma-separated: any of them."),
            *PAGING,
        ),
        update_create=True,
        versioning="versioned-update",
        read_history=True,
        documentation=(
            "Every instrument as a Questionnaire (id = instrument id, '_' written '-'), plus the clinic's own forms. "
            "A registered form's items must map onto one instrument by their LOINC item codes, the server's list of "
            "known public forms, or the extension urn:compassion-outcomes:fhir:item-map. Versions: a registered "
            "form's count its updates and are kept for vread and _history; an instrument's Questionnaire has one "
            "version, a digest of its content (it changes with the clinic's item text), and no history."
        ),
    ),
    "QuestionnaireResponse": Supported(
        interactions=("read", "vread", "search-type", "create", "update", "history-instance"),
        search=(
            ("subject", "reference", PATIENT_REFERENCE),
            ("patient", "reference", PATIENT_REFERENCE),
            (
                "questionnaire",
                "reference",
                "The canonical the response names, as sent (url|version, or url: any version).",
            ),
            ("authored", "date", DATES),
            ("identifier", "token", "[system|]value of the response's identifier."),
            *PAGING,
        ),
        conditional_create=True,
        update_create=True,
        versioning="versioned-update",
        read_history=True,
        documentation=(
            "Scored on the server into a measurement (source fhir); kept verbatim. If-None-Exist (or the search "
            "parameters of a POST's URL): identifier=[system|]value. A declared total is stored and compared, never "
            "used. An update amends the measurement; the version it replaced is kept for vread and _history."
        ),
    ),
    "Observation": Supported(
        interactions=("read", "vread", "search-type", "history-instance"),
        read_history=True,
        search=(
            ("subject", "reference", f"{PATIENT_REFERENCE} subject or patient is required."),
            ("patient", "reference", f"{PATIENT_REFERENCE} subject or patient is required."),
            ("code", "token", "[system|]code: a score's LOINC or product code, or a panel's LOINC code."),
            ("date", "date", f"effectiveDateTime (when the instrument was answered). {DATES}"),
            ("_lastUpdated", "date", f"meta.lastUpdated (when the score's version was stored). {DATES}"),
            ("_sort", "special", "date (oldest first, the default) or -date (newest first)."),
            *PAGING,
        ),
        documentation=(
            "Derived from stored measurements: one per score, plus the LOINC panel (PHQ-9, GAD-7). The version is "
            "the measurement's: every version of an amended measurement is kept, for vread and _history."
        ),
    ),
    "Task": Supported(
        interactions=("read", "search-type"),
        search=(
            ("patient", "reference", f"{PATIENT_REFERENCE} Required."),
            (
                "status",
                "token",
                "Task status codes, comma-separated (any of them): requested, ready, completed, "
                "rejected, failed, cancelled.",
            ),
            *PAGING,
        ),
        documentation=(
            "A patient's assessments (one instrument due in one window of a schedule) as SDC Tasks (sdc-task): code "
            "complete-questionnaire, the instrument's Questionnaire as the questionnaire input, restriction.period "
            "the window, output the QuestionnaireResponse and the score Observation once completed. Status: "
            "scheduled requested, due ready, completed completed, declined rejected, missed failed, cancelled "
            "cancelled. Read only: schedules are made with the JSON API. The version is a digest of the Task as of "
            "now (its status changes with time); no history is kept."
        ),
    ),
    "Patient": Supported(
        interactions=("read", "search-type", "create", "update"),
        search=(
            ("identifier", "token", "system|value, or a bare value (any system); required."),
            *PAGING,
        ),
        conditional_create=True,
        update_create=True,
        versioning="versioned-update",
        documentation=(
            "The id is the API patient id (UUID). Only identifiers are stored. If-None-Exist (or the search "
            "parameters of a POST's URL): identifier=system|value. The version is a digest of the identifiers; no "
            "history is kept."
        ),
    ),
    "Measure": Supported(
        interactions=("read",),
        documentation=(
            "The depression quality measures (ids depression-remission-12m: CMS159's logic; depression-response-6m: "
            "in the style of HEDIS DRR-E), computed from stored PHQ-9 totals only: diagnoses, encounters, age and "
            "exclusions are not applied (see each Measure's disclaimer). The version is a digest of the Measure; no "
            "history is kept. Admin and clinician keys (outcomes:read)."
        ),
    ),
}
SYSTEM_INTERACTIONS = ("transaction", "batch")
SYSTEM_DOCUMENTATION = (
    "POST to the base (with or without a trailing slash). Entries: POST and PUT of Patient, Questionnaire and "
    "QuestionnaireResponse; GET of the reads and searches this statement lists, each answered in its own entry."
)


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
    "Measure": (
        (
            "evaluate-measure",
            EVALUATE_MEASURE_OPERATION,
            "GET [base]/Measure/[id]/$evaluate-measure?periodStart=&periodEnd=&reportType= (instance level): "
            "periodStart and periodEnd are FHIR dates (YYYY, YYYY-MM or YYYY-MM-DD; the end's last day included). "
            "reportType population (or summary): a summary MeasureReport; subject-list: the same, each population's "
            "patients as a contained List; subject (or individual) with subject=Patient/<id>: that patient's "
            "individual report. One group per rate, each with initial-population, denominator and numerator counts "
            "and measureScore. No DEQM profile is claimed. Other parameters (measure, url, practitioner, "
            "lastReceivedOn) are not taken.",
        ),
    ),
}
"""(name, OperationDefinition, documentation) of each operation, by resource type."""


@lru_cache
def capability_statement(software_version: str, base_url: str, token_url: str | None = None) -> CapabilityStatement:
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
                    "security": _security(token_url),
                    "resource": [_resource(name, supported) for name, supported in SUPPORTED.items()],
                    "interaction": [
                        {"code": code, "documentation": SYSTEM_DOCUMENTATION} for code in SYSTEM_INTERACTIONS
                    ],
                }
            ],
        }
    )


def search_openapi(resource_type: str) -> dict[str, object]:
    """The OpenAPI query parameters of a type's search, from the claims above (one source for both)."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": documentation,
                "schema": {"type": "integer", "minimum": 0} if kind == "number" else {"type": "string"},
            }
            for name, kind, documentation in SUPPORTED[resource_type].search
        ]
    }


def _security(token_url: str | None) -> dict[str, object]:
    """API keys, and SMART Backend Services when the token endpoint is given (the ``oauth-uris`` extension)."""
    if token_url is None:
        return {"description": "Authorization: Bearer <API key>; every record belongs to the key's clinic."}
    return {
        "extension": [
            {"url": SMART_OAUTH_URIS, "extension": [{"url": "token", "valueUri": token_url}]},
        ],
        "service": [{"coding": [{"system": SECURITY_SERVICE_SYSTEM, "code": "SMART-on-FHIR"}]}],
        "description": (
            "Authorization: Bearer <API key>, or a SMART Backend Services access token (client_credentials with a "
            "private_key_jwt assertion, RS384 or ES384; see .well-known/smart-configuration) limited to its system "
            "scopes; every record belongs to the key's or client's clinic."
        ),
    }


def _resource(name: str, supported: Supported) -> dict[str, object]:
    resource: dict[str, object] = {
        "type": name,
        "documentation": f"{supported.documentation} {SEARCH_RULES}" if supported.search else supported.documentation,
        "interaction": [{"code": code} for code in supported.interactions],
        "versioning": supported.versioning,
        "readHistory": supported.read_history,
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
