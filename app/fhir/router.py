"""FHIR R4 (4.0.1 semantics, ``application/fhir+json``) under ``/fhir``: instruments as Questionnaires, responses in,
scores out as Observations, assessments due as Tasks, patients pushed by EHRs. Errors are OperationOutcomes."""

from __future__ import annotations

import inspect
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request

from app.auth.dependencies import requires
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.auth.smart_tokens import TOKEN_PATH
from app.clinical import measure_reports
from app.core.audit_notes import EntryNote, note_entry
from app.core.db import utcnow
from app.core.lifecycle import Db, ReadDb
from app.core.state import state_of
from app.fhir import (
    bundles,
    extract,
    history,
    questionnaire_responses,
    registered_questionnaires,
    search,
    tasks,
    writes,
)
from app.fhir import measures as fhir_measures
from app.fhir import patients as fhir_patients
from app.fhir.capability import capability_statement, search_openapi
from app.fhir.conditional_create import criteria_in_query
from app.fhir.errors import MethodNotAllowed, UnknownInteraction
from app.fhir.http import (
    FHIR_BODY_OPENAPI,
    FHIR_BODY_RESPONSES,
    FHIR_RESPONSES,
    FHIR_WRITE_RESPONSES,
    NOT_MODIFIED,
    PRECONDITION_FAILED,
    FHIRResponse,
    FhirRoute,
    InstrumentOrLogicalId,
    LogicalId,
    PreferDep,
    fhir_response,
    negotiate_format,
)
from app.fhir.instrument_questionnaires import builtin_definition, questionnaire
from app.fhir.request_body import FhirBody
from app.fhir.search_params import fhir_base, handling_strict, search_request
from app.fhir.validation_pool import ValidationPool
from app.fhir.versioning import IfMatch, IfNoneMatch, VersionId, read_answer, version_of
from app.fhir.write_context import FhirWrite
from app.fhir.writes import remembered, written
from app.idempotency.service import Idempotent
from app.instruments import text
from app.instruments.dependencies import RegistryDep
from app.patients import service as patients

router = APIRouter(
    prefix="/fhir",
    tags=["fhir"],
    route_class=FhirRoute,
    dependencies=[Depends(negotiate_format)],
    responses=FHIR_RESPONSES,
)

IfNoneExist = Annotated[
    str | None,
    Header(alias="If-None-Exist", max_length=700, description="Conditional create: `identifier=[system|]value`."),
]


@router.get("/metadata", response_class=FHIRResponse)
def metadata(request: Request) -> FHIRResponse:
    """The CapabilityStatement: exactly the interactions this server supports (public, for discovery)."""
    base_url = str(request.url_for("metadata")).removesuffix("/metadata")
    token_url = f"{state_of(request).settings.public_base}{TOKEN_PATH}"
    return fhir_response(capability_statement(request.app.version, base_url, token_url))


@router.get("/Questionnaire", response_class=FHIRResponse, openapi_extra=search_openapi("Questionnaire"))
def search_questionnaires(
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_READ)],
    request: Request,
    db: Db,
    registry: RegistryDep,
) -> FHIRResponse:
    """Every instrument as a Questionnaire, and the clinic's registered forms (a searchset Bundle)."""
    return _searched(request, db, registry, principal, "Questionnaire")


@router.get("/Questionnaire/{questionnaire_id}", response_class=FHIRResponse, responses=NOT_MODIFIED)
def read_questionnaire(
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_READ)],
    questionnaire_id: InstrumentOrLogicalId,
    db: Db,
    registry: RegistryDep,
    if_none_match: IfNoneMatch = None,
) -> FHIRResponse:
    """An instrument's Questionnaire (id = instrument id, e.g. `phq9`, `scs-sf`) or a registered form."""
    definition = builtin_definition(registry, questionnaire_id)
    if definition is not None:
        view = text.clinic_view(db, clinic_id=principal.clinic_id, definition=definition)
        resource = questionnaire(definition, view)
        return read_answer(resource, version_of(resource), if_none_match)
    row = registered_questionnaires.get(db, clinic_id=principal.clinic_id, logical_id=questionnaire_id)
    return read_answer(registered_questionnaires.served(row), str(row.version_id), if_none_match)


