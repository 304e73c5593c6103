"""``/openapi.json`` declares exactly what each route sends: every response media type is one the route can send,
every error is declared as problem details (under ``/fhir`` an OperationOutcome) under the media type that is really
sent, binary files as binary, and the import's request bodies as the files it reads. Then real answers of every kind
(each export format, the chart, the report, an import, the errors) are checked against what the document declares.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from httpx2 import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.auth.permissions import Role
from app.core.problems import PROBLEM_MEDIA_TYPE
from app.fhir.codes import FHIR_MEDIA_TYPE
from app.research.dependencies import NDJSON_TYPES
from app.research.writers import MEDIA_TYPES
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.research.conftest import new_project
from tests.security.openapi_routes import PHQ9_RESPONSE

PROBLEM_REF = "#/components/schemas/Problem"
OUTCOME_REF = "#/components/schemas/OperationOutcome"
EXPORT_MEDIA_TYPES = frozenset(media_type.split(";")[0] for media_type in MEDIA_TYPES.values())
SENT_BY_BARE_RESPONSES = {
    ("GET", "/v1/research/export"): EXPORT_MEDIA_TYPES,
    ("GET", "/v1/research/export/identified"): EXPORT_MEDIA_TYPES,
    ("GET", "/v1/patients/{patient_id}/chart.svg"): frozenset({"image/svg+xml"}),
    ("GET", "/v1/research/redcap/data-dictionary"): frozenset({"text/csv"}),
}
"""Routes that return a plain ``Response``, whose class names no media type: what they set on it."""
HEALTH_FAILURE = ("GET", "/health", "503")
"""Not a problem: the health document saying the database does not answer (``application/health+json``)."""
UNTYPED = {
    ("GET", "/v1/research/export", "200", "text/csv"),
    ("GET", "/v1/research/export/identified", "200", "text/csv"),
}
"""CSV exports have no schema, on purpose: a generator that knows only ``text/*`` would otherwise read every export
format, Parquet too, as text (the route's description says to read the body as bytes)."""

OAUTH_ERRORS = {
    ("POST", "/v1/smart/token", "400"): {
        "application/json": {"schema": {"$ref": "#/components/schemas/OAuthErrorBody"}}
    }
}
"""The token endpoint's refusals are OAuth 2.0 errors (RFC 6749 §5.2: ``application/json``, ``error`` and
``error_description``), which is what an OAuth client reads: the one kind of error that is not problem details."""

Operation = tuple[str, str, str, dict[str, Any]]
Conforms = Callable[[str, str, Response], None]


def responses(document: dict[str, Any]) -> Iterator[Operation]:
    """(method, path, status, response object) for every declared response."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                yield method.upper(), path, status, response


def sent_on_success(app: FastAPI) -> dict[tuple[str, str], frozenset[str]]:
    """The media types each route's successful answers carry, read from the route's response class."""
    sent = {}
    for route in iter_route_contexts(app.routes):  # through included routers (FastAPI includes them lazily)
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        response_class = route.response_class
        if isinstance(response_class, DefaultPlaceholder):
            response_class = response_class.value
        for method in route.methods or ():
            media_type = response_class.media_type
            key = (method, str(route.path))
            sent[key] = frozenset({media_type}) if media_type else SENT_BY_BARE_RESPONSES.get(key, frozenset())
    return sent


def sent_on_error(path: str) -> str:
    return FHIR_MEDIA_TYPE if path.startswith("/fhir") else PROBLEM_MEDIA_TYPE


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def test_every_declared_media_type_is_one_the_route_sends(app: FastAPI, document: dict[str, Any]) -> None:
    on_success = sent_on_success(app)
    wrong = []
    checked = 0
    for method, path, status, response in responses(document):
        declared = set(response.get("content", {}))
        if (method, path, status) in OAUTH_ERRORS:
            sendable = frozenset(OAUTH_ERRORS[(method, path, status)])
        elif status.startswith(("4", "5")) and (method, path, status) != HEALTH_FAILURE:
            sendable = frozenset({sent_on_error(path)})
        else:
            sendable = on_success[(method, path)]
        checked += len(declared)
        if declared and not sendable:
            wrong.append(f"{method} {path}: a plain Response; list the media types it sets in SENT_BY_BARE_RESPONSES")
        elif not declared <= sendable:
            wrong.append(f"{method} {path} {status}: declares {sorted(declared - sendable)}, sends {sorted(sendable)}")
    assert checked > 500  # every route declares its answers and its errors
    assert not wrong, "\n".join(wrong)


def test_every_error_is_declared_as_problem_details_or_an_operation_outcome(document: dict[str, Any]) -> None:
    wrong = []
    errors = 0
    for method, path, status, response in responses(document):
        if not status.startswith(("4", "5")) or (method, path, status) == HEALTH_FAILURE:
            continue
        errors += 1
        expected = OAUTH_ERRORS.get(
            (method, path, status),
            {FHIR_MEDIA_TYPE: {"schema": {"$ref": OUTCOME_REF}}}
            if path.startswith("/fhir")
            else {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
        )
        if response.get("content") != expected:
            wrong.append(f"{method} {path} {status}: {json.dumps(response.get('content'))}")
    assert errors > 400
    assert not wrong, "\n".join(wrong)


def test_the_error_schemas_say_what_is_sent(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    problem = schemas["Problem"]
    assert set(problem["required"]) == {"title", "status"}
    assert set(problem["properties"]) >= {"type", "title", "status", "detail", "instance", "errors"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/ProblemFieldError"}
    assert set(schemas["ProblemFieldError"]["required"]) == {"pointer", "field", "detail"}
    outcome = schemas["OperationOutcome"]
    assert outcome["required"] == ["resourceType", "issue"]
    assert outcome["properties"]["resourceType"]["enum"] == ["OperationOutcome"]


def test_every_reference_names_a_listed_schema(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    listed = set(document["components"]["schemas"])
    named = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert {"Problem", "ProblemFieldError", "OperationOutcome"} <= named
    assert named <= listed, sorted(named - listed)


def test_every_successful_answer_with_a_body_has_a_schema(document: dict[str, Any]) -> None:
    missing = [
        f"{method} {path} {status} {media_type}"
        for method, path, status, response in responses(document)
        for media_type, content in response.get("content", {}).items()
        if "schema" not in content and (method, path, status, media_type) not in UNTYPED
    ]
    assert not missing, "\n".join(missing)


def test_exports_declare_each_format_under_its_own_media_type_binary_first(document: dict[str, Any]) -> None:
    for path in ("/v1/research/export", "/v1/research/export/identified"):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]

        assert list(content) == [
            "application/vnd.apache.parquet",
            "application/x-spss-sav",
            "application/x-stata-dta",
            "text/csv",
        ]
        binary = {"schema": {"type": "string", "format": "binary"}}
        assert content["application/vnd.apache.parquet"] == binary
        assert content["application/x-spss-sav"] == binary
        assert content["application/x-stata-dta"] == binary
        assert content["text/csv"] == {}


def test_the_chart_is_declared_as_svg_text(document: dict[str, Any]) -> None:
    content = document["paths"]["/v1/patients/{patient_id}/chart.svg"]["get"]["responses"]["200"]["content"]

    assert content == {"image/svg+xml": {"schema": {"type": "string"}}}


def test_the_import_declares_the_files_it_reads(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/research/imports"]["post"]["requestBody"]

    assert body["required"] is True
    assert set(body["content"]) == {"text/csv", *NDJSON_TYPES}
    assert list(body["content"])[:2] == ["text/csv", "application/x-ndjson"]
    assert all(content == {"schema": {"type": "string"}} for content in body["content"].values())
    assert "item_1" in body["description"]
    assert "`items` object" in body["description"]


# Real answers, checked against the document -------------------------------------------------------------------------

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def conforms(app: FastAPI) -> Conforms:
    """Check that an answer's status is declared, its media type is declared for that status, and its body fits that
    media type's schema (schemathesis' checks, as the fuzzing suite runs them)."""
    schema = schemathesis.openapi.from_dict(app.openapi())

    def check(method: str, path: str, response: Response) -> None:
        template = re.compile(re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")
        found = template.match(response.request.url.path)
        assert found is not None, (path, response.request.url.path)
        case = schema[path][method].Case(path_parameters=found.groupdict() or None)
        case.validate_response(response, checks=CHECKS)

    return check


def patient_with_a_measurement(client: TestClient, clinic: ClinicKeys) -> str:
    created = client.post("/v1/patients", json={"external_id": f"MRN-{uuid.uuid4().hex[:8]}"}, headers=clinic.headers())
    assert created.status_code == 201, created.text
    patient_id = str(created.json()["id"])
    measured = client.post(
        f"/v1/patients/{patient_id}/measurements",
        json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-02T09:00:00Z"},
        headers=clinic.headers(),
    )
    assert measured.status_code == 201, measured.text
    return patient_id


@pytest.mark.parametrize("export_format", ["csv", "parquet", "sav", "dta"])
def test_every_export_format_is_sent_as_declared(
    client: TestClient, clinic: ClinicKeys, conforms: Conforms, export_format: str
) -> None:
    patient_with_a_measurement(client, clinic)
    researcher = new_project(client, clinic).headers
    for path, headers in (
        ("/v1/research/export", researcher),
        ("/v1/research/export/identified", clinic.headers(Role.ADMIN)),
    ):
        response = client.get(path, params={"format": export_format}, headers=headers)

        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0] in EXPORT_MEDIA_TYPES
        conforms("GET", path, response)


def test_the_chart_and_the_report_are_sent_as_declared(
    client: TestClient, clinic: ClinicKeys, conforms: Conforms
) -> None:
    patient_id = patient_with_a_measurement(client, clinic)

    chart = client.get(f"/v1/patients/{patient_id}/chart.svg", params={"instrument": "phq9"}, headers=clinic.headers())
    report = client.get(f"/v1/patients/{patient_id}/report", headers=clinic.headers())

    assert (chart.status_code, chart.headers["content-type"]) == (200, "image/svg+xml")
    assert (report.status_code, report.headers["content-type"]) == (200, "text/html; charset=utf-8")
    conforms("GET", "/v1/patients/{patient_id}/chart.svg", chart)
    conforms("GET", "/v1/patients/{patient_id}/report", report)


def test_imports_and_their_refusals_are_sent_as_declared(
    client: TestClient, clinic: ClinicKeys, conforms: Conforms
) -> None:
    external_id = f"MRN-{uuid.uuid4().hex[:8]}"
    assert client.post("/v1/patients", json={"external_id": external_id}, headers=clinic.headers()).status_code == 201
    row = {"external_id": external_id, "instrument": "phq9", "measured_at": "2026-11-02T09:00:00Z", "items": ISSUE_PHQ9}
    items = ",".join(f"item_{n}" for n in range(1, 10))
    csv_file = (
        f"external_id,instrument,measured_at,{items}\n{external_id},phq9,2026-11-09T09:00:00Z,1,1,1,1,1,1,1,1,1\n"
    )
    admin = clinic.headers(Role.ADMIN)

    ndjson = client.post(
        "/v1/research/imports",
        content=json.dumps(row) + "\n",
        headers={**admin, "Content-Type": "application/x-ndjson"},
    )
    csv = client.post("/v1/research/imports", content=csv_file, headers={**admin, "Content-Type": "text/csv"})
    duplicate = client.post("/v1/research/imports", content=csv_file, headers={**admin, "Content-Type": "text/csv"})
    unknown_type = client.post(
        "/v1/research/imports", content=csv_file, headers={**admin, "Content-Type": "text/plain"}
    )

    assert [ndjson.status_code, csv.status_code] == [201, 201], (ndjson.text, csv.text)
    assert [duplicate.status_code, unknown_type.status_code] == [422, 422]
    for response in (ndjson, csv, duplicate, unknown_type):
        conforms("POST", "/v1/research/imports", response)


def test_errors_are_sent_as_declared(client: TestClient, clinic: ClinicKeys, conforms: Conforms) -> None:
    external_id = f"MRN-{uuid.uuid4().hex[:8]}"
    first = client.post("/v1/patients", json={"external_id": external_id}, headers=clinic.headers())
    conflict = client.post("/v1/patients", json={"external_id": external_id}, headers=clinic.headers())
    invalid = client.post("/v1/patients", json={"external_id": 7, "unknown": True}, headers=clinic.headers())
    anonymous = client.get("/v1/patients", headers={})
    forbidden = client.get("/v1/research/export", headers=clinic.headers(Role.CLINICIAN))
    missing = client.get(f"/v1/patients/{uuid.uuid4()}/report", headers=clinic.headers())
    fhir_missing = client.get(f"/fhir/Patient/{uuid.uuid4()}", headers=clinic.headers())
    fhir_anonymous = client.get("/fhir/Observation", headers={})

    assert first.status_code == 201
    answers = [
        ("POST", "/v1/patients", conflict, 409),
        ("POST", "/v1/patients", invalid, 422),
        ("GET", "/v1/patients", anonymous, 401),
        ("GET", "/v1/research/export", forbidden, 403),
        ("GET", "/v1/patients/{patient_id}/report", missing, 404),
        ("GET", "/fhir/Patient/{patient_id}", fhir_missing, 404),
        ("GET", "/fhir/Observation", fhir_anonymous, 401),
    ]
    for method, path, response, status in answers:
        assert response.status_code == status, (path, response.text)
        expected = FHIR_MEDIA_TYPE if path.startswith("/fhir") else PROBLEM_MEDIA_TYPE
        assert response.headers["content-type"].split(";")[0] == expected
        conforms(method, path, response)


def test_versioned_fhir_answers_extract_and_token_refusals_are_sent_as_declared(
    client: TestClient, clinic: ClinicKeys, conforms: Conforms
) -> None:
    """The answers the versioning, ``$extract`` and SMART branches added: 304, 412, the extract Bundle, the token
    endpoint's OAuth error and a 401 with its ``WWW-Authenticate`` challenge."""
    patient_id = patient_with_a_measurement(client, clinic)
    admin = clinic.headers(Role.ADMIN, {"Content-Type": FHIR_MEDIA_TYPE})
    response = json.dumps(json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", patient_id)))
    created = client.post("/fhir/QuestionnaireResponse", content=response, headers=admin)
    assert created.status_code == 201, created.text
    response_id = created.json()["id"]
    path = f"/fhir/QuestionnaireResponse/{response_id}"
    read = client.get(path, headers=admin)
    unchanged = client.get(path, headers={**admin, "If-None-Match": read.headers["etag"]})
    stale = client.put(
        path, content=json.dumps({**created.json(), "id": response_id}), headers={**admin, "If-Match": 'W/"7"'}
    )
    extracted = client.post("/fhir/QuestionnaireResponse/$extract", content=response, headers=admin)
    refused_token = client.post("/v1/smart/token", data={"grant_type": "client_credentials"})
    anonymous = client.get(path)

    answers = [
        ("GET", "/fhir/QuestionnaireResponse/{response_id}", unchanged, 304),
        ("PUT", "/fhir/QuestionnaireResponse/{response_id}", stale, 412),
        ("POST", "/fhir/QuestionnaireResponse/$extract", extracted, 200),
        ("POST", "/v1/smart/token", refused_token, 400),
        ("GET", "/fhir/QuestionnaireResponse/{response_id}", anonymous, 401),
    ]
    for method, template, answer, status in answers:
        assert answer.status_code == status, (template, answer.text)
        conforms(method, template, answer)
    assert unchanged.content == b""
    assert stale.headers["content-type"] == extracted.headers["content-type"] == FHIR_MEDIA_TYPE
    assert (refused_token.headers["content-type"], refused_token.json()["error"]) == (
        "application/json",
        "invalid_request",
    )
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
