"""The routes under test, read from the OpenAPI schema, and how to fill their paths, queries and bodies.

Nothing here lists routes by hand except ``PUBLIC_ROUTES`` and a few example bodies: a route another engineer adds is
covered the next time the suites run. Path parameters are filled by name from a table of ids (a patient, a
measurement, ...); an id the table does not know is looked up in, or created through, the collection it belongs to.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import schemathesis
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, Phase, find, settings

from app.auth.permissions import Permission
from app.auth.smart_tokens import ASSERTION_TYPE, TOKEN_PATH
from tests.auth.smart import public_jwks
from tests.conftest import ISSUE_PHQ9

PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/livez"),
        ("POST", "/v1/enrolments/exchange"),
        ("GET", "/v1/report-links/{token}"),
        ("GET", "/fhir/metadata"),
        ("GET", "/.well-known/smart-configuration"),
        ("GET", "/fhir/.well-known/smart-configuration"),
        ("POST", TOKEN_PATH),
    }
)
"""Routes anyone may call without credentials (the docs pages are not in the schema). The SMART token endpoint
authenticates its caller by the client assertion in the body. A report link's page: the token in its path is the
credential (``app.clinical.report_links``)."""
OAUTH_ROUTES = frozenset({("POST", TOKEN_PATH)})
"""Routes whose errors are OAuth 2.0 errors (RFC 6749 §5.2: ``application/json`` with ``error``), not problems."""


def is_oauth_error(method: str, path: str, content_type: str, body: str) -> bool:
    """An OAuth error document from a route that answers with them."""
    return (method, path) in OAUTH_ROUTES and content_type.startswith("application/json") and '"error"' in body


MEASURED_AT = "2026-11-20T09:30:00+01:00"
NOT_AT_ALL = {"system": "http://loinc.org", "code": "LA6568-5", "display": "Not at all"}
"""PHQ-9's first answer option as the served Questionnaire (``GET /fhir/Questionnaire/phq9``) codes it."""
PHQ9_RESPONSE = {
    "resourceType": "QuestionnaireResponse",
    "status": "completed",
    "questionnaire": "urn:compassion-outcomes:questionnaire:phq9",
    "subject": {"reference": "Patient/{patient_id}"},
    "authored": MEASURED_AT,
    "item": [{"linkId": str(n), "answer": [{"valueCoding": NOT_AT_ALL}]} for n in range(1, 10)],
}


def example_schedule(instruments: list[str]) -> dict[str, Any]:
    """A weekly schedule whose first window opened at midnight UTC today: its assessments are due now."""
    return {
        "instruments": instruments,
        "starts_on": datetime.now(UTC).date().isoformat(),
        "every_days": 7,
        "window_days": 3,
        "timezone": "UTC",
    }


EXAMPLE_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/patients"): {},
    ("POST", "/v1/patients/{patient_id}/sessions"): {"started_at": MEASURED_AT},
    ("POST", "/v1/patients/{patient_id}/measurements"): {
        "instrument": "phq9",
        "items": ISSUE_PHQ9,
        "measured_at": MEASURED_AT,
    },
    ("POST", "/v1/patients/{patient_id}/measurements/{measurement_id}/amend"): {
        "items": ISSUE_PHQ9,
        "reason": "corrected after a call with the patient",
    },
    ("POST", "/v1/me/measurements"): {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": MEASURED_AT},
    ("POST", "/v1/patients/{patient_id}/schedules"): example_schedule(["phq9"]),
    ("POST", "/v1/score/{instrument_id}"): {"items": ISSUE_PHQ9},
    ("PUT", "/v1/instruments/{instrument_id}/text"): {"licence_note": "test licence", "items": {"1": "wording"}},
    ("POST", "/v1/api-keys"): {"role": "clinician"},
    ("POST", "/v1/smart-clients"): {"name": "EHR engine", "jwks": public_jwks(), "scopes": ["system/Observation.rs"]},
    ("POST", TOKEN_PATH): "grant_type=client_credentials&scope=system%2FObservation.rs"
    f"&client_assertion_type={ASSERTION_TYPE}&client_assertion=e30.e30.c2ln",
    ("POST", "/v1/patients/{patient_id}/enrolments"): {},
    ("POST", "/v1/research/projects"): {
        "name": "outcomes-study",
        "purpose": "Outcomes of compassion-focused therapy.",
        "ethics_reference": "REK 2026/123",
        "consent_model": "opt_in",
    },
    ("PUT", "/v1/patients/{patient_id}/consents/{project_id}"): {"status": "granted"},
    ("PUT", "/v1/me/consents/{project_id}"): {"status": "granted"},
    ("POST", "/v1/enrolments/exchange"): {"code": "AAAA-BBBB-CCCC"},
    ("POST", "/fhir/Patient"): {"resourceType": "Patient"},
    ("PUT", "/fhir/Patient/{patient_id}"): {"resourceType": "Patient", "id": "{patient_id}"},
    ("POST", "/fhir/QuestionnaireResponse"): PHQ9_RESPONSE,
    ("PUT", "/fhir/QuestionnaireResponse/{response_id}"): {**PHQ9_RESPONSE, "id": "{response_id}"},
    ("POST", "/fhir/QuestionnaireResponse/$extract"): PHQ9_RESPONSE,
    ("POST", "/v1/research/imports"): json.dumps(
        {"external_id": "{external_id}", "instrument": "phq9", "measured_at": MEASURED_AT, "items": ISSUE_PHQ9}
    )
    + "\n",
    ("POST", "/fhir"): {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": PHQ9_RESPONSE, "request": {"method": "POST", "url": "QuestionnaireResponse"}}],
    },
}
"""Valid bodies, so that a request reaches the record lookup instead of stopping at body validation. ``{name}`` in a
body is a record id filled in like a path parameter (a FHIR resource's subject, or its id). Routes not listed get the
simplest body the schema accepts. A ``str`` body is sent as is, with the route's first media type."""
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

