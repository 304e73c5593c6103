"""FHIR R4 (4.0.1 semantics, ``application/fhir+json``) under ``/fhir``: instruments as Questionnaires, responses in,
scores out as Observations, assessments due as Tasks, patients pushed by EHRs. Errors are OperationOutcomes."""

from __future__ import annotations

import inspect
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request

from app.auth.dependencies import requires
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.core.db import utcnow
from app.core.lifecycle import Db, ReadDb
from app.core.state import state_of
from app.fhir import bundles, extract, questionnaire_responses, registered_questionnaires, search, tasks, writes
from app.fhir import patients as fhir_patients
from app.fhir.capability import capability_statement
from app.fhir.errors import MethodNotAllowed, UnknownInteraction
from app.fhir.http import (
    FHIR_BODY_OPENAPI,
    FHIR_RESPONSES,
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
from app.fhir.validation_pool import ValidationPool
from app.fhir.write_context import FhirWrite
from app.fhir.writes import remembered, written
from app.idempotency.service import Idempotent
from app.instruments import text
from app.instruments.dependencies import RegistryDep

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
    return fhir_response(
        capability_statement(request.app.version, str(request.url_for("metadata")).removesuffix("/metadata"))
    )


@router.get("/Questionnaire", response_class=FHIRResponse)
def search_questionnaires(
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_READ)],
    db: Db,
    registry: RegistryDep,
    url: Annotated[str | None, Query(max_length=600, description="Canonical url, optionally `url|version`.")] = None,
) -> FHIRResponse:
    """Every instrument as a Questionnaire, and the clinic's registered forms (a searchset Bundle)."""
    resources = search.questionnaires(db, registry, clinic_id=principal.clinic_id, url=url)
    return fhir_response({"resourceType": "Bundle", "type": "searchset", "total": len(resources), "entry": resources})


@router.get("/Questionnaire/{questionnaire_id}", response_class=FHIRResponse)
def read_questionnaire(
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_READ)],
    questionnaire_id: InstrumentOrLogicalId,
    db: Db,
    registry: RegistryDep,
) -> FHIRResponse:
    """An instrument's Questionnaire (id = instrument id, e.g. `phq9`, `scs-sf`) or a registered form."""
    definition = builtin_definition(registry, questionnaire_id)
    if definition is not None:
        view = text.clinic_view(db, clinic_id=principal.clinic_id, definition=definition)
        return fhir_response(questionnaire(definition, view), headers={"ETag": f'W/"{definition.version}"'})
    row = registered_questionnaires.get(db, clinic_id=principal.clinic_id, logical_id=questionnaire_id)
    return fhir_response(registered_questionnaires.served(row), headers={"ETag": f'W/"{row.version_id}"'})


@router.post("/Questionnaire", status_code=201, response_class=FHIRResponse, openapi_extra=FHIR_BODY_OPENAPI)
def register_questionnaire(
    principal: Annotated[Principal, requires(Permission.QUESTIONNAIRES_MANAGE)],
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    guard: Idempotent,
    prefer: PreferDep,
) -> FHIRResponse:
    """Register the clinic's own Questionnaire; its items must map onto one instrument (see CapabilityStatement)."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer, guard=guard)
    return written(write, writes.register_questionnaire(write, data=body.data, text=body.text))


@router.put("/Questionnaire/{questionnaire_id}", response_class=FHIRResponse, openapi_extra=FHIR_BODY_OPENAPI)
def put_questionnaire(
    principal: Annotated[Principal, requires(Permission.QUESTIONNAIRES_MANAGE)],
    questionnaire_id: LogicalId,
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    prefer: PreferDep,
) -> FHIRResponse:
    """Create or replace a registered form under the client's id (the body's id must equal the URL's)."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer)
    outcome = writes.register_questionnaire(write, data=body.data, text=body.text, logical_id=questionnaire_id)
    return written(write, outcome)


@router.post("/QuestionnaireResponse", status_code=201, response_class=FHIRResponse, openapi_extra=FHIR_BODY_OPENAPI)
def create_questionnaire_response(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    guard: Idempotent,
    prefer: PreferDep,
    if_none_exist: IfNoneExist = None,
) -> FHIRResponse:
    """Score a completed response on the server and store it as a measurement (200 if If-None-Exist matched)."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer, guard=guard)
    outcome = writes.create_response(write, data=body.data, text=body.text, if_none_exist=if_none_exist)
    return written(write, outcome)


@router.put("/QuestionnaireResponse/{response_id}", response_class=FHIRResponse, openapi_extra=FHIR_BODY_OPENAPI)
def put_questionnaire_response(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    response_id: LogicalId,
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    prefer: PreferDep,
) -> FHIRResponse:
    """Store a response under the client's id; resending it stores nothing new, changing it amends the measurement."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer)
    return written(write, writes.put_response(write, logical_id=response_id, data=body.data, text=body.text))


@router.post("/QuestionnaireResponse/$extract", response_class=FHIRResponse, openapi_extra=FHIR_BODY_OPENAPI)
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


@router.get("/QuestionnaireResponse/{response_id}", response_class=FHIRResponse)
def read_questionnaire_response(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    response_id: LogicalId,
    db: Db,
) -> FHIRResponse:
    """A stored response as received, under its server id and version."""
    row = questionnaire_responses.get(db, clinic_id=principal.clinic_id, logical_id=response_id)
    return fhir_response(questionnaire_responses.served(row), headers={"ETag": f'W/"{row.version_id}"'})