@router.get(
    "/Questionnaire/{questionnaire_id}/_history/{version_id}", response_class=FHIRResponse, responses=NOT_MODIFIED
)
def vread_questionnaire(
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_READ)],
    questionnaire_id: InstrumentOrLogicalId,
    version_id: VersionId,
    db: Db,
    registry: RegistryDep,
    if_none_match: IfNoneMatch = None,
) -> FHIRResponse:
    """A version of a registered form (the current one, or one an update replaced); of our instruments' own
    Questionnaires, the current version."""
    versions = history.questionnaire_versions(db, registry, clinic_id=principal.clinic_id, logical_id=questionnaire_id)
    found = history.version(versions, version_id, f"Questionnaire/{questionnaire_id}")
    return read_answer(found.resource, found.number, if_none_match)


@router.get("/Questionnaire/{questionnaire_id}/_history", response_class=FHIRResponse)
def questionnaire_history(
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_READ)],
    request: Request,
    questionnaire_id: InstrumentOrLogicalId,
    db: Db,
    registry: RegistryDep,
) -> FHIRResponse:
    """The versions of a Questionnaire, newest first (a history Bundle)."""
    versions = history.questionnaire_versions(db, registry, clinic_id=principal.clinic_id, logical_id=questionnaire_id)
    resource_id = str(versions[0].resource["id"])
    return fhir_response(
        history.bundle(
            versions,
            resource_type="Questionnaire",
            logical_id=resource_id,
            base=fhir_base(request),
            self_url=str(request.url),
        )
    )


@router.post(
    "/Questionnaire",
    status_code=201,
    response_class=FHIRResponse,
    openapi_extra=FHIR_BODY_OPENAPI,
    responses=FHIR_WRITE_RESPONSES,
)
def register_questionnaire(
    principal: Annotated[Principal, requires(Permission.QUESTIONNAIRES_MANAGE)],
    request: Request,
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    guard: Idempotent,
    prefer: PreferDep,
) -> FHIRResponse:
    """Register the clinic's own Questionnaire; its items must map onto one instrument (see CapabilityStatement)."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer, guard=guard)
    return written(write, writes.register_questionnaire(write, data=body.data, text=body.text), base=fhir_base(request))


@router.put(
    "/Questionnaire/{questionnaire_id}",
    response_class=FHIRResponse,
    openapi_extra=FHIR_BODY_OPENAPI,
    responses={**FHIR_WRITE_RESPONSES, **PRECONDITION_FAILED},
)
def put_questionnaire(
    principal: Annotated[Principal, requires(Permission.QUESTIONNAIRES_MANAGE)],
    request: Request,
    questionnaire_id: LogicalId,
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    prefer: PreferDep,
    if_match: IfMatch = None,
) -> FHIRResponse:
    """Create or replace a registered form under the client's id (the body's id must equal the URL's); with
    If-Match, only if it is at that version (412 otherwise)."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer)
    outcome = writes.register_questionnaire(
        write, data=body.data, text=body.text, logical_id=questionnaire_id, if_match=if_match
    )
    return written(write, outcome, base=fhir_base(request))


@router.post(
    "/QuestionnaireResponse",
    status_code=201,
    response_class=FHIRResponse,
    openapi_extra=FHIR_BODY_OPENAPI,
    responses={**FHIR_WRITE_RESPONSES, **PRECONDITION_FAILED},
)
def create_questionnaire_response(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    request: Request,
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    guard: Idempotent,
    prefer: PreferDep,
    if_none_exist: IfNoneExist = None,
) -> FHIRResponse:
    """Score a completed response on the server and store it as a measurement (200 if If-None-Exist matched)."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer, guard=guard)
    if_none_exist = if_none_exist or criteria_in_query(request.query_params.multi_items())
    outcome = writes.create_response(write, data=body.data, text=body.text, if_none_exist=if_none_exist)
    return written(write, outcome, base=fhir_base(request))


@router.put(
    "/QuestionnaireResponse/{response_id}",
    response_class=FHIRResponse,
    openapi_extra=FHIR_BODY_OPENAPI,
    responses={**FHIR_WRITE_RESPONSES, **PRECONDITION_FAILED},
)
def put_questionnaire_response(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    request: Request,
    response_id: LogicalId,
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    prefer: PreferDep,
    if_match: IfMatch = None,
) -> FHIRResponse:
    """Store a response under the client's id; resending it stores nothing new, changing it amends the measurement.
    With If-Match, only if the response is at that version (412 otherwise)."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer)
    outcome = writes.put_response(write, logical_id=response_id, data=body.data, text=body.text, if_match=if_match)
    return written(write, outcome, base=fhir_base(request))


