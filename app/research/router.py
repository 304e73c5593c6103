from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.auth.dependencies import requires
from app.auth.permissions import Permission, Role
from app.auth.service import Principal, clinic_is_synthetic
from app.core.errors import FieldError, InvalidInput, NotFound
from app.core.lifecycle import AppRoute, Db, ReadDb, RecordDb, SettingsDep
from app.core.problems import PROBLEM_RESPONSES
from app.core.state import state_of
from app.idempotency.service import Idempotent
from app.instruments.dependencies import RegistryDep
from app.patients import service as patients
from app.research import codebook, imports, projects, redcap, redcap_records, service
from app.research.dependencies import NDJSON_TYPES, ExportParams, ExportParamsDep, ImportFormatDep, UploadDep
from app.research.export import ExportSpec, with_data
from app.research.models import ResearchConsent, ResearchProject
from app.research.responses import export_response
from app.research.schemas import (
    PROJECT_PATTERN,
    ConsentChange,
    ConsentRead,
    ConsentStatus,
    ExportFormat,
    ExportRecord,
    ImportReport,
    LaggedEffectsRequest,
    LaggedEffectsResponse,
    PatientConsents,
    ProjectConsent,
    ProjectCreate,
    ProjectRead,
    RedcapSetup,
    Withdrawal,
)
from app.research.writers import MEDIA_TYPES

router = APIRouter(route_class=AppRoute, prefix="/v1/research", tags=["research"], responses=PROBLEM_RESPONSES)
patient_router = APIRouter(
    route_class=AppRoute, prefix="/v1/patients/{patient_id}", tags=["research consent"], responses=PROBLEM_RESPONSES
)
me_router = APIRouter(route_class=AppRoute, prefix="/v1/me", tags=["patient tokens"], responses=PROBLEM_RESPONSES)

ProjectName = Annotated[
    str | None,
    Query(
        pattern=PROJECT_PATTERN,
        description=(
            "The research project's name. A key issued for a project works on that project only (leave it out); "
            "an administrator's key names the project."
        ),
    ),
]
IdentifiedProject = Annotated[
    str | None,
    Query(
        pattern=PROJECT_PATTERN,
        description="Only this research project's consenting patients (by default every patient of the clinic).",
    ),
]

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


def _not_redcap(export_format: ExportFormat, message: str) -> None:
    if export_format is ExportFormat.REDCAP:
        allowed = [value.value for value in ExportFormat if value is not ExportFormat.REDCAP]
        raise InvalidInput(
            message, errors=[FieldError(field="format", message=message, value=export_format.value, allowed=allowed)]
        )


def _spec(
    db: Session,
    params: ExportParams,
    registry: RegistryDep,
    principal: Principal,
    *,
    identified: bool,
    project: ResearchProject | None,
) -> ExportSpec:
    return ExportSpec(
        clinic_id=principal.clinic_id,
        definitions=service.select_definitions(registry, params.instruments),
        layout=params.layout,
        level=params.level,
        measured_from=params.measured_from,
        measured_to=params.measured_to,
        identified=identified,
        synthetic=clinic_is_synthetic(db, clinic_id=principal.clinic_id),
        patients=projects.consenting_patient_ids(project) if project is not None else None,
    )


def _project(db: Db | ReadDb, principal: Principal, asked: str | None) -> ResearchProject:
    """The project the caller's de-identified export or analysis is of (``projects.of_key``)."""
    projects.require_researcher_project(principal.role is Role.RESEARCHER, principal.research_project_id)
    return projects.of_key(db, clinic_id=principal.clinic_id, key_project_id=principal.research_project_id, asked=asked)


@router.get("/export", response_class=Response, responses=EXPORT_CONTENT)
def export(
    request: Request,
    params: ExportParamsDep,
    db: Db,
    record_db: RecordDb,
    settings: SettingsDep,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.RESEARCH_EXPORT)],
    project: ProjectName = None,
) -> Response:
    """De-identified export of one research project: its consenting patients only (their status when the rows are
    read), under its own pseudonyms, with relative time only."""
    of = _project(db, principal, project)
    spec = _spec(db, params, registry, principal, identified=False, project=of)
    spec = spec if params.all_instruments else with_data(db, spec)
    pseudonymise = projects.pseudonymiser(of, secret=settings.research_pseudonym_key.get_secret_value())
    if params.export_format is ExportFormat.REDCAP:
        response: Response = redcap_records.records_response(
            sessions=state_of(request).read_sessions, spec=spec, pseudonymise=pseudonymise
        )
    else:
        response = export_response(
            db=db,
            sessions=state_of(request).read_sessions,
            spec=spec,
            export_format=params.export_format,
            pseudonymise=pseudonymise,
        )
    service.record_export(record_db, principal=principal, spec=spec, export_format=params.export_format, project=of)
    return response


