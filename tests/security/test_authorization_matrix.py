"""Broken object-level authorization, tested on every route in the OpenAPI schema: each role of one clinic (and no
credentials at all) asks for another clinic's records, and gets 401, 403 or 404, never the record.

The matrix is generated when it runs, so routes other engineers add are covered without editing this file.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response

from app.auth.permissions import Role, allows
from tests.conftest import ISSUE_PHQ9
from tests.security.clinics import CALLERS, StockedClinic, callers_clinic, created, stocked_clinic
from tests.security.openapi_routes import (
    MEASURED_AT,
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

PROBLEM = "application/problem+json"
FHIR = "application/fhir+json"


@pytest.fixture(scope="module")
def foreign(app: FastAPI, client: TestClient) -> StockedClinic:
    return stocked_clinic(app, client)


def is_error_document(route: Route, response: Response) -> bool:
    """Problem details, or under /fhir a FHIR OperationOutcome."""
    content_type = response.headers.get("content-type", "")
    if is_oauth_error(route.method, route.path, content_type, response.text):
        return True
    if route.path.startswith("/fhir"):
        return content_type.startswith(FHIR) and response.json().get("resourceType") == "OperationOutcome"
    return content_type.startswith(PROBLEM)


def verdict(route: Route, role: Role | None, response: Response, *, targets_records: bool) -> str | None:
    """What is wrong with this answer to a request for another clinic's records, if anything."""
    status = response.status_code
    if status >= 500:
        return "server error"
    if status >= 400 and not is_error_document(route, response):
        return "an error that is neither problem details nor an OperationOutcome"
    if undeclared := route.undeclared(status, response.headers.get("content-type", "")):
        return f"an answer /openapi.json does not declare: {undeclared}"
    if route.public:
        return None
    if role is None:
        return None if status == 401 else "answered without credentials (expected 401)"
    if status == 401:
        return "a valid key was refused as unauthenticated"
    if role is Role.SMART_CLIENT and not route.path.startswith("/fhir"):
        return None if status == 403 else "a SMART access token was let outside /fhir (expected 403)"
    if route.permission is not None and not allows(role, route.permission):
        return None if status == 403 else f"the role lacks {route.permission.value} (expected 403)"
    if not targets_records:
        return None
    if status in (403, 404):
        return None
    if status in (400, 422) and (route.takes_body or route.parameters("query")):
        return None  # refused before any lookup, and says nothing about the record
    return f"answered {status} about another clinic's record (expected 403 or 404)"


