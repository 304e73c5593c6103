"""Invariant: every answer about a patient is audited. For every route in the OpenAPI schema that reads or writes a
patient's data, a request as an allowed role (success), as a role without the permission (403), for another
clinic's patient (404) and without credentials (401) each leaves an audit row with the status actually sent, naming
the patient where the caller's clinic owns it; another clinic's patient is never named in the caller's trail.

Which routes are about a patient is read from the schema when the suite runs: a path parameter naming a patient's
record, a query filter naming a patient, a body naming one (the example bodies' ``{patient_id}``), or the patient's
own routes (``/v1/me``). Rows are matched to a request by route and method: the ids seen before it are set aside.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.permissions import Role, allows
from app.core.state import state_of
from tests.security.clinics import STAFF, StockedClinic, created, enrol, stocked_clinic
from tests.security.openapi_routes import (
    EXAMPLE_BODIES,
    PHQ9_RESPONSE,
    Route,
    body_arguments,
    body_references,
    example_body,
    fill,
    fill_body,
    path_variants,
    query_values,
    routes,
)

PATIENT_PARAMETERS = frozenset(
    {"patient_id", "measurement_id", "session_id", "response_id", "observation_id", "alert_id", "task_id"}
)
"""Path parameters that name a patient's record (a FHIR QuestionnaireResponse, Observation or Task is a patient's)."""
PATIENT_FILTERS = frozenset({"patient", "subject", "patient_id"})
"""Query parameters that name a patient."""


@dataclass(frozen=True)
class Attempt:
    caller: str
    headers: dict[str, str]
    clinic: StockedClinic
    names_patient: bool
    """Whether the row must name the patient (the caller's clinic owns it, and the request names it where the audit
    can see it without reading the body: path or query, or a success)."""


def about_a_patient(route: Route, template: Any) -> bool:
    path = {p["name"] for p in route.parameters("path")}
    query = {p["name"] for p in route.parameters("query")}
    return bool(
        path & PATIENT_PARAMETERS
        or query & PATIENT_FILTERS
        or "patient_id" in body_references(template)
        or route.path.startswith("/v1/me/")
    )


def stock_fhir(client: TestClient, clinic: StockedClinic) -> None:
    """A QuestionnaireResponse and its Observations, and a schedule's first Task, whose ids the FHIR read routes
    name."""
    body = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", clinic.known["patient_id"]))
    response = created(
        client.post(
            "/fhir/QuestionnaireResponse",
            content=json.dumps(body),
            headers={**clinic.admin, "Content-Type": "application/fhir+json"},
        )
    )
    clinic.discovered["response_id"] = response["id"]
    searched = created(
        client.get(
            "/fhir/Observation", params={"subject": f"Patient/{clinic.known['patient_id']}"}, headers=clinic.admin
        )
    )
    clinic.discovered["observation_id"] = searched["entry"][0]["resource"]["id"]
    schedule = dict(EXAMPLE_BODIES[("POST", "/v1/patients/{patient_id}/schedules")])
    created(client.post(f"/v1/patients/{clinic.known['patient_id']}/schedules", json=schedule, headers=clinic.admin))
    tasks = created(client.get("/fhir/Task", params={"patient": clinic.known["patient_id"]}, headers=clinic.admin))
    clinic.discovered["task_id"] = tasks["entry"][0]["resource"]["id"]


def seen(app: FastAPI, route: Route) -> dict[uuid.UUID, AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.route == route.path, AuditEvent.method == route.method)
    with state_of(app).read_sessions() as db:
        return {row.id: row for row in db.scalars(query)}


def allowed_caller(route: Route) -> Role:
    if route.path.startswith("/v1/me/") or route.permission is None:
        return Role.PATIENT if route.path.startswith("/v1/me/") else Role.ADMIN
    return next((role for role in STAFF.values() if allows(role, route.permission)), Role.PATIENT)


def refused_role(route: Route, allowed: Role) -> Role | None:
    if route.permission is None:
        return None
    candidates = [*STAFF.values(), Role.PATIENT]
    return next((role for role in candidates if role is not allowed and not allows(role, route.permission)), None)


def test_every_answer_about_a_patient_is_audited(
    app: FastAPI, client: TestClient, figures: list[str], backend: str
) -> None:
    schema = app.openapi()
    home, foreign = stocked_clinic(app, client), stocked_clinic(app, client)
    every_route = routes(app)
    by_path = {f"{route.method} {route.path}": route for route in every_route}
    for clinic in (home, foreign):
        stock_fhir(client, clinic)
        for route in every_route:
            clinic.discover(client, schema, route, by_path)
    foreign_patient = uuid.UUID(foreign.known["patient_id"])
    home_patient = uuid.UUID(home.known["patient_id"])

    covered: list[Route] = []
    requests, checked = 0, 0
    statuses: Counter[str] = Counter()
    missing: list[str] = []
    for route in every_route:
        template = example_body(schema, route)
        if route.public or not about_a_patient(route, template):
            continue
        covered.append(route)
        named_in_request = bool(
            {p["name"] for p in route.parameters("path")} & PATIENT_PARAMETERS
            or {p["name"] for p in route.parameters("query")} & PATIENT_FILTERS
        )
        allowed = allowed_caller(route)
        attempts = [Attempt("allowed", _headers(client, home, allowed), home, True)]
        forbidden = refused_role(route, allowed)
        if forbidden is not None:
            attempts.append(
                Attempt(f"{forbidden.value} (forbidden)", _headers(client, home, forbidden), home, named_in_request)
            )
        if allowed is not Role.PATIENT:
            attempts.append(Attempt("another clinic's patient", home.keys.headers(allowed), foreign, False))
        attempts.append(Attempt("no credentials", {}, home, "patient_id" in route.path))
        for attempt in attempts:
            clinic = attempt.clinic
            values = path_variants(route, clinic.ids)[0]
            named = {name: clinic.ids(name, route)[0] for name in body_references(template)} | values
            patient = clinic.known["patient_id"]
            query = query_values(route, clinic.ids, filters={}) | {
                p["name"]: f"Patient/{patient}" if p["name"] == "subject" else patient
                for p in route.parameters("query")
                if p["name"] in PATIENT_FILTERS
            }
            sent = body_arguments(route, fill_body(template, named))
            before = seen(app, route)
            response = client.request(
                route.method,
                fill(route.path, values),
                params=query,
                content=sent.get("content"),
                headers={**attempt.headers, **sent.get("headers", {})},
            )
            requests += 1
            statuses[f"{attempt.caller.split(' (')[0]} {response.status_code}"] += 1
            new = [row for row_id, row in seen(app, route).items() if row_id not in before]
            checked += len(new)
            label = f"{attempt.caller} {route.label} -> {response.status_code}"
            request_rows = [row for row in new if row.status_code == response.status_code]
            if not request_rows:
                missing.append(f"{label}: no audit row with the status sent ({[r.status_code for r in new]})")
                continue
            if attempt.headers and attempt.clinic is foreign:
                wrong_clinic = [row for row in request_rows if row.clinic_id != home.keys.id]
                if wrong_clinic:
                    missing.append(f"{label}: recorded outside the caller's clinic")
            if any(row.patient_id == foreign_patient for row in new):
                missing.append(f"{label}: another clinic's patient named in the caller's trail")
            if attempt.names_patient and not any(row.patient_id == home_patient for row in request_rows):
                missing.append(f"{label}: no row names the patient")
            if attempt.caller == "allowed" and response.status_code >= 400:
                missing.append(f"{label}: the allowed caller did not succeed ({response.text[:200]})")

    with state_of(app).read_sessions() as db:
        leaked = db.scalars(
            select(AuditEvent.id).where(AuditEvent.clinic_id == home.keys.id, AuditEvent.patient_id == foreign_patient)
        ).all()
    if leaked:
        missing.append(f"{len(leaked)} row(s) of the caller's trail name another clinic's patient")
    figures.append(
        f"[{backend}] every answer about a patient is audited: {len(covered)} routes, {requests} requests "
        f"(allowed, forbidden role, another clinic's patient, no credentials), {checked} audit rows checked, "
        f"missing {len(missing)}; statuses {dict(sorted(statuses.items()))}"
    )
    assert len(covered) >= 20
    assert not missing, "\n".join(missing)


def _headers(client: TestClient, clinic: StockedClinic, role: Role) -> dict[str, str]:
    if role is Role.PATIENT:  # a fresh token each time: a route before may have revoked the last one
        token, _ = enrol(client, clinic.keys, clinic.known["patient_id"])
        return {"Authorization": f"Bearer {token}"}
    return clinic.keys.headers(role)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
