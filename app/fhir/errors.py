"""FHIR errors: domain errors that carry OperationOutcome issues (one per problem, each with its FHIRPath).

They know no HTTP beyond their status class attribute, like every ``DomainError``; ``app.fhir.http`` renders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from app.core.errors import DomainError

Severity = Literal["fatal", "error", "warning", "information"]
IssueType = Literal[
    "invalid",
    "structure",
    "required",
    "value",
    "security",
    "login",
    "forbidden",
    "code-invalid",
    "not-supported",
    "duplicate",
    "multiple-matches",
    "not-found",
    "too-costly",
    "too-long",
    "business-rule",
    "conflict",
    "processing",
    "exception",
    "throttled",
    "informational",
]
"""The R4 IssueType codes this server uses (fhir.resources does not enforce the binding, so mypy does)."""


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome issue: ``code`` is a FHIR IssueType (``invalid``, ``code-invalid``, ``required``…)."""

    code: IssueType
    diagnostics: str
    expression: tuple[str, ...] = ()
    severity: Severity = "error"

    def under(self, prefix: str) -> Issue:
        """The same issue for a resource nested at ``prefix`` (``Bundle.entry[3].resource``)."""
        return Issue(self.code, self.diagnostics, tuple(_nest(path, prefix) for path in self.expression), self.severity)


def _nest(path: str, prefix: str) -> str:
    """``QuestionnaireResponse.item[0]`` under ``Bundle.entry[2].resource`` is ``Bundle.entry[2].resource.item[0]``;
    a path already rooted in the container (``Bundle.entry[2].request.url``) stays as it is."""
    resource_type, dot, rest = path.partition(".")
    if resource_type == prefix.partition(".")[0]:
        return path
    return prefix + dot + rest


class FhirError(DomainError):
    """A request FHIR refuses; ``issues`` say exactly where and why."""

    issue_code: ClassVar[IssueType] = "processing"

    def __init__(
        self,
        detail: str,
        *,
        issues: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.issues = issues or [Issue(self.issue_code, detail)]
        self.headers = headers or {}
        self.http_status = http_status or self.status
        """The status to answer with: the class's, unless one failed Bundle entry decides it."""


class MalformedResource(FhirError):
    """The body is not JSON, or not a valid R4 resource of the expected type (FHIR: 400)."""

    slug = "fhir-malformed"
    title = "Malformed FHIR resource"
    status = 400
    issue_code = "structure"


class UnprocessableResource(FhirError):
    """A valid resource that breaks a business rule: unknown form, unknown answer code, too many missing items."""

    slug = "fhir-unprocessable"
    title = "FHIR resource could not be processed"
    status = 422
    issue_code = "processing"


class PreconditionFailed(FhirError):
    """Conditional create criteria matched more than one resource."""

    slug = "fhir-precondition-failed"
    title = "Precondition failed"
    status = 412
    issue_code = "multiple-matches"


class InUse(FhirError):
    """An identifier or id the caller could use only if it were free, held by a record the caller may not read (a
    patient token, and another patient's response). Names nothing of that record: not its id, subject or content."""

    slug = "fhir-in-use"
    title = "In use"
    status = 409
    issue_code = "duplicate"


class NotAcceptable(FhirError):
    slug = "fhir-not-acceptable"
    title = "Not acceptable"
    status = 406
    issue_code = "not-supported"


class UnsupportedMediaType(FhirError):
    slug = "fhir-unsupported-media-type"
    title = "Unsupported media type"
    status = 415
    issue_code = "not-supported"


class MethodNotAllowed(FhirError):
    slug = "fhir-method-not-allowed"
    title = "Method not allowed"
    status = 405
    issue_code = "not-supported"


class UnknownInteraction(FhirError):
    slug = "fhir-not-supported"
    title = "Not supported"
    status = 404
    issue_code = "not-supported"


class ReferenceNotFound(FhirError):
    """A reference in the body names nothing the caller's clinic holds (missing, or another clinic's)."""

    slug = "not-found"
    title = "Not found"
    status = 404
    issue_code = "not-found"


class InvalidSearch(FhirError):
    """A search parameter's value this server cannot read (an unknown code): FHIR answers 400 rather than guess."""

    slug = "fhir-invalid-search"
    title = "Invalid search"
    status = 400
    issue_code = "invalid"


class InvalidParameter(FhirError):
    """An operation's parameter this server cannot read (a malformed date, an unknown report type): 400."""

    slug = "fhir-invalid-parameter"
    title = "Invalid operation parameter"
    status = 400
    issue_code = "invalid"