@router.get("/export/identified", response_class=Response, responses=EXPORT_CONTENT)
def export_identified(
    request: Request,
    params: ExportParamsDep,
    db: Db,
    record_db: RecordDb,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.RESEARCH_EXPORT_IDENTIFIED)],
    project: IdentifiedProject = None,
) -> Response:
    """Identified export (internal and external ids, UTC times) for administrators; every one is recorded.

    It is the clinic's own record, not a research project's: every patient, unless `project` names a project, when
    only its consenting patients are included."""
    _not_redcap(params.export_format, "REDCap records are de-identified: use GET /v1/research/export?format=redcap")
    of = projects.by_name(db, clinic_id=principal.clinic_id, name=project) if project is not None else None
    spec = _spec(db, params, registry, principal, identified=True, project=of)
    spec = spec if params.all_instruments else with_data(db, spec)
    response = export_response(
        db=db,
        sessions=state_of(request).read_sessions,
        spec=spec,
        export_format=params.export_format,
        pseudonymise=None,
    )
    service.record_export(record_db, principal=principal, spec=spec, export_format=params.export_format, project=of)
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
    project: ProjectName = None,
) -> dict[str, Any]:
    """The export's codebook as a Frictionless Data Package (`datapackage.json`), of the caller's research project
    (named in `researchProject`) unless `identified`: the same columns as the export with the same parameters (only
    instruments with data in the period, unless `all_instruments`). An administrator may leave `project` out: the
    codebook then describes every selected instrument."""
    _not_redcap(params.export_format, "the REDCap export's codebook is GET /v1/research/redcap/data-dictionary")
    if identified:
        principal.require(Permission.RESEARCH_EXPORT_IDENTIFIED)
    # An administrator's key (no project) may read the codebook without naming one: it holds no patient data.
    keyless_admin = principal.role is not Role.RESEARCHER and principal.research_project_id is None
    of = None if identified or (keyless_admin and project is None) else _project(db, principal, project)
    definitions = service.select_definitions(registry, params.instruments)
    if of is not None or identified:  # the same columns as the export with the same parameters
        spec = _spec(db, params, registry, principal, identified=identified, project=of)
        definitions = (spec if params.all_instruments else with_data(db, spec)).definitions
    package = codebook.datapackage(
        layout=params.layout,
        level=params.level,
        export_format=params.export_format,
        definitions=definitions,
        identified=identified,
        synthetic=clinic_is_synthetic(db, clinic_id=principal.clinic_id),
    )
    if of is not None:
        package["researchProject"] = {
            "name": of.name,
            "ethicsReference": of.ethics_reference,
            "consentModel": of.consent_model,
        }
    return package


@router.post("/lagged-effects")
def lagged_effects(
    body: LaggedEffectsRequest,
    db: ReadDb,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.RESEARCH_ANALYSE)],
    project: ProjectName = None,
) -> LaggedEffectsResponse:
    """Within-person lagged effects (change-analytics §4.2), beside the naive pooled ones, on one research
    project's consenting patients."""
    of = _project(db, principal, project)
    return service.lagged_effects(
        db,
        registry,
        clinic_id=principal.clinic_id,
        request=body,
        patients=projects.consenting_patient_ids(of),
    )


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


REDCAP_DICTIONARY: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "REDCap's data dictionary CSV (18 columns).",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.get("/redcap/data-dictionary", response_class=Response, responses=REDCAP_DICTIONARY)
def redcap_data_dictionary(
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.RESEARCH_EXPORT)],
    instruments: Annotated[
        str | None, Query(max_length=500, description="Comma-separated instrument ids; every instrument if omitted.")
    ] = None,
) -> Response:
    """REDCap's data dictionary for `format=redcap` records: a `participant` form holding the record id (the project
    pseudonym), then one repeating form per instrument (time fields, items as radio fields, scores as validated
    text fields). Item wording and option labels only where the instrument's licence lets them ship."""
    definitions = service.select_definitions(
        registry, [name.strip() for name in instruments.split(",")] if instruments else None
    )
    return Response(
        content=redcap.dictionary_csv(definitions),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="redcap-data-dictionary.csv"'},
    )


@router.get("/redcap/setup")
def redcap_setup(
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.RESEARCH_EXPORT)],
    instruments: Annotated[
        str | None, Query(max_length=500, description="Comma-separated instrument ids; every instrument if omitted.")
    ] = None,
) -> RedcapSetup:
    """How to set up the REDCap project the data dictionary and records fit: repeating instruments, missing-data
    codes, import steps."""
    definitions = service.select_definitions(
        registry, [name.strip() for name in instruments.split(",")] if instruments else None
    )
    return redcap.setup(definitions)


def _project_read(project: ResearchProject) -> ProjectRead:
    return ProjectRead.model_validate(project)


@router.post("/projects", status_code=201, response_model=ProjectRead)
def create_project(
    body: ProjectCreate,
    db: Db,
    principal: Annotated[Principal, requires(Permission.RESEARCH_PROJECTS_MANAGE)],
    guard: Idempotent,
) -> Response:
    """A research project an ethics board approved, with its consent model and pseudonyms of its own."""
    project = projects.create(db, clinic_id=principal.clinic_id, body=body, created_by_key_id=principal.key_id)
    return guard.respond(_project_read(project), status_code=201)


