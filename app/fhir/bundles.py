"""``POST /fhir``: a Bundle of type ``transaction`` (all or nothing) or ``batch`` (each entry on its own).

Every entry runs in its own SAVEPOINT, so a failed entry leaves no trace and later entries still run. In a batch
each entry gets its own response (an OperationOutcome for a failure); in a transaction any failure fails the whole
request with one issue per problem of every failed entry, and the request's transaction rolls everything back.

Entries run Patients first, then Questionnaires, then QuestionnaireResponses (responses keep their order), so a
response may name a Patient of the same Bundle by its ``fullUrl`` (``urn:uuid:…``); the server rewrites that
reference to ``Patient/<id>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from app.auth.permissions import Permission
from app.auth.service import Principal
from app.core.errors import DomainError
from app.fhir import interactions
from app.fhir.errors import FhirError, Issue, MalformedResource, MethodNotAllowed, UnprocessableResource
from app.fhir.http import ReturnPreference, issues_of, operation_outcome
from app.fhir.interactions import Outcome
from app.fhir.service import Lookups
from app.fhir.validation import require_type, validate
from app.instruments.registry import InstrumentRegistry

MAX_ENTRIES = 5_000
BUNDLE_TYPES = ("transaction", "batch")
ORDER = {"Patient": 0, "Questionnaire": 1}


@dataclass(frozen=True)
class EntryFailure:
    status: int
    issues: list[Issue]


class TransactionFailed(UnprocessableResource):
    """A transaction entry failed: nothing of the Bundle is stored. Answers with the first failed entry's status."""

    def __init__(self, status: int, issues: list[Issue]) -> None:
        super().__init__(
            f"the transaction failed; nothing was stored ({len(issues)} issue(s))", issues=issues, http_status=status
        )


@dataclass
class _Run:
    session: Session
    registry: InstrumentRegistry
    principal: Principal
    references: dict[str, str]

    def __post_init__(self) -> None:
        self.lookups = Lookups(self.session, self.registry, self.principal.clinic_id)


def process(
    session: Session,
    registry: InstrumentRegistry,
    *,
    principal: Principal,
    bundle: dict[str, Any],
    prefer: ReturnPreference | None,
) -> dict[str, Any]:
    """Run the Bundle; return the ``transaction-response`` / ``batch-response`` Bundle."""
    entries = _check_shell(bundle)
    run = _Run(session, registry, principal, references={})
    results: dict[int, Outcome | EntryFailure] = {}
    order = sorted(range(len(entries)), key=lambda i: ORDER.get(_resource_type(entries[i]), 2))
    for index in order:
        results[index] = _run_entry(run, index, entries[index])
    failures = [(index, result) for index, result in sorted(results.items()) if isinstance(result, EntryFailure)]
    if bundle["type"] == "transaction" and failures:
        raise TransactionFailed(
            failures[0][1].status, [issue for _index, failure in failures for issue in failure.issues]
        )
    return {
        "resourceType": "Bundle",
        "type": f"{bundle['type']}-response",
        "entry": [_response_entry(results[index], prefer) for index in range(len(entries))],
    }