def test_every_route_and_role_is_refused_another_clinics_records(
    app: FastAPI, client: TestClient, foreign: StockedClinic, figures: list[str], backend: str
) -> None:
    schema = app.openapi()
    every_route = routes(app)
    by_path = {f"{route.method} {route.path}": route for route in every_route}
    for route in every_route:
        foreign.discover(client, schema, route, by_path)
    before = snapshot(client, foreign, schema)
    violations: list[str] = []
    statuses: Counter[int] = Counter()
    validated_first: set[str] = set()
    requests = 0
    for route in every_route:
        if route.documented_public != route.public:
            violations.append(f"{route.label}: documented as public={route.documented_public}, not in PUBLIC_ROUTES")
        callers = callers_clinic(app, client)  # a clinic of its own per route: its audit trail holds only this route
        template = example_body(schema, route)
        references = body_references(template)
        for values in path_variants(route, foreign.ids):
            named = {name: foreign.ids(name, route)[0] for name in references} | values
            url = fill(route.path, values)
            query = query_values(route, foreign.ids, filters=foreign.filters())
            sent = body_arguments(route, fill_body(template, named))
            for caller, role in CALLERS.items():
                response = client.request(
                    route.method,
                    url,
                    params=query,
                    content=sent.get("content"),
                    headers={**callers.headers(caller), **sent.get("headers", {})},
                )
                requests += 1
                statuses[response.status_code] += 1
                targets_records = bool(route.record_ids or references)
                if response.status_code in (400, 422) and targets_records and role is not None:
                    validated_first.add(route.label)
                problem = verdict(route, role, response, targets_records=targets_records)
                leaked = foreign.leaked(response.text, sent=[*named.values(), *query.values()])
                for finding in [problem] if problem else []:
                    violations.append(f"{caller} {route.method} {url} -> {response.status_code}: {finding}")
                if leaked:
                    violations.append(f"{caller} {route.method} {url} -> {response.status_code}: leaked {leaked}")

    figures.append(
        f"[{backend}] authorization matrix: {len(every_route)} routes × {len(CALLERS)} callers "
        f"(no credentials, {', '.join(c for c in CALLERS if c != 'anonymous')}) = "
        f"{len(every_route) * len(CALLERS)} pairs, {requests} requests with another clinic's ids; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    if validated_first:
        figures.append(
            f"[{backend}]   400/422 instead of 403/404 (body refused, or nothing found to act on): "
            f"{sorted(validated_first)}"
        )
    if snapshot(client, foreign, schema) != before:
        violations.append("the other clinic's patient, measurements, sessions, keys or alerts changed")
    assert not violations, "\n".join(violations)
    assert_untouched(client, foreign)


def snapshot(client: TestClient, foreign: StockedClinic, schema: dict[str, Any]) -> Any:
    """The other clinic's patient, measurements, sessions, tokens, keys and alerts, as its own admin reads them."""
    patient = f"/v1/patients/{foreign.known['patient_id']}"
    paths = [patient, f"{patient}/measurements", f"{patient}/sessions", f"{patient}/tokens", "/v1/api-keys"]
    paths += [path for path in ("/v1/clinic/alerts", "/v1/clinic/settings") if path in schema["paths"]]
    return [created(client.get(path, params={"limit": 500}, headers=foreign.admin)) for path in paths]


def assert_untouched(client: TestClient, foreign: StockedClinic) -> None:
    """After every other clinic's attempt, this clinic's records, keys and codes are exactly as they were."""
    admin = foreign.admin
    patient = f"/v1/patients/{foreign.known['patient_id']}"
    assert created(client.get(patient, headers=admin))["external_id"] == foreign.known["external_id"]
    history = created(client.get(f"{patient}/measurements/{foreign.known['measurement_id']}/history", headers=admin))
    assert [version["version"] for version in history] == [1, 2]  # created, then amended once by its own clinic
    assert client.get("/v1/instruments/phq9/text", headers=admin).status_code == 200
    for key in [*foreign.keys.keys.values(), foreign.extra_key, foreign.patient_token]:
        assert client.get("/v1/instruments", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    own_keys = {str(key_id) for key_id in foreign.keys.key_ids.values()} | {foreign.known["key_id"]}
    own_keys.add(foreign.known["token_key_id"])
    trail = created(client.get("/v1/audit", params={"limit": 500}, headers=admin))["items"]
    assert {event["key_id"] for event in trail} <= own_keys | {None}
    assert client.post("/v1/enrolments/exchange", json={"code": foreign.unused_enrolment_code}).status_code == 201


def test_another_clinics_session_cannot_be_named_in_a_measurement(
    app: FastAPI, client: TestClient, foreign: StockedClinic
) -> None:
    callers = callers_clinic(app, client)
    own = f"/v1/patients/{callers.patient_id}/measurements"
    body: dict[str, Any] = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": MEASURED_AT}
    stored = created(client.post(own, json=body, headers=callers.headers("clinician")))

    posted = client.post(
        own, json={**body, "session_id": foreign.known["session_id"]}, headers=callers.headers("clinician")
    )
    amended = client.post(
        f"{own}/{stored['id']}/amend",
        json={"items": ISSUE_PHQ9, "reason": "wrong session", "session_id": foreign.known["session_id"]},
        headers=callers.headers("clinician"),
    )

    assert (posted.status_code, amended.status_code) == (404, 404)
    listed = created(client.get(own, headers=callers.headers("clinician")))["items"]
    assert [(m["id"], m["version"], m["session_id"]) for m in listed] == [(stored["id"], 1, None)]
