"""The searches (Questionnaire, QuestionnaireResponse, Observation, Patient, Task) by the rules of
``search_params``, the read of one Observation, and the reads a Bundle's GET entries make.

Every search takes a ``SearchRequest`` (the parameters as sent), so a route and a Bundle entry search alike, and
answers with the searchset Bundle and the patients it names (for the audit trail).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir.resources.R4B.observation import Observation
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.auth.permissions import Permission
from app.auth.service import Principal
from app.core.errors import NotFound
from app.fhir import patients as fhir_patients
from app.fhir import questionnaire_responses, registered_questionnaires, tasks
from app.fhir.instrument_questionnaires import builtin_definition, questionnaire
from app.fhir.models import FhirResource
from app.fhir.observations import code_targets, parse_observation_id
from app.fhir.observations import observations as measurement_observations
from app.fhir.search_params import (
    Search,
    SearchRequest,
    date_condition,
    date_range,
    invalid,
    page,
    patient_reference,
    read,
    searchset,
    token,
)
from app.instruments import text
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement
from app.patients import service as patients
from app.patients.models import Patient


@dataclass(frozen=True)
class SearchContext:
    """Who searches, in which transaction, with which instruments, at what time (a Task's status depends on it)."""

    db: Session
    registry: InstrumentRegistry
    principal: Principal
    now: datetime


@dataclass(frozen=True)
class Searched:
    bundle: dict[str, Any]
    patients: list[uuid.UUID] = field(default_factory=list)
    """The patients whose records the page shows, in order (the audit trail names them)."""


PATIENT = frozenset({"Patient"})
NONE: frozenset[str] = frozenset()
QUESTIONNAIRE_PARAMETERS = {"url": NONE, "version": NONE, "code": NONE}
RESPONSE_PARAMETERS = {
    "subject": PATIENT,
    "patient": PATIENT,
    "questionnaire": NONE,
    "authored": NONE,
    "identifier": NONE,
}
OBSERVATION_PARAMETERS = {"subject": PATIENT, "patient": PATIENT, "code": NONE, "date": NONE, "_lastUpdated": NONE}
OBSERVATION_SORTS = frozenset({"date", "-date"})
PATIENT_PARAMETERS = {"identifier": NONE}
TASK_PARAMETERS = {"patient": PATIENT, "status": NONE}
MAX_MATCHES = 1_000
"""Patients an identifier search reads at most (an identifier names one patient; a bare value, a few)."""


def run(context: SearchContext, request: SearchRequest) -> Searched:
    """Any supported search, after the caller's permission for it (a Bundle entry's; the routes check their own)."""
    permission, search_type = SEARCHES[request.resource_type]
    context.principal.require(permission)
    return search_type(context, request)


def questionnaires(context: SearchContext, request: SearchRequest) -> Searched:
    """Every instrument as a Questionnaire, then the clinic's registered forms; by url (``url|version``), version
    and code (``[system|]code``, comma-separated: any of them)."""
    search = read(request, QUESTIONNAIRE_PARAMETERS)
    db, registry, clinic_id = context.db, context.registry, context.principal.clinic_id
    resources: list[dict[str, Any]] = []
    for instrument in registry.ids():
        definition = registry.definitions[instrument]
        view = text.clinic_view(db, clinic_id=clinic_id, definition=definition)
        resources.append(questionnaire(definition, view).model_dump(mode="json", exclude_none=True))
    resources.extend(
        registered_questionnaires.served(row)
        for row in registered_questionnaires.list_registered(db, clinic_id=clinic_id)
    )
    found = [resource for resource in resources if _questionnaire_matches(search, resource)]
    shown, more = page(found, search)
    return Searched(searchset(search, shown, total=len(found), has_more=more))


def _questionnaire_matches(search: Search, resource: dict[str, Any]) -> bool:
    for value in search.values("url"):
        url, _, version = value.partition("|")
        if resource.get("url") != url or (version and resource.get("version") != version):
            return False
    for value in search.values("version"):
        if resource.get("version") not in value.split(","):
            return False
    codings = [coding for coding in resource.get("code") or [] if isinstance(coding, dict)]
    for value in search.values("code"):
        if not any(_coding_matches(coding, part) for part in value.split(",") for coding in codings):
            return False
    return True


def _coding_matches(coding: dict[str, Any], value: str) -> bool:
    system, code = token(value)
    return coding.get("code") == code and (system is None or (coding.get("system") or "") == system)


def questionnaire_responses_search(context: SearchContext, request: SearchRequest) -> Searched:
    """The clinic's responses, oldest stored first: by patient, questionnaire (the canonical the response names,
    ``url`` matching any version of it), authored (dates with prefixes) and identifier (``[system|]value``)."""
    search = read(request, RESPONSE_PARAMETERS)
    db, clinic_id = context.db, context.principal.clinic_id
    query = select(FhirResource).where(
        FhirResource.clinic_id == clinic_id, FhirResource.resource_type == questionnaire_responses.RESOURCE_TYPE
    )
    wanted = _searched_patients(context, search, ("subject", "patient"), required=False)
    if wanted is not None:
        query = query.where(FhirResource.patient_id.in_(sorted(wanted)))
    if context.principal.patient_id is not None:
        query = query.where(FhirResource.patient_id == context.principal.patient_id)
    for value in search.values("identifier"):
        query = query.where(or_(*(_identifier_condition(part) for part in value.split(","))))
    authored = [date_range("authored", value) for value in search.values("authored")]
    if authored:
        current = select(Measurement.measurement_id).where(
            Measurement.clinic_id == clinic_id,
            Measurement.is_current.is_(True),
            *(date_condition(Measurement.measured_at, searched) for searched in authored),
        )
        query = query.where(FhirResource.measurement_id.in_(current))
    forms = search.values("questionnaire")
    for value in forms:
        query = query.where(or_(*(FhirResource.raw.contains(part, autoescape=True) for part in value.split(","))))
    query = query.order_by(FhirResource.created_at, FhirResource.id)
    if forms:
        rows = [row for row in db.scalars(query) if _answers_forms(row, forms)]
        total = len(rows)
        shown, more = page(rows, search)
    else:
        total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        shown = [] if search.total_only else list(db.scalars(query.limit(search.count + 1).offset(search.offset)))
        more, shown = len(shown) > search.count, shown[: search.count]
    return Searched(
        searchset(search, [questionnaire_responses.served(row) for row in shown], total=total, has_more=more),
        [row.patient_id for row in shown if row.patient_id is not None],
    )


def _identifier_condition(value: str) -> Any:
    system, identifier = token(value)
    condition = FhirResource.identifier_value == identifier
    if system is None:
        return condition
    if system == "":
        return and_(condition, FhirResource.identifier_system.is_(None))
    return and_(condition, FhirResource.identifier_system == system)


def _answers_forms(row: FhirResource, forms: list[str]) -> bool:
    """Whether the response's ``questionnaire`` matches every searched value (each any of its comma parts)."""
    named = json.loads(row.raw).get("questionnaire")
    if not isinstance(named, str):
        return False
    return all(
        any(named == part or ("|" not in part and named.startswith(part + "|")) for part in value.split(","))
        for value in forms
    )


def observations(context: SearchContext, request: SearchRequest) -> Searched:
    """The Observations of patients' current measurements, by date (oldest first, or ``_sort=-date``), code and
    ``_lastUpdated``. A patient (``subject`` or ``patient``) is required."""
    search = read(request, OBSERVATION_PARAMETERS, sorts=OBSERVATION_SORTS)
    db, registry, clinic_id = context.db, context.registry, context.principal.clinic_id
    wanted_patients = _searched_patients(context, search, ("subject", "patient"), required=True)
    assert wanted_patients is not None
    wanted: dict[str, set[str]] | None = None
    for value in search.values("code"):
        parts = _wanted(registry, value)
        wanted = parts if wanted is None else {k: v & parts.get(k, set()) for k, v in wanted.items()}
    query = select(Measurement).where(
        Measurement.clinic_id == clinic_id,
        Measurement.patient_id.in_(sorted(wanted_patients)),
        Measurement.is_current.is_(True),
        *(date_condition(Measurement.measured_at, date_range("date", value)) for value in search.values("date")),
        *(
            date_condition(Measurement.created_at, date_range("_lastUpdated", value))
            for value in search.values("_lastUpdated")
        ),
    )
    if wanted is not None:
        query = query.where(Measurement.instrument_id.in_(sorted(k for k, v in wanted.items() if v)))
    newest_first = search.first("_sort") == "-date"
    order = (Measurement.measured_at, Measurement.created_at, Measurement.id)
    query = query.order_by(*(column.desc() for column in order) if newest_first else order)
    rows = list(db.scalars(query)) if wanted_patients else []
    found = [
        observation
        for row, part, observation in _observations(db, registry, clinic_id, rows)
        if wanted is None or part in wanted.get(row.instrument_id, set())
    ]
    shown, more = page(found, search)
    return Searched(searchset(search, shown, total=len(found), has_more=more), sorted(wanted_patients))


def patients_search(context: SearchContext, request: SearchRequest) -> Searched:
    """Patients by identifier (``system|value``, or a bare value: any system; comma-separated: any of them)."""
    search = read(request, PATIENT_PARAMETERS)
    values = search.values("identifier")
    if not values:
        raise invalid("identifier", "", "Patient search needs an identifier (system|value)")
    principal = context.principal
    found: dict[uuid.UUID, Patient] | None = None
    for value in values:
        matched: dict[uuid.UUID, Patient] = {}
        for part in value.split(","):
            for patient in patients.list_patients(
                context.db, clinic_id=principal.clinic_id, limit=MAX_MATCHES, offset=0, identifier=part
            ):
                matched[patient.id] = patient
        found = matched if found is None else {key: row for key, row in found.items() if key in matched}
    rows = [row for row in (found or {}).values() if principal.patient_id in (None, row.id)]
    rows.sort(key=lambda row: (row.created_at, row.id))
    shown, more = page(rows, search)
    return Searched(
        searchset(search, [fhir_patients.to_fhir(row) for row in shown], total=len(rows), has_more=more),
        [row.id for row in shown],
    )


def tasks_search(context: SearchContext, request: SearchRequest) -> Searched:
    """A patient's assessments as Tasks, oldest window first, by status (Task codes, any of them)."""
    search = read(request, TASK_PARAMETERS)
    wanted = _searched_patients(context, search, ("patient",), required=True)
    assert wanted is not None
    statuses = search.values("status")
    if len(wanted) != 1 or len(statuses) > 1:
        total, shown, more = 0, [], False
    else:
        [patient_id] = wanted
        found = tasks.search(
            context.db,
            context.registry,
            clinic_id=context.principal.clinic_id,
            patient=str(patient_id),
            status=statuses[0] if statuses else None,
            count=0 if search.total_only else search.count,
            offset=search.offset,
            now=context.now,
        )
        total, shown, more = found.total, found.tasks, found.has_more
    return Searched(searchset(search, shown, total=total, has_more=more), sorted(wanted))


def _searched_patients(
    context: SearchContext, search: Search, names: Iterable[str], *, required: bool
) -> set[uuid.UUID] | None:
    """The patients the reference parameters name (each value any of its comma parts; several values: all of
    them), each of the caller's clinic (404 otherwise, as a read of it would be); None if none is given."""
    values = [(name, value) for name in names for value in search.values(name)]
    if not values:
        if required:
            listed = " or ".join(names)
            raise invalid(listed, "", f"{search.request.resource_type} search needs {listed} (Patient/<id>)")
        return None
    wanted: set[uuid.UUID] | None = None
    for name, value in values:
        named = {found for part in value.split(",") if (found := patient_reference(search, name, part))}
        wanted = named if wanted is None else wanted & named
    principal = context.principal
    for patient_id in sorted(wanted or set()):
        if principal.patient_id is not None and patient_id != principal.patient_id:
            raise NotFound(f"no Patient/{patient_id}")
        patients.ensure_exists(context.db, clinic_id=principal.clinic_id, patient_id=patient_id)
    return wanted or set()


SearchType = Callable[[SearchContext, SearchRequest], Searched]
SEARCHES: dict[str, tuple[Permission, SearchType]] = {
    "Questionnaire": (Permission.INSTRUMENTS_READ, questionnaires),
    "QuestionnaireResponse": (Permission.MEASUREMENTS_READ, questionnaire_responses_search),
    "Observation": (Permission.MEASUREMENTS_READ, observations),
    "Patient": (Permission.PATIENTS_READ, patients_search),
    "Task": (Permission.MEASUREMENTS_READ, tasks_search),
}


def read_resource(context: SearchContext, resource_type: str, logical_id: str) -> dict[str, Any]:
    """A read (``Type/id``) as a Bundle entry makes it, after the caller's permission for it."""
    if resource_type not in SEARCHES:
        raise NotFound(f"no {resource_type} resources on this server")
    context.principal.require(SEARCHES[resource_type][0])
    db, registry, principal = context.db, context.registry, context.principal
    resource: Any
    if resource_type == "Questionnaire":
        definition = builtin_definition(registry, logical_id)
        if definition is not None:
            view = text.clinic_view(db, clinic_id=principal.clinic_id, definition=definition)
            resource = questionnaire(definition, view)
        else:
            form = registered_questionnaires.get(db, clinic_id=principal.clinic_id, logical_id=logical_id)
            resource = registered_questionnaires.served(form)
    elif resource_type == "QuestionnaireResponse":
        row = questionnaire_responses.get(db, clinic_id=principal.clinic_id, logical_id=logical_id)
        if principal.patient_id is not None and row.patient_id != principal.patient_id:
            raise NotFound(f"no QuestionnaireResponse/{logical_id}")
        resource = questionnaire_responses.served(row)
    elif resource_type == "Observation":
        resource = observation(db, registry, clinic_id=principal.clinic_id, observation_id=logical_id)
    elif resource_type == "Patient":
        resource = fhir_patients.to_fhir(fhir_patients.get(db, principal=principal, logical_id=logical_id))
    else:
        resource = tasks.read(db, registry, clinic_id=principal.clinic_id, task_id=logical_id, now=context.now)
    data: dict[str, Any] = (
        resource if isinstance(resource, dict) else resource.model_dump(mode="json", exclude_none=True)
    )
    return data


def observation(db: Session, registry: InstrumentRegistry, *, clinic_id: uuid.UUID, observation_id: str) -> Observation:
    ref = parse_observation_id(observation_id)
    row = (
        db.scalar(
            select(Measurement).where(
                Measurement.measurement_id == ref.measurement_id,
                Measurement.clinic_id == clinic_id,
                Measurement.is_current.is_(True),
            )
        )
        if ref is not None
        else None
    )
    match = next(
        (
            obs
            for _row, _part, obs in _observations(db, registry, clinic_id, [row] if row else [])
            if obs.id == observation_id
        ),
        None,
    )
    if match is None:
        raise NotFound(f"no Observation/{observation_id}")
    return match


def _observations(
    db: Session, registry: InstrumentRegistry, clinic_id: uuid.UUID, rows: list[Measurement]
) -> list[tuple[Measurement, str, Observation]]:
    response_ids = questionnaire_responses.logical_ids(
        db, clinic_id=clinic_id, measurement_ids=[row.measurement_id for row in rows]
    )
    found = []
    for row in rows:
        definition = registry.definitions.get(row.instrument_id)
        if definition is None:
            continue
        for item in measurement_observations(row, definition, response_id=response_ids.get(row.measurement_id)):
            ref = parse_observation_id(str(item.id))
            found.append((row, ref.part if ref else "", item))
    return found


def _wanted(registry: InstrumentRegistry, code: str) -> dict[str, set[str]]:
    """Instrument → the parts (score keys, ``panel``) the ``code`` tokens name."""
    wanted: dict[str, set[str]] = {}
    for part in (part.strip() for part in code.split(",")):
        system, separator, value = part.rpartition("|")
        for definition in registry.definitions.values():
            for (target_system, target_code), part in code_targets(definition).items():
                if target_code == value and (not separator or system == target_system):
                    wanted.setdefault(definition.id, set()).add(part)
    return wanted
