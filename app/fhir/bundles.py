"""``POST /fhir``: a Bundle of type ``transaction`` (all or nothing) or ``batch`` (each entry on its own).

Every entry runs in its own SAVEPOINT, so a failed entry leaves no trace and later entries still run. In a batch
each entry gets its own response (an OperationOutcome for a failure); in a transaction any failure fails the whole
request with one issue per problem of every failed entry, and the request's transaction rolls everything back.

Entries run Patients first, then Questionnaires, then QuestionnaireResponses (responses keep their order), so a
response may name a Patient of the same Bundle by its ``fullUrl`` (``urn:uuid:…``); the server rewrites that
reference to ``Patient/<id>``. GET entries (a read ``Type/id`` or a search ``Type?…``, as the routes serve them) run
last, so they see what the Bundle wrote; each answers with its resource or searchset Bundle.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any

import orjson
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from sqlalchemy.exc import DataError, IntegrityError

from app.auth.permissions import Permission
from app.core.audit_notes import EntryNote, note_entry
from app.core.errors import Conflict, DomainError
from app.core.problems import echoed
from app.fhir import questionnaire_responses, search, writes
from app.fhir.codes import FHIR_ID
from app.fhir.errors import FhirError, Issue, MalformedResource, MethodNotAllowed, UnprocessableResource
from app.fhir.http import ReturnPreference, issues_of, operation_outcome
from app.fhir.questionnaire_responses import PreparedResponse
from app.fhir.search_params import SearchRequest
from app.fhir.validation import distinct_content, require_type, structural_issues, validate
from app.fhir.validation_pool import ValidationPool
from app.fhir.write_context import FhirWrite
from app.fhir.writes import Outcome

MAX_ENTRIES = 5_000
STORE_BATCH = 1_000
"""New QuestionnaireResponses stored per statement: one statement for many rows, not one each (bench/README.md,
change 16)."""
BUNDLE_TYPES = ("transaction", "batch")
ORDER = {"Patient": 0, "Questionnaire": 1}
GET_ORDER = 3
RESPONSE = "QuestionnaireResponse"


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


@dataclass(frozen=True)
class Reads:
    """What GET entries need beyond the write: the server's base URL, ``Prefer: handling``, and now."""

    base: str
    strict: bool
    now: datetime


@dataclass(frozen=True)
class ReadResult:
    """A GET entry's answer: the resource read, or the searchset Bundle; the patient it is about, if one."""

    resource: dict[str, Any]
    patient_id: uuid.UUID | None


@dataclass
class _Run:
    write: FhirWrite
    """The Bundle's write, its lookups shared by the entries (``FhirWrite.in_bundle``)."""
    references: dict[str, str] = field(default_factory=dict)
    """A Patient entry's ``fullUrl`` → ``Patient/<id>``, for the responses that name it."""
    results: dict[int, Outcome | ReadResult | EntryFailure] = field(default_factory=dict)
    pending: dict[int, PreparedResponse] = field(default_factory=dict)
    """New QuestionnaireResponses validated and scored, waiting to be stored together."""
    verdicts: _Verdicts | None = None
    reads: Reads | None = None


def process(write: FhirWrite, bundle: dict[str, Any], *, reads: Reads | None = None) -> dict[str, Any]:
    """Run the Bundle; return the ``transaction-response`` / ``batch-response`` Bundle.

    New QuestionnaireResponses are validated ahead by ``write.validation`` (worker processes) when given.
    """
    entries = _check_shell(bundle)
    run = _Run(write.in_bundle(), reads=reads)
    order = sorted(range(len(entries)), key=lambda i: _order(entries[i]))
    if write.validation is not None:
        run.verdicts = _Verdicts.ahead(write.validation, [(index, entries[index]) for index in order])
    for index in order:
        _run_entry(run, index, entries[index])
    _store_pending(run)
    results = run.results
    for index in range(len(entries)):
        note_entry(write.db, _entry_note(run, index, entries[index], results[index]))
    failures = [(index, result) for index, result in sorted(results.items()) if isinstance(result, EntryFailure)]
    if bundle["type"] == "transaction" and failures:
        raise TransactionFailed(
            failures[0][1].status, [issue for _index, failure in failures for issue in failure.issues]
        )
    return {
        "resourceType": "Bundle",
        "type": f"{bundle['type']}-response",
        "entry": [_response_entry(results[index], write.prefer) for index in range(len(entries))],
    }


def _order(entry: dict[str, Any]) -> int:
    request = entry.get("request")
    if isinstance(request, dict) and request.get("method") == "GET":
        return GET_ORDER
    return ORDER.get(_resource_type(entry), 2)


