"""Malformed and hostile bodies on every POST, PUT and PATCH route of the schema: each is refused with a 4xx problem
(an OperationOutcome under /fhir), never a 500, and an oversized body is a 413 whether or not it declares its length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response

from app.auth.permissions import Role
from app.main import create_app
from tests.conftest import make_settings, new_clinic
from tests.security.clinics import StockedClinic, created, stocked_clinic
from tests.security.hostile_payloads import PAYLOADS
from tests.security.openapi_routes import (
    Route,
    body_arguments,
    body_references,
    example_body,
    fill,
    fill_body,
    is_oauth_error,
    path_variants,
    query_values,
    routes,
)

WRITES = ("POST", "PUT", "PATCH")
BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def own(app: FastAPI, client: TestClient) -> StockedClinic:
    return stocked_clinic(app, client)


def write_routes(app: FastAPI) -> list[Route]:
    return [route for route in routes(app) if route.method in WRITES]


def admin_key(client: TestClient, own: StockedClinic) -> dict[str, str]:
    """A fresh admin key of the clinic, so that one route's hundreds of requests stay within one key's rate limit."""
    issued = created(client.post("/v1/api-keys", json={"role": "admin"}, headers=own.admin))
    return {"Authorization": f"Bearer {issued['key']}"}


def caller(client: TestClient, own: StockedClinic, route: Route) -> dict[str, str]:
    if route.path.startswith("/v1/me/"):  # routes for a patient's own app
        return {"Authorization": f"Bearer {own.patient_token}"}
    return admin_key(client, own)


def error_document(route: Route, response: Response) -> bool:
    """Problem details; under /fhir an OperationOutcome, as a FHIR client expects of every answer there."""
    content_type = response.headers.get("content-type", "")
    if is_oauth_error(route.method, route.path, content_type, response.text):
        return True
    if route.path.startswith("/fhir"):
        return content_type.startswith("application/fhir+json") and '"OperationOutcome"' in response.text
    return content_type.startswith("application/problem+json")


def judge(route: Route, response: Response) -> str | None:
    status = response.status_code
    if status >= 500:
        return "server error"
    if status >= 400 and not error_document(route, response):
        return "refused without a problem document"
    if undeclared := route.undeclared(status, response.headers.get("content-type", "")):
        return f"an answer /openapi.json does not declare: {undeclared}"
    if status < 400 and route.takes_body:
        return "accepted"
    return None


def test_every_write_route_refuses_hostile_bodies_with_a_4xx_problem(
    app: FastAPI, http: TestClient, own: StockedClinic, figures: list[str], backend: str
) -> None:
    client = http
    schema = app.openapi()
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    write = write_routes(app)
    for route in write:
        own.discover(client, schema, route, {f"{r.method} {r.path}": r for r in routes(app)})
        values = path_variants(route, own.ids)[0]
        template = example_body(schema, route)
        valid = fill_body(template, {name: own.ids(name, route)[0] for name in body_references(template)} | values)
        url = fill(route.path, values)
        query = query_values(route, own.ids, filters={})
        headers = {**caller(client, own, route), **body_arguments(route, valid or {}).get("headers", {})}
        for name, build in PAYLOADS.items():
            payload = build(valid if valid is not None else {})
            if payload is None:
                continue
            response = client.request(route.method, url, params=query, content=payload, headers=headers)
            statuses[response.status_code] += 1
            finding = judge(route, response)
            if finding:
                failures.append(f"{route.method} {route.path} with {name} -> {response.status_code}: {finding}")

    figures.append(
        f"[{backend}] hostile input: {len(write)} write routes × {len(PAYLOADS)} payloads = "
        f"{statuses.total()} requests; statuses {dict(sorted(statuses.items()))}"
    )
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def small_limit(database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The app with a 64 KiB body limit, so that an oversized body is cheap to send."""
    limited = create_app(make_settings(database_url, max_body_bytes=BODY_LIMIT))
    with TestClient(limited, raise_server_exceptions=False) as limited_client:
        yield limited_client, new_clinic(limited).headers(Role.ADMIN)


def _chunks(size: int) -> Iterator[bytes]:
    """A body streamed in pieces, without a Content-Length (chunked)."""
    sent = 0
    while sent < size:
        yield b" " * 8192
        sent += 8192