@router.post(
    "/QuestionnaireResponse/$extract",
    response_class=FHIRResponse,
    openapi_extra=FHIR_BODY_OPENAPI,
    responses=FHIR_BODY_RESPONSES,
)
def extract_observations(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    body: FhirBody,
    db: ReadDb,
    registry: RegistryDep,
) -> FHIRResponse:
    """SDC `$extract`: the Observations a response (or Parameters holding one) would yield, as a transaction Bundle;
    checked and scored as a create, nothing stored."""
    write = FhirWrite(db=db, registry=registry, principal=principal)
    return fhir_response(extract.extract(write, body.data))


@router.get("/QuestionnaireResponse/{response_id}", response_class=FHIRResponse, responses=NOT_MODIFIED)
def read_questionnaire_response(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    response_id: LogicalId,
    db: Db,
    if_none_match: IfNoneMatch = None,
) -> FHIRResponse:
    """A stored response as received, under its server id and version."""
    row = questionnaire_responses.get(db, clinic_id=principal.clinic_id, logical_id=response_id)
    return read_answer(questionnaire_responses.served(row), str(row.version_id), if_none_match)


@router.get(
    "/QuestionnaireResponse/{response_id}/_history/{version_id}", response_class=FHIRResponse, responses=NOT_MODIFIED
)
def vread_questionnaire_response(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    response_id: LogicalId,
    version_id: VersionId,
    db: Db,
    if_none_match: IfNoneMatch = None,
) -> FHIRResponse:
    """A version of a response as received: the current one, or one an update replaced."""
    versions = history.response_versions(db, clinic_id=principal.clinic_id, logical_id=response_id)
    found = history.version(versions, version_id, f"QuestionnaireResponse/{response_id}")
    return read_answer(found.resource, found.number, if_none_match)


@router.get("/QuestionnaireResponse/{response_id}/_history", response_class=FHIRResponse)
def questionnaire_response_history(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    request: Request,
    response_id: LogicalId,
    db: Db,
) -> FHIRResponse:
    """The versions of a response, newest first (a history Bundle)."""
    versions = history.response_versions(db, clinic_id=principal.clinic_id, logical_id=response_id)
    return fhir_response(
        history.bundle(
            versions,
            resource_type="QuestionnaireResponse",
            logical_id=response_id,
            base=fhir_base(request),
            self_url=str(request.url),
        )
    )


@router.get(
    "/QuestionnaireResponse", response_class=FHIRResponse, openapi_extra=search_openapi("QuestionnaireResponse")
)
def search_questionnaire_responses(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    request: Request,
    db: Db,
    registry: RegistryDep,
) -> FHIRResponse:
    """The clinic's stored responses, oldest first, as received (a searchset Bundle)."""
    return _searched(request, db, registry, principal, "QuestionnaireResponse")


@router.get("/Observation", response_class=FHIRResponse, openapi_extra=search_openapi("Observation"))
def search_observations(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    request: Request,
    db: Db,
    registry: RegistryDep,
) -> FHIRResponse:
    """Score Observations (and PHQ-9/GAD-7 panels) of a patient's current measurements, as a searchset Bundle."""
    return _searched(request, db, registry, principal, "Observation")


@router.get("/Observation/{observation_id}", response_class=FHIRResponse, responses=NOT_MODIFIED)
def read_observation(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    observation_id: LogicalId,
    db: Db,
    registry: RegistryDep,
    if_none_match: IfNoneMatch = None,
) -> FHIRResponse:
    """One score (or panel) Observation of a stored measurement (its version is the measurement's)."""
    observation = search.observation(db, registry, clinic_id=principal.clinic_id, observation_id=observation_id)
    return read_answer(observation, version_of(observation), if_none_match)


@router.get("/Observation/{observation_id}/_history/{version_id}", response_class=FHIRResponse, responses=NOT_MODIFIED)
def vread_observation(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    observation_id: LogicalId,
    version_id: VersionId,
    db: Db,
    registry: RegistryDep,
    if_none_match: IfNoneMatch = None,
) -> FHIRResponse:
    """The Observation as it was in a version of its measurement (amendments keep every version)."""
    versions = history.observation_versions(db, registry, clinic_id=principal.clinic_id, observation_id=observation_id)
    found = history.version(versions, version_id, f"Observation/{observation_id}")
    return read_answer(found.resource, found.number, if_none_match)


@router.get("/Observation/{observation_id}/_history", response_class=FHIRResponse)
def observation_history(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    request: Request,
    observation_id: LogicalId,
    db: Db,
    registry: RegistryDep,
) -> FHIRResponse:
    """The Observation in each version of its measurement, newest first (a history Bundle)."""
    versions = history.observation_versions(db, registry, clinic_id=principal.clinic_id, observation_id=observation_id)
    return fhir_response(
        history.bundle(
            versions,
            resource_type="Observation",
            logical_id=observation_id,
            base=fhir_base(request),
            self_url=str(request.url),
        )
    )