def _entry_note(run: _Run, index: int, entry: dict[str, Any], result: Outcome | ReadResult | EntryFailure) -> EntryNote:
    """What the audit trail records of an entry: its status, what it addressed and whose it is (a patient the
    clinic's lookups found, never one the entry merely named)."""
    request = entry.get("request")
    method = str(request.get("method")) if isinstance(request, dict) else "POST"
    if isinstance(result, ReadResult):
        url = str(request.get("url", "")) if isinstance(request, dict) else ""
        resource_type, _, logical_id = _entry_url(url, run.reads).split("?")[0].partition("/")
        return EntryNote(index, 200, method, resource_type or None, logical_id or None, result.patient_id)
    if isinstance(result, Outcome):
        resource_type, _, logical_id = result.location.partition("/")
        subject = result.resource.get("subject") if isinstance(result.resource, dict) else None
        reference = subject.get("reference") if isinstance(subject, dict) else None
        if resource_type != RESPONSE:
            reference = result.location
        patient = _patient_of(reference)
        return EntryNote(index, result.status, method, resource_type, logical_id, patient)
    url = _entry_url(str(request.get("url", "")), run.reads) if isinstance(request, dict) else ""
    resource_type, _, logical_id = url.split("?")[0].strip("/").partition("/")
    resource = entry.get("resource")
    subject = resource.get("subject") if isinstance(resource, dict) else None
    named = _patient_of(subject.get("reference") if isinstance(subject, dict) else None)
    patient = named if named in run.write.lookups.patients else None
    return EntryNote(index, result.status, method, resource_type or None, logical_id or None, patient)


def _patient_of(reference: object) -> uuid.UUID | None:
    if not isinstance(reference, str) or not reference.startswith("Patient/"):
        return None
    try:
        return uuid.UUID(reference.removeprefix("Patient/"))
    except ValueError:
        return None


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
    shells = [{k: v for k, v in entry.items() if k != "resource"} for entry in entries]
    distinct = distinct_content(shells)
    # The models validate each entry on its own, so a Bundle whose distinct entries pass passes whole; only a Bundle
    # with issues is validated whole, for paths naming every entry at fault (bench/README.md, issue 18's second pass).
    if distinct is None or len(distinct) == len(shells) or structural_issues({**bundle, "entry": distinct}, "Bundle"):
        validate({**bundle, "entry": shells}, "Bundle")
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


def _run_entry(run: _Run, index: int, entry: dict[str, Any]) -> None:
    """Run one entry in its own savepoint; a new QuestionnaireResponse is only prepared, to be stored in bulk."""
    prefix = f"Bundle.entry[{index}]"
    if _order(entry) == GET_ORDER:
        _store_pending(run)  # a read sees what the Bundle wrote
        try:
            with run.write.db.begin_nested():
                run.results[index] = _read_entry(run, entry)
        except (DomainError, DataError) as exc:
            run.results[index] = _failure(exc, prefix)
        return
    try:
        request = _request_of(run, entry, prefix)
        run.write.principal.require_entry(entry["request"]["method"], entry["request"]["url"])
        deferred = request.handler is _post_response and request.if_none_exist is None
        if deferred:
            run.write.principal.require(Permission.MEASUREMENTS_WRITE)
            # Reads only (the form and patient lookups take savepoints of their own): no savepoint needed.
            run.pending[index] = questionnaire_responses.prepare(
                run.write,
                data=request.data,
                text=_text(request.data),
                issues=run.verdicts.of(index) if run.verdicts is not None else None,
            )
    except (DomainError, DataError) as exc:
        run.results[index] = _failure(exc, prefix)
        return
    # Outside the entry's try: a failure to store the others must not be taken for this entry's.
    if deferred:
        if len(run.pending) >= STORE_BATCH:
            _store_pending(run)
        return
    # What is pending is stored first: this entry (a conditional create, a PUT) may match one of them.
    _store_pending(run)
    try:
        with run.write.db.begin_nested():
            outcome = request.handler(run.write, request)
    except (DomainError, DataError) as exc:
        run.results[index] = _failure(exc, prefix)
        return
    full_url = entry.get("fullUrl")
    if isinstance(full_url, str) and _resource_type(entry) == "Patient":
        run.references[full_url] = outcome.location
    run.results[index] = outcome


def _failure(exc: DomainError | DataError, prefix: str) -> EntryFailure:
    if isinstance(exc, DataError):
        detail = "a value cannot be stored (a NUL character, or text or a number too long)"
        return EntryFailure(422, [Issue("value", detail, (f"{prefix}.resource",))])
    status = exc.http_status if isinstance(exc, FhirError) else exc.status
    return EntryFailure(status, [issue.under(f"{prefix}.resource") for issue in issues_of(exc)])