def test_an_oversized_body_is_a_413_problem_on_every_write_route(
    app: FastAPI, own: StockedClinic, small_limit: tuple[TestClient, dict[str, str]], figures: list[str], backend: str
) -> None:
    client, admin = small_limit
    failures: list[str] = []
    write = write_routes(app)
    for route in write:
        url = fill(route.path, path_variants(route, own.ids)[0])
        headers = {**admin, "Content-Type": route.media_type}
        answers = [
            ("with Content-Length", client.request(route.method, url, content=b" " * (BODY_LIMIT + 1), headers=headers))
        ]
        if route.takes_body:  # a route that never reads its body has no need to refuse one it is not told the size of
            answers.append(
                ("streamed", client.request(route.method, url, content=_chunks(BODY_LIMIT * 2), headers=headers))
            )
        for how, response in answers:
            if response.status_code != 413 or not error_document(route, response):
                failures.append(f"{route.method} {route.path} {how} -> {response.status_code}: {response.text[:120]}")

    figures.append(f"[{backend}] oversized bodies: {len(write)} write routes × 2 (declared, streamed) → 413")
    assert not failures, "\n".join(failures)


HOSTILE_VALUES = ["a\x00b", "x" * 2000, "../../../etc/passwd", "1e400", "-1", "' OR 1=1 --"]
"""Path and query values: a NUL (PostgreSQL refuses it), a very long id, traversal, numbers that are not."""


def test_hostile_path_query_and_header_values_never_cause_a_server_error(
    app: FastAPI, http: TestClient, own: StockedClinic, figures: list[str], backend: str
) -> None:
    failures: list[str] = []
    sent = 0
    every_route = routes(app)
    admin = admin_key(http, own)
    for route in every_route:
        values = path_variants(route, own.ids)[0]
        query = query_values(route, own.ids, filters={})
        for parameter in [*route.parameters("path"), *route.parameters("query")]:
            for hostile in HOSTILE_VALUES:
                where, name = parameter["in"], parameter["name"]
                url = fill(route.path, {**values, name: quote(hostile, safe="")} if where == "path" else values)
                params = {**query, name: hostile} if where == "query" else query
                response = http.request(route.method, url, params=params, headers=admin)
                sent += 1
                finding = judge(route, response) if response.status_code >= 400 else None
                if finding:
                    failures.append(f"{route.method} {route.path} {where} {name}={hostile[:20]!r} -> {finding}")
    for key in [b"a\x00b", "é".encode("latin-1"), b"x" * 256, b"", b"\x7f"]:
        headers = [(b"Authorization", admin["Authorization"].encode()), (b"Idempotency-Key", key)]
        response = http.post("/v1/patients", json={}, headers=headers)
        sent += 1
        if response.status_code != 422:
            failures.append(f"Idempotency-Key {key[:20]!r} -> {response.status_code} (expected 422)")

    figures.append(f"[{backend}] hostile path, query and header values: {sent} requests over {len(every_route)} routes")
    assert not failures, "\n".join(failures)


def test_a_refusal_naming_an_overlong_or_nul_id_is_still_audited(app: FastAPI, http: TestClient) -> None:
    admin = new_clinic(app).headers(Role.ADMIN)
    for instrument in ["x" * 2000, "a\x00b"]:
        response = http.post(f"/v1/instruments/{quote(instrument, safe='')}/rescore", headers=admin)
        assert response.status_code == 404

    trail = created(http.get("/v1/audit", params={"outcome": "not_found"}, headers=admin))["items"]
    refused = [event["resource_id"] for event in trail if event["route"] == "/v1/instruments/{instrument_id}/rescore"]
    # Cut to the column's 100 characters, and the NUL PostgreSQL cannot store removed.
    assert sorted(refused) == ["ab", "x" * 100]


def test_a_fhir_read_refused_for_a_malformed_id_is_an_operation_outcome_and_audited(
    app: FastAPI, http: TestClient
) -> None:
    """Recording the refusal looks the named response up only when its id is well formed: a NUL (which PostgreSQL
    refuses in any statement) must not turn the refusal into another error."""
    admin = new_clinic(app).headers(Role.ADMIN)
    for malformed in ["a\x00b", "x" * 65]:
        response = http.get(f"/fhir/QuestionnaireResponse/{quote(malformed, safe='')}", headers=admin)
        assert response.status_code == 400, response.text
        assert response.json()["resourceType"] == "OperationOutcome"

    trail = created(http.get("/v1/audit", params={"outcome": "rejected"}, headers=admin))["items"]
    refused = [event for event in trail if event["route"] == "/fhir/QuestionnaireResponse/{response_id}"]
    assert sorted((event["status_code"], event["resource_id"]) for event in refused) == [(400, "ab"), (400, "x" * 65)]
