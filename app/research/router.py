from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.auth.dependencies import requires
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.core.lifecycle import AppRoute, Db, ReadDb, RecordDb, SettingsDep
from app.core.problems import PROBLEM_RESPONSES
from app.core.state import state_of
from app.idempotency.service import Idempotent
from app.instruments.dependencies import RegistryDep
from app.research import codebook, imports, service
from app.research.dependencies import NDJSON_TYPES, ExportParams, ExportParamsDep, ImportFormatDep, UploadDep
from app.research.export import ExportSpec, with_data
from app.research.pseudonyms import DEFAULT_PROJECT, Pseudonymiser
from app.research.responses import export_response
from app.research.schemas import (
    PROJECT_PATTERN,
    ExportFormat,
    ExportRecord,
    ImportReport,
    LaggedEffectsRequest,
    LaggedEffectsResponse,
)
from app.research.writers import MEDIA_TYPES

router = APIRouter(route_class=AppRoute, prefix="/v1/research", tags=["research"], responses=PROBLEM_RESPONSES)

BINARY_FILE: dict[str, Any] = {"type": "string", "format": "binary"}
BINARY_FORMATS = (ExportFormat.PARQUET, ExportFormat.SAV, ExportFormat.DTA)
NDJSON = "application/x-ndjson"
EXPORT_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "The export file in the `format` asked for, under that format's own media type (CSV and Parquet are "
            "streamed). Parquet, SPSS and Stata files are binary: read the body as bytes, never as text (a client "
            "generated with openapi-python-client: `sync_detailed(...).content`). CSV is UTF-8 with a header row."
        ),
        # The binary formats first: a generator that maps their media types to bytes (openapi-python-client's
        # `content_type_overrides`) takes the first one it knows. CSV has no schema, so that a generator that knows
        # only `text/*` does not decode every format as text.
        "content": {
            **{MEDIA_TYPES[binary]: {"schema": BINARY_FILE} for binary in BINARY_FORMATS},
            MEDIA_TYPES[ExportFormat.CSV].split(";")[0]: {},
        },
    }
}


def _spec(params: ExportParams, registry: RegistryDep, principal: Principal, *, identified: bool) -> ExportSpec:
    return ExportSpec(
        clinic_id=principal.clinic_id,
        definitions=service.select_definitions(registry, params.instruments),
        layout=params.layout,
        level=params.level,
        measured_from=params.measured_from,
        measured_to=params.measured_to,
        identified=identified,
    )


@router.get("/export", response_class=Response, responses=EXPORT_CONTENT)
def export(
    request: Request,
    params: ExportParamsDep,
    db: Db,
    record_db: RecordDb,
    settings: SettingsDep,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.RESEARCH_EXPORT)],
    project: Annotated[
        str,
        Query(
            pattern=PROJECT_PATTERN,
            description="Research project: pseudonyms are stable within a project and differ between projects.",
        ),
    ] = DEFAULT_PROJECT,
) -> Response:
    """De-identified export of the clinic's current measurements (pseudonymous ids, relative time only)."""
    spec = _spec(params, registry, principal, identified=False)
    spec = spec if params.all_instruments else with_data(db, spec)
    pseudonymise = Pseudonymiser(
        secret=settings.research_pseudonym_key.get_secret_value(), project=project, clinic_id=principal.clinic_id
    )
    response = export_response(
        db=db,
        sessions=state_of(request).read_sessions,
        spec=spec,
        export_format=params.export_format,
        pseudonymise=pseudonymise,
    )
    service.record_export(
        record_db, principal=principal, spec=spec, export_format=params.export_format, project=project
    )
    return response


