"""Invariant: no datetime yields a 5xx.

Every date-time and date field of every request body in the OpenAPI schema (found by walking the schemas, through
``$ref``, ``anyOf``, nested objects and arrays), every such query parameter, and the datetimes of the bodies the
schema cannot describe (FHIR resources and Bundle entries, NDJSON and CSV imports: the example bodies' times, a
Patient's ``birthDate``, FHIR search parameters) are sent the calendar's extremes: years 1 and 9999 with offsets
-12:00 and +14:00, a leap second, naive times, impossible dates. Each answer is a 4xx problem (an OperationOutcome
under /fhir) or a success, never a 5xx. Then every GET route of the schema is read over what was stored, plus
measurements and a session planted straight in the database at the first and last instants a UTC datetime holds (as
older rows might be): every read still renders.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import update

from app.core.datetimes import EARLIEST_UTC, LATEST_UTC
from app.core.db import transaction
from app.core.state import state_of
from app.measurements.models import Measurement
from app.therapy_sessions.models import TherapySession
from tests.conftest import ISSUE_PHQ9
from tests.security.clinics import StockedClinic, created, stocked_clinic
from tests.security.openapi_routes import (
    EXAMPLE_BODIES,
    MEASURED_AT,
    Route,
    body_references,
    example_body,
    fill,
    fill_body,
    path_variants,
    query_values,
    routes,
)

DATETIMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-12:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59.999999+14:00",
    "1899-12-31T23:59:59Z",
    "2016-12-31T23:59:60Z",
    "2026-01-01T00:00:00",
    "9999-12-31T23:59:59",
    "2026-02-30T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2026-01-01T00:00:00+24:00",
]
"""Extremes of the calendar, with the farthest offsets; a leap second; naive times; dates that do not exist."""
DATES = ["0001-01-01", "9999-12-31", "0000-01-01", "10000-01-01", "2026-02-30", "2016-12-31T23:59:60Z", "1899-12-31"]
FHIR_SEARCH_VALUES = [
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "ge9999-12-31T23:59:59-12:00",
    "lt0001-01-01T00:00:00+14:00",
    "eq2016-12-31T23:59:60Z",
]
FHIR_SEARCH_PARAMETERS = ("date", "_lastUpdated", "authored")
"""Date search parameters a FHIR client may send to any search (the server supports or refuses them)."""

Site = tuple[str, ...]
"""Where a datetime sits in a JSON body: keys and list indexes (as strings: ``"0"``)."""


@pytest.fixture(scope="module")
def own(app: FastAPI, client: TestClient) -> StockedClinic:
    return stocked_clinic(app, client)


def admin_key(client: TestClient, own: StockedClinic) -> dict[str, str]:
    """A fresh admin key, so that one route's requests stay within one key's rate limit."""
    issued = created(client.post("/v1/api-keys", json={"role": "admin"}, headers=own.admin))
    return {"Authorization": f"Bearer {issued['key']}"}


def caller(client: TestClient, own: StockedClinic, route: Route) -> dict[str, str]:
    if route.path.startswith("/v1/me/"):
        return {"Authorization": f"Bearer {own.patient_token}"}
    return admin_key(client, own)


def schema_sites(
    schema: dict[str, Any], node: dict[str, Any], where: Site = (), seen: frozenset[str] = frozenset()
) -> Iterator[tuple[Site, str]]:
    """Every (site, format) of a date-time or date in a JSON schema."""
    reference = node.get("$ref")
    if isinstance(reference, str):
        name = reference.rsplit("/", 1)[-1]
        if name not in seen:
            yield from schema_sites(schema, schema["components"]["schemas"][name], where, seen | {name})
        return
    if node.get("format") in {"date-time", "date"}:
        yield where, str(node["format"])
    for keyword in ("anyOf", "oneOf", "allOf"):
        for option in node.get(keyword, []):
            yield from schema_sites(schema, option, where, seen)
    for name, child in node.get("properties", {}).items():
        yield from schema_sites(schema, child, (*where, name), seen)
    if isinstance(node.get("items"), dict):
        yield from schema_sites(schema, node["items"], (*where, "0"), seen)


def example_sites(body: Any, where: Site = ()) -> Iterator[tuple[Site, str]]:
    """The times of an example body the schema does not describe (a FHIR resource): values equal to MEASURED_AT,
    and a ``birthDate`` site in every Patient resource."""
    if isinstance(body, dict):
        if body.get("resourceType") == "Patient":
            yield (*where, "birthDate"), "date"
        for key, value in body.items():
            yield from example_sites(value, (*where, key))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            yield from example_sites(value, (*where, str(index)))
    elif body == MEASURED_AT:
        yield where, "date-time"


def with_patient_entry(body: Any) -> Any:
    """A Bundle also carries a Patient entry (whose ``birthDate`` is then tried)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return body
    patient = {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
    return {**body, "entry": [*body.get("entry", []), patient]}


def placed(body: Any, site: Site, value: str) -> Any:
    """A copy of the body with ``value`` at ``site`` (objects and one-element lists created on the way)."""
    copy = json.loads(json.dumps(body)) if body is not None else {}
    node = copy
    for step, following in zip(site, (*site[1:], None), strict=True):
        if following is None:
            break
        index: Any = int(step) if isinstance(node, list) else step
        if isinstance(node, list):
            while len(node) <= index:
                node.append({})
        elif not isinstance(node.get(index), dict | list):
            node[index] = [] if following.isdigit() else {}
        node = node[index]
    if isinstance(node, list):
        while len(node) <= int(site[-1]):
            node.append(None)
        node[int(site[-1])] = value
    else:
        node[site[-1]] = value
    return copy


def body_sites(app_schema: dict[str, Any], route: Route, example: Any) -> list[tuple[Site, str]]:
    if not isinstance(example, dict):
        return []
    content = app_schema["paths"][route.path][route.method.lower()].get("requestBody", {}).get("content", {})
    found = {
        site: kind for media in content.values() for site, kind in schema_sites(app_schema, media.get("schema", {}))
    }
    found.update(dict(example_sites(example)))
    return sorted(found.items())


def file_types(route: Route, example: Any) -> list[str]:
    """The import file formats a route takes whose example records carry a time: NDJSON and CSV."""
    if not isinstance(example, str) or MEASURED_AT not in example:
        return []
    content = route.operation.get("requestBody", {}).get("content", {})
    return [media for media in ("application/x-ndjson", "text/csv") if media in content]


def file_body(content_type: str, example: str, value: str) -> bytes:
    """The example import file with ``value`` as its records' time, as NDJSON or as CSV."""
    if content_type != "text/csv":
        return example.replace(MEASURED_AT, value).encode()
    record = json.loads(example.splitlines()[0])
    items = ",".join(f"item_{number}" for number in ISSUE_PHQ9)
    answers = ",".join(str(answer) for answer in ISSUE_PHQ9.values())
    return f"external_id,instrument,measured_at,{items}\n{record['external_id']},phq9,{value},{answers}\n".encode()


def judge(route: Route, response: Response) -> str | None:
    status = response.status_code
    if status >= 500:
        return f"server error {status}"
    if status >= 400:
        content_type = response.headers.get("content-type", "")
        expected = "application/fhir+json" if route.path.startswith("/fhir") else "application/problem+json"
        if not content_type.startswith(expected):
            return f"{status} without a problem document ({content_type})"
    return None


def plant_extremes(app: FastAPI, client: TestClient, own: StockedClinic) -> None:
    """Two measurements and a session stored at the first and last instants of the UTC calendar, bypassing
    validation (older rows may hold such values)."""
    patients = f"/v1/patients/{own.known['patient_id']}"
    ids = [
        created(
            client.post(
                f"{patients}/measurements",
                json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": MEASURED_AT},
                headers=own.admin,
            )
        )["id"]
        for _ in range(2)
    ]
    therapy_session = created(client.post(f"{patients}/sessions", json={"started_at": MEASURED_AT}, headers=own.admin))
    for db in transaction(state_of(app).write_sessions):
        for measurement_id, moment in zip(ids, (EARLIEST_UTC, LATEST_UTC), strict=True):
            db.execute(
                update(Measurement)
                .where(Measurement.measurement_id == uuid.UUID(measurement_id))
                .values(measured_at=moment)
            )
        db.execute(
            update(TherapySession)
            .where(TherapySession.id == uuid.UUID(therapy_session["id"]))
            .values(started_at=LATEST_UTC)
        )


def times(kind: str) -> list[str]:
    return {"date-time": DATETIMES, "date": DATES, "search": FHIR_SEARCH_VALUES}[kind]


def date_format(parameter: dict[str, Any]) -> str | None:
    schema = parameter.get("schema", {})
    formats = [schema.get("format"), *(option.get("format") for option in schema.get("anyOf", []))]
    return next((kind for kind in formats if kind in {"date-time", "date"}), None)


def fhir_search(route: Route) -> bool:
    """A FHIR search over a clinic's records (a type's endpoint that pages its results)."""
    names = {parameter["name"] for parameter in route.parameters("query")}
    return (
        route.method == "GET" and route.path.startswith("/fhir/") and not route.parameters("path") and "_count" in names
    )


def test_no_datetime_anywhere_yields_a_server_error_and_what_was_stored_still_renders(
    app: FastAPI, http: TestClient, own: StockedClinic, figures: list[str], backend: str
) -> None:
    schema = app.openapi()
    every_route = routes(app)
    by_path = {f"{route.method} {route.path}": route for route in every_route}
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    sites: set[str] = set()

    def send(route: Route, site: str, attempts: list[tuple[str, dict[str, Any]]]) -> None:
        """Each (value, request) of a site; any answer but a success or a 4xx problem is a failure."""
        sites.add(f"{route.label} {site}")
        for value, request in attempts:
            response = http.request(route.method, **request)
            statuses[f"{response.status_code // 100}xx"] += 1
            finding = judge(route, response)
            if finding:
                failures.append(f"{route.label} {site}={value} -> {finding}: {response.text[:160]}")

    for route in every_route:
        queries = [(p["name"], kind) for p in route.parameters("query") if (kind := date_format(p))]
        searched = FHIR_SEARCH_PARAMETERS if fhir_search(route) else ()
        takes_times = route.takes_body and (
            (route.method, route.path) in EXAMPLE_BODIES or body_sites(schema, route, {})
        )
        if not (queries or searched or takes_times):
            continue
        own.discover(http, schema, route, by_path)
        values = path_variants(route, own.ids)[0]
        url = fill(route.path, values)
        query = query_values(route, own.ids, filters={})
        headers = caller(http, own, route)
        template = example_body(schema, route) if takes_times else None
        example = with_patient_entry(
            fill_body(template, {name: own.ids(name, route)[0] for name in body_references(template)} | values)
        )
        as_json = headers | {"Content-Type": route.media_type}

        for site, kind in body_sites(schema, route, example):
            body = [(v, {"content": json.dumps(placed(example, site, v)), "headers": as_json}) for v in times(kind)]
            send(route, "body." + ".".join(site), [(v, {"url": url, "params": query, **r}) for v, r in body])
        for media in file_types(route, example):
            typed = headers | {"Content-Type": media}
            files = [(v, {"content": file_body(media, example, v), "headers": typed}) for v in DATETIMES]
            send(route, f"{media} measured_at", [(v, {"url": url, "params": query, **r}) for v, r in files])
        for name, kind in [*queries, *((name, "search") for name in searched)]:
            asked = [(v, {"url": url, "params": {**query, name: v}, "headers": headers}) for v in times(kind)]
            send(route, f"?{name}", asked)

    tried = statuses.total()
    plant_extremes(app, http, own)
    reads = 0
    for route in every_route:
        if route.method != "GET":
            continue
        headers = caller(http, own, route)
        for values in path_variants(route, own.ids):
            response = http.get(
                fill(route.path, values), params=query_values(route, own.ids, filters={}), headers=headers
            )
            reads += 1
            if response.status_code >= 500:
                failures.append(
                    f"read {route.label} over stored extremes -> {response.status_code}: {response.text[:160]}"
                )

    figures.append(
        f"no datetime yields a 5xx [{backend}]: {len(sites)} datetime fields and parameters, {tried} values tried "
        f"(4xx {statuses['4xx']}, 2xx {statuses['2xx']}, 5xx {statuses['5xx']}); {reads} reads over stored "
        f"extremes, 5xx {sum('over stored extremes' in failure for failure in failures)}"
    )
    assert sites
    assert tried
    assert reads
    assert not failures, "\n".join(failures)