@router.get("/Task", response_class=FHIRResponse, openapi_extra=search_openapi("Task"))
def search_tasks(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    request: Request,
    db: Db,
    registry: RegistryDep,
) -> FHIRResponse:
    """A patient's assessments as SDC Tasks (complete-questionnaire), oldest window first, with the status of now."""
    return _searched(request, db, registry, principal, "Task")


@router.get("/Task/{task_id}", response_class=FHIRResponse, responses=NOT_MODIFIED)
def read_task(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    task_id: LogicalId,
    db: Db,
    registry: RegistryDep,
    if_none_match: IfNoneMatch = None,
) -> FHIRResponse:
    """One assessment as an SDC Task (the id is the assessment's id; its version a digest of the Task as of now)."""
    task = tasks.read(db, registry, clinic_id=principal.clinic_id, task_id=task_id, now=utcnow())
    return read_answer(task, version_of(task), if_none_match)


@router.get("/Patient", response_class=FHIRResponse, openapi_extra=search_openapi("Patient"))
def search_patients(
    principal: Annotated[Principal, requires(Permission.PATIENTS_READ)],
    request: Request,
    db: Db,
    registry: RegistryDep,
) -> FHIRResponse:
    """The clinic's patients by identifier (`system|value`), as a searchset Bundle."""
    return _searched(request, db, registry, principal, "Patient")


def _searched(
    request: Request, db: Db, registry: RegistryDep, principal: Principal, resource_type: str
) -> FHIRResponse:
    """Run a search; the patients a page shows beyond the one its query names are each audited (an entry note)."""
    context = search.SearchContext(db=db, registry=registry, principal=principal, now=utcnow())
    searched = search.run(context, search_request(request, resource_type, base=fhir_base(request)))
    if resource_type in ("Patient", "QuestionnaireResponse"):
        for index, patient_id in enumerate(dict.fromkeys(searched.patients)):
            note_entry(db, EntryNote(index, 200, "GET", resource_type, None, patient_id))
    return fhir_response(searched.bundle)


@router.get("/Patient/{patient_id}", response_class=FHIRResponse, responses=NOT_MODIFIED)
def read_patient(
    principal: Annotated[Principal, requires(Permission.PATIENTS_READ)],
    patient_id: LogicalId,
    db: Db,
    if_none_match: IfNoneMatch = None,
) -> FHIRResponse:
    """A patient of the caller's clinic (the id is the API patient id), with its identifiers (its version a digest
    of them)."""
    patient = fhir_patients.to_fhir(fhir_patients.get(db, principal=principal, logical_id=patient_id))
    return read_answer(patient, version_of(patient), if_none_match)


@router.post(
    "/Patient",
    status_code=201,
    response_class=FHIRResponse,
    openapi_extra=FHIR_BODY_OPENAPI,
    responses={**FHIR_WRITE_RESPONSES, **PRECONDITION_FAILED},
)
def create_patient(
    principal: Annotated[Principal, requires(Permission.PATIENTS_WRITE)],
    request: Request,
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    guard: Idempotent,
    prefer: PreferDep,
    if_none_exist: IfNoneExist = None,
) -> FHIRResponse:
    """Register a patient from its identifiers (200 with the existing one if If-None-Exist matched)."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer, guard=guard)
    if_none_exist = if_none_exist or criteria_in_query(request.query_params.multi_items())
    outcome = writes.create_patient(write, data=body.data, if_none_exist=if_none_exist)
    return written(write, outcome, base=fhir_base(request))


@router.put(
    "/Patient/{patient_id}",
    response_class=FHIRResponse,
    openapi_extra=FHIR_BODY_OPENAPI,
    responses={**FHIR_WRITE_RESPONSES, **PRECONDITION_FAILED},
)
def put_patient(
    principal: Annotated[Principal, requires(Permission.PATIENTS_WRITE)],
    request: Request,
    patient_id: LogicalId,
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    prefer: PreferDep,
    if_match: IfMatch = None,
) -> FHIRResponse:
    """Create the patient under this id, or make the body's identifiers its complete set; with If-Match, only if
    it is at that version (412 otherwise)."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer)
    outcome = writes.put_patient(write, logical_id=patient_id, data=body.data, if_match=if_match)
    return written(write, outcome, base=fhir_base(request))