@router.get("/export/identified", response_class=Response, responses=EXPORT_CONTENT)
def export_identified(
    request: Request,
    params: ExportParamsDep,
    db: Db,
    record_db: RecordDb,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.RESEARCH_EXPORT_IDENTIFIED)],
) -> Response:
    """Identified export (internal and external ids, UTC times) for administrators; every one is recorded."""
    spec = _spec(params, registry, principal, identified=True)
    spec = spec if params.all_instruments else with_data(db, spec)
    response = export_response(
        db=db,
        sessions=state_of(request).read_sessions,
        spec=spec,
        export_format=params.export_format,
        pseudonymise=None,
    )
    service.record_export(record_db, principal=principal, spec=spec, export_format=params.export_format, project=None)
    return response


@router.get("/exports")
def list_exports(
    db: Db,
    principal: Annotated[Principal, requires(Permission.RESEARCH_EXPORT_IDENTIFIED)],
    identified: Annotated[bool, Query(description="Only identified exports.")] = False,
) -> list[ExportRecord]:
    """The clinic's record of research exports: who, when, with which parameters."""
    rows = service.list_exports(db, clinic_id=principal.clinic_id, identified_only=identified)
    return [ExportRecord.model_validate(row, from_attributes=True) for row in rows]


@router.get("/codebook")
def get_codebook(
    params: ExportParamsDep,
    db: ReadDb,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.RESEARCH_EXPORT)],
    identified: Annotated[bool, Query(description="Describe the identified export's columns.")] = False,
) -> dict[str, Any]:
    """The export's codebook as a Frictionless Data Package (`datapackage.json`): the same columns as the export
    with the same parameters (only instruments with data in the period, unless `all_instruments`)."""
    if identified:
        principal.require(Permission.RESEARCH_EXPORT_IDENTIFIED)
    spec = _spec(params, registry, principal, identified=identified)
    spec = spec if params.all_instruments else with_data(db, spec)
    return codebook.datapackage(
        layout=params.layout,
        level=params.level,
        export_format=params.export_format,
        definitions=spec.definitions,
        identified=identified,
    )


@router.post("/lagged-effects")
def lagged_effects(
    body: LaggedEffectsRequest,
    db: ReadDb,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.RESEARCH_ANALYSE)],
) -> LaggedEffectsResponse:
    """Within-person lagged effects on the clinic's data (change-analytics §4.2), beside the naive pooled ones."""
    return service.lagged_effects(db, registry, clinic_id=principal.clinic_id, request=body)


@router.post(
    "/imports",
    status_code=201,
    response_model=ImportReport,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": (
                "The file. CSV (`text/csv`): a header row naming `external_id`, `instrument`, `measured_at` (ISO 8601 "
                "with a time zone), optionally `session_number` and `declared_total`, and the answers as `item_1`, "
                "`item_2`, … (an empty cell is an unanswered item). NDJSON (`application/x-ndjson` or another of its "
                "names): one JSON object per line with the same fields and the answers as an `items` object, as in "
                "`POST /v1/patients/{patient_id}/measurements`. `?format=` overrides the Content-Type."
            ),
            "content": {
                media_type: {"schema": {"type": "string"}}
                for media_type in ("text/csv", NDJSON, *sorted(NDJSON_TYPES - {NDJSON}))
            },
        }
    },
)
def import_measurements(
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_IMPORT)],
    guard: Idempotent,
    content: UploadDep,
    import_format: ImportFormatDep,
    create_patients: Annotated[
        bool, Query(description="Create patients for unknown external ids (needs patients:write).")
    ] = False,
) -> Response:
    """Import measurements from CSV or NDJSON, scored like single posts; one rejected row rejects the file.

    Needs patients:read as well: rows name patients by the clinic's identifiers, and the report says which are
    unknown and which measurements already exist (researchers, who see only de-identified data, never import).
    """
    principal.require(Permission.PATIENTS_READ)
    if create_patients:
        principal.require(Permission.PATIENTS_WRITE)
    report = imports.import_file(
        db,
        registry,
        clinic_id=principal.clinic_id,
        content=content,
        import_format=import_format,
        create_patients=create_patients,
        recorded_by_key_id=principal.key_id,
    )
    return guard.respond(report, status_code=201)