FIXED_VALUES = {
    "instrument_id": "phq9",
    "instrument": "phq9",
    "score": "total",
    "questionnaire_id": "phq9",
    "version_id": "1",
    "measure_id": "depression-remission-12m",
    "periodStart": "2026-01-01",
    "periodEnd": "2026-12-31",
}
"""Path and query values that name shared definitions rather than a clinic's records (and a FHIR version: every
stored record has a first; a quality measure and its measurement period)."""
FILTERS = ("patient_id", "measurement_id", "session_id", "key_id", "external_id", "identifier")
"""Optional query parameters that are filled (with another clinic's values) to test that filters stay in the clinic."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation: dict[str, Any]
    permission: Permission | None
    """The permission its ``requires(...)`` dependency checks, when it declares one."""

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def parameters(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.operation.get("parameters", []) if p.get("in") == where]

    @property
    def public(self) -> bool:
        return (self.method, self.path) in PUBLIC_ROUTES

    @property
    def documented_public(self) -> bool:
        return not self.operation.get("security")

    @property
    def takes_body(self) -> bool:
        return "requestBody" in self.operation

    @property
    def media_type(self) -> str:
        """The first media type the request body is documented with."""
        content = self.operation.get("requestBody", {}).get("content", {"application/json": {}})
        return str(next(iter(content)))

    @property
    def record_ids(self) -> list[str]:
        """Path parameters that name a clinic's record (not a shared definition such as an instrument)."""
        return [p["name"] for p in self.parameters("path") if _value_kind(p) == "record"]

    def undeclared(self, status: int, content_type: str) -> str | None:
        """What the schema does not declare about an answer of this route: its status, or its media type."""
        responses = self.operation["responses"]
        declared = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if declared is None:
            return f"status {status} is not declared"
        media_type = content_type.split(";")[0].strip()
        content = declared.get("content")
        if content is not None and media_type not in content:
            return f"{media_type or 'no media type'} is not declared for {status} (declared: {', '.join(content)})"
        return None


def routes(app: FastAPI) -> list[Route]:
    """Every operation in the app's OpenAPI schema, in schema order."""
    permissions = _declared_permissions(app)
    return [
        Route(method.upper(), path, operation, permissions.get((method.upper(), path)))
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    ]


def _declared_permissions(app: FastAPI) -> dict[tuple[str, str], Permission]:
    found: dict[tuple[str, str], Permission] = {}
    for context in iter_route_contexts(app.routes):  # through included routers (FastAPI includes them lazily)
        route = context.original_route
        if isinstance(route, APIRoute):
            permission = _required_permission(route.dependant)
            for method in (route.methods or ()) if permission else ():
                found[(method, context.path or route.path)] = permission  # type: ignore[assignment]
    return found


def _required_permission(dependant: Dependant) -> Permission | None:
    """``requires(Permission.X)`` builds a dependency named ``requires_x``."""
    for dependency in dependant.dependencies:
        name = getattr(dependency.call, "__name__", "")
        if name.startswith("requires_"):
            return Permission[name.removeprefix("requires_").upper()]
        inner = _required_permission(dependency)
        if inner is not None:
            return inner
    return None