@router.post("", response_class=FHIRResponse, openapi_extra=FHIR_BODY_OPENAPI, responses=FHIR_WRITE_RESPONSES)
@router.post("/", response_class=FHIRResponse, include_in_schema=False)
def process_bundle(
    request: Request,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    guard: Idempotent,
    prefer: PreferDep,
) -> FHIRResponse:
    """A `transaction` (all or nothing) or `batch` (each entry on its own) Bundle of POST/PUT entries, and GET entries
    (reads and searches, answered last). Posted to the base, with or without a trailing slash."""
    validation = state_of(request).part(ValidationPool)
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer, guard=guard, validation=validation)
    reads = bundles.Reads(base=fhir_base(request), strict=handling_strict(request), now=utcnow())
    return remembered(guard, bundles.process(write, body.data, reads=reads), 200, {})


FHIR_DATE = r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$"
"""A FHIR ``date`` (YYYY, YYYY-MM or YYYY-MM-DD), as the OpenAPI document declares it."""


@router.get("/Measure/{measure_id}", response_class=FHIRResponse, responses=NOT_MODIFIED)
def read_measure(
    principal: Annotated[Principal, requires(Permission.OUTCOMES_READ)],
    measure_id: LogicalId,
    if_none_match: IfNoneMatch = None,
) -> FHIRResponse:
    """A depression quality measure as a Measure: its populations, its source and what it leaves out."""
    resource = fhir_measures.measure_resource(measure_reports.resolve(measure_id))
    return read_answer(resource, version_of(resource), if_none_match)


@router.get("/Measure/{measure_id}/$evaluate-measure", response_class=FHIRResponse)
def evaluate_measure(
    principal: Annotated[Principal, requires(Permission.OUTCOMES_READ)],
    measure_id: LogicalId,
    db: Db,
    period_start: Annotated[
        str, Query(alias="periodStart", pattern=FHIR_DATE, description="A FHIR date: YYYY, YYYY-MM or YYYY-MM-DD.")
    ],
    period_end: Annotated[
        str, Query(alias="periodEnd", pattern=FHIR_DATE, description="A FHIR date; its last day is included.")
    ],
    report_type: Annotated[
        str | None,
        Query(
            alias="reportType",
            max_length=20,
            description="`population` (or `summary`), `subject-list`, or `subject` (or `individual`) with `subject`.",
        ),
    ] = None,
    subject: Annotated[
        str | None, Query(max_length=100, description="Patient/<id>: the patient of a `subject` report.")
    ] = None,
) -> FHIRResponse:
    """The measure over the clinic's PHQ-9 totals as a MeasureReport: summary, subject-list (the patients of each
    population) or one patient's individual report."""
    measure = measure_reports.resolve(measure_id)
    kind = fhir_measures.report_type(report_type, subject=subject)
    measured = measure_reports.period(
        fhir_measures.period_day("periodStart", period_start, end=False),
        fhir_measures.period_day("periodEnd", period_end, end=True),
        fields=("periodStart", "periodEnd"),
    )
    patient_id = fhir_measures.subject_id(subject) if subject is not None else None
    if patient_id is not None:
        patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    result = measure_reports.evaluate_for_clinic(
        db, clinic_id=principal.clinic_id, measure=measure, measured=measured, patient_id=patient_id
    )
    if kind is fhir_measures.ReportType.SUBJECT_LIST:
        measure_reports.note_named(db, [outcome.patient_id for outcome in result.outcomes])
    evaluation = fhir_measures.Evaluation(result=result, kind=kind, now=utcnow(), subject=patient_id)
    return fhir_response(fhir_measures.measure_report(evaluation))


METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


@router.api_route("", methods=[m for m in METHODS if m != "POST"], include_in_schema=False)
@router.api_route("/{path:path}", methods=METHODS, include_in_schema=False)
def unsupported(request: Request) -> FHIRResponse:
    """Anything else under /fhir: 405 where the path exists with other methods, else 404 (OperationOutcome)."""
    path = request.url.path
    allowed = sorted(
        {
            method
            for route in router.routes
            if not _is_catch_all(route) and route.path_regex.match(path)  # type: ignore[attr-defined]
            for method in getattr(route, "methods", ())
        }
    )
    if allowed:
        raise MethodNotAllowed(f"{request.method} {path} is not supported", headers={"Allow": ", ".join(allowed)})
    raise UnknownInteraction(f"{request.method} {path} is not supported by this server; see /fhir/metadata")


def _is_catch_all(route: object) -> bool:
    """``unsupported``'s own routes (their endpoint is the wrapper AppRoute puts around it)."""
    endpoint = getattr(route, "endpoint", None)
    return endpoint is not None and inspect.unwrap(endpoint) is unsupported