def _check_shell(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The Bundle without its resources must be a valid R4 Bundle of type transaction or batch."""
    require_type(bundle, "Bundle")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise MalformedResource(
            "Bundle.entry must be a list of entries",
            issues=[Issue("structure", "Bundle.entry must be a list", ("Bundle.entry",))],
        )
    if len(entries) > MAX_ENTRIES:
        raise UnprocessableResource(
            f"at most {MAX_ENTRIES} entries per Bundle",
            issues=[
                Issue("too-costly", f"{len(entries)} entries; at most {MAX_ENTRIES} per Bundle", ("Bundle.entry",))
            ],
        )
    validate({**bundle, "entry": [{k: v for k, v in entry.items() if k != "resource"} for entry in entries]}, "Bundle")
    if bundle.get("type") not in BUNDLE_TYPES:
        raise UnprocessableResource(
            "only transaction and batch Bundles are processed",
            issues=[
                Issue(
                    "not-supported", f"Bundle.type {bundle.get('type')!r}: only transaction or batch", ("Bundle.type",)
                )
            ],
        )
    return entries


def _resource_type(entry: dict[str, Any]) -> str:
    resource = entry.get("resource")
    return str(resource.get("resourceType")) if isinstance(resource, dict) else ""


def _run_entry(run: _Run, index: int, entry: dict[str, Any]) -> Outcome | EntryFailure:
    prefix = f"Bundle.entry[{index}]"
    try:
        with run.session.begin_nested():
            outcome = _dispatch(run, entry, prefix)
    except DomainError as exc:
        status = exc.http_status if isinstance(exc, FhirError) else exc.status
        return EntryFailure(status, [issue.under(f"{prefix}.resource") for issue in issues_of(exc)])
    except DataError:
        detail = "a value cannot be stored (a NUL character, or text or a number too long)"
        return EntryFailure(422, [Issue("value", detail, (f"{prefix}.resource",))])
    full_url = entry.get("fullUrl")
    if isinstance(full_url, str) and _resource_type(entry) == "Patient":
        run.references[full_url] = outcome.location
    return outcome


def _dispatch(run: _Run, entry: dict[str, Any], prefix: str) -> Outcome:
    request = entry.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        raise MalformedResource(
            "each entry of a transaction or batch needs request.method and request.url",
            issues=[Issue("required", "request.method and request.url are required", (f"{prefix}.request",))],
        )
    method, url = request.get("method"), request["url"]
    resource = entry.get("resource")
    if method not in ("POST", "PUT") or not isinstance(resource, dict):
        raise MethodNotAllowed(
            f"{method} {url}: Bundles here carry POST or PUT entries with a resource",
            issues=[
                Issue(
                    "not-supported",
                    f"{method} {url}: only POST Type or PUT Type/id with a resource",
                    (f"{prefix}.request",),
                )
            ],
        )
    resource_type, _, logical_id = str(url).split("?")[0].strip("/").partition("/")
    if resource_type != resource.get("resourceType") or bool(logical_id) != (method == "PUT"):
        raise MalformedResource(
            f"request.url {url!r} does not fit {method} of a {resource.get('resourceType')}",
            issues=[
                Issue(
                    "invalid",
                    f"{method} needs request.url {'Type/id' if method == 'PUT' else 'Type'} of the resource",
                    (f"{prefix}.request.url",),
                )
            ],
        )
    handler = HANDLERS.get((method, resource_type))
    if handler is None:
        raise MethodNotAllowed(
            f"{method} {resource_type} is not supported in a Bundle",
            issues=[Issue("not-supported", f"{method} {resource_type} is not supported", (f"{prefix}.request",))],
        )
    data = _resolve_references(resource, run.references)
    return handler(run, data, logical_id or None, request.get("ifNoneExist"))


def _resolve_references(resource: dict[str, Any], references: dict[str, str]) -> dict[str, Any]:
    subject = resource.get("subject")
    if isinstance(subject, dict) and subject.get("reference") in references:
        return {**resource, "subject": {**subject, "reference": references[subject["reference"]]}}
    return resource


def _text(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _post_response(run: _Run, data: dict[str, Any], _id: str | None, if_none_exist: str | None) -> Outcome:
    run.principal.require(Permission.MEASUREMENTS_WRITE)
    return interactions.create_response(
        run.session,
        run.registry,
        principal=run.principal,
        data=data,
        text=_text(data),
        if_none_exist=if_none_exist,
        lookups=run.lookups,
    )


def _put_response(run: _Run, data: dict[str, Any], logical_id: str | None, _if_none_exist: str | None) -> Outcome:
    run.principal.require(Permission.MEASUREMENTS_WRITE)
    assert logical_id is not None
    return interactions.put_response(
        run.session,
        run.registry,
        principal=run.principal,
        logical_id=logical_id,
        data=data,
        text=_text(data),
        lookups=run.lookups,
    )


def _post_patient(run: _Run, data: dict[str, Any], _id: str | None, if_none_exist: str | None) -> Outcome:
    run.principal.require(Permission.PATIENTS_WRITE)
    return interactions.create_patient(run.session, principal=run.principal, data=data, if_none_exist=if_none_exist)


def _put_patient(run: _Run, data: dict[str, Any], logical_id: str | None, _if_none_exist: str | None) -> Outcome:
    run.principal.require(Permission.PATIENTS_WRITE)
    assert logical_id is not None
    return interactions.put_patient(run.session, principal=run.principal, logical_id=logical_id, data=data)


def _questionnaire(run: _Run, data: dict[str, Any], logical_id: str | None, _if_none_exist: str | None) -> Outcome:
    run.principal.require(Permission.QUESTIONNAIRES_MANAGE)
    return interactions.register_questionnaire(
        run.session, run.registry, principal=run.principal, data=data, text=_text(data), logical_id=logical_id
    )


Handler = Callable[[_Run, dict[str, Any], str | None, str | None], Outcome]
HANDLERS: dict[tuple[str, str], Handler] = {
    ("POST", "QuestionnaireResponse"): _post_response,
    ("PUT", "QuestionnaireResponse"): _put_response,
    ("POST", "Patient"): _post_patient,
    ("PUT", "Patient"): _put_patient,
    ("POST", "Questionnaire"): _questionnaire,
    ("PUT", "Questionnaire"): _questionnaire,
}


def _response_entry(result: Outcome | EntryFailure, prefer: ReturnPreference | None) -> dict[str, Any]:
    if isinstance(result, EntryFailure):
        return {
            "response": {
                "status": _status_line(result.status),
                "outcome": operation_outcome(result.issues).model_dump(mode="json", exclude_none=True),
            }
        }
    response: dict[str, Any] = {"status": _status_line(result.status), "location": result.location}
    if result.version is not None:
        response["etag"] = f'W/"{result.version}"'
    if result.last_modified is not None:
        response["lastModified"] = result.last_modified.isoformat()
    if result.warnings:
        response["outcome"] = operation_outcome(result.warnings).model_dump(mode="json", exclude_none=True)
    entry: dict[str, Any] = {"response": response}
    if prefer is ReturnPreference.REPRESENTATION:
        entry["resource"] = _as_json(result.resource)
    return entry


def _as_json(resource: FHIRResourceModel | dict[str, Any]) -> dict[str, Any]:
    if isinstance(resource, dict):
        return resource
    data: dict[str, Any] = json.loads(resource.model_dump_json())
    return data


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"