def _store_pending(run: _Run) -> None:
    """Store the prepared responses with one statement per table; if the database refuses any, store each on its
    own so that only the refused ones fail (the bulk attempt's savepoint leaves no trace, not even in the audit)."""
    pending, run.pending = run.pending, {}
    if not pending:
        return
    try:
        with run.write.db.begin_nested():
            rows = questionnaire_responses.store_many(run.write, list(pending.values()))
    except (IntegrityError, DataError):
        for index, prepared in pending.items():
            run.results[index] = _store_one(run, index, prepared)
        return
    for (index, prepared), row in zip(pending.items(), rows, strict=True):
        run.results[index] = writes.created_response(row, prepared)


def _store_one(run: _Run, index: int, prepared: PreparedResponse) -> Outcome | EntryFailure:
    try:
        with run.write.db.begin_nested():
            row = questionnaire_responses.store_many(run.write, [prepared])[0]
    except IntegrityError:
        return _failure(Conflict("the response was stored concurrently; resend it"), f"Bundle.entry[{index}]")
    except DataError as exc:
        return _failure(exc, f"Bundle.entry[{index}]")
    return writes.created_response(row, prepared)


def _posts_new_response(entry: dict[str, Any]) -> bool:
    """A plain POST of a QuestionnaireResponse (no conditional create): the entries validated ahead."""
    request, resource = entry.get("request"), entry.get("resource")
    return (
        isinstance(request, dict)
        and request.get("method") == "POST"
        and request.get("ifNoneExist") is None
        and isinstance(request.get("url"), str)
        and request["url"].split("?")[0].strip("/") == RESPONSE
        and isinstance(resource, dict)
        and resource.get("resourceType") == RESPONSE
    )


class _Verdicts:
    """Structural issues of the Bundle's new responses, validated ahead (in order) while earlier ones are stored."""

    def __init__(self, indices: list[int], issues: Iterator[list[Issue]]) -> None:
        self._expected = set(indices)
        self._coming = zip(indices, issues, strict=True)
        self._ready: dict[int, list[Issue]] = {}

    @classmethod
    def ahead(cls, pool: ValidationPool, entries: list[tuple[int, dict[str, Any]]]) -> _Verdicts:
        chosen = [(index, entry["resource"]) for index, entry in entries if _posts_new_response(entry)]
        return cls([index for index, _ in chosen], pool.issues_of([resource for _, resource in chosen], RESPONSE))

    def of(self, index: int) -> list[Issue] | None:
        """The entry's issues, or None if it was not validated ahead (then it is validated where it runs)."""
        if index not in self._expected:
            return None
        while index not in self._ready:
            coming, issues = next(self._coming)
            self._ready[coming] = issues
        return self._ready.pop(index)


@dataclass(frozen=True)
class _EntryRequest:
    handler: Handler
    data: dict[str, Any]
    logical_id: str | None
    if_none_exist: str | None
    if_match: str | None
    """``request.ifMatch`` (``W/"<vid>"``): a PUT of another version is refused with 412, as by the route."""