@router.get("/Observation", response_class=FHIRResponse)
def search_observations(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    request: Request,
    db: Db,
    registry: RegistryDep,
    subject: Annotated[str, Query(max_length=200, description="`Patient/<id>`.")],
    code: Annotated[str | None, Query(max_length=1000, description="`[system|]code`, comma-separated.")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=500)] = 100,
    offset: Annotated[int, Query(alias="_offset", ge=0, le=10_000_000)] = 0,
) -> FHIRResponse:
    """Score Observations (and PHQ-9/GAD-7 panels) of a patient's current measurements, as a searchset Bundle."""
    found = search.observations(
        db, registry, clinic_id=principal.clinic_id, subject=subject, code=code, count=count, offset=offset
    )
    next_url = str(request.url.include_query_params(_offset=offset + count)) if found.has_more else None
    base = str(request.url_for("search_observations"))
    page = search.searchset(
        found.observations, total=found.total, base=base, self_url=str(request.url), next_url=next_url
    )
    return fhir_response(page)


@router.get("/Observation/{observation_id}", response_class=FHIRResponse)
def read_observation(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    observation_id: LogicalId,
    db: Db,
    registry: RegistryDep,
) -> FHIRResponse:
    """One score (or panel) Observation of a stored measurement."""
    observation = search.observation(db, registry, clinic_id=principal.clinic_id, observation_id=observation_id)
    return fhir_response(observation)


@router.get("/Task", response_class=FHIRResponse)
def search_tasks(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    request: Request,
    db: Db,
    registry: RegistryDep,
    patient: Annotated[str, Query(max_length=200, description="`Patient/<id>` (or the bare id).")],
    status: Annotated[
        str | None,
        Query(max_length=300, description="Task status codes, comma-separated (any of them): requested, ready, …"),
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=500)] = 100,
    offset: Annotated[int, Query(alias="_offset", ge=0, le=10_000_000)] = 0,
) -> FHIRResponse:
    """A patient's assessments as SDC Tasks (complete-questionnaire), oldest window first, with the status of now."""
    found = tasks.search(
        db,
        registry,
        clinic_id=principal.clinic_id,
        patient=patient,
        status=status,
        count=count,
        offset=offset,
        now=utcnow(),
    )
    next_url = str(request.url.include_query_params(_offset=offset + count)) if found.has_more else None
    base = str(request.url_for("search_tasks"))
    page = search.searchset(found.tasks, total=found.total, base=base, self_url=str(request.url), next_url=next_url)
    return fhir_response(page)


@router.get("/Task/{task_id}", response_class=FHIRResponse)
def read_task(
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    task_id: LogicalId,
    db: Db,
    registry: RegistryDep,
) -> FHIRResponse:
    """One assessment as an SDC Task (the id is the assessment's id)."""
    return fhir_response(tasks.read(db, registry, clinic_id=principal.clinic_id, task_id=task_id, now=utcnow()))


@router.get("/Patient/{patient_id}", response_class=FHIRResponse)
def read_patient(
    principal: Annotated[Principal, requires(Permission.PATIENTS_READ)],
    patient_id: LogicalId,
    db: Db,
) -> FHIRResponse:
    """A patient of the caller's clinic (the id is the API patient id), with its identifiers."""
    return fhir_response(fhir_patients.to_fhir(fhir_patients.get(db, principal=principal, logical_id=patient_id)))


@router.post("/Patient", status_code=201, response_class=FHIRResponse, openapi_extra=FHIR_BODY_OPENAPI)
def create_patient(
    principal: Annotated[Principal, requires(Permission.PATIENTS_WRITE)],
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    guard: Idempotent,
    prefer: PreferDep,
    if_none_exist: IfNoneExist = None,
) -> FHIRResponse:
    """Register a patient from its identifiers (200 with the existing one if If-None-Exist matched)."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer, guard=guard)
    return written(write, writes.create_patient(write, data=body.data, if_none_exist=if_none_exist))


@router.put("/Patient/{patient_id}", response_class=FHIRResponse, openapi_extra=FHIR_BODY_OPENAPI)
def put_patient(
    principal: Annotated[Principal, requires(Permission.PATIENTS_WRITE)],
    patient_id: LogicalId,
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    prefer: PreferDep,
) -> FHIRResponse:
    """Create the patient under this id, or make the body's identifiers its complete set."""
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer)
    return written(write, writes.put_patient(write, logical_id=patient_id, data=body.data))


@router.post("", response_class=FHIRResponse, openapi_extra=FHIR_BODY_OPENAPI)
def process_bundle(
    request: Request,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_WRITE)],
    body: FhirBody,
    db: Db,
    registry: RegistryDep,
    guard: Idempotent,
    prefer: PreferDep,
) -> FHIRResponse:
    """A `transaction` (all or nothing) or `batch` (each entry on its own) Bundle of POST/PUT entries."""
    validation = state_of(request).part(ValidationPool)
    write = FhirWrite(db=db, registry=registry, principal=principal, prefer=prefer, guard=guard, validation=validation)
    return remembered(guard, bundles.process(write, body.data), 200, {})


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