def _schema(parameter: Mapping[str, Any]) -> dict[str, Any]:
    """The parameter's schema, with ``anyOf: [X, null]`` (an optional value) reduced to X."""
    schema: dict[str, Any] = dict(parameter.get("schema", {}))
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return dict(option)
    return schema


def _value_kind(parameter: Mapping[str, Any]) -> str:
    name = parameter["name"]
    schema = _schema(parameter)
    if name in FIXED_VALUES or "enum" in schema or schema.get("type") in {"integer", "number", "boolean"}:
        return "fixed"
    if schema.get("format") == "uuid" or name == "id" or name.endswith("_id"):
        return "record"
    return "fixed"


def plain_value(parameter: Mapping[str, Any]) -> str:
    """A valid value for a parameter that names no record: an instrument, an enum member, a number, a date."""
    name = parameter["name"]
    schema = _schema(parameter)
    if name in FIXED_VALUES:
        return FIXED_VALUES[name]
    if "enum" in schema:
        return str(schema["enum"][0])
    kind, value_format = schema.get("type"), schema.get("format")
    if kind in {"integer", "number"}:
        return str(schema.get("minimum", 1))
    if kind == "boolean":
        return "true"
    if value_format == "date-time":
        return "2026-01-01T00:00:00Z"
    if value_format == "date":
        return "2026-01-01"
    if value_format == "uuid":
        return str(uuid.uuid4())
    return "phq9" if "instrument" in name else "x" * max(1, int(schema.get("minLength", 1)))


IdLookup = Callable[[str, Route], list[str]]
"""Ids a clinic has for a path parameter of a route: its patient for ``patient_id``, and so on."""


def path_variants(route: Route, ids: IdLookup) -> list[dict[str, str]]:
    """Path values to call the route with: one set, or several when a parameter (FHIR ``{id}``) names several kinds."""
    choices: list[tuple[str, list[str]]] = []
    for parameter in route.parameters("path"):
        name = parameter["name"]
        values = ids(name, route) if _value_kind(parameter) == "record" else [plain_value(parameter)]
        choices.append((name, values))
    count = max((len(values) for _, values in choices), default=1)
    return [{name: values[min(i, len(values) - 1)] for name, values in choices} for i in range(count)]


def query_values(route: Route, ids: IdLookup, *, filters: Mapping[str, str]) -> dict[str, str]:
    """Required query parameters get a valid value; optional record filters get ``filters`` (another clinic's)."""
    values: dict[str, str] = {}
    for parameter in route.parameters("query"):
        name = parameter["name"]
        if name in filters:
            values[name] = filters[name]
        elif parameter.get("required"):
            values[name] = ids(name, route)[0] if _value_kind(parameter) == "record" else plain_value(parameter)
        elif _schema(parameter).get("format") == "uuid" and "measurement_id" in filters:
            values[name] = filters["measurement_id"]
    return values


def fill(path: str, values: Mapping[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def body_references(body: Any) -> list[str]:
    """The record ids a body names through ``{name}`` placeholders."""
    return sorted(set(PLACEHOLDER.findall(json.dumps(body)))) if body is not None else []


def fill_body(body: Any, values: Mapping[str, str]) -> Any:
    return None if body is None else json.loads(fill(json.dumps(body), values))


def body_arguments(route: Route, body: Any) -> dict[str, Any]:
    """Keyword arguments for ``TestClient.request`` that send the body as the route documents it."""
    if body is None:
        return {}
    if isinstance(body, str):
        return {"content": body.encode(), "headers": {"Content-Type": route.media_type}}
    return {"content": json.dumps(body).encode(), "headers": {"Content-Type": route.media_type}}


def example_body(app_schema: dict[str, Any], route: Route) -> Any:
    """A body the route's schema accepts: from ``EXAMPLE_BODIES``, else the first (simplest) one schemathesis draws."""
    if (route.method, route.path) in EXAMPLE_BODIES:
        return EXAMPLE_BODIES[(route.method, route.path)]
    if not route.takes_body:
        return None
    return json.loads(_smallest_body(json.dumps(app_schema, sort_keys=True), route.path, route.method))


@cache
def _smallest_body(schema_text: str, path: str, method: str) -> str:
    operation = schemathesis.openapi.from_dict(json.loads(schema_text))[path][method]
    case = find(
        operation.as_strategy(),
        lambda _case: True,
        settings=settings(
            database=None, derandomize=True, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
        ),
    )
    return json.dumps(case.body)