def _request_of(run: _Run, entry: dict[str, Any], prefix: str) -> _EntryRequest:
    """The entry's interaction, checked: POST Type or PUT Type/id of a supported type, with its resource."""
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
            f"{method} {url}: Bundles here carry POST or PUT entries with a resource, or GET entries",
            issues=[
                Issue(
                    "not-supported",
                    f"{method} {url}: only POST Type or PUT Type/id with a resource, or GET",
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
    if logical_id and not FHIR_ID.fullmatch(logical_id):
        raise MalformedResource(
            f"{method} {echoed(str(url))}: the id is not a FHIR id",
            issues=[Issue("invalid", "a FHIR id is 1 to 64 of A-Z, a-z, 0-9, '-' and '.'", (f"{prefix}.request.url",))],
        )
    handler = HANDLERS.get((method, resource_type))
    if handler is None:
        raise MethodNotAllowed(
            f"{method} {resource_type} is not supported in a Bundle",
            issues=[Issue("not-supported", f"{method} {resource_type} is not supported", (f"{prefix}.request",))],
        )
    return _EntryRequest(
        handler,
        _resolve_references(resource, run.references),
        logical_id or None,
        request.get("ifNoneExist"),
        request.get("ifMatch"),
    )


def _resolve_references(resource: dict[str, Any], references: dict[str, str]) -> dict[str, Any]:
    subject = resource.get("subject")
    if isinstance(subject, dict) and subject.get("reference") in references:
        return {**resource, "subject": {**subject, "reference": references[subject["reference"]]}}
    return resource


def _text(data: dict[str, Any]) -> str:
    """The entry's resource as stored: compact UTF-8 JSON, by orjson (a Bundle's 1,000 entries spent 4 % of their time
    in ``json.dumps``). What orjson refuses (an integer beyond 64 bits) takes the long way; NaN never gets here (the
    body parser refuses it)."""
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _post_response(write: FhirWrite, request: _EntryRequest) -> Outcome:
    write.principal.require(Permission.MEASUREMENTS_WRITE)
    return writes.create_response(
        write, data=request.data, text=_text(request.data), if_none_exist=request.if_none_exist
    )


def _put_response(write: FhirWrite, request: _EntryRequest) -> Outcome:
    write.principal.require(Permission.MEASUREMENTS_WRITE)
    assert request.logical_id is not None
    return writes.put_response(
        write, logical_id=request.logical_id, data=request.data, text=_text(request.data), if_match=request.if_match
    )


def _post_patient(write: FhirWrite, request: _EntryRequest) -> Outcome:
    write.principal.require(Permission.PATIENTS_WRITE)
    return writes.create_patient(write, data=request.data, if_none_exist=request.if_none_exist)


def _put_patient(write: FhirWrite, request: _EntryRequest) -> Outcome:
    write.principal.require(Permission.PATIENTS_WRITE)
    assert request.logical_id is not None
    return writes.put_patient(write, logical_id=request.logical_id, data=request.data, if_match=request.if_match)


def _questionnaire(write: FhirWrite, request: _EntryRequest) -> Outcome:
    write.principal.require(Permission.QUESTIONNAIRES_MANAGE)
    return writes.register_questionnaire(
        write,
        data=request.data,
        text=_text(request.data),
        logical_id=request.logical_id,
        if_match=request.if_match,
    )


Handler = Callable[[FhirWrite, "_EntryRequest"], Outcome]
HANDLERS: dict[tuple[str, str], Handler] = {
    ("POST", "QuestionnaireResponse"): _post_response,
    ("PUT", "QuestionnaireResponse"): _put_response,
    ("POST", "Patient"): _post_patient,
    ("PUT", "Patient"): _put_patient,
    ("POST", "Questionnaire"): _questionnaire,
    ("PUT", "Questionnaire"): _questionnaire,
}


def _read_entry(run: _Run, entry: dict[str, Any]) -> ReadResult:
    """A GET entry: ``Type/id`` read, or ``Type?params`` searched, as the routes would answer them."""
    reads = run.reads
    if reads is None:
        raise MethodNotAllowed("GET entries are not served here")
    write = run.write
    context = search.SearchContext(db=write.db, registry=write.registry, principal=write.principal, now=reads.now)
    url = _entry_url(str(entry["request"].get("url", "")), reads)
    path, _, query = url.partition("?")
    resource_type, _, logical_id = path.strip("/").partition("/")
    if resource_type not in search.SEARCHES or "/" in logical_id or (logical_id and query):
        raise MethodNotAllowed(
            f"GET {echoed(url)} is not supported",
            issues=[Issue("not-supported", "GET entries read Type/id or search Type?params of a served type")],
        )
    if logical_id:
        resource = search.read_resource(context, resource_type, logical_id)
        return ReadResult(resource, _patient_in(resource))
    params = tuple(urllib.parse.parse_qsl(query, keep_blank_values=True))
    searched = search.run(context, SearchRequest(resource_type, params, reads.base, reads.strict))
    named = set(searched.patients)
    return ReadResult(searched.bundle, named.pop() if len(named) == 1 else None)


def _entry_url(url: str, reads: Reads | None) -> str:
    """An entry's URL relative to the base (an absolute URL on this server's base is taken too)."""
    if reads is not None and url.startswith(reads.base + "/"):
        return url.removeprefix(reads.base + "/")
    return url.lstrip("/")


def _patient_in(resource: dict[str, Any]) -> uuid.UUID | None:
    if resource.get("resourceType") == "Patient":
        return _patient_of(f"Patient/{resource.get('id')}")
    for key in ("subject", "for"):
        reference = resource.get(key)
        if isinstance(reference, dict):
            return _patient_of(reference.get("reference"))
    return None


def _response_entry(result: Outcome | ReadResult | EntryFailure, prefer: ReturnPreference | None) -> dict[str, Any]:
    if isinstance(result, EntryFailure):
        return {
            "response": {
                "status": _status_line(result.status),
                "outcome": operation_outcome(result.issues).model_dump(mode="json", exclude_none=True),
            }
        }
    if isinstance(result, ReadResult):
        return {"resource": result.resource, "response": {"status": _status_line(200)}}
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