@router.get("/projects")
def list_projects(
    db: Db, principal: Annotated[Principal, requires(Permission.RESEARCH_PROJECTS_READ)]
) -> list[ProjectRead]:
    """The clinic's research projects (for a researcher key, its own project only)."""
    rows = projects.list_projects(db, clinic_id=principal.clinic_id)
    if principal.role is Role.RESEARCHER:
        rows = [row for row in rows if row.id == principal.research_project_id]
    return [_project_read(row) for row in rows]


def _visible_project(db: Db, principal: Principal, project_id: uuid.UUID) -> ResearchProject:
    """The clinic's project; for a researcher key, only its own (any other is a 404)."""
    if principal.role is Role.RESEARCHER and project_id != principal.research_project_id:
        raise NotFound(f"no research project {project_id}")
    return projects.get(db, clinic_id=principal.clinic_id, project_id=project_id)


@router.get("/projects/{project_id}")
def get_project(
    project_id: uuid.UUID, db: Db, principal: Annotated[Principal, requires(Permission.RESEARCH_PROJECTS_READ)]
) -> ProjectRead:
    return _project_read(_visible_project(db, principal, project_id))


@router.get("/projects/{project_id}/withdrawals")
def list_withdrawals(
    project_id: uuid.UUID,
    db: Db,
    settings: SettingsDep,
    principal: Annotated[Principal, requires(Permission.RESEARCH_EXPORT)],
) -> list[Withdrawal]:
    """Patients who withdrew (or, under opt-out, objected) after an export of the project could have included them:
    their pseudonym in this project and the date, so that the researcher deletes their rows. Listed while their
    status excludes them; a patient who later consents again leaves the list (and is in the next export)."""
    projects.require_researcher_project(principal.role is Role.RESEARCHER, principal.research_project_id)
    project = _visible_project(db, principal, project_id)
    pseudonymise = projects.pseudonymiser(project, secret=settings.research_pseudonym_key.get_secret_value())
    return [
        Withdrawal(
            pseudonym=pseudonymise(patient_id),
            status=ConsentStatus(row.status),
            recorded_at=row.recorded_at,
            last_export_at=last_export_at,
        )
        for patient_id, row, last_export_at in projects.withdrawals(db, project)
    ]


def _consent_read(row: ResearchConsent) -> ConsentRead:
    return ConsentRead.model_validate(row)


def _patient_consents(db: Db, *, clinic_id: uuid.UUID, patient_id: uuid.UUID) -> PatientConsents:
    rows = projects.history(db, clinic_id=clinic_id, patient_id=patient_id)
    states = []
    for project in projects.list_projects(db, clinic_id=clinic_id):
        status = projects.current_status(rows, project.id)
        states.append(
            ProjectConsent(
                project=_project_read(project),
                status=status,
                included=projects.allows(project.consent_model, status),
            )
        )
    return PatientConsents(projects=states, history=[_consent_read(row) for row in rows])


@patient_router.get("/consents")
def list_consents(
    patient_id: uuid.UUID, db: Db, principal: Annotated[Principal, requires(Permission.CONSENTS_MANAGE)]
) -> PatientConsents:
    """The patient's status for every research project of the clinic, and the full history of their decisions."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    return _patient_consents(db, clinic_id=principal.clinic_id, patient_id=patient_id)


@patient_router.put("/consents/{project_id}")
def record_consent(
    patient_id: uuid.UUID,
    project_id: uuid.UUID,
    body: ConsentChange,
    db: Db,
    principal: Annotated[Principal, requires(Permission.CONSENTS_MANAGE)],
) -> ConsentRead:
    """Record the patient's decision for a project (a new history row: earlier ones are kept)."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    row = projects.change_consent(
        db,
        clinic_id=principal.clinic_id,
        patient_id=patient_id,
        project_id=project_id,
        change=body,
        recorded_by_key_id=principal.key_id,
    )
    return _consent_read(row)


def _own_patient(principal: Principal) -> uuid.UUID:
    if principal.patient_id is None:
        raise InvalidInput("only a patient token has consents of its own; use /v1/patients/{patient_id}/consents")
    return principal.patient_id


@me_router.get("/consents")
def list_own_consents(db: Db, principal: Annotated[Principal, requires(Permission.CONSENTS_OWN)]) -> PatientConsents:
    """For a patient token: its patient's status for every research project of the clinic (with each project's
    purpose and ethics reference), and the history of their decisions."""
    return _patient_consents(db, clinic_id=principal.clinic_id, patient_id=_own_patient(principal))


@me_router.put("/consents/{project_id}")
def record_own_consent(
    project_id: uuid.UUID,
    body: ConsentChange,
    db: Db,
    principal: Annotated[Principal, requires(Permission.CONSENTS_OWN)],
) -> ConsentRead:
    """For a patient token: its patient grants, refuses or withdraws consent for a project."""
    row = projects.change_consent(
        db,
        clinic_id=principal.clinic_id,
        patient_id=_own_patient(principal),
        project_id=project_id,
        change=body,
        recorded_by_key_id=principal.key_id,
    )
    return _consent_read(row)
